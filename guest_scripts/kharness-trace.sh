#!/bin/sh
# kharness-trace: count swiotlb bounces in the kernel, per size and per device,
# and (6.12: dma:dma_map_page, dma:dma_map_sg) the DMA mappings they are out of.
#
# Run as root in the guest: by init before the modules load (with
# KH_TRACE_BOOT=1, see add below), and again by the host after boot if init's
# run did not say ok (harmless); no arguments. Sets hist triggers:
#   swiotlb:swiotlb_bounced  hist:keys=size:vals=hitcount      bounces per mapping size
#                            hist:keys=dev_name:vals=hitcount  bounces per device
#   dma:dma_map_page         hist:keys=device:vals=hitcount    mappings per device
#                            hist:keys=dir:vals=hitcount if dma_addr == 0xffffffffffffffff
#                                                              failed mappings (DMA_MAPPING_ERROR)
#   dma:dma_map_sg           hist:keys=device:vals=hitcount    scatterlist mappings per device
# The dma events are optional (6.1 has none): without them only bounces are counted.
# A hist trigger counts in a kernel hash table: no trace buffer to drain or
# overflow, and reading events/.../hist (kharness-snapshot.sh does) gives the
# counts since now; the host takes after-minus-before per workload.
# Prints one line and exits:
#   "kharness-trace: ok"                    0, triggers set (or already set)
#   "kharness-trace: unavailable: <why>"    0, no tracepoint or no hist triggers
#   "kharness-trace: error: <why>"          1, a trigger could not be set
# KH_SYSROOT (tests on the host only) prefixes every path; nothing is mounted then.
R=${KH_SYSROOT:-}
DBG=$R/sys/kernel/debug
TRC=$R/sys/kernel/tracing

if [ -z "$R" ] && [ ! -d "$TRC/events" ]; then
	mount -t tracefs tracefs "$TRC" 2>/dev/null || mount -t debugfs debugfs "$DBG" 2>/dev/null
fi
[ -d "$TRC/events" ] || TRC=$DBG/tracing  # kernels without /sys/kernel/tracing
EVENT=$TRC/events/swiotlb/swiotlb_bounced

say() { echo "kharness-trace: $*"; }

if [ ! -d "$EVENT" ]; then
	say "unavailable: no swiotlb:swiotlb_bounced tracepoint under $TRC"
	exit 0
fi
if [ ! -f "$EVENT/hist" ]; then
	say "unavailable: no hist triggers (CONFIG_HIST_TRIGGERS is off)"
	exit 0
fi

# add EVENT_DIR KEY [SIZE [FILTER]]: append (>>), never truncate (>): opening
# a trigger file with O_TRUNC removes every trigger of the event, the first
# histogram included. SIZE: the map's entries; the kernel kmallocs every
# entry up front, so a map is kept as small as its keys allow (the slab
# figures must not measure kharness).
# set EVENT_DIR KEYS: a hist trigger on KEYS is set there already (a builtin
# loop: init runs this at boot, where a fork is dear).
set_already() {
	while read -r line; do
		case "$line" in "hist:keys=$2:"*) return 0 ;; esac
	done <"$1/trigger"
	return 1
}

# add EVENT_DIR KEYS [SIZE [FILTER]]: set the trigger unless it is set, so a
# rerun is harmless. At boot (KH_TRACE_BOOT=1, from init) none can be set yet
# and looking first is dear: busybox reads a file a byte at a time, about 16 ms
# for a trigger file under TCG, five times. So there the write goes first, and
# a look follows only if the kernel refuses it (EEXIST for one that is set).
add() {
	boot=${KH_TRACE_BOOT:-0}
	[ "$boot" != 1 ] && set_already "$1" "$2" && return 0
	echo "hist:keys=$2:vals=hitcount${3:+:size=$3}${4:+ if $4}" >>"$1/trigger" 2>/dev/null && return 0
	[ "$boot" = 1 ] && set_already "$1" "$2" 2>/dev/null && return 0
	say "error: cannot set hist:keys=$2 on $1/trigger"
	exit 1
}
# 256 sizes and 128 devices are more than these guests map; an overflow shows
# as Dropped, which the host reports. (The default 2048 entries cost 2.3 MB of
# kmalloc-128 on a 6.1 arm64 guest, 0.97 MB on 6.12: measured here.)
add "$EVENT" size 256
add "$EVENT" dev_name 128
MAP=$TRC/events/dma/dma_map_page
SG=$TRC/events/dma/dma_map_sg
if [ -f "$MAP/hist" ]; then
	add "$MAP" device 128
	add "$MAP" dir 128 "dma_addr == 0xffffffffffffffff"
fi
[ -f "$SG/hist" ] && add "$SG" device 128
say ok
