#!/bin/sh
# kharness guest init: PID 1 of every guest, installed as /init.
#
# Contract with the host (see harness/initramfs/base.py):
#   reads   /etc/kharness/modules   module paths, one per line, loaded in order
#           /proc/cmdline           "kharness.selftest": check, report, power off
#                                   "kharness.ssh_mac=<mac>": the SSH NIC (default eth0)
#   runs    /kharness/scripts/kharness-trace.sh before the modules, output in /run/kharness-trace.txt
#   prints  KHARNESS-READY release=<uname -r>          SSH is up, workloads may start
#           KHARNESS-SELFTEST ok release=<r> modules=<n>   (selftest only)
#           KHARNESS-INIT-ERROR: <what>                 init gave up; the guest stays up
#           KHARNESS-INIT-WARN: <what>                  something optional is missing
# PID 1 must never exit (the kernel would panic), so every path ends in the
# wait loop at the bottom.

PATH=/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
export PATH HOME

say() { echo "$*" > /dev/console; }

selftest=0
loaded=0

# fail WHAT: report, power off if this is the selftest, else stay up for a look.
# Applets are called through /bin/busybox here: `busybox --install` may be
# what failed.
fail() {
    say "KHARNESS-INIT-ERROR: $*"
    [ "$selftest" = 1 ] && /bin/busybox poweroff -f
    idle
}

idle() {
    while :; do /bin/busybox sleep 3600; done
}

mount_early() {
    # After /proc: `busybox --install` finds itself through /proc/self/exe.
    /bin/busybox --install -s || fail "busybox --install"
    mount -t sysfs sysfs /sys || fail "mount sysfs"
    mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"
    mkdir -p /dev/pts /run /tmp /var
    mount -t devpts devpts /dev/pts || fail "mount devpts"
    [ -e /var/run ] || ln -s ../run /var/run
    # Collectors read swiotlb and slab debugfs files and tracepoints; a kernel
    # without them still boots, the collectors then report what is missing.
    mount -t debugfs debugfs /sys/kernel/debug || say "KHARNESS-INIT-WARN: no debugfs"
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || say "KHARNESS-INIT-WARN: no tracefs"
}

# arm_trace: set the bounce histograms before any module probes its device, so
# the boot's own bounces (a disk's probe) are counted too; the host sets them
# again after boot if this could not (kharness-trace.sh is idempotent).
# The slabinfo before and after tell the host what the histograms' maps cost.
arm_trace() {
    script=/kharness/scripts/kharness-trace.sh
    [ -f "$script" ] || return 0
    cat /proc/slabinfo > /run/slabinfo-before-trace 2>/dev/null
    sh "$script" > /run/kharness-trace.txt 2>&1
    cat /proc/slabinfo > /run/slabinfo-after-trace 2>/dev/null
}

load_modules() {
    [ -f /etc/kharness/modules ] || return 0
    while read -r module; do
        case "$module" in ''|'#'*) continue ;; esac
        insmod "$module" || fail "insmod $module"
        loaded=$((loaded + 1))
    done < /etc/kharness/modules
}

network() {
    ip link set lo up || fail "lo up"
    # virtio-net probes at insmod; give a slow (TCG) guest a moment anyway.
    tries=0
    until nic=$(ssh_nic); do
        tries=$((tries + 1))
        [ "$tries" -gt 50 ] && fail "no SSH NIC $nic (is virtio_net in /etc/kharness/modules?)"
        sleep 0.1
    done
    # QEMU user networking: guest 10.0.2.15, gateway and host 10.0.2.2.
    ip addr add 10.0.2.15/24 dev "$nic" || fail "$nic address"
    ip link set "$nic" up || fail "$nic up"
    ip route add default via 10.0.2.2 || fail "default route"
}

# ssh_nic: print the SSH interface's name: the one with the MAC given as
# kharness.ssh_mac= (so a second NIC cannot take its place), else eth0.
# Fails (printing what it looked for) while that interface does not exist.
ssh_nic() {
    mac=$(sed -n 's/.*kharness\.ssh_mac=\([0-9A-Fa-f:]*\).*/\1/p' /proc/cmdline | tr A-F a-f)
    if [ -z "$mac" ]; then
        echo eth0
        [ -e /sys/class/net/eth0 ]
        return
    fi
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/address" 2>/dev/null)" = "$mac" ] && { echo "${dev##*/}"; return 0; }
    done
    echo "with MAC $mac"
    return 1
}

sshd() {
    key=/etc/dropbear/dropbear_ed25519_host_key
    [ -f "$key" ] || fail "no SSH host key $key (run layer missing?)"
    # -s -g: keys only, never passwords; -E: log to a file the host can fetch.
    dropbear -r "$key" -s -g -p 22 -P /run/dropbear.pid -E 2>>/run/dropbear.log \
        || fail "dropbear did not start: $(tail -n 1 /run/dropbear.log)"
    # dropbear returns before its daemon listens; READY must mean "connect now".
    tries=0
    until listening 22; do
        tries=$((tries + 1))
        [ "$tries" -gt 100 ] && fail "dropbear is not listening: $(tail -n 1 /run/dropbear.log)"
        sleep 0.1
    done
}

# listening PORT: is a TCP socket in LISTEN state (0A) on PORT, IPv4 or IPv6?
listening() {
    set -- "$(printf ':%04X' "$1")" /proc/net/tcp
    [ -e /proc/net/tcp6 ] && set -- "$@" /proc/net/tcp6
    port=$1
    shift
    awk -v p="$port" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' "$@"
}

selftest_checks() {
    pidof dropbear >/dev/null || fail "dropbear is not running: $(tail -n 1 /run/dropbear.log)"
    if command -v fio >/dev/null; then
        fio --version >/dev/null 2>&1 || fail "fio does not run (missing library?)"
    fi
}

/bin/busybox mount -t proc proc /proc || fail "mount proc"
/bin/busybox grep -qw kharness.selftest /proc/cmdline && selftest=1
mount_early
hostname kharness
arm_trace
load_modules
network
sshd
release=$(uname -r)
say "KHARNESS-READY release=$release"
if [ "$selftest" = 1 ]; then
    selftest_checks
    say "KHARNESS-SELFTEST ok release=$release modules=$loaded"
    poweroff -f
fi
idle
