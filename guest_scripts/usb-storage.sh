#!/bin/sh
# usb-storage: O_DIRECT writes, then reads, over the USB scratch disk; times each.
set -eu
dev=${KH_DEV_USBDISK:?no usb disk}
bs=${KH_BLOCK_SIZE:-4096}
count=${KH_COUNT:-500}

now() { cut -d' ' -f1 /proc/uptime; }

t0=$(now)
dd if=/dev/zero of="$dev" bs="$bs" count="$count" oflag=direct 2>/dev/null
t1=$(now)
dd if="$dev" of=/dev/null bs="$bs" count="$count" iflag=direct 2>/dev/null
t2=$(now)

echo "metric usb.write.seconds $(echo "$t1 $t0" | awk '{print $1 - $2}')"
echo "metric usb.read.seconds $(echo "$t2 $t1" | awk '{print $1 - $2}')"
echo "metric usb.requests $((count * 2))"
