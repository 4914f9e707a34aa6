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
#   zoneinfo buddyinfo extfrag/unusable_index extfrag/extfrag_index
#                         zones and fragmentation
#                         (every file above whole, but cut at 256 KiB)
#   slab_debug            store_user=N (kmalloc caches storing their user: slub_debug U)
#                         and alloc_traces=N (files read); only where /sys/kernel/slab is
#   alloc_traces/<cache>  each kmalloc cache's alloc_traces (U only), read last, cut at a
#                         line (1 MiB a file, 8 MiB in all) and marked "kharness: cut at N bytes"
#   after_traces/slabinfo after_traces/vmstat   read again after them: what reading left
#   end                   "ok": the output was not cut off
# A missing source is a missing section; errors reading one go into its
# section for the host to report. Always exits 0. Read-only, except that it
# mounts debugfs and tracefs where they are not mounted yet, keeps the page
# size in /run/kharness-pagesize, and resets swiotlb's high-water mark.
# KH_SYSROOT (tests on the host only) prefixes every path; nothing is mounted then.
R=${KH_SYSROOT:-}
DBG=$R/sys/kernel/debug
TRC=$R/sys/kernel/tracing

# This runs around every workload, and under TCG a fork+exec costs
# milliseconds: the probe is shell builtins only, and one awk reads every
# file (a cat per file cost 0.3 s a snapshot).
nonempty() { set -- "$1"/*; [ -e "$1" ] || [ -L "$1" ]; }
if [ -z "$R" ]; then
	nonempty "$DBG" || mount -t debugfs debugfs "$DBG" 2>/dev/null
	[ -d "$TRC/events" ] || mount -t tracefs tracefs "$TRC" 2>/dev/null
fi
[ -d "$TRC/events" ] || TRC=$DBG/tracing  # kernels without /sys/kernel/tracing
EVENT=$TRC/events/swiotlb/swiotlb_bounced

section() { printf '@@kharness-section %s@@\n' "$1"; }
# fact KEY TEST...: "KEY=yes" if TEST succeeds, else "KEY=no".
fact() {
	k=$1
	shift
	if "$@"; then echo "$k=yes"; else echo "$k=no"; fi
}
armed() {
	[ -r "$R/run/kharness-trace.txt" ] || return 1
	while read -r line; do
		case $line in "kharness-trace: ok"*) return 0 ;; esac
	done <"$R/run/kharness-trace.txt"
	return 1
}

section probe
fact debugfs nonempty "$DBG"
fact tracefs [ -d "$TRC/events" ]
fact swiotlb_dir [ -d "$DBG/swiotlb" ]
fact bounce_event [ -d "$EVENT" ]
fact hist [ -f "$EVENT/hist" ]
fact armed_at_init armed

section pagesize
# The boot's page size: looked up in smaps once (busybox reads a file a byte
# at a time, about 13 ms here under TCG), then kept in /run for the next.
kept=$R/run/kharness-pagesize
line=""
[ -s "$kept" ] && read -r line <"$kept"
case $line in KernelPageSize:*) ;; *)
	line=""
	while read -r l; do
		case $l in KernelPageSize:*) line=$l; break ;; esac
	done <"$R/proc/self/smaps"
	[ -n "$line" ] && echo "$line" 2>/dev/null >"$kept"
esac
[ -n "$line" ] && echo "$line"

# Sections and their files, as pairs NAME FILE for the awk.
set -- uptime "$R/proc/uptime" slabinfo "$R/proc/slabinfo" meminfo "$R/proc/meminfo" vmstat "$R/proc/vmstat"
for f in "$DBG"/swiotlb/*; do
	n=${f##*/}
	# The name becomes a path on the host: only plain names pass.
	case $n in *[!a-z0-9_.-]* | .*) continue ;; esac
	[ -f "$f" ] && set -- "$@" "swiotlb/$n" "$f"
done
[ -f "$EVENT/hist" ] && set -- "$@" hist/swiotlb_bounced "$EVENT/hist"
for e in dma_map_page dma_map_sg; do
	[ -f "$TRC/events/dma/$e/hist" ] && set -- "$@" "hist/$e" "$TRC/events/dma/$e/hist"
done
# Zones and fragmentation (harness/collect/zones.py): zoneinfo, buddyinfo,
# extfrag/unusable_index and extfrag/extfrag_index (debugfs,
# CONFIG_COMPACTION); vmstat has the compact_*/pgmigrate_* counters.
for f in "$R/proc/zoneinfo" "$R/proc/buddyinfo" "$DBG/extfrag/unusable_index" "$DBG/extfrag/extfrag_index"; do
	n=${f##*/}
	case $n in *_index) n=extfrag/$n ;; esac
	[ -r "$f" ] && set -- "$@" "$n" "$f"
