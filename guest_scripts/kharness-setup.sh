#!/bin/sh
# kharness-setup: what the host needs once per boot before the boot snapshot,
# in one SSH round trip (under TCG each round trip costs tens of ms).
#
# Run as root in the guest, no arguments. KH_SERIAL_<ID>/KH_FIND_<ID> as for
# kharness-run.sh: the disks the cell's workloads use (KH_DISKS=1 when there
# are any). Prints sections, each
# after a line "@@kharness-section NAME@@" (split by harness/collect/snapshot.py):
#   init                   init's last word, once it is there (init loads the
#                          modules SSH does not need while the host connects):
#                          "ok modules=<n>", "error: <what>" (init gave up), or
#                          "timeout" (nothing within KH_INIT_WAIT s, default 60)
#   trace                  kharness-trace.sh's status line: init's run, or this
#                          script's rerun when init's did not arm the histograms
#   slabinfo-before-trace  init's /proc/slabinfo around arming them (their cost);
#   slabinfo-after-trace   absent when init did not arm them
#   disks                  "ok", or kharness-run.sh's complaint (a disk a workload
#                          needs did not appear)
# Always exits 0: the host judges. KH_SYSROOT (tests on the host only) prefixes /run.
# KH_SCRIPTS: the folder of the guest scripts (the host gives it: sourced into a
# batch's step, as the host runs this, $0 is the shell's, not this file's).
D=${KH_SCRIPTS:-${0%/*}}
WAIT=${KH_INIT_WAIT:-60}
R=${KH_SYSROOT:-}

section() { printf '@@kharness-section %s@@\n' "$1"; }

section init
done=$R/run/kharness-init.done
i=0
status=timeout
nap=""
while [ "$i" -lt $((WAIT * 50)) ]; do
	# init writes the line in one go; a line without its newline is not there yet
	if [ -r "$done" ] && read -r line <"$done"; then
		status=$line
		break
	fi
	i=$((i + 1))
	# Wait 20 ms with read -t on a FIFO nobody writes: a sleep without a fork and
	# exec (15 ms each under TCG); a shell without read -t sleeps.
	if [ -z "$nap" ]; then
		nap=$R/run/kharness-setup.nap
		[ -p "$nap" ] || mkfifo "$nap" 2>/dev/null
		if [ -p "$nap" ]; then exec 7<>"$nap"; else nap=none; fi
	fi
	if [ "$nap" = none ]; then
		sleep 0.02
	else
		read -r -t 0.02 -u 7 _ 2>/dev/null
		[ "$?" = 1 ] || sleep 0.02
	fi
done
if [ -n "$nap" ] && [ "$nap" != none ]; then exec 7<&-; fi
echo "$status"

section trace
armed=no
if [ -r "$R/run/kharness-trace.txt" ]; then
	while read -r line; do
		echo "$line"
		case $line in "kharness-trace: ok"*) armed=yes ;; esac
	done <"$R/run/kharness-trace.txt"
fi
[ "$armed" = yes ] || KH_SYSROOT=$R sh "$D/kharness-trace.sh" 2>&1

if [ "$armed" = yes ] && [ -r "$R/run/slabinfo-before-trace" ] && [ -r "$R/run/slabinfo-after-trace" ]; then
	awk 'BEGIN {
		for (i = 1; i + 1 < ARGC; i += 2) {
			print "@@kharness-section " ARGV[i] "@@"
			while ((getline line < ARGV[i + 1]) > 0) print line
			close(ARGV[i + 1])
		}
	}' slabinfo-before-trace "$R/run/slabinfo-before-trace" slabinfo-after-trace "$R/run/slabinfo-after-trace"
fi

section disks
if [ "${KH_DISKS:-0}" != 0 ]; then
	sh "$D/kharness-run.sh" /dev/null 2>&1 && echo ok
else
	echo ok
fi
exit 0
