#!/bin/sh
# kharness-run.sh SCRIPT: run a workload script with its devices resolved.
# For each KH_SERIAL_<ID>=<serial> in the environment, finds the block device
# whose serial matches and exports KH_DEV_<ID>=/dev/<name>, so workload
# scripts never guess device names (vda vs sda vs nvme0n1). KH_FIND_<ID> says
# where the serial is, as the device kind declares it (harness/devices/):
#   block  /sys/block/<name>/serial or .../device/serial (virtio-blk, nvme; the default)
#   usb    the serial of the USB device some levels above the disk (usb-storage)
set -eu

serial_of_block() {
    for f in "$1/serial" "$1/device/serial"; do
        [ -r "$f" ] && { tr -d ' \n' < "$f"; return 0; }
    done
    return 1
}

serial_of_usb() {
    d=$(readlink -f "$1/device" 2>/dev/null || true)
    while [ -n "$d" ] && [ "$d" != "/" ] && [ "$d" != "/sys" ]; do
        if [ -r "$d/serial" ] && [ -r "$d/idVendor" ]; then
            tr -d ' \n' < "$d/serial"
            return 0
        fi
        d=${d%/*}
    done
    return 1
}

find_disk() {
    want=$1 how=$2
    for b in /sys/block/*; do
        got=$("serial_of_$how" "$b" 2>/dev/null) || continue
        [ "$got" = "$want" ] && { echo "/dev/${b##*/}"; return 0; }
    done
    return 1
}

for var in $(env | sed -n 's/^KH_SERIAL_\([A-Z0-9_]*\)=.*/\1/p'); do
    eval "serial=\$KH_SERIAL_$var how=\${KH_FIND_$var:-block}"
    case $how in
        block|usb) ;;
        *) echo "kharness-run: KH_FIND_$var=$how: expected block or usb" >&2; exit 97 ;;
    esac
    i=0
    until dev=$(find_disk "$serial" "$how"); do
        i=$((i + 1))
        [ "$i" -lt 50 ] || { echo "kharness-run: no disk with serial $serial" >&2; exit 97; }
        sleep 0.1
    done
    export "KH_DEV_$var=$dev"
done
exec sh "$@"
