"""/proc/slabinfo: caches, kmalloc size classes, and the effective kmalloc minalign.

The minalign question (domain.md) is answered from slabinfo alone: the
smallest plain `kmalloc-N` cache is the effective ARCH_KMALLOC_MINALIGN, and
the kmalloc caches' objects and slab pages, summed per size class over every
kmalloc family, are what a smaller minalign saves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.collect.text import MAX_INPUT, ParseError, count, decode, lines, shorten

HEADER = "slabinfo - version: 2.1"
# The size classes of a 4 KiB-page kernel; larger pages add 16k.. (kept, not listed).
SIZE_CLASSES = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192)
MAX_OBJECTS = 1 << 48  # per cache; a sane bound far above any real machine

# A row: name active_objs num_objs objsize objperslab pagesperslab
#        : tunables limit batch shared : slabdata active_slabs num_slabs sharedavail
# (SLAB with statistics appends more; ignored). Split on tokens, not a regex,
# so a hostile line costs linear time.
_TUNABLES = " : tunables "
# Family prefixes: plain, memcg-accounted (5.14), reclaimable (4.20), GFP_DMA,
# and the RANDOM_KMALLOC_CACHES copies (6.6). Older kernels write 1024, not 1k.
_KMALLOC = re.compile(
    r"(?P<family>kmalloc|kmalloc-cg|kmalloc-rcl|dma-kmalloc|kmalloc-rnd-[0-9]{2})"
    r"-(?P<size>[0-9]{1,7})(?P<k>k?)"
)


@dataclass(frozen=True)
class SlabCache:
    """One row of /proc/slabinfo (SLUB shows active_slabs == num_slabs)."""

    name: str
    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    active_slabs: int
    num_slabs: int

    def bytes(self, pagesize: int) -> int:
        """Memory the cache holds in slab pages, whether its objects are in use or not."""
        return self.num_slabs * self.pagesperslab * pagesize


@dataclass(frozen=True)
class SlabInfo:
    caches: tuple[SlabCache, ...]


@dataclass(frozen=True)
class SizeClass:
    """One kmalloc size class summed over its families (kmalloc, -cg, -rcl, dma-, -rnd)."""

    size: int
    active_objs: int
    num_objs: int
    slab_pages: int  # num_slabs x pagesperslab, summed; x page size gives bytes
    families: tuple[str, ...]

    @property
    def label(self) -> str:
        return class_label(self.size)


def parse(data: str | bytes) -> SlabInfo:
    """Parse /proc/slabinfo text; ParseError if it is not one (header, row shape, numbers)."""
    text = decode(data, "slabinfo", MAX_INPUT)
    rows = lines(text, "slabinfo")
    first = next(rows, (1, ""))[1]
    if first.strip() not in (HEADER, f"{HEADER} (statistics)"):
        raise ParseError(f"slabinfo line 1: expected {HEADER!r}, found {shorten(first)!r}")
    caches = tuple(_row(n, line) for n, line in rows if line.strip() and not line.startswith("#"))
    if not caches:
        raise ParseError("slabinfo: a header but no caches (truncated?)")
    return SlabInfo(caches)


def _row(number: int, line: str) -> SlabCache:
    left, sep, right = line.partition(_TUNABLES)
    head, tail = left.split(), right.split()
    if not sep or len(head) < 6 or len(tail) < 8 or tail[3:5] != [":", "slabdata"]:
        raise ParseError(f"slabinfo line {number}: not a cache row: {shorten(line)!r}")
    name = " ".join(head[:-5])
    where = f"slabinfo line {number} ({shorten(name, 40)})"
    active, num, objsize, perslab, pages = head[-5:]
    cache = SlabCache(
        name=name,
        active_objs=count(active, f"{where} active_objs", MAX_OBJECTS),
        num_objs=count(num, f"{where} num_objs", MAX_OBJECTS),
        objsize=count(objsize, f"{where} objsize", 1 << 32),
        objperslab=count(perslab, f"{where} objperslab", 1 << 32),
        pagesperslab=count(pages, f"{where} pagesperslab", 1 << 20),
        active_slabs=count(tail[5], f"{where} active_slabs", MAX_OBJECTS),
        num_slabs=count(tail[6], f"{where} num_slabs", MAX_OBJECTS),
    )
    if cache.active_objs > cache.num_objs:
        raise ParseError(f"{where}: {cache.active_objs} active objects of only {cache.num_objs}")
    return cache


def kmalloc_class(name: str) -> tuple[str, int] | None:
    """(family, size in bytes) of a kmalloc cache name, None for any other cache.

    Only real size classes count (powers of two from 8, and 96, 192): a cache
    named `kmalloc-100` is somebody else's.
    """
    m = _KMALLOC.fullmatch(name)
    if m is None:
        return None
    size = int(m["size"]) * (1024 if m["k"] else 1)
    if size < 8 or (size not in (96, 192) and size & (size - 1)):
        return None
    return m["family"], size


def class_label(size: int) -> str:
    """The kernel's spelling of a size class: 96, 1k, 8k (used in metric names)."""
    return f"{size // 1024}k" if size >= 1024 and size % 1024 == 0 else str(size)


def size_classes(info: SlabInfo) -> tuple[SizeClass, ...]:
    """Every kmalloc size class present, smallest first, summed over families."""
    sums: dict[int, list[int]] = {}
    families: dict[int, set[str]] = {}
    for cache in info.caches:
        kc = kmalloc_class(cache.name)
        if kc is None:
            continue
        family, size = kc
        acc = sums.setdefault(size, [0, 0, 0])
        acc[0] += cache.active_objs
        acc[1] += cache.num_objs
        acc[2] += cache.num_slabs * cache.pagesperslab
        families.setdefault(size, set()).add(family)
    return tuple(
        SizeClass(size, a, n, p, tuple(sorted(families[size])))
        for size, (a, n, p) in sorted(sums.items())
    )


def minalign(info: SlabInfo) -> int | None:
    """The effective kmalloc minimum alignment: the smallest plain `kmalloc-N` cache.

    Only the plain family counts: it is created for every size class the
    alignment allows, whatever the kernel's config (memcg, GFP_DMA zones).
    """
    sizes = [kc[1] for c in info.caches if (kc := kmalloc_class(c.name)) and kc[0] == "kmalloc"]
    return min(sizes) if sizes else None


def infer_pagesize(info: SlabInfo) -> int | None:
    """The smallest page size consistent with every cache's slab layout.

    A slab of `pagesperslab` pages holds `objperslab` objects of `objsize`
    bytes with less than one object left over, so the page size is at least
    objperslab x objsize / pagesperslab; the next power of two is the answer
    for every real cache set (small-object caches fill a page nearly exactly).
    """
    need = max(
        (c.objperslab * c.objsize // c.pagesperslab for c in info.caches if c.pagesperslab),
        default=0,
    )
    if need <= 0:
        return None
    page = 4096
    while page < need and page < (1 << 20):
        page *= 2
    return page
