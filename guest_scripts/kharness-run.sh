#!/bin/sh
# kharness-run.sh SCRIPT: run a workload script with its devices resolved.
# For each KH_SERIAL_<ID>=<serial> in the environment, finds the block device
# whose serial matches and exports KH_DEV_<ID>=/dev/<name>, so workload
# scripts never guess device names (vda vs sda vs nvme0n1).
set -eu

find_disk() {
    want=$1
    for b in /sys/block/*; do
        name=${b##*/}
        for f in "$b/serial" "$b/device/serial"; do
            if [ -r "$f" ] && [ "$(tr -d ' \n' < "$f")" = "$want" ]; then
                echo "/dev/$name"
                return 0
            fi
        done
        # usb-storage: the serial sits on the USB device, some levels up.
        d=$(readlink -f "$b/device" 2>/dev/null || true)
        while [ -n "$d" ] && [ "$d" != "/" ] && [ "$d" != "/sys" ]; do
            if [ -r "$d/serial" ] && [ -r "$d/idVendor" ]; then
                [ "$(tr -d ' \n' < "$d/serial")" = "$want" ] && { echo "/dev/$name"; return 0; }
                break
            fi
            d=${d%/*}
        done
    done
    return 1
}

for var in $(env | sed -n 's/^KH_SERIAL_\([A-Z0-9_]*\)=.*/\1/p'); do
    eval "serial=\$KH_SERIAL_$var"
    i=0
    until dev=$(find_disk "$serial"); do
        i=$((i + 1))
        [ "$i" -lt 50 ] || { echo "kharness-run: no disk with serial $serial" >&2; exit 97; }
        sleep 0.1
    done
    export "KH_DEV_$var=$dev"
done
exec sh "$@"
