#!/bin/sh
echo "metric ../../../etc/evil 1"
printf 'metric flood.lines %s\n' 1
# 12 MiB of junk, beyond the 8 MiB kept of a workload's output.
head -c 12582912 /dev/zero | tr '\0' 'x'
