#!/bin/sh
# kharness-lava.sh NAME SECONDS COMMAND...: one part of a LAVA test, its output between markers.
#
# Runs COMMAND (killed after SECONDS; 0: no limit) with its stdout and stderr
# into files, and only then prints them on the console:
#   @@kharness-lava begin NAME@@
#   <stdout>
#   @@kharness-lava stderr NAME@@
#   <stderr>
#   @@kharness-lava end NAME rc=<exit status> seconds=<run time>@@
# so that `kharness lava ingest` reads each part back from LAVA's log as a QEMU
# run reads it from its SSH channel. Printing after the command has ended
# keeps a snapshot's readings together (a serial line takes seconds to carry
# one) and the console's time out of a workload's. NAME is [a-z0-9_.-].
# Under LAVA's test shell it also records a LAVA test case of NAME
# (lava-test-case), so the part shows in LAVA's own results.
set -u
name=$1
limit=$2
shift 2
out=/tmp/kharness-lava.out
err=/tmp/kharness-lava.err
now() { cut -d' ' -f1 /proc/uptime; }
t0=$(now)
if [ "$limit" -gt 0 ]; then
	timeout -s KILL "$limit" "$@" > "$out" 2> "$err"
else
	"$@" > "$out" 2> "$err"
fi
rc=$?
t1=$(now)
echo "@@kharness-lava begin $name@@"
cat "$out"
[ -s "$out" ] && [ -n "$(tail -c 1 "$out")" ] && echo
echo "@@kharness-lava stderr $name@@"
cat "$err"
[ -s "$err" ] && [ -n "$(tail -c 1 "$err")" ] && echo
echo "@@kharness-lava end $name rc=$rc seconds=$(echo "$t1 $t0" | awk '{printf "%.3f", $1 - $2}')@@"
rm -f "$out" "$err"
if command -v lava-test-case > /dev/null 2>&1; then
	if [ "$rc" = 0 ]; then result=pass; else result=fail; fi
	lava-test-case "$name" --result "$result" || true  # its signal line goes to LAVA
fi
exit 0
