#!/bin/sh
# net-virtio: fio's net engine against the host peers over the traffic NIC.
# KH_NET_TRAFFIC holds key=value words from the host (harness/machine/qemu.py
# traffic_env): mac, addr (ours, with prefix), peer, and a port per role.
set -eu
for kv in ${KH_NET_TRAFFIC:?no traffic NIC}; do
    case $kv in
    mac=*) mac=${kv#mac=} ;;
    addr=*) addr=${kv#addr=} ;;
    peer=*) peer=${kv#peer=} ;;
    sink=*) sink=${kv#sink=} ;;
    source=*) source=${kv#source=} ;;
    echo=*) echo=${kv#echo=} ;;
    esac
done

ifname=
i=0
while [ -z "$ifname" ]; do
    for d in /sys/class/net/*; do
        [ "$(cat "$d/address")" = "$mac" ] && ifname=${d##*/}
    done
    i=$((i + 1))
    [ -n "$ifname" ] || [ "$i" -lt 50 ] || { echo "net-virtio: no NIC with MAC $mac" >&2; exit 97; }
    [ -n "$ifname" ] || sleep 0.1
done
ip addr flush dev "$ifname"
ip addr add "$addr" dev "$ifname"
ip link set "$ifname" up

stat() { cat "/sys/class/net/$ifname/statistics/$1"; }
rx0=$(stat rx_packets) tx0=$(stat tx_packets) rxb0=$(stat rx_bytes) txb0=$(stat tx_bytes)

fio --output-format=json --ioengine=net --protocol=tcp --hostname="$peer" \
    --runtime="${KH_RUNTIME:-2}" \
    --name=bulk-tx --port="$sink" --rw=write --bs="${KH_BULK_SIZE:-65536}" --size="${KH_BULK_BYTES:-33554432}" \
    --name=bulk-rx --stonewall --port="$source" --rw=read --bs="${KH_BULK_SIZE:-65536}" \
        --size="${KH_BULK_BYTES:-33554432}" \
    --name=small --stonewall --port="$echo" --rw=write --bs="${KH_SMALL_SIZE:-64}" --pingpong=1 --nodelay=1 --size=1m \
        --time_based

echo "metric net.rx.packets $(($(stat rx_packets) - rx0))"
echo "metric net.tx.packets $(($(stat tx_packets) - tx0))"
echo "metric net.rx.bytes $(($(stat rx_bytes) - rxb0))"
echo "metric net.tx.bytes $(($(stat tx_bytes) - txb0))"
