"""A cell seen as a set of keys, and cells rebuilt from a choice of keys.

A key is one thing a kernel developer would toggle on its own: the kernel,
each boot setting (memory, cpus, swiotlb, dma_coherent, iommu_platform,
slub_debug), each kernel command line parameter, each workload (which
brings its devices) and each workload parameter. Bisecting a good cell
against a bad one works on the keys in which they differ: a candidate cell
is the good cell with some of them taken from the bad one.

Underneath, a cell is flattened into entries (`memory`, `cmdline:loglevel`,
`workload:dd-direct`, `workload:dd-direct.count`). A key usually is one
entry; a workload that only one side runs is one key holding its parameters
too, since its parameters mean nothing without it.

Rebuilding is pure here (entries -> the settings of a config's include
entry); turning those settings into a Cell goes through the config loader
(`harness.bisect.cells`), so a candidate is validated exactly like a cell
a user writes, and gets the same id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.config.settings import AXES
from harness.errors import UsageError
from harness.model import Cell

CMDLINE = "cmdline:"
WORKLOAD = "workload:"
LIST_AXES = ("cmdline", "workloads")
# The axes that are one entry each, in the order keys are listed.
SCALAR_AXES = tuple(a for a in AXES if a not in LIST_AXES)

Entries = dict[str, Any]  # entry name -> JSON value


@dataclass(frozen=True)
class Key:
    """One key of the bisection: its name and the entries it sets together."""

    name: str
    entries: tuple[str, ...]


@dataclass(frozen=True)
class Space:
    """Good and bad as entries, the keys in which they differ, and how to order lists."""

    good: Entries
    bad: Entries
    keys: tuple[Key, ...]
    cmdline_order: tuple[str, ...]  # parameter names, both sides merged
    workload_order: tuple[str, ...]  # workload names, both sides merged

    def settings(self, flat: Entries) -> dict[str, Any]:
        """A candidate's entries as the settings of an include entry."""
        return settings(flat, self.cmdline_order, self.workload_order)

    def key(self, name: str) -> Key:
        return next(k for k in self.keys if k.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "good": self.good, "bad": self.bad,
            "keys": [{"name": k.name, "entries": list(k.entries)} for k in self.keys],
            "cmdline_order": list(self.cmdline_order), "workload_order": list(self.workload_order),
        }


def cmdline_param(word: str) -> str:
    """The parameter a command line word sets: `loglevel=8` -> `loglevel`."""
    return word.split("=", 1)[0]


def entries(cell: Cell) -> Entries:
    """The cell flattened: scalar axes as their axis values, then cmdline, then workloads."""
    axes = dict(cell.axes)
    out: Entries = {axis: axes[axis] for axis in SCALAR_AXES}
    for word in cell.cmdline:
        out.setdefault(CMDLINE + cmdline_param(word), []).append(word)
    for run in cell.workloads:
        out[WORKLOAD + run.name] = True
        for param, value in run.params:
            out[f"{WORKLOAD}{run.name}.{param}"] = value
    return out


def cell_settings(cell: Cell) -> dict[str, Any]:
    """A cell's own settings as an include entry: loading them gives the same cell."""
    return settings(entries(cell), _params(cell.cmdline), [w.name for w in cell.workloads])


def merge_order(good: Sequence[str], bad: Sequence[str], what: str) -> tuple[str, ...]:
    """One order for both lists: good's, with bad's own items placed after their predecessor in bad.

    Both ends rebuild in their own order only if the items they share come
    in the same order; otherwise order itself would be a difference that no
    key can express, and bisecting would silently test other cells.
    """
    shared = set(good) & set(bad)
    if [g for g in good if g in shared] != [b for b in bad if b in shared]:
        raise UsageError(f"the good and bad cells list their common {what} in different orders",
                         f"give the {what} in the same order in both cells")
    merged = list(dict.fromkeys(good))
    previous: str | None = None
    for item in dict.fromkeys(bad):
        if item not in merged:
            merged.insert(merged.index(previous) + 1 if previous is not None else 0, item)
        previous = item
    return tuple(merged)


