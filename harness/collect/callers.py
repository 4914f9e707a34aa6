"""Who pays: kmalloc's call sites per size class, and what a minalign N would cost each.

From the alloc_traces of the kmalloc caches (alloc_traces.py), per size class
summed over the families (kmalloc-, -cg-, -rcl-, dma-, -rnd-) as slabinfo's
figures are, and per caller function (offsets dropped: one function, several
call sites or stacks, is one payer):

    classes = by_class({"kmalloc-8": traces, "kmalloc-cg-8": ..., ...})
    cost = whatif(classes, 64)          # which callers would pay how much at minalign 64

The by-caller what-if uses the size each caller asked for, which `waste=`
gives (requested = class - waste per object), so it answers for any N, below
the minalign the traces were taken at as well as above it (negative: saved).
kharness's own allocations (the hist trigger maps kharness-trace.sh sets up)
are marked, so nobody mistakes them for the kernel's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.collect import slabinfo, whatif
from harness.collect.alloc_traces import AllocTraces, Trace, symbol_function

FORMULA = (
    "extra(caller) = sum over its entries of count x (class_N(r) - c), where c is the "
    "entry's size class now, r = c - waste/count the size the caller asked for (r = c "
    "when alloc_traces prints no waste=), and class_N(r) the smallest kmalloc size class "
    ">= r that is a multiple of N"
)
NOTES = (
    "count: objects allocated now (alloc_traces lists live objects only), per call site "
    "and stack; the caller is the function, offsets and stacks merged",
    "object bytes only: slab packing would change too; U's own per-object metadata is not counted",
)
# Stack frames that mark an allocation as kharness's own: the hist trigger maps
# kharness-trace.sh sets (tracing_map_init and the element data it kmallocs).
KHARNESS_FRAMES = ("event_hist_trigger_parse", "tracing_map_init", "hist_trigger_elt_data_alloc")


def is_kharness(trace: Trace) -> bool:
    """Did kharness's own tracing allocate this (a hist trigger map)?"""
    return any(symbol_function(f) in KHARNESS_FRAMES for f in (trace.caller, *trace.frames))


def via(trace: Trace) -> str | None:
    """The function that called the caller: the frame after the caller's own in the stack."""
    names = [symbol_function(f) for f in trace.frames]
    fn = trace.function
    if fn in names:
        i = names.index(fn)
        return names[i + 1] if i + 1 < len(names) else None
    return None


@dataclass(frozen=True)
class Entry:
    """One alloc_traces entry with the size class and cache it was found in."""

    cache: str
    size: int  # the class: the cache's object size
    trace: Trace

    @property
    def requested(self) -> int:
        return max(1, self.trace.requested(self.size))


@dataclass(frozen=True)
class Caller:
    """One function's objects in one size class (all its entries, all families)."""

    function: str
    size: int
    entries: tuple[Entry, ...]

    @property
    def objects(self) -> int:
        return sum(e.trace.count for e in self.entries)

    @property
    def bytes(self) -> int:
        return self.objects * self.size

    @property
    def waste_bytes(self) -> int:
        return sum(e.trace.waste_total for e in self.entries)

    @property
    def requested(self) -> tuple[int, int]:
        """Smallest and largest size asked for."""
        sizes = [e.requested for e in self.entries]
        return min(sizes), max(sizes)

    @property
    def kharness(self) -> bool:
        return any(is_kharness(e.trace) for e in self.entries)

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(sorted({m for e in self.entries if (m := e.trace.module)}))

    def vias(self, n: int = 3) -> list[tuple[str, int]]:
        """The commonest callers of the caller, by objects."""
        counts: Counter[str] = Counter()
        for e in self.entries:
            v = via(e.trace)
            if v is not None:
                counts[v] += e.trace.count
        return counts.most_common(n)


@dataclass(frozen=True)
class SizeClass:
    size: int
    callers: tuple[Caller, ...]  # most objects first
    caches: tuple[str, ...]
    cut: bool = False  # a cache's file was cut by the guest: the tail of small entries is missing

    @property
    def label(self) -> str:
        return slabinfo.class_label(self.size)

    @property
    def objects(self) -> int:
        return sum(c.objects for c in self.callers)

    @property
    def sites(self) -> int:
        return sum(len(c.entries) for c in self.callers)

    @property
    def waste_bytes(self) -> int:
        return sum(c.waste_bytes for c in self.callers)

    @property
    def kharness_objects(self) -> int:
        return sum(e.trace.count for c in self.callers for e in c.entries if is_kharness(e.trace))