done
# Each file whole, the zone files cut at 256 KiB (at a line); one that cannot
# be read says so in its section. All in BEGIN: awk opens no operand itself.
# RS "\001" makes a file one record (a file holding that byte is put back
# together): awk works per file, not per line, which under TCG saved 20-30 ms
# of a snapshot's 90-120.
awk -v max=262144 'BEGIN {
	RS = "\001"
	for (i = 1; i + 1 < ARGC; i += 2) {
		print "@@kharness-section " ARGV[i] "@@"
		text = ""
		for (n = 0; (got = (getline rec < ARGV[i + 1])) > 0; n++) text = text (n ? RS : "") rec
		if (got < 0) print "kharness-snapshot: cannot read " ARGV[i + 1]
		if (n) {
			if (ARGV[i] ~ /^(zoneinfo|buddyinfo|extfrag\/)/ && length(text) > max) {
				for (j = max; j > 0 && substr(text, j, 1) != "\n"; j--) ;
				text = substr(text, 1, j)
			}
			printf "%s", text
			if (text != "" && substr(text, length(text)) != "\n") print ""
		}
		close(ARGV[i + 1])
	}
}' "$@"

section iommu
for g in "$R"/sys/kernel/iommu_groups/*; do
	[ -d "$g" ] || continue
	t=""
	[ -r "$g/type" ] && read -r t <"$g/type"
	for d in "$g"/devices/*; do
		[ -e "$d" ] && echo "group=${g##*/} type=${t:-unknown} dev=${d##*/}"
	done
done

# The high-water mark counts from here: each snapshot's is its workload's own.
[ -z "$R" ] && [ -w "$DBG/swiotlb/io_tlb_used_hiwater" ] && echo 0 > "$DBG/swiotlb/io_tlb_used_hiwater"

# Who allocates (harness/collect/alloc_traces.py): with slub_debug U on the
# kmalloc caches (slub_debug=U,kmalloc-*; 6.12 also slab_debug=), SLUB keeps
# /sys/kernel/debug/slab/<cache>/alloc_traces. Section slab_debug says what is
# on (store_user: kmalloc caches that store their allocating user; alloc_traces:
# files read), then alloc_traces/<cache> per kmalloc-family file, then
# after_traces/slabinfo and after_traces/vmstat read again. Read last, after
# every figure above: opening one walks the cache's slabs and allocates (a
# page-allocator array of call sites, a seq_file buffer of a page or more),
# freed on close but not without a trace (slab pages kept, pages allocated);
# the host reports that cost and starts the next workload's deltas from the
# after_traces readings, so no workload's figures include it.
# Each file is cut at 1 MiB, all of them at 8 MiB; a cut file ends with
# "kharness: cut at N bytes" (the files are sorted by count: the tail of small
# entries goes). One awk reads them all.
# Without slub_debug/slab_debug on the command line and with kmalloc-8 not
# storing users (a CONFIG_SLUB_DEBUG_ON kernel's would), no cache does: the
# walk over every cache's files (tens of ms under TCG) is skipped.
debug=no
cmdline=""
[ -r "$R/proc/cmdline" ] && read -r cmdline <"$R/proc/cmdline"
for word in $cmdline; do
	case $word in slub_debug* | slab_debug*) debug=yes ;; esac
done
v=0
[ -r "$R/sys/kernel/slab/kmalloc-8/store_user" ] && read -r v <"$R/sys/kernel/slab/kmalloc-8/store_user"
[ "$v" = 1 ] && debug=yes
users=0
set --
if [ "$debug" = yes ]; then
	for f in "$R"/sys/kernel/slab/*kmalloc-*/store_user; do
		[ -r "$f" ] && read -r v < "$f" && [ "$v" = 1 ] && users=$((users + 1))
	done
	for f in "$DBG"/slab/*kmalloc-*/alloc_traces; do
		c=${f%/alloc_traces}
		c=${c##*/}
		case $c in *[!a-z0-9-]*) continue ;; kmalloc-* | dma-kmalloc-*) ;; *) continue ;; esac
		[ -r "$f" ] && set -- "$@" "$f"
	done
fi
if [ -d "$R/sys/kernel/slab" ]; then  # SLUB's sysfs: absent only on a fake guest
	section slab_debug
	echo "store_user=$users"
	echo "alloc_traces=$#"
fi
# RS "\001" makes each file one record: per-line awk under TCG took 4 s for
# the 1.3 MB of a booted 6.12 guest's 39 files, a record per file 0.5 s.
[ $# -gt 0 ] && awk -v each=$((1 << 20)) -v total=$((8 << 20)) '
	BEGIN { RS = "\001" }
	# the text up to its last newline at or before byte `n` (lines are < 4 KiB)
	function cut_at(text, n,   head, tail, i) {
		head = substr(text, 1, n > 4096 ? n - 4096 : 0)
		tail = substr(text, length(head) + 1, n - length(head))
		for (i = length(tail); i > 0 && substr(tail, i, 1) != "\n"; i--) ;
		return head substr(tail, 1, i)
	}
	FILENAME !~ /alloc_traces$/ { n = FILENAME; sub(".*/", "", n)
		print "@@kharness-section after_traces/" n "@@"; print; next }
	{	c = FILENAME; sub("/alloc_traces$", "", c); sub(".*/", "", c)
		print "@@kharness-section alloc_traces/" c "@@"
		room = total - sent; if (room > each) room = each
		text = $0
		if (length(text) > room) { text = cut_at(text, room); text = text "kharness: cut at " length(text) " bytes" }
		sent += length(text)
		print text }' "$@" "$R/proc/slabinfo" "$R/proc/vmstat"

section end
echo ok
exit 0
