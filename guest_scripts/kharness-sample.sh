#!/bin/sh
# kharness-sample: a slab time series while a workload runs.
#
#   kharness-sample.sh start INTERVAL   sample every INTERVAL seconds, in the background
#   kharness-sample.sh stop             stop; print the samples, then the sampler's cost
#
# Snapshots before and after a workload miss what it allocates and frees in
# between; the samples show the peak. Each sample is a line
# "@@kharness-sample <uptime>@@" followed by the slabinfo header, the kmalloc
# rows (every family) and meminfo's MemTotal, Slab and SUnreclaim lines, read
# by harness/collect/sampler.py.
#
# Cost: under TCG a fork and exec costs about 20 ms of guest CPU, more than
# reading the files. So nothing forks per sample: one awk reads the files
# each time a tick arrives on its stdin, and the ticks come from a shell
# loop that waits with the `read -t` builtin on a FIFO (a sleep without a
# process). stop writes a byte into that FIFO: the ticker ends, the awk sees
# the end of its input, and the shell that ran the two asks the `times`
# builtin for its own CPU time and its children's (both reaped), and
# writes the total to "used"; stop waits for it on a second FIFO. So the
# sampler accounts for itself: stopping walks no /proc and kills nothing.
# stop ends with "@@kharness-sampler ticks=<N> hz=100@@": the CPU time the
# sampler used, in USER_HZ ticks (fixed at 100 for /proc). A sampler that does
# not end within 2.5 s (or a shell without read -t, as dash in the host's
# tests) is killed instead, its CPU time read from /proc/<pid>/stat of its
# processes. The ticker stops after KH_SAMPLE_MAX samples, so a sampler whose
# host went away cannot fill the guest's RAM.
set -u
R=${KH_SYSROOT:-}
DIR=${KH_SAMPLE_DIR:-/run/kharness-sample}
MAX=${KH_SAMPLE_MAX:-3600}

ticker() {
	exec 3<>"$DIR/tick"
	n=0
	while [ "$n" -lt "$MAX" ]; do
		echo "$n"
		n=$((n + 1))
		# One byte at a time: busybox's read -t drops the part of a line it read
		# when its time runs out, but a byte either arrives or waits for the next.
		c=""
		read -r -n 1 -t "$1" -u 3 c
		st=$?
		[ -n "$c" ] && break  # stop wrote its byte
		# busybox ash times out with 1; a shell without read -t (dash, in the
		# host's tests) fails otherwise, and sleeps instead.
		[ "$st" = 1 ] || sleep "$1"
	done
}

# The CPU time of this shell and of its reaped children, in ticks (1/100 s):
# the `times` builtin's two lines, this shell's user and system time, then its
# children's, each as <minutes>m<seconds>s. Written to a file (a builtin's
# output: no fork) and read back; /proc/self/stat, read with `read`, went a
# byte at a time: 30 ms under TCG.
own_ticks() {
	times >"$DIR/times" || return 1
	total=0
	while read -r user sys; do
		to_ticks "$user"
		to_ticks "$sys"
	done <"$DIR/times"
	: >"$DIR/times"
	echo "$total"
}

