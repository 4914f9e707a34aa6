"""The minalign what-if: extra kmalloc memory if the minimum alignment were N.

The figure kernel developers work out by hand in the minalign threads: take
a /proc/slabinfo from a kernel running at a small minalign (8), and ask what
the same objects would cost if kmalloc rounded every size up to N. kmalloc
only has the size classes 8 16 32 64 96 128 192 256 ...; at minalign N the
classes that are not multiples of N do not exist (at 64: no 8/16/32/96; at
128: no 96 and no 192), and a request goes to the next class that does.
So an object in class c moves to round_up_class(c, N), costing the difference.

Objects are the active ones by default: what callers hold. The free slots of
partly used slabs are packing, which would itself change at a new size, so
counting them (--objects total) gives an upper bound, not the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from harness.collect import slabinfo

Objects = Literal["active", "total"]
ALIGNMENTS = (8, 16, 32, 64, 128)
FORMULA = (
    "extra_bytes = sum over kmalloc size classes c (all families) of "
    "objects(c) x (round_up_class(c, N) - c)"
)
ROUND_UP = "round_up_class(c, N) = the smallest kmalloc size class >= c that is a multiple of N"
NOTES = (
    "object bytes only: slab packing (objects per slab, partly used slabs) would change too",
    "SLUB merges other caches of equal size into kmalloc-N; boot with slab_nomerge "
    "for kmalloc's own objects",
)


@dataclass(frozen=True)
class ClassCost:
    size: int
    objects: int
    rounds_to: int

    @property
    def label(self) -> str:
        return slabinfo.class_label(self.size)

    @property
    def bytes_now(self) -> int:
        return self.objects * self.size

    @property
    def bytes_then(self) -> int:
        return self.objects * self.rounds_to

    @property
    def extra_bytes(self) -> int:
        return self.bytes_then - self.bytes_now


@dataclass(frozen=True)
class WhatIf:
    taken_at: int  # the minalign the slabinfo shows (its smallest kmalloc-N)
    minalign: int  # N
    objects: Objects
    pagesize: int
    rows: tuple[ClassCost, ...]

    @property
    def extra_bytes(self) -> int:
        return sum(r.extra_bytes for r in self.rows)

    @property
    def extra_pages(self) -> int:
        """Pages the extra bytes fill at least: extra_bytes / page size, rounded up."""
        return -(-self.extra_bytes // self.pagesize)


def round_up_class(size: int, minalign: int) -> int:
    """The kmalloc size class an object of class `size` lands in at `minalign`.

    Mirrors mm/slab_common.c: sizes are aligned up to minalign, and 96/192
    exist only where minalign divides them (96 up to 32, 192 up to 64).
    """
    for c in (*slabinfo.SIZE_CLASSES, size):
        if c >= size and c % minalign == 0:
            return c
    # Past the table (16k.. on big pages): powers of two, so align up.
    return -(-size // minalign) * minalign


def compute(
    info: slabinfo.SlabInfo, minalign: int, pagesize: int, objects: Objects = "active"
) -> WhatIf:
    """The what-if for minalign N from `info`; ValueError if that cannot be answered."""
    if minalign not in ALIGNMENTS:
        raise ValueError(f"minalign {minalign}: use one of {', '.join(map(str, ALIGNMENTS))}")
    taken_at = slabinfo.minalign(info)
    if taken_at is None:
        raise ValueError("no kmalloc-N cache in the slabinfo, so no kmalloc figures")
    if minalign < taken_at:
        raise ValueError(
            f"the slabinfo was taken at minalign {taken_at}; a what-if for {minalign} "
            "would need the sizes callers asked for, which slabinfo does not have"
        )
    rows = tuple(
        ClassCost(c.size, c.active_objs if objects == "active" else c.num_objs,
                  round_up_class(c.size, minalign))
        for c in slabinfo.size_classes(info)
    )
    return WhatIf(taken_at, minalign, objects, pagesize, rows)


def to_json(w: WhatIf, pagesize_source: str) -> dict[str, Any]:
    return {
        "formula": f"{FORMULA}; {ROUND_UP}",
        "taken_at_minalign": w.taken_at,
        "minalign": w.minalign,
        "objects": w.objects,
        "pagesize": w.pagesize,
        "pagesize_source": pagesize_source,
        "classes": [
            {"class": r.label, "size": r.size, "objects": r.objects, "rounds_to": r.rounds_to,
             "bytes_now": r.bytes_now, "bytes_then": r.bytes_then, "extra_bytes": r.extra_bytes}
            for r in w.rows
        ],
        "extra_bytes": w.extra_bytes,
        "extra_pages": w.extra_pages,
        "notes": list(NOTES),
    }


def table(w: WhatIf, pagesize_source: str) -> str:
    """The what-if for a terminal or a mail: the formula, a row per size class, the total."""
    why = {
        "active": "objects in use; free slots are packing, not demand",
        "total": "every slot of the slabs, in use or free: an upper bound",
    }[w.objects]
    n = w.minalign
    head = ("class", "objects", "rounds to", "bytes now", f"bytes at {n}", "extra bytes")
    rows = [(r.label, r.objects, slabinfo.class_label(r.rounds_to), r.bytes_now, r.bytes_then,
             r.extra_bytes) for r in w.rows]
    rows.append(("total", sum(r.objects for r in w.rows), "", sum(r.bytes_now for r in w.rows),
                 sum(r.bytes_then for r in w.rows), w.extra_bytes))
    cells = [head, *[tuple(str(v) for v in row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    body = ["  ".join(v.ljust(wd) if i == 0 else v.rjust(wd) for i, (v, wd)
                      in enumerate(zip(row, widths, strict=True))) for row in cells]
    return "\n".join([
        f"slabinfo taken at minalign {w.taken_at} (smallest kmalloc-N cache); what if it were {n}",
        f"objects: {w.objects} ({why})",
        f"formula: {FORMULA}",
        f"         {ROUND_UP}",
        "",
        *body,
        "",
        f"extra: {w.extra_bytes} bytes ({_human(w.extra_bytes)}) = {w.extra_pages} pages of "
        f"{w.pagesize} bytes (page size {pagesize_source})",
        *(f"note: {note}" for note in NOTES),
    ])


def _human(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