def by_class(traces: Mapping[str, AllocTraces]) -> tuple[SizeClass, ...]:
    """Cache name -> its alloc_traces, into size classes (smallest first); non-kmalloc caches ignored."""
    grouped: dict[int, list[Entry]] = {}
    caches: dict[int, list[str]] = {}
    cut: set[int] = set()
    for cache, t in sorted(traces.items()):
        kc = slabinfo.kmalloc_class(cache)
        if kc is None:
            continue
        size = kc[1]
        grouped.setdefault(size, []).extend(Entry(cache, size, tr) for tr in t.entries)
        caches.setdefault(size, []).append(cache)
        if t.cut_at is not None:
            cut.add(size)
    out = []
    for size, entries in sorted(grouped.items()):
        per_fn: dict[str, list[Entry]] = {}
        for e in entries:
            per_fn.setdefault(e.trace.function, []).append(e)
        callers = sorted((Caller(fn, size, tuple(es)) for fn, es in per_fn.items()),
                         key=lambda c: (-c.objects, c.function))
        out.append(SizeClass(size, tuple(callers), tuple(caches[size]), size in cut))
    return tuple(out)


# --- the by-caller what-if ------------------------------------------------------


def class_for(requested: int, minalign: int) -> int:
    """The kmalloc size class a request of `requested` bytes lands in at `minalign`."""
    smallest = next((c for c in slabinfo.SIZE_CLASSES if c >= requested), 0)
    if not smallest:  # beyond the table (16k.. on big pages): powers of two
        smallest = 1 << (requested - 1).bit_length()
    return whatif.round_up_class(smallest, minalign)


@dataclass(frozen=True)
class CallerCost:
    caller: Caller
    then: int  # bytes of its objects at minalign N
    classes_then: tuple[int, ...]  # the size classes its objects land in at N

    @property
    def now(self) -> int:
        return self.caller.bytes

    @property
    def extra_bytes(self) -> int:
        return self.then - self.now


