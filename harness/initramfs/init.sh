#!/bin/sh
# kharness guest init: PID 1 of every guest, installed as /init.
#
# Contract with the host (see harness/initramfs/base.py):
#   sources /etc/kharness/modules   "early <path>" and "late <path>" lines, in load
#                                   order: early ones load before READY, late after
#           /proc/cmdline           "kharness.selftest": check, report, power off
#                                   "kharness.ssh_mac=<mac>": the SSH NIC (default eth0)
#   runs    /kharness/scripts/kharness-trace.sh before the modules, output in /run/kharness-trace.txt
#   writes  /run/kharness-boot.times        "<phase> <uptime>" as each phase of init ends
#           /run/kharness-init.done         "ok modules=<n>" once every module is in,
#                                           "error: <what>" if init gave up after READY
#   prints  KHARNESS-READY release=<uname -r>          SSH is up, workloads may start
#           KHARNESS-SELFTEST ok release=<r> modules=<n>   (selftest only)
#           KHARNESS-INIT-ERROR: <what>                 init gave up; the guest stays up
#           KHARNESS-INIT-WARN: <what>                  something optional is missing
# PID 1 must never exit (the kernel would panic), so every path ends in the
# wait loop at the bottom.
#
# Boot time is the cost of every repetition, and under TCG a fork+exec costs
# milliseconds: init uses shell builtins where it can, busybox's applet links
# come in the base layer (made on the host), and dropbear starts in the
# background as soon as /dev is there, so its start-up runs on the other vCPU
# while the histograms are armed and the modules load.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
export PATH HOME

say() { echo "$*" > /dev/console; }

# stamp PHASE: note the guest's uptime as PHASE ends (written out before READY).
times=""
stamp() {
    read -r up _ < /proc/uptime
    times="$times$1 $up
"
}

selftest=0
loaded=0

# fail WHAT: report, power off if this is the selftest, else stay up for a look.
# Applets are called through /bin/busybox here: `busybox --install` may be
# what failed.
fail() {
    say "KHARNESS-INIT-ERROR: $*"
    echo "error: $*" > /run/kharness-init.done
    [ "$selftest" = 1 ] && /bin/busybox poweroff -f
    idle
}

idle() {
    while :; do /bin/busybox sleep 3600; done
}

# mount_early: after `mount -a` (/etc/fstab of the base layer: proc, sysfs,
# devtmpfs, debugfs, tracefs, in one exec instead of five), check what it mounted.
mount_early() {
    [ -d /proc/self ] || fail "mount proc"
    # The base layer has the applet links; a base without them (a busybox
    # whose applet list the host could not read) gets them here. After /proc:
    # `busybox --install` finds itself through /proc/self/exe.
    [ -e /bin/mount ] || /bin/busybox --install -s || fail "busybox --install"
    [ -d /sys/kernel ] || fail "mount sysfs"
    [ -e /dev/null ] || fail "mount devtmpfs"
    # Collectors read swiotlb and slab debugfs files and tracepoints; a kernel
    # without them still boots, the collectors then report what is missing.
    set -- /sys/kernel/debug/*
    [ -e "$1" ] || say "KHARNESS-INIT-WARN: no debugfs"
    [ -d /sys/kernel/tracing/events ] || say "KHARNESS-INIT-WARN: no tracefs"
    # PTYs serve only an interactive login: mounted on the other vCPU meanwhile
    { mkdir -p /dev/pts && mount -t devpts devpts /dev/pts || say "KHARNESS-INIT-WARN: no devpts"; } &
}

# arm_trace: set the bounce histograms before any module probes its device, so
# the boot's own bounces (a disk's probe) are counted too; the host sets them
# again after boot if this could not (kharness-trace.sh is idempotent).
# The slabinfo before and after tell the host what the histograms' maps cost.
arm_trace() {
    script=/kharness/scripts/kharness-trace.sh
    [ -f "$script" ] || return 0
    cat /proc/slabinfo > /run/slabinfo-before-trace 2>/dev/null
    KH_TRACE_BOOT=1 sh "$script" > /run/kharness-trace.txt 2>&1
    cat /proc/slabinfo > /run/slabinfo-after-trace 2>/dev/null
}

# The load list (harness/initramfs/modules.py) is a shell file: sourcing it
# loads each early module at once and keeps the late ones for load_late (a
# file read with `read` goes a byte at a time under busybox: 30 ms for this one).
late_list=""
load() {
    insmod "$1" || fail "insmod $1"
    loaded=$((loaded + 1))
}
early() { load "$1"; }
late() { late_list="$late_list $1"; }

load_early() {
    [ -f /etc/kharness/modules ] || return 0
    . /etc/kharness/modules
}

load_late() {
    for module in $late_list; do
        load "$module"
    done
}

network() {
    ip link set lo up || fail "lo up"
    # virtio-net probes at insmod; give a slow (TCG) guest a moment anyway.
    tries=0
    until ssh_nic; do
        tries=$((tries + 1))
        [ "$tries" -gt 100 ] && fail "no SSH NIC $nic (is virtio_net in /etc/kharness/modules?)"
        sleep 0.05
    done
    # QEMU user networking: guest 10.0.2.15, gateway and host 10.0.2.2.
    ip addr add 10.0.2.15/24 dev "$nic" || fail "$nic address"
    ip link set "$nic" up || fail "$nic up"
    ip route add default via 10.0.2.2 || fail "default route"
}

# ssh_nic: set $nic to the SSH interface's name: the one with the MAC given
# as kharness.ssh_mac= (so a second NIC cannot take its place), else eth0.
# Fails (with $nic saying what it looked for) while that interface does not exist.
ssh_nic() {
    mac=""
    for word in $cmdline; do  # read at the top (a read of /proc/cmdline costs ms under TCG)
        case "$word" in kharness.ssh_mac=*) mac=${word#kharness.ssh_mac=} ;; esac
    done
    case "$mac" in *[A-F]*) mac=$(echo "$mac" | tr A-F a-f) ;; esac  # sysfs has lower case
    if [ -z "$mac" ]; then
        nic=eth0
        [ -e /sys/class/net/eth0 ]
        return
    fi
    for dev in /sys/class/net/*; do
        [ -r "$dev/address" ] || continue
        read -r address < "$dev/address"
        [ "$address" = "$mac" ] && { nic=${dev##*/}; return 0; }
    done
    nic="with MAC $mac"
    return 1
}

