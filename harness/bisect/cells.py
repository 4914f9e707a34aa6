"""Cells for check and bisect: picked from a config, or built from settings.

A cell that check or bisect makes up (a candidate of the bisection, a
config's cell with the kernel under test) is written as a one-cell config
file and read back with the config loader. So it is validated exactly like
a cell a user writes (an impossible combination, such as dma_coherent:
false on x86_64, is refused the same way), it gets the id that cell would
have in any run, and the file stays beside its results: `kharness run` on
it repeats that step by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import atomic
from harness.config.kernels import kernel_doc
from harness.config.load import Config, load
from harness.document import did_you_mean
from harness.errors import UsageError
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.model import Cell, Expectation, KernelSource, Timeouts
from harness.run import expect

BOOT = "boot"  # expectations on figures taken after boot apply to every cell


@dataclass(frozen=True)
class Origin:
    """What candidate cells need from the config(s) they come from."""

    kernels: Mapping[str, KernelSource]  # declared (non-default) kernels by name
    workload_dirs: tuple[Path, ...]
    expectations: tuple[Expectation, ...]  # attached to a candidate where they apply


def origin(configs: Iterable[Config], extra: Iterable[KernelSource] = ()) -> Origin:
    """The kernels, workload folders and expectations of `configs`, merged.

    A kernel name that means two different kernels in two configs is
    refused: a candidate cell could not say which one it runs.
    """
    kernels: dict[str, KernelSource] = {}
    dirs: list[Path] = []
    exps: dict[str, Expectation] = {}
    for config in configs:
        for kernel in config.kernels:
            _add_kernel(kernels, kernel, str(config.path))
        dirs += [d for d in config.workload_dirs if d not in dirs]
        for exp in config.expectations:
            exps.setdefault(exp.name, exp)
    for kernel in extra:
        _add_kernel(kernels, kernel, "the command line")
    return Origin(kernels, tuple(dirs), tuple(exps.values()))


def _add_kernel(kernels: dict[str, KernelSource], kernel: KernelSource, where: str) -> None:
    if DEFAULT_KERNELS.get(kernel.name) == kernel:
        return
    seen = kernels.setdefault(kernel.name, kernel)
    if seen != kernel:
        raise UsageError(f"kernel {kernel.name!r} means two different kernels ({where})",
                         "give the kernels different names")


def pick(config: Config, ref: str | None) -> Cell:
    """The cell `ref` names (an id, or a slug if only one cell has it); the only cell if None."""
    cells = config.cells
    if ref is None:
        if len(cells) == 1:
            return cells[0]
        raise UsageError(f"{config.path} has {len(cells)} cells",
                         "name one by id or slug (list them with `kharness expand CONFIG`)")
    found = [c for c in cells if c.id == ref] or [c for c in cells if c.slug == ref]
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(f"{len(found)} cells of {config.path} have the slug {ref!r}",
                         f"name one by id: {', '.join(c.id for c in found)}")
    hint = did_you_mean(ref, [c.slug for c in cells] + [c.id for c in cells])
    raise UsageError(f"no cell {ref!r} in {config.path}{hint}",
                     "list the cells with `kharness expand CONFIG`")


def widest(*timeouts: Timeouts) -> Timeouts:
    """Per field the longest: a candidate mixes both cells' settings, so it gets both's time."""
    return Timeouts(*(max(getattr(t, f.name) for t in timeouts) for f in dataclasses.fields(Timeouts)))


def document(org: Origin, settings: Mapping[str, Any], name: str, repeat: int,
             timeouts: Timeouts) -> dict[str, Any]:
    """A one-cell config: the settings as its include entry, kernels and folders absolute."""
    used = settings["kernel"]
    kernels = {used: kernel_doc(org.kernels[used])} if used in org.kernels else {}
    return {
        "name": name,
        "kernels": kernels,
        "workload_dirs": [str(d) for d in org.workload_dirs],
        "defaults": {"repeat": repeat, "timeouts": dataclasses.asdict(timeouts)},
        "include": [dict(settings)],
    }


def build(org: Origin, doc: Mapping[str, Any], path: Path, comment: str = "") -> Config:
    """Write `doc` to `path` and load it: a validated config of one cell, expectations attached.

    ConfigError (exit 2) if the combination is not a valid cell.
    """
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, head + yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=None))
    config = load(path)
    cell = config.cells[0]
    exps = tuple(e for e in org.expectations if _applies(e, cell))
    return dataclasses.replace(config, cells=(dataclasses.replace(cell, expectations=exps),),
                               expectations=exps)


def _applies(exp: Expectation, cell: Cell) -> bool:
    names = {w.name for w in cell.workloads}
    return exp.workload in (None, BOOT, *names) and expect.applies(exp, cell)