@dataclass(frozen=True)
class CallerWhatIf:
    minalign: int
    rows: tuple[CallerCost, ...]  # most extra first, every caller of every class

    @property
    def extra_bytes(self) -> int:
        return sum(r.extra_bytes for r in self.rows)

    def per_class(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for r in self.rows:
            out[r.caller.size] = out.get(r.caller.size, 0) + r.extra_bytes
        return out


def compute_whatif(classes: tuple[SizeClass, ...], minalign: int) -> CallerWhatIf:
    """What each caller's live objects would take at minalign N (FORMULA)."""
    if minalign not in whatif.ALIGNMENTS:
        raise ValueError(f"minalign {minalign}: use one of {', '.join(map(str, whatif.ALIGNMENTS))}")
    rows = []
    for sc in classes:
        for c in sc.callers:
            then = sum(e.trace.count * class_for(e.requested, minalign) for e in c.entries)
            lands = tuple(sorted({class_for(e.requested, minalign) for e in c.entries}))
            rows.append(CallerCost(c, then, lands))
    rows.sort(key=lambda r: (-r.extra_bytes, r.caller.size, r.caller.function))
    return CallerWhatIf(minalign, tuple(rows))


# --- writers: table and JSON ------------------------------------------------------


def _sizes(lo_hi: tuple[int, int]) -> str:
    lo, hi = lo_hi
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _name(c: Caller) -> str:
    mods = f" [{','.join(c.modules)}]" if c.modules else ""
    return c.function + mods + (" (kharness)" if c.kharness else "")


def _columns(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], left: tuple[int, ...] = (1,)) -> list[str]:
    cells = [head, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return ["  ".join(v.ljust(w) if i in left else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
            .rstrip() for r in cells]


def callers_table(classes: tuple[SizeClass, ...], top: int) -> str:
    lines: list[str] = []
    for sc in classes:
        note = " (cut by the guest: small entries missing)" if sc.cut else ""
        lines.append(f"kmalloc-{sc.label}: {sc.objects} objects from {sc.sites} call sites "
                     f"({', '.join(sc.caches)}); waste {sc.waste_bytes} bytes{note}")
        rows = []
        for c in sc.callers[:top]:
            vias = ", ".join(f"{v} {n}" for v, n in c.vias())
            rows.append((f"{c.objects}", _name(c), _sizes(c.requested), str(c.bytes), str(c.waste_bytes), vias))
        if rows:
            head = ("objects", "caller", "asked", "bytes", "waste", "called from (objects)")
            lines += ["  " + line for line in _columns(head, rows, left=(1, 5))]
        if len(sc.callers) > top:
            lines.append(f"  ... {len(sc.callers) - top} more callers")
        lines.append("")
    if not classes:
        lines.append("no kmalloc cache in the alloc_traces given")
    lines.append("asked: the size the caller requested (class - waste per object); waste: "
                 "bytes lost rounding up to the class")
    lines.append("(kharness): kharness's own hist trigger maps, in every figure of the guest")
    return "\n".join(lines).rstrip() + "\n"


def callers_json(classes: tuple[SizeClass, ...], top: int) -> dict[str, Any]:
    return {"classes": [{
        "class": sc.label, "size": sc.size, "caches": list(sc.caches), "objects": sc.objects,
        "sites": sc.sites, "waste_bytes": sc.waste_bytes, "kharness_objects": sc.kharness_objects,
        "cut": sc.cut,
        "callers": [{"function": c.function, "objects": c.objects, "bytes": c.bytes,
                     "waste_bytes": c.waste_bytes, "requested": list(c.requested), "modules": list(c.modules),
                     "kharness": c.kharness, "called_from": [{"function": v, "objects": n} for v, n in c.vias()],
                     "callers": sorted({e.trace.caller for e in c.entries})}
                    for c in sc.callers[:top]],
    } for sc in classes]}


def whatif_table(w: CallerWhatIf, top: int, taken_at: int | None) -> str:
    n = w.minalign
    head = ("class", "caller", "objects", "asked", f"class at {n}", "bytes now", f"bytes at {n}", "extra bytes")
    rows = [(f"kmalloc-{slabinfo.class_label(r.caller.size)}", _name(r.caller), str(r.caller.objects),
             _sizes(r.caller.requested), "/".join(slabinfo.class_label(c) for c in r.classes_then),
             str(r.now), str(r.then), str(r.extra_bytes))
            for r in w.rows[:top] if r.extra_bytes]
    per_class = w.per_class()
    paying = sum(1 for r in w.rows if r.extra_bytes)
    shown = f"alloc_traces taken at minalign {taken_at}; " if taken_at else ""
    lines = [f"{shown}what each caller's live objects would take at minalign {n}",
             f"formula: {FORMULA}", ""]
    lines += _columns(head, rows, left=(0, 1)) if rows else ["no caller's objects change class"]
    if paying > len(rows):
        lines.append(f"... {paying - len(rows)} more callers whose objects change class")
    lines.append("")
    lines.append("per class: " + ", ".join(f"kmalloc-{slabinfo.class_label(s)} {b:+d}"
                                           for s, b in sorted(per_class.items()) if b) or "per class: none")
    ours = sum(r.extra_bytes for r in w.rows if r.caller.kharness)
    lines.append(f"extra: {w.extra_bytes} bytes in all ({whatif._human(abs(w.extra_bytes))}); "
                 f"of which kharness's own hist maps {ours}")
    lines += [f"note: {x}" for x in NOTES]
    return "\n".join(lines) + "\n"


def whatif_json(w: CallerWhatIf, top: int, taken_at: int | None) -> dict[str, Any]:
    return {
        "formula": FORMULA, "minalign": w.minalign, "taken_at_minalign": taken_at,
        "extra_bytes": w.extra_bytes,
        "per_class": {slabinfo.class_label(s): b for s, b in sorted(w.per_class().items())},
        "kharness_extra_bytes": sum(r.extra_bytes for r in w.rows if r.caller.kharness),
        "callers": [{"class": slabinfo.class_label(r.caller.size), "function": r.caller.function,
                     "objects": r.caller.objects, "requested": list(r.caller.requested),
                     "classes_then": [slabinfo.class_label(c) for c in r.classes_then],
                     "bytes_now": r.now, "bytes_then": r.then, "extra_bytes": r.extra_bytes,
                     "kharness": r.caller.kharness}
                    for r in w.rows[:top]],
        "notes": list(NOTES),
    }
