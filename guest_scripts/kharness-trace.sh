#!/bin/sh
# kharness-trace: count swiotlb bounces in the kernel, per size and per device.
#
# Run once as root in the guest after boot, before the first snapshot; no
# arguments. Sets two hist triggers on swiotlb:swiotlb_bounced:
#   hist:keys=size:vals=hitcount      bounces per mapping size
#   hist:keys=dev_name:vals=hitcount  bounces per device
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

# Append (>>), never truncate (>): opening a trigger file with O_TRUNC
# removes every trigger of the event, the first histogram included.
add() {
	grep -qs "^hist:keys=$1:" "$EVENT/trigger" && return 0  # set already: rerun is harmless
	if ! echo "hist:keys=$1:vals=hitcount" >>"$EVENT/trigger" 2>/dev/null; then
		say "error: cannot set hist:keys=$1 on $EVENT/trigger"
		exit 1
	fi
}
add size
add dev_name
say ok
