#!/bin/sh
# kharness-run.sh SCRIPT: run a workload script with its devices resolved.
# For each KH_SERIAL_<ID>=<serial> in the environment, finds the block device
# whose serial matches and exports KH_DEV_<ID>=/dev/<name>, so workload
# scripts never guess device names (vda vs sda vs nvme0n1). KH_FIND_<ID> says
# where the serial is, as the device kind declares it (harness/devices/):
#   block  /sys/block/<name>/serial or .../device/serial (virtio-blk, nvme; the default)
#   usb    the serial of the USB device some levels above the disk (usb-storage)
# KH_DISKS=0: the workload has no disks (nothing is searched).
# KH_SYSROOT (tests on the host only) prefixes /sys.
set -eu
R=${KH_SYSROOT:-}

# Under TCG a fork costs milliseconds and this wraps every workload: the
# search is shell builtins, but for the USB walk's readlink.

# serial_of_HOW BLOCKDIR: set $got to the disk's serial (spaces removed).
serial_of_block() {
    for f in "$1/serial" "$1/device/serial"; do
        [ -r "$f" ] && { read_serial "$f"; return 0; }
    done
    return 1
}

serial_of_usb() {
    d=$(readlink -f "$1/device" 2>/dev/null || true)
    while [ -n "$d" ] && [ "$d" != "/" ] && [ "$d" != "/sys" ]; do
        if [ -r "$d/serial" ] && [ -r "$d/idVendor" ]; then
            read_serial "$d/serial"
            return 0
        fi
        d=${d%/*}
    done
    return 1
}

read_serial() {
    got=""
    read -r got <"$1" || [ -n "$got" ] || return 0
    while :; do
        case $got in *' '*) got=${got%% *}${got#* } ;; *) break ;; esac
    done
}

# find_disk SERIAL HOW: set $dev to /dev/<name> of the disk with that serial.
find_disk() {
    for b in "$R"/sys/block/*; do
        "serial_of_$2" "$b" 2>/dev/null || continue
        [ "$got" = "$1" ] && { dev=/dev/${b##*/}; return 0; }
    done
    return 1
}

# The KH_SERIAL_<ID> variables, as `set` lists them; KH_DISKS=0 (the host's
# word for "no disks") skips the search.
ids=""
if [ "${KH_DISKS:-1}" != 0 ]; then
    # `set` lists them, split here in memory: written to a file and read back
    # with `read` (a byte at a time under busybox), then removed, they cost
    # 70 ms a workload under TCG. No globbing of what a line holds.
    vars=$(set)
    saved_ifs=$IFS
    IFS='
'
    set -f
    for line in $vars; do
        case $line in KH_SERIAL_*=*) v=${line%%=*}; ids="$ids ${v#KH_SERIAL_}" ;; esac
    done
    set +f
    IFS=$saved_ifs
fi
for var in $ids; do
    case $var in *[!A-Z0-9_]*) continue ;; esac
    # a line of some value that looks like one is no variable
    eval "[ -n \"\${KH_SERIAL_$var+set}\" ]" || continue
    eval "serial=\$KH_SERIAL_$var how=\${KH_FIND_$var:-block}"
    case $how in
        block|usb) ;;
        *) echo "kharness-run: KH_FIND_$var=$how: expected block or usb" >&2; exit 97 ;;
    esac
    i=0
    until find_disk "$serial" "$how"; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || { echo "kharness-run: no disk with serial $serial" >&2; exit 97; }
        sleep 0.05
    done
    export "KH_DEV_$var=$dev"
done
# The workload may be the OOM killer's victim; the SSH server and kharness's
# collectors are not (init set -1000 for them, inherited down to here).
[ -n "$R" ] || echo 0 > /proc/self/oom_score_adj
exec sh "$@"
