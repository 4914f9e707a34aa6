#!/bin/sh
# dd-direct: O_DIRECT writes, then reads, over the scratch disk; times each.
set -eu
# KH_DISK names the device id of the declaration (scratch by default), so
# other workloads (usb-storage) run this script on their own disk.
disk=$(echo "${KH_DISK:-scratch}" | tr 'a-z' 'A-Z')
case "$disk" in *[!A-Z0-9]*|'') echo "bad disk id $disk" >&2; exit 2 ;; esac
eval "dev=\${KH_DEV_$disk:-}"
[ -n "$dev" ] || { echo "no disk $disk" >&2; exit 2; }
bs=${KH_BLOCK_SIZE:-0}
# 0 (or page): the kernel's page size. busybox dd drops O_DIRECT for blocks smaller
# than a page: on a 16 KiB-page kernel 200 writes of 4 KiB reached the disk as
# one merged write after 50 page reads (seen here), so nothing was direct.
case $bs in
    0|page) bs=$(getconf PAGESIZE 2>/dev/null || awk '/KernelPageSize/ {print $2 * 1024; exit}' /proc/self/smaps) ;;
esac
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
