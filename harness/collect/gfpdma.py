"""The GFP_DMA what-if: the memory if every dma-kmalloc object came from the page allocator.

The list asks "how much memory would we waste if switching [GFP_DMA users]
to the page allocator?". The `dma-kmalloc-N` caches hold what kmalloc(...,
GFP_DMA) returned; a caller that asked the page allocator instead would get
at least one page per object, the order that fits for larger ones:

    memory_then = sum over dma-kmalloc-N of objects(N) x page_size x 2^order(N)
    order(N)    = the smallest order with page_size x 2^order >= N (get_order)
    memory_now  = sum over dma-kmalloc-N of num_slabs x pagesperslab x page_size
    extra       = memory_then - memory_now

Both come from one /proc/slabinfo. With CONFIG_ZONE_DMA the caches exist for
every size class from boot, and in kharness's guests they are empty (domain.md:
virtio, NVMe, SCSI, xHCI and usb-storage do not allocate with GFP_DMA), which
is itself the answer: every row says "empty".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.collect import slabinfo

Objects = Literal["active", "total"]
FORMULA = (
    "memory_then = sum over dma-kmalloc-N of objects(N) x page_size x 2^order(N), "
    "order(N) = the smallest order with page_size x 2^order >= N; "
    "memory_now = sum of the caches' slab pages (num_slabs x pagesperslab x page_size); "
    "extra = memory_then - memory_now"
)
NOTES = (
    "both sides come from ZONE_DMA: the what-if changes how much, not where",
    "the caches' free slots are in memory_now (they are held); --objects total counts them in memory_then too",
)


def order_for(size: int, pagesize: int) -> int:
    """get_order(size): pages of 2^order hold `size` bytes."""
    order = 0
    while pagesize << order < size:
        order += 1
    return order


@dataclass(frozen=True)
class DmaCache:
    name: str
    size: int  # the class N
    objects: int
    slab_bytes: int  # memory now
    order: int
    pagesize: int

    @property
    def pages_each(self) -> int:
        return 1 << self.order

    @property
    def bytes_then(self) -> int:
        return self.objects * self.pagesize * self.pages_each

    @property
    def extra_bytes(self) -> int:
        return self.bytes_then - self.slab_bytes

    @property
    def empty(self) -> bool:
        return self.objects == 0 and self.slab_bytes == 0


@dataclass(frozen=True)
class GfpDmaWhatIf:
    objects: Objects
    pagesize: int
    rows: tuple[DmaCache, ...]  # smallest class first; none: the kernel has no ZONE_DMA caches

    @property
    def bytes_now(self) -> int:
        return sum(r.slab_bytes for r in self.rows)

    @property
    def bytes_then(self) -> int:
        return sum(r.bytes_then for r in self.rows)

    @property
    def extra_bytes(self) -> int:
        return self.bytes_then - self.bytes_now

    @property
    def object_count(self) -> int:
        return sum(r.objects for r in self.rows)


def dma_caches(info: slabinfo.SlabInfo) -> list[tuple[slabinfo.SlabCache, int]]:
    """The dma-kmalloc-N caches of a slabinfo with their class, smallest first."""
    found = [(c, kc[1]) for c in info.caches if (kc := slabinfo.kmalloc_class(c.name)) and kc[0] == "dma-kmalloc"]
    return sorted(found, key=lambda cs: cs[1])


def compute(info: slabinfo.SlabInfo, pagesize: int, objects: Objects = "active") -> GfpDmaWhatIf:
    rows = tuple(
        DmaCache(c.name, size, c.active_objs if objects == "active" else c.num_objs, c.bytes(pagesize),
                 order_for(size, pagesize), pagesize)
        for c, size in dma_caches(info)
    )
    return GfpDmaWhatIf(objects, pagesize, rows)


def to_json(w: GfpDmaWhatIf, pagesize_source: str) -> dict[str, Any]:
    return {
        "formula": FORMULA, "objects": w.objects, "pagesize": w.pagesize, "pagesize_source": pagesize_source,
        "caches": [{"cache": r.name, "size": r.size, "objects": r.objects, "empty": r.empty,
                    "bytes_now": r.slab_bytes, "order": r.order, "bytes_then": r.bytes_then,
                    "extra_bytes": r.extra_bytes} for r in w.rows],
        "bytes_now": w.bytes_now, "bytes_then": w.bytes_then, "extra_bytes": w.extra_bytes,
        "notes": list(NOTES),
    }


def table(w: GfpDmaWhatIf, pagesize_source: str) -> str:
    lines = [f"GFP_DMA what-if: every dma-kmalloc object from the page allocator instead "
             f"(page size {w.pagesize}, {pagesize_source}; objects: {w.objects})",
             f"formula: {FORMULA}", ""]
    if not w.rows:
        lines.append("no dma-kmalloc caches in this slabinfo: the kernel has no ZONE_DMA kmalloc caches")
        return "\n".join(lines) + "\n"
    head = ("cache", "objects", "bytes now", "order", "bytes then", "extra bytes")
    rows = [(r.name, "empty" if r.empty else str(r.objects), str(r.slab_bytes), str(r.order),
             str(r.bytes_then), str(r.extra_bytes)) for r in w.rows]
    rows.append(("total", str(w.object_count), str(w.bytes_now), "", str(w.bytes_then), str(w.extra_bytes)))
    cells = [head, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    for row in cells:
        lines.append("  ".join(v.ljust(wd) if i == 0 else v.rjust(wd)
                               for i, (v, wd) in enumerate(zip(row, widths, strict=True))))
    empty = sum(1 for r in w.rows if r.empty)
    lines.append("")
    if empty == len(w.rows):
        lines.append(f"all {empty} dma-kmalloc caches are empty: nothing in this guest allocates with GFP_DMA")
    lines.append(f"extra: {w.extra_bytes} bytes")
    lines += [f"note: {n}" for n in NOTES]
    return "\n".join(lines) + "\n"
