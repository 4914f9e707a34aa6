#!/bin/sh
# dd-direct: O_DIRECT writes, then reads, over the scratch disk; times each.
set -eu
dev=${KH_DEV_SCRATCH:?no scratch disk}
bs=${KH_BLOCK_SIZE:-4096}
count=${KH_COUNT:-2000}

now() { cut -d' ' -f1 /proc/uptime; }

t0=$(now)
dd if=/dev/zero of="$dev" bs="$bs" count="$count" oflag=direct 2>/dev/null
t1=$(now)
dd if="$dev" of=/dev/null bs="$bs" count="$count" iflag=direct 2>/dev/null
t2=$(now)

echo "metric dd.write.seconds $(echo "$t1 $t0" | awk '{print $1 - $2}')"
echo "metric dd.read.seconds $(echo "$t2 $t1" | awk '{print $1 - $2}')"
echo "metric dd.requests $((count * 2))"
