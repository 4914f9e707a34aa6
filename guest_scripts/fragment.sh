#!/bin/sh
# fragment: fill memory with page cache, tmpfs data and slab, free part of it,
# then ask for huge pages (see fragment.yaml). Metrics as `metric NAME VALUE`.
set -eu
disk=${KH_DEV_SCRATCH:?no scratch disk}
rounds=${KH_ROUNDS:-8}
files=${KH_FILES:-2000}
fill=${KH_FILL:-80}
reserve=${KH_RESERVE:-16}
for v in "$rounds" "$files" "$fill" "$reserve"; do
	case $v in '' | *[!0-9]*) echo "fragment: rounds, files, fill and reserve are whole numbers" >&2; exit 2 ;; esac
done
[ "$rounds" -ge 1 ] && [ "$fill" -le 90 ] || { echo "fragment: rounds >= 1, fill <= 90" >&2; exit 2; }
NR=/proc/sys/vm/nr_hugepages
hp_kb=$(awk '/^Hugepagesize:/ {print $2}' /proc/meminfo)
[ -w "$NR" ] && [ -n "$hp_kb" ] || { echo "fragment: no hugetlb in this kernel" >&2; exit 2; }
page_kb=$(awk '/KernelPageSize/ {print $2; exit}' /proc/self/smaps)
# (busybox awk here has no math library: no ^, so powers of two by doubling)
order=$(awk -v h="$hp_kb" -v p="$page_kb" 'BEGIN { o = 0; while (p < h) { p *= 2; o++ }; print o }')
meminfo() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }
now() { cut -d' ' -f1 /proc/uptime; }

# Free blocks of the huge-page order and above, in huge pages, over every zone.
hugeblocks() {
	awk -v o="$order" '{ m = 1; for (i = 5 + o; i <= NF; i++) { n += $i * m; m *= 2 } } END { print n + 0 }' /proc/buddyinfo
}
stage() {
	echo "buddyinfo $1:"
	sed 's/^/  /' /proc/buddyinfo
	echo "metric frag.free_hugeblocks.$1 $(hugeblocks)"
}
# counters NAME...: the vmstat values, space-separated, in order.
counters() { awk -v want="$*" 'BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) pos[w[i]] = i }
	$1 in pos { v[pos[$1]] = $2 } END { for (i = 1; i <= n; i++) printf "%s ", v[i] + 0; print "" }' /proc/vmstat; }
COUNTERS="compact_stall compact_success compact_fail compact_migrate_scanned compact_free_scanned compact_isolated pgmigrate_success pgmigrate_fail"

echo 0 > "$NR"
stage start

# Fill. The disk gives at most half the fill; tmpfs data the rest.
avail_mib=$(( $(meminfo MemAvailable) / 1024 ))
target=$(( avail_mib * fill / 100 ))
disk_mib=$(( $(cat "/sys/class/block/${disk##*/}/size") / 2048 ))
[ "$disk_mib" -le $(( target / 2 )) ] || disk_mib=$(( target / 2 ))
data_mib=$(( target - disk_mib ))
dslice=$(( disk_mib / rounds ))
half=$(( data_mib / rounds / 2 ))
dir=/run/kharness-fragment
mkdir -p "$dir"
mount -t tmpfs -o "size=$(( data_mib + 64 ))m" kharness-fragment "$dir"
trap 'echo 0 > "$NR"; umount "$dir" 2>/dev/null || true' EXIT
i=0
while [ "$i" -lt "$rounds" ]; do
	dd if="$disk" of=/dev/null bs=1M skip=$(( i * dslice )) count="$dslice" 2>/dev/null
	# A pair of data files written in turns, 1 MiB each (half the smallest
	# huge page), so their pages interleave: deleting one leaves holes in every
	# pageblock the other holds, which only compaction can close. (Written one
	# after the other, a deleted file gave back whole 2 MiB blocks and the ask
	# needed no compaction. tee and awk alternate in one process but took 2-4
	# times as long under TCG: busybox's small buffers and awk's printf.)
	exec 3>"$dir/kept.$i" 4>"$dir/freed.$i"
	j=0
	while [ "$j" -lt "$half" ]; do
		dd if=/dev/zero bs=1M count=1 >&3 2>/dev/null
		dd if=/dev/zero bs=1M count=1 >&4 2>/dev/null
		j=$(( j + 1 ))
	done
	exec 3>&- 4>&-
	mkdir "$dir/s$i"
	(cd "$dir/s$i" && seq 1 "$files" | xargs touch)
	i=$(( i + 1 ))
done
echo "metric frag.filled_mib $(( (dslice + 2 * half) * rounds ))"
stage filled

# Partly free: one data file of each pair, every other small file, the clean page cache.
i=0
while [ "$i" -lt "$rounds" ]; do
	rm -f "$dir/freed.$i"
	(cd "$dir/s$i" && rm -f -- *[02468])
	i=$(( i + 1 ))
done
sync
echo 1 > /proc/sys/vm/drop_caches
echo "metric frag.small_files $(find "$dir" -type f -name '[0-9]*' | wc -l)"
stage fragmented

# Ask for the huge pages the free memory holds above the zones' high
# watermarks, less `reserve` MiB: while they are held the guest must still
# fork and answer SSH. Asked for all of MemFree, the allocator stops at the
# min watermarks (above_min, the most that can be had), and the next fork
# there woke the OOM killer, which killed dropbear (CI, 2026-12-01).
set -- $(awk -v page="$page_kb" -v hp="$hp_kb" -v keep=$(( reserve * 1024 )) '
	$1 == "pages" && $2 == "free" { f = $3 }
	$1 == "min" { if (f > $2) lo += f - $2 }
	$1 == "high" { if (f > $2) hi += f - $2; f = 0 }
	END { a = int((hi * page - keep) / hp); if (a < 0) a = 0; print int(lo * page / hp), a }' /proc/zoneinfo)
above_min=$1 asked=$2
echo "metric frag.hugepages.above_min $above_min"
before=$(counters $COUNTERS)
t0=$(now)
echo "$asked" > "$NR"
t1=$(now)
got=$(cat "$NR")
after=$(counters $COUNTERS)
echo "metric frag.hugepage_order $order"
echo "metric frag.hugepages.asked $asked"
echo "metric frag.hugepages.got $got"
echo "metric frag.hugepages.got_pct $(awk -v g="$got" -v a="$asked" 'BEGIN { printf "%.1f", a ? 100 * g / a : 0 }')"
echo "metric frag.ask.seconds $(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
echo "$COUNTERS" "$before" "$after" | awk '{ n = NF / 3; for (i = 1; i <= n; i++) print "metric frag.ask." $i " " ($(i + 2 * n) - $(i + n)) }'
stage after_ask  # the huge pages still held
echo 0 > "$NR"
