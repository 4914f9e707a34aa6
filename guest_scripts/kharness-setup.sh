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
#   trace/slabinfo-before  init's /proc/slabinfo around arming them (their cost);
#   trace/slabinfo-after   absent when init did not arm them
#   disks                  "ok", or kharness-run.sh's complaint (a disk a workload
#                          needs did not appear)
# Always exits 0: the host judges.
D=${0%/*}
WAIT=${KH_INIT_WAIT:-60}

section() { printf '@@kharness-section %s@@\n' "$1"; }

section init
done=/run/kharness-init.done
i=0
status=timeout
while [ "$i" -lt $((WAIT * 50)) ]; do
	# init writes the line in one go; a line without its newline is not there yet
	if [ -r "$done" ] && read -r line <"$done"; then
		status=$line
		break
	fi
	i=$((i + 1))
	sleep 0.02
done
echo "$status"

section trace
armed=no
if [ -r /run/kharness-trace.txt ]; then
	while read -r line; do
		echo "$line"
		case $line in "kharness-trace: ok"*) armed=yes ;; esac
	done </run/kharness-trace.txt
fi
[ "$armed" = yes ] || sh "$D/kharness-trace.sh" 2>&1

if [ "$armed" = yes ] && [ -r /run/slabinfo-before-trace ] && [ -r /run/slabinfo-after-trace ]; then
	awk 'BEGIN {
		for (i = 1; i + 1 < ARGC; i += 2) {
			print "@@kharness-section " ARGV[i] "@@"
			while ((getline line < ARGV[i + 1]) > 0) print line
			close(ARGV[i + 1])
		}
	}' trace/slabinfo-before /run/slabinfo-before-trace trace/slabinfo-after /run/slabinfo-after-trace
fi

section disks
if [ "${KH_DISKS:-0}" != 0 ]; then
	sh "$D/kharness-run.sh" /dev/null 2>&1 && echo ok
else
	echo ok
fi
exit 0