# start_sshd: start dropbear in the background (it binds 0.0.0.0:22, so it
# needs no NIC yet); wait_sshd collects it.
start_sshd() {
    key=/etc/dropbear/dropbear_ed25519_host_key
    [ -f "$key" ] || fail "no SSH host key $key (run layer missing?)"
    # The OOM killer spares dropbear, its sessions and what they start (they
    # inherit init's -1000) but for workloads, which kharness-run.sh puts back
    # to 0: a workload that runs the guest out of memory is killed, not the
    # host's way in. (dropbear was the victim: its shared pages outweigh a shell's.)
    echo -1000 > /proc/self/oom_score_adj
    # -s -g: keys only, never passwords; -E: log to a file the host can fetch.
    dropbear -r "$key" -s -g -p 22 -P /run/dropbear.pid -E 2>>/run/dropbear.log &
    sshd_pid=$!
}

# wait_sshd: READY must mean "connect now". dropbear opens its listening
# sockets before it forks into the background (svr-main.c: listensockets(),
# then daemon()), and exits non-zero if it could open none, so its parent's
# exit says port 22 is open. (Looking in /proc/net/tcp instead cost 35 ms:
# busybox's read takes a file a byte at a time.) The host still retries a
# refused connection.
wait_sshd() {
    wait "$sshd_pid" || fail "dropbear did not start: $(tail -n 1 /run/dropbear.log)"
}

selftest_checks() {
    pidof dropbear >/dev/null || fail "dropbear is not running: $(tail -n 1 /run/dropbear.log)"
    if command -v fio >/dev/null; then
        fio --version >/dev/null 2>&1 || fail "fio does not run (missing library?)"
    fi
}

/bin/busybox mount -a 2>/dev/null
read -r cmdline < /proc/cmdline
for word in $cmdline; do [ "$word" = kharness.selftest ] && selftest=1; done
stamp kernel
mount_early
echo kharness > /proc/sys/kernel/hostname
start_sshd
stamp mounts
arm_trace
stamp trace
load_early
stamp modules
network
stamp network
wait_sshd
stamp sshd
printf %s "$times" > /run/kharness-boot.times
read -r _ _ release _ < /proc/version
say "KHARNESS-READY release=$release"
load_late
stamp late-modules
printf %s "$times" > /run/kharness-boot.times
echo "ok modules=$loaded" > /run/kharness-init.done
if [ "$selftest" = 1 ]; then
    selftest_checks
    say "KHARNESS-SELFTEST ok release=$release modules=$loaded"
    poweroff -f
fi
idle