# to_ticks XmY.Zs: add it to $total in ticks (hundredths; more decimals are cut).
to_ticks() {
	m=${1%%m*}
	sec=${1#*m}
	sec=${sec%s}
	frac=0
	case $sec in *.*) frac=${sec#*.}; sec=${sec%%.*} ;; esac
	frac=${frac}00
	# Two digits one by one: "08" would be read as a bad octal number.
	tens=${frac%"${frac#?}"}
	ones=${frac#?}
	ones=${ones%"${ones#?}"}
	total=$((total + (m * 60 + sec) * 100 + tens * 10 + ones))
}

sampler() {
	# mawk (the host's awk, in tests) reads a pipe in blocks unless told not to;
	# the guest's busybox awk does not (and asking would cost a fork and exec).
	set --
	[ -n "$R" ] && awk -W interactive 'BEGIN { exit 0 }' </dev/null >/dev/null 2>&1 && set -- -W interactive
	awk "$@" -v R="$R" '{
		f = R "/proc/uptime"; getline up < f; close(f); split(up, u, " ")
		print "@@kharness-sample " u[1] "@@"
		f = R "/proc/slabinfo"; first = 1
		while ((getline line < f) > 0) {
			if (first || line ~ /^(dma-)?kmalloc/) print line
			first = 0
		}
		close(f)
		f = R "/proc/meminfo"
		while ((getline line < f) > 0)
			if (line ~ /^(MemTotal|Slab|SUnreclaim):/) print line
		close(f)
		fflush()
	}'
}

# family PID: "<ticks> <pids>": CPU time of PID and its descendants, and their pids.
# One awk reads every /proc/<pid>/stat itself (a process gone meanwhile is skipped).
family() {
	set -- "$1" /proc/[0-9]*/stat
	awk -v p="$1" 'BEGIN {
		for (i = 2; i < ARGC; i++) {
			if ((getline line < ARGV[i]) <= 0) continue
			close(ARGV[i])
			pid = line; sub(/ .*/, "", pid)
			sub(/^.*\) /, "", line)  # the command name may hold spaces: fields count from after it
			n = split(line, f, " ")
			parent[pid] = f[2]
			ticks[pid] = f[12] + f[13] + f[14] + f[15]
		}
		keep[p] = 1
		for (grew = 1; grew; ) {
			grew = 0
			for (q in parent) if (!(q in keep) && (parent[q] in keep)) { keep[q] = 1; grew = 1 }
		}
		for (q in keep) if (q in ticks) { t += ticks[q]; ids = ids " " q }
		print t + 0 ids
	}' "$@"
}

# alive PID: PID has not ended (a zombie has: its parent has yet to reap it).
alive() {
	st=""
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	case ${st##*) } in Z*) return 1 ;; esac
}

# Stop the sampler and set $used to the CPU time it used, in ticks; 1 if none
# runs. (A variable, not output: $(stop_loop) would cost a fork.)
stop_loop() {
	[ -s "$DIR/pid" ] || return 1
	read -r pid <"$DIR/pid"
	: >"$DIR/pid"  # (emptied, not removed: rm is a fork and exec, `:` a builtin)
	# Opened before asking, so an answer written meanwhile waits in the FIFO.
	exec 5<>"$DIR/done"
	if ! [ -s "$DIR/used" ]; then
		printf s 1<>"$DIR/tick"
		read -r -n 1 -t 2.5 -u 5 _ 2>/dev/null
	fi
	exec 5<&-
	if [ -s "$DIR/used" ]; then
		read -r used <"$DIR/used"
		: >"$DIR/used"
		return 0
	fi
	# shellcheck disable=SC2046
	set -- $(family "$pid")
	used=$1
	shift
	[ "$#" -gt 0 ] && kill "$@" 2>/dev/null
	# Wait for it to go, sleeping with read -t on the tick FIFO (no process);
	# a shell without read -t sleeps.
	exec 4<>"$DIR/tick"
	i=0
	while alive "$pid" && [ "$i" -lt 250 ]; do
		i=$((i + 1))
		read -r -t 0.01 -u 4 _ 2>/dev/null
		[ "$?" = 1 ] || sleep 0.01
	done
	exec 4<&-
	: >"$DIR/used"
}

case ${1:-} in
start)
	interval=${2:?usage: kharness-sample.sh start INTERVAL}
	stop_loop
	[ -d "$DIR" ] || mkdir -p "$DIR"
	[ -p "$DIR/tick" ] || mkfifo "$DIR/tick"
	[ -p "$DIR/done" ] || mkfifo "$DIR/done"
	: >"$DIR/used"
	: >"$DIR/samples"
	# Every descriptor redirected: the SSH session must not wait for the sampler,
	# and the shell's "Terminated" at a kill must not land among the samples.
	(
		ticker "$interval" | sampler
		own_ticks >"$DIR/used"
		printf d 1<>"$DIR/done"
	) </dev/null >>"$DIR/samples" 2>/dev/null &
	echo $! > "$DIR/pid"
	echo "kharness-sample: started every ${interval}s"
	;;
stop)
	used=""
	stop_loop || { echo "kharness-sample: not running" >&2; exit 1; }
	cat "$DIR/samples"
	# On a line of its own even after a sample a kill cut short
	echo
	echo "@@kharness-sampler ticks=$used hz=100@@"
	: >"$DIR/samples"
	;;
*)
	echo "usage: kharness-sample.sh start INTERVAL | stop" >&2
	exit 2
	;;
esac
