#!/bin/sh
# Run the guest out of memory: one buffer as large as its RAM, filled from /dev/zero.
set -eu
for pid in $(pidof dropbear); do echo "dropbear $pid oom_score_adj $(cat "/proc/$pid/oom_score_adj")"; done
echo "workload oom_score_adj $(cat /proc/self/oom_score_adj)"
total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
dd if=/dev/zero of=/dev/null bs="$(( total_kb - 1024 ))k" count=1
echo "dd survived"