def space(good: Cell, bad: Cell) -> Space:
    """The keys in which `bad` differs from `good`; UsageError if they do not differ."""
    g, b = entries(good), entries(bad)
    cmd_order = merge_order(_params(good.cmdline), _params(bad.cmdline), "cmdline parameters")
    wl_order = merge_order([w.name for w in good.workloads], [w.name for w in bad.workloads], "workloads")
    differ = [e for e in _ordered(set(g) | set(b), cmd_order, wl_order) if g.get(e) != b.get(e)]
    keys = _group(differ)
    if not keys:
        raise UsageError(f"cells {good.slug} and {bad.slug} do not differ in any key",
                         "pick a good and a bad cell that differ")
    return Space(g, b, tuple(keys), cmd_order, wl_order)


def _params(cmdline: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(cmdline_param(w) for w in cmdline))


def _ordered(names: set[str], cmd_order: Sequence[str], wl_order: Sequence[str]) -> list[str]:
    """Entries in a fixed order: axes as AXES lists them, then cmdline, then workloads."""
    out = [a for a in SCALAR_AXES if a in names]
    out += [CMDLINE + p for p in cmd_order if CMDLINE + p in names]
    for wl in wl_order:
        head = WORKLOAD + wl
        out += [head] if head in names else []
        out += sorted(n for n in names if n.startswith(head + "."))
    return out


def _group(differ: list[str]) -> list[Key]:
    """One key per differing entry, except a workload's parameters go with the workload."""
    keys: list[Key] = []
    for name in differ:
        head = name.split(".", 1)[0] if name.startswith(WORKLOAD) else name
        if head != name and head in differ:
            owner = keys[-1]
            keys[-1] = Key(owner.name, (*owner.entries, name))
            continue
        keys.append(Key(name, (name,)))
    return keys


def apply(sp: Space, chosen: Iterable[str]) -> Entries:
    """The good cell's entries with the chosen keys' entries taken from the bad cell."""
    out = dict(sp.good)
    for name in chosen:
        for entry in sp.key(name).entries:
            if entry in sp.bad:
                out[entry] = sp.bad[entry]
            else:
                out.pop(entry, None)
    return out


def settings(flat: Entries, cmdline_order: Sequence[str], workload_order: Sequence[str]) -> dict[str, Any]:
    """Entries back into the settings of a config's include entry (plain YAML values)."""
    doc: dict[str, Any] = {axis: flat[axis] for axis in SCALAR_AXES}
    doc["cmdline"] = [w for p in cmdline_order for w in flat.get(CMDLINE + p, [])]
    workloads: list[dict[str, Any]] = []
    for name in workload_order:
        if flat.get(WORKLOAD + name):
            head = f"{WORKLOAD}{name}."
            params = {e[len(head):]: v for e, v in flat.items() if e.startswith(head)}
            workloads.append({"name": name, "params": params} if params else {"name": name})
    doc["workloads"] = workloads
    return doc


def describe(sp: Space, name: str) -> str:
    """`memory: 1024 -> 2048`: a key with its good and bad values, for people."""
    key = sp.key(name)
    if not (name.startswith(WORKLOAD) and "." not in name):
        return f"{name}: {_show(name, sp.good.get(name))} -> {_show(name, sp.bad.get(name))}"
    side = sp.bad if name in sp.bad else sp.good
    params = ", ".join(f"{e.split('.', 1)[1]}={_show(e, side[e])}" for e in key.entries[1:] if e in side)
    which = "bad" if side is sp.bad else "good"
    return f"{name}: only in the {which} cell" + (f" ({params})" if params else "")


def _show(name: str, value: Any) -> str:
    if name == "slub_debug":
        return "off" if value is None else "on" if value == "" else str(value)
    if value is None:
        return "(default)" if name.startswith(WORKLOAD) else "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)
