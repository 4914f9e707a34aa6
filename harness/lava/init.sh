#!/bin/sh
# kharness LAVA init: PID 1 of the ramdisk `kharness lava ramdisk` writes for a
# LAVA device (a board, or LAVA's own qemu device type), installed as /init.
#
# The same guest userland as a QEMU run's (harness/initramfs), without SSH: a
# LAVA device is reached over its serial console, so instead of starting
# dropbear this init gives the console a shell, and LAVA's test shell runs
# the same guest scripts there (harness/lava/testdef.py). What it does, in
# order, as harness/initramfs/init.sh does:
#   mounts  proc, sys, devtmpfs, devpts, debugfs, tracefs
#   runs    /kharness/scripts/kharness-trace.sh before any module loads (the
#           bounce histograms count the boot's own device probes), with
#           /proc/slabinfo before and after it in /run (their kmalloc cost)
#   loads   /etc/kharness/modules in order; a module that does not load is a
#           warning here, not the end: a board has none of QEMU's devices
#   links   /dev/disk/by-uuid/<uuid> for each ext2/3/4 block device: LAVA's
#           qemu device type mounts the test overlay by its UUID
#   prints  KHARNESS-READY release=<uname -r> console
#   runs    a login shell on the console, again whenever it exits; its prompt
#           is PROMPT below, which the LAVA job waits for. It and what it runs
#           have oom_score_adj -1000 but for workloads (kharness-run.sh: 0)
# PID 1 must never exit (the kernel would panic), so it loops.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
PROMPT='kharness-lava# '
export PATH HOME

say() { echo "$*" > /dev/console; }

/bin/busybox mount -t proc proc /proc || say "KHARNESS-INIT-ERROR: mount proc"
/bin/busybox --install -s || say "KHARNESS-INIT-ERROR: busybox --install"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var /root
mount -t devpts devpts /dev/pts
[ -e /var/run ] || ln -s ../run /var/run
mount -t debugfs debugfs /sys/kernel/debug || say "KHARNESS-INIT-WARN: no debugfs"
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || say "KHARNESS-INIT-WARN: no tracefs"
hostname kharness

script=/kharness/scripts/kharness-trace.sh
if [ -f "$script" ]; then
	cat /proc/slabinfo > /run/slabinfo-before-trace 2>/dev/null
	KH_TRACE_BOOT=1 sh "$script" > /run/kharness-trace.txt 2>&1
	cat /proc/slabinfo > /run/slabinfo-after-trace 2>/dev/null
fi

# The load list is a shell file of "early <path>" and "late <path>" lines in
# load order (harness/initramfs/modules.py); here every one loads before READY.
early() { insmod "$1" 2>/dev/null || say "KHARNESS-INIT-WARN: insmod $1"; }
late() { early "$1"; }
[ -f /etc/kharness/modules ] && . /etc/kharness/modules

# Block devices appear asynchronously after their driver loads (the qemu
# device type's overlay disk among them): wait until the list has not
# changed for half a second (at most 5 s). Every login shell links them by
# UUID again (/etc/profile), so a late disk is found too.
last= same=0 i=0
while [ "$i" -lt 50 ] && [ "$same" -lt 5 ]; do
	now=$(ls /sys/block 2>/dev/null | tr '\n' ' ')
	if [ -n "$now" ] && [ "$now" = "$last" ]; then same=$((same + 1)); else same=0; fi
	last=$now
	sleep 0.1
	i=$((i + 1))
done
# No blkid in Debian's static busybox: the UUID of an ext2/3/4 file system is
# 16 bytes at 1128 of the device (the superblock at 1024, magic 0xef53 at 1080).
cat > /etc/profile <<'PROFILE'
mkdir -p /dev/disk/by-uuid
for b in /sys/block/*; do
	dev=/dev/${b##*/}
	[ "$(dd if="$dev" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 53ef ] || continue
	u=$(dd if="$dev" bs=1 skip=1128 count=16 2>/dev/null | od -An -tx1 | tr -d ' \n')
	[ "${#u}" = 32 ] || continue
	uuid=$(echo "$u" | sed 's/\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)\(.*\)/\1-\2-\3-\4-\5/')
	ln -sf "$dev" "/dev/disk/by-uuid/$uuid"
done
export PATH HOME
PROFILE
echo "PS1='$PROMPT'; export PS1" >> /etc/profile
# The OOM killer spares the console's shell and LAVA's test shell under it,
# as the QEMU init spares dropbear; kharness-run.sh puts workloads back to 0.
echo -1000 > /proc/self/oom_score_adj
say "KHARNESS-READY release=$(uname -r) console"
while :; do
	setsid cttyhack sh -l
	sleep 1
done
