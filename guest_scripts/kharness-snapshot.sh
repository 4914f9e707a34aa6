#!/bin/sh
# kharness-snapshot: every collector source in one SSH round trip.
#
# Run as root in the guest (busybox sh), no arguments. Prints sections, each
# after a line "@@kharness-section NAME@@" (NAME in [a-z0-9_./-]), read by
# harness/collect/snapshot.py:
#   probe                 key=value facts: debugfs, tracefs, swiotlb_dir,
#                         bounce_event, hist, armed_at_init (yes|no), so the
#                         host can tell "no swiotlb" from "could not look"
#   pagesize              KernelPageSize line of /proc/self/smaps
#   uptime slabinfo meminfo vmstat      the /proc files
#   swiotlb/<file>        each file of /sys/kernel/debug/swiotlb/ (none: no swiotlb)
#   hist/swiotlb_bounced  the bounce histograms kharness-trace.sh set up
#   hist/dma_map_page     mappings per device and failed mappings (6.12)
#   hist/dma_map_sg       scatterlist mappings per device (6.12)
#   iommu                 "group=N type=T dev=D" per device in an IOMMU group
#                         (type: DMA strict, DMA-FQ lazy, identity); empty: none
#   end                   "ok": the output was not cut off
# A missing source is a missing section; errors reading one go into its
# section for the host to report. Always exits 0. Read-only, except that it
# mounts debugfs and tracefs where they are not mounted yet.
# KH_SYSROOT (tests on the host only) prefixes every path; nothing is mounted then.
R=${KH_SYSROOT:-}
DBG=$R/sys/kernel/debug
TRC=$R/sys/kernel/tracing

if [ -z "$R" ]; then
	[ -n "$(ls -A "$DBG" 2>/dev/null)" ] || mount -t debugfs debugfs "$DBG" 2>/dev/null
	[ -d "$TRC/events" ] || mount -t tracefs tracefs "$TRC" 2>/dev/null
fi
[ -d "$TRC/events" ] || TRC=$DBG/tracing  # kernels without /sys/kernel/tracing
EVENT=$TRC/events/swiotlb/swiotlb_bounced

section() { printf '@@kharness-section %s@@\n' "$1"; }
# The echo ends a file that lacks a final newline, so the next section line
# always starts a line of its own.
dump() { section "$1"; cat "$2" 2>&1; echo; }
yesno() { if "$@"; then echo yes; else echo no; fi; }

section probe
echo "debugfs=$(yesno [ -n "$(ls -A "$DBG" 2>/dev/null)" ])"
echo "tracefs=$(yesno [ -d "$TRC/events" ])"
echo "swiotlb_dir=$(yesno [ -d "$DBG/swiotlb" ])"
echo "bounce_event=$(yesno [ -d "$EVENT" ])"
echo "hist=$(yesno [ -f "$EVENT/hist" ])"
echo "armed_at_init=$(yesno grep -qs '^kharness-trace: ok' "$R/run/kharness-trace.txt")"

section pagesize
grep KernelPageSize "$R/proc/self/smaps" 2>&1 | head -n 1
dump uptime "$R/proc/uptime"
dump slabinfo "$R/proc/slabinfo"
dump meminfo "$R/proc/meminfo"
dump vmstat "$R/proc/vmstat"

for f in "$DBG"/swiotlb/*; do
	n=${f##*/}
	# The name becomes a path on the host: only plain names pass.
	case $n in *[!a-z0-9_.-]* | .*) continue ;; esac
	[ -f "$f" ] && dump "swiotlb/$n" "$f"
done

[ -f "$EVENT/hist" ] && dump hist/swiotlb_bounced "$EVENT/hist"
for e in dma_map_page dma_map_sg; do
	[ -f "$TRC/events/dma/$e/hist" ] && dump "hist/$e" "$TRC/events/dma/$e/hist"
done

section iommu
for g in "$R"/sys/kernel/iommu_groups/*; do
	[ -d "$g" ] || continue
	t=$(cat "$g/type" 2>/dev/null)
	for d in "$g"/devices/*; do
		[ -e "$d" ] && echo "group=${g##*/} type=${t:-unknown} dev=${d##*/}"
	done
done

# The high-water mark counts from here: each snapshot's is its workload's own.
[ -z "$R" ] && [ -w "$DBG/swiotlb/io_tlb_used_hiwater" ] && echo 0 > "$DBG/swiotlb/io_tlb_used_hiwater"

section end
echo ok
exit 0
