"""A slub_debug U boot against a normal one: their slab figures are not compared.

With U (store user) every object of a debugged cache carries its allocation
and free tracks, so objects grow (kmalloc-8 objects take 80 bytes under U,
kmalloc-64 192) and debug caches are never merged: slabinfo and meminfo's slab
figures of a U boot measure something else than a normal boot's. Cells only
meet across that line when an axis is ignored (`--ignore-axis slub_debug`,
or `cmdline` carrying slub_debug=/slab_debug=), or when a kernel turns U on
by itself (CONFIG_SLUB_DEBUG_ON); each such pair's slab metrics are judged
"inconclusive" with the reason, and compare warns once per comparison.

A side stores users when its axes say so (slub_debug, or a slub_debug= /
slab_debug= word in cmdline) or when the guest said so
(`boot:slab.store_user_caches` > 0, taken from /sys/kernel/slab).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from harness.compare.diff import CellDiff, Comparison, MetricDiff
from harness.compare.judge import Judgement
from harness.compare.load import CellSamples

GUEST_SAYS = "boot:slab.store_user_caches"
# Metrics whose figures U changes: every slab size and count, and meminfo's slab totals.
SLAB_PREFIXES = ("slab.", "meminfo.slab", "meminfo.sunreclaim")
REASON = "slub_debug U on one side only: objects grow under U, slab figures do not compare"


def _options_store_user(options: str) -> bool:
    """Do slub_debug options (`U,kmalloc-*`, `FZ;U,dentry`, `` for all) store users?

    Each `;` block is `flags[,caches...]`; empty flags mean every default check
    (F, Z, P and U); `-` turns debugging off.
    """
    for block in options.split(";"):
        flags = block.split(",", 1)[0]
        if (flags == "" and block.strip() != "-") or "u" in flags.lower():
            return True
    return False


def stores_user(cell: CellSamples) -> bool:
    """Does this side of a cell boot with slub_debug U?"""
    if any(v > 0 for v in cell.values.get(GUEST_SAYS, ())):
        return True
    return axes_store_user(cell.axes)


def axes_store_user(axes: dict[str, Any]) -> bool:
    option = axes.get("slub_debug")
    if isinstance(option, str) and _options_store_user(option):
        return True
    words = axes.get("cmdline") or ""  # an axis is a JSON scalar: the words joined by spaces
    for word in words.split() if isinstance(words, str) else ():
        key, sep, value = word.partition("=")
        if key in ("slub_debug", "slab_debug") and (not sep or _options_store_user(value)):
            return True
    return False


def is_slab_metric(name: str) -> bool:
    """Slab figures U changes (the store_user count itself, the tell, is judged as it is)."""
    return name.startswith(SLAB_PREFIXES) and name != GUEST_SAYS.partition(":")[2]


def mixed(cell: CellDiff) -> bool:
    return cell.base is not None and cell.new is not None and stores_user(cell.base) != stores_user(cell.new)


def refuse_mixed(cells: Iterable[CellDiff]) -> tuple[CellDiff, ...]:
    """The cells with each U-against-normal pair's slab metrics made inconclusive."""
    return tuple(_refuse(c) if mixed(c) else c for c in cells)


def _refuse(cell: CellDiff) -> CellDiff:
    metrics = tuple(_refused(m) if is_slab_metric(m.name) and m.judgement.verdict not in ("new", "gone") else m
                    for m in cell.metrics)
    return replace(cell, metrics=metrics)


def _refused(m: MetricDiff) -> MetricDiff:
    return m._replace(judgement=Judgement("inconclusive", REASON))


def apply(cmp: Comparison) -> Comparison:
    """compare_runs' result with refuse_mixed applied."""
    return replace(cmp, cells=refuse_mixed(cmp.cells))


def warnings(comparisons: Iterable[Comparison]) -> list[str]:
    """One line per comparison that pairs U boots with normal ones."""
    out = []
    for cmp in comparisons:
        n = sum(1 for c in cmp.cells if mixed(c))
        if n:
            out.append(f"{cmp.new.name}: {n} cell(s) pair a slub_debug U boot with a normal one; "
                       "their slab figures are not judged (objects grow under U)")
    return out
