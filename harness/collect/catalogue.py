"""The collectors' metric names: a contract, kept as data.

Every metric the collectors emit is made through `metric()`, which takes its
unit, kind and better-direction from this table, so the names, units and
directions cannot drift between the collectors, compare's defaults and the
documentation. A pattern's `*` stands for a size class (8, 96, 1k), a bounce
size in bytes, a sanitized device name, or a fio job name plus direction.

Kinds: a counter is the difference over one workload (after minus before); a
gauge is the value read after it (after boot for the "boot" workload).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from harness import results
from harness.model import Better, Metric, MetricKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricSpec:
    pattern: str  # fnmatch pattern over the dotted name
    unit: str
    kind: MetricKind
    better: Better
    meaning: str


CATALOGUE: tuple[MetricSpec, ...] = (
    # /proc/slabinfo: the memory side of the minalign trade.
    MetricSpec("slab.kmalloc-*.objects", "objects", "gauge", "neutral",
               "active objects of one kmalloc size class, summed over its families "
               "(kmalloc, kmalloc-cg, kmalloc-rcl, dma-kmalloc, kmalloc-rnd-NN)"),
    MetricSpec("slab.kmalloc-*.bytes", "bytes", "gauge", "lower",
               "slab memory of one size class: num_slabs x pagesperslab x page size, "
               "summed over its families"),
    MetricSpec("slab.kmalloc.bytes", "bytes", "gauge", "lower",
               "slab memory of every kmalloc cache (the sum of the size classes)"),
    MetricSpec("slab.kmalloc.bytes.delta", "bytes", "gauge", "lower",
               "change of slab.kmalloc.bytes over the workload: kmalloc memory it left behind"),
    MetricSpec("mm.page_size", "bytes", "gauge", "neutral",
               "the guest kernel's page size (KernelPageSize): every slab byte figure is pages x this"),
    MetricSpec("slab.kharness_trace.bytes", "bytes", "gauge", "lower",
               "kmalloc slab that kharness's own hist trigger maps took when init armed them "
               "(init's slabinfo after minus before); included in every slab figure of the guest"),
    MetricSpec("slab.minalign", "bytes", "gauge", "neutral",
               "effective kmalloc minimum alignment: the smallest plain kmalloc-N cache"),
    # whatif.py on the same slabinfo: what a larger minalign would cost (* is N).
    MetricSpec("slab.whatif.minalign-*.extra_bytes", "bytes", "gauge", "neutral",
               "extra kmalloc bytes if minalign were N: sum over size classes c of active "
               "objects(c) x (round_up_class(c, N) - c); only for N above the kernel's minalign"),
    MetricSpec("slab.whatif.minalign-*.extra_pages", "pages", "gauge", "neutral",
               "the extra bytes in pages, rounded up"),
    # The slab sampler (kharness-sample.sh) during a workload: peaks, not end points.
    MetricSpec("slab.kmalloc.bytes.max", "bytes", "gauge", "lower",
               "highest slab.kmalloc.bytes among the samples taken during the workload"),
    MetricSpec("slab.kmalloc.bytes.min", "bytes", "gauge", "lower",
               "lowest slab.kmalloc.bytes among the samples taken during the workload"),
    MetricSpec("meminfo.sunreclaim.max", "bytes", "gauge", "lower",
               "highest SUnreclaim among the samples taken during the workload"),
    MetricSpec("sampler.samples", "samples", "gauge", "neutral", "samples the slab sampler took"),
    MetricSpec("sampler.cpu_seconds", "s", "gauge", "lower",
               "guest CPU time the slab sampler used (its own cost), children included"),
    # /proc/meminfo: slab totals over every cache, kmalloc or not.
    MetricSpec("meminfo.slab", "bytes", "gauge", "lower", "Slab: all slab memory"),
    MetricSpec("meminfo.sunreclaim", "bytes", "gauge", "lower",
               "SUnreclaim: slab memory the kernel cannot shrink (kmalloc lives here)"),
    # swiotlb debugfs: the bounce buffer pool (slots of 2 KiB).
    MetricSpec("swiotlb.present", "", "gauge", "neutral", "1 if the kernel has a swiotlb pool"),
    MetricSpec("swiotlb.slots", "slots", "gauge", "neutral", "io_tlb_nslabs: size of the pool"),
    MetricSpec("swiotlb.used", "slots", "gauge", "lower", "io_tlb_used when read"),
    MetricSpec("swiotlb.hiwater", "slots", "gauge", "lower",
               "io_tlb_used_hiwater: most slots in use since the previous snapshot (6.2+; the "
               "snapshot resets it, so each workload's is its own; boot's counts from boot)"),
    # swiotlb:swiotlb_bounced hist triggers: the DMA side of the trade.
    MetricSpec("swiotlb.bounces", "bounces", "counter", "lower",
               "mappings bounced through swiotlb during the workload (Hits of keys=size)"),
    MetricSpec("swiotlb.bounced_bytes", "bytes", "counter", "lower",
               "bytes bounced: the sum of size x hitcount over the keys=size histogram"),
    MetricSpec("swiotlb.bounces.size-*", "bounces", "counter", "lower",
               "bounces of mappings of one size (bytes)"),
    MetricSpec("swiotlb.bounces.dev-*", "bounces", "counter", "lower",
               "bounces of one device (dev_name, sanitized to [a-z0-9_-])"),
    MetricSpec("swiotlb.bounce_size.max", "bytes", "gauge", "neutral",
               "largest mapping that bounced during the workload (0: none bounced); at most 96 "
               "when only the small unaligned kmalloc buffers bounce, larger with swiotlb=force"),
    MetricSpec("swiotlb.bounces_per_io", "bounces/IO", "gauge", "lower",
               "swiotlb.bounces over the I/Os fio completed in the workload (all jobs, both directions)"),
    MetricSpec("swiotlb.bounced_bytes_per_io", "bytes/IO", "gauge", "lower",
               "swiotlb.bounced_bytes over the I/Os fio completed in the workload"),
    MetricSpec("swiotlb.bounces_per_mapping", "bounces/mapping", "gauge", "lower",
               "swiotlb.bounces over dma.mappings of the workload: the share of streaming mappings that bounced"),
    # dma:dma_map_page and dma:dma_map_sg hist triggers (6.12): mappings counted on their own.
    MetricSpec("dma.mappings", "mappings", "counter", "neutral",
               "streaming DMA mappings (dma_map_page + dma_map_sg events) during the workload"),
    MetricSpec("dma.mappings.dev-*", "mappings", "counter", "neutral", "mappings of one device"),
    MetricSpec("dma.map_failures", "mappings", "counter", "lower",
               "dma_map_page calls that returned DMA_MAPPING_ERROR (e.g. swiotlb full)"),
    # /sys/kernel/iommu_groups: the DMA path each device takes.
    MetricSpec("iommu.groups", "groups", "gauge", "neutral", "IOMMU groups (0: every device on the direct path)"),
    MetricSpec("iommu.dev-*.translated", "", "gauge", "neutral",
               "1 if the device's domain translates (DMA or DMA-FQ), 0 if identity (passthrough)"),
    MetricSpec("iommu.dev-*.lazy", "", "gauge", "neutral",
               "1 if the translated domain invalidates lazily (DMA-FQ), 0 if strictly (DMA)"),
    # /proc/vmstat: a few counters that say whether the figures above mean anything.
    MetricSpec("vmstat.pgpgin", "KiB", "counter", "neutral",
               "block I/O read: shows the workload really moved data (bounces per KiB)"),
    MetricSpec("vmstat.pgpgout", "KiB", "counter", "neutral", "block I/O written"),
    MetricSpec("vmstat.pgalloc", "pages", "counter", "neutral",
               "page allocations over all zones, slab pages included"),
    MetricSpec("vmstat.allocstall", "stalls", "counter", "lower",
               "direct reclaim stalls: memory pressure that distorts slab figures"),
    # fio --output-format=json, per job and direction (fio.<job>.<read|write>.*).
    MetricSpec("fio.*.iops", "IO/s", "gauge", "higher", "I/Os per second"),
    MetricSpec("fio.*.bw", "bytes/s", "gauge", "higher", "bandwidth"),
    MetricSpec("fio.*.clat_p*_ns", "ns", "gauge", "lower",
               "completion latency percentile (p50, p99, p99_9)"),
    MetricSpec("fio.*.ios", "IOs", "counter", "neutral", "I/Os completed"),
    # The GFP_DMA kmalloc caches on their own (gfpdma.py): empty in these guests, and
    # reported as such; * is the size class. Also summed into slab.kmalloc-* above.
    MetricSpec("slab.dma-kmalloc-*.objects", "objects", "gauge", "neutral",
               "active objects of dma-kmalloc-N (kmalloc with GFP_DMA); 0: empty"),
    MetricSpec("slab.dma-kmalloc-*.bytes", "bytes", "gauge", "lower",
               "slab memory of dma-kmalloc-N: num_slabs x pagesperslab x page size"),
    MetricSpec("slab.dma-kmalloc.objects", "objects", "gauge", "neutral",
               "active objects of every dma-kmalloc cache"),
    MetricSpec("slab.dma-kmalloc.bytes", "bytes", "gauge", "lower", "slab memory of every dma-kmalloc cache"),
    MetricSpec("slab.gfp_dma_to_pages.bytes", "bytes", "gauge", "neutral",
               "memory if every dma-kmalloc object came from the page allocator: sum over N of "
               "objects(N) x page size x 2^get_order(N)"),
    MetricSpec("slab.gfp_dma_to_pages.extra_bytes", "bytes", "gauge", "neutral",
               "slab.gfp_dma_to_pages.bytes minus slab.dma-kmalloc.bytes"),
    # slub_debug U (alloc_traces.py, callers.py): who holds each size class (* is the
    # class, all families summed; in .top.*, a caller function).
    MetricSpec("slab.store_user_caches", "caches", "gauge", "neutral",
               "kmalloc caches that store their allocating user (slub_debug U; 0: off): a U boot's "
               "slab figures do not compare with a normal boot's, objects grow"),
    MetricSpec("slab.callers.*.top.*.objects", "objects", "gauge", "neutral",
               "live objects one of the size class's top callers (a function, call sites and stacks "
               "merged) holds, from alloc_traces"),
    MetricSpec("slab.callers.*.sites", "sites", "gauge", "neutral",
               "alloc_traces entries (call site, stack, requested size) of the size class"),
    MetricSpec("slab.callers.*.objects", "objects", "gauge", "neutral",
               "live objects alloc_traces lists for the size class"),
    MetricSpec("slab.callers.*.waste_bytes", "bytes", "gauge", "lower",
               "bytes lost rounding requests up to the size class: the sum of waste= totals"),
    MetricSpec("slab.callers.*.kharness_objects", "objects", "gauge", "lower",
               "of those, objects kharness's own hist trigger maps hold"),
    MetricSpec("slab.alloc_traces.cost_bytes", "bytes", "gauge", "lower",
               "kmalloc slab the snapshot's reading after slabinfo (alloc_traces above all) left: "
               "slabinfo read again after the alloc_traces minus the snapshot's; the next "
               "workload's deltas start after it"),
    MetricSpec("slab.alloc_traces.cost_pgalloc", "pages", "gauge", "lower",
               "pages allocated (pgalloc_*) from the snapshot's vmstat to after the alloc_traces "
               "were read; not in the next workload's counters"),
    # /proc/zoneinfo, per zone (* is dma, dma32, normal, movable, device; nodeN-<zone> off node 0).
    MetricSpec("zone.*.present", "pages", "gauge", "neutral", "pages of RAM in the zone (0: the zone is empty)"),
    MetricSpec("zone.*.managed", "pages", "gauge", "neutral", "pages the buddy allocator manages"),
    MetricSpec("zone.*.spanned", "pages", "gauge", "neutral", "pages from the zone's first to its last frame"),
    MetricSpec("zone.*.free", "pages", "gauge", "higher", "free pages"),
    MetricSpec("zone.*.cma", "pages", "gauge", "neutral", "pages of the zone in CMA areas"),
    MetricSpec("zone.*.watermark_*", "pages", "gauge", "neutral",
               "the zone's min, low and high watermarks: below low kswapd wakes, below min allocations stall"),
    MetricSpec("zone.*.start", "bytes", "gauge", "neutral",
               "physical address the zone starts at (start_pfn x page size); populated zones only"),
    MetricSpec("zone.*.end", "bytes", "gauge", "neutral",
               "physical address the zone ends at ((start_pfn + spanned) x page size); populated zones only"),
    # /proc/buddyinfo and debugfs extfrag: how broken up free memory is (* is the zone, then an order).
    MetricSpec("buddy.*.order-*", "blocks", "gauge", "neutral", "free blocks of 2^order pages"),
    MetricSpec("buddy.*.largest_order", "order", "gauge", "higher",
               "the highest order with a free block (-1: none at all)"),
    MetricSpec("extfrag.*.unusable.order-*", "", "gauge", "lower",
               "unusable free space index: the share of free memory in blocks too small for the order (0..1)"),
    MetricSpec("extfrag.*.index.order-*", "", "gauge", "neutral",
               "fragmentation index of a failing allocation of the order: towards 0 lack of memory, "
               "towards 1 fragmentation; -1: it would succeed"),
    # /proc/vmstat's compaction and migration counters (zones.py), over the workload.
    MetricSpec("vmstat.compact_*scanned", "pages", "counter", "lower",
               "pages compaction scanned for movable pages (migrate) or free targets (free), kcompactd's too"),
    MetricSpec("vmstat.compact_isolated", "pages", "counter", "lower", "pages compaction isolated to move"),
    MetricSpec("vmstat.compact_*", "events", "counter", "lower",
               "compaction events: stalls (direct compaction), successes, failures, kcompactd wakeups"),
    MetricSpec("vmstat.pgmigrate_*", "pages", "counter", "neutral", "pages migrated (success) or not (fail)"),
)


@functools.lru_cache(maxsize=4096)  # a repetition asks for the same few hundred names each snapshot
def spec(name: str) -> MetricSpec | None:
    """The first catalogue entry whose pattern matches `name`, or None."""
    return next((s for s in CATALOGUE if fnmatchcase(name, s.pattern)), None)


def measured(pairs: Iterable[tuple[str, float]], workload: str) -> list[Metric]:
    """metric() of each (name, value) whose value a result file can hold: finite, within
    results.MAX_VALUE. Sums and products of what a hostile guest printed can exceed it
    (sizes times hitcounts); such a figure is left out (an unknown, never a wrong number)
    rather than making the repetition's metrics.json one that no reader takes."""
    out = []
    for name, value in pairs:
        if math.isfinite(value) and abs(value) <= results.MAX_VALUE:
            out.append(metric(name, value, workload))
        else:
            log.warning("%s:%s = %g is no measurement; left out", workload, name, value)
    return out


def metric(name: str, value: float, workload: str) -> Metric:
    """A Metric with the catalogue's unit, kind and direction; KeyError if not catalogued."""
    s = spec(name)
    if s is None:
        raise KeyError(f"metric {name!r} is not in harness.collect.catalogue")
    return Metric(name, float(value), s.unit, s.kind, s.better, workload)
