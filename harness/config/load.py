"""`load(path)`: a config file, validated in full, as a frozen Config.

Everything is checked here, before anything runs: YAML syntax, keys, types,
ranges, names of kernels and workloads, local paths, cross-setting rules and
expectations. `kharness run` calls this and gets plain values back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import workloads as workload_decls
from harness.config import expectations, matrix
from harness.config.kernels import parse_kernels
from harness.config.settings import NAME_RULE, Context, is_safe_name, safe_name
from harness.document import Node, display, items, mapping, parse, read, string
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.model import Cell, Expectation, KernelSource

VALUES = ("name", "description")  # the other top keys are sections
TOP_KEYS = (
    "name",
    "description",
    "kernels",
    "defaults",
    "workload_dirs",
    "matrix",
    "include",
    "exclude",
    "expectations",
)


@dataclass(frozen=True)
class Config:
    """A validated config and its cells, in expansion order."""

    name: str  # run name, safe as a directory name
    description: str
    path: Path  # the config file, absolute
    sha256: str  # of the file's bytes: the shards of one run must agree on it
    cells: tuple[Cell, ...]
    expectations: tuple[Expectation, ...]
    kernels: tuple[KernelSource, ...]  # those the cells use, in order of first use
    workload_dirs: tuple[Path, ...]  # absolute, searched before guest_scripts/
    document: Mapping[str, Any]  # the YAML as written, as plain JSON-able data
    declared_kernels: tuple[KernelSource, ...] = ()  # every kernels: entry, used by a cell or not

    def to_json(self) -> dict[str, Any]:
        """The config as run.json records it: as written, and as resolved."""
        return {
            "name": self.name,
            "description": self.description,
            "path": str(self.path),
            "sha256": self.sha256,
            "document": self.document,
            "kernels": {k.name: _jsonable(asdict(k)) for k in self.kernels},
            "workload_dirs": [str(p) for p in self.workload_dirs],
            "cells": [c.id for c in self.cells],
        }


def load(path: str | os.PathLike[str]) -> Config:
    """Read, validate and expand the config at `path` (ConfigError: exit 2)."""
    shown = display(os.fspath(path))
    file = Path(path)
    data = read(file, shown)
    top = parse(data, shown)
    if not isinstance(top.value, dict):
        raise top.error(
            "a config is a mapping of keys (name:, matrix:, ...)", "start from configs/quick.yaml"
        )
    # A section left empty (`include:` with its entries commented out) is absent.
    root = {k: v for k, v in mapping(top, TOP_KEYS).items() if v.value is not None or k in VALUES}
    name = _name(root.get("name"), file, top)
    description = _description(root.get("description"))
    # Relative paths are relative to the config as named (a symlinked config
    # sits beside its build tree), so no symlink resolution here.
    base = Path(os.path.abspath(file)).parent
    ctx = Context(
        parse_kernels(root.get("kernels"), base), _workload_dirs(root.get("workload_dirs"), base)
    )
    drafts = matrix.expand(root, top, ctx)
    rules = expectations.parse(root.get("expectations"), ctx)
    judged = expectations.attach(rules, drafts)
    cells = _with_build_devices(tuple(_cell(d, judged[d.id]) for d in drafts), ctx.workload_dirs)
    return Config(
        name=name,
        description=description,
        path=base / file.name,
        sha256=hashlib.sha256(data).hexdigest(),
        cells=cells,
        expectations=tuple(e for e, _ in rules),
        kernels=tuple({c.kernel.name: c.kernel for c in cells}.values()),
        workload_dirs=ctx.workload_dirs,
        document=top.plain(),
        declared_kernels=tuple(k for name, k in ctx.kernels.items() if name not in DEFAULT_KERNELS),
    )


def expand(path: str | os.PathLike[str]) -> tuple[Cell, ...]:
    """The cells of the config at `path`."""
    return load(path).cells


def _cell(draft: matrix.Draft, judged: tuple[Expectation, ...]) -> Cell:
    s = draft.settings
    return Cell(
        id=draft.id,
        slug=draft.slug,
        axes=draft.axes,
        kernel=draft.kernel,
        memory_mib=s["memory"],
        cpus=s["cpus"],
        swiotlb=s["swiotlb"],
        dma_coherent=s["dma_coherent"],
        iommu_platform=s["iommu_platform"],
        iommu=s["iommu"],
        slub_debug=s["slub_debug"],
        cmdline=s["cmdline"],
        workloads=s["workloads"],
        repeat=s["repeat"],
        timeouts=s["timeouts"],
        expectations=judged,
    )


def _with_build_devices(cells: tuple[Cell, ...], dirs: tuple[Path, ...]) -> tuple[Cell, ...]:
    """A source kernel is built for every device its cells' workloads use (one build, all cells)."""
    kinds: dict[str, list[str]] = {}
    for cell in cells:
        if cell.kernel.source is not None:
            found = kinds.setdefault(cell.kernel.name, [])
            for run in cell.workloads:
                found += [d.kind for d in workload_decls.load(run.name, dirs).devices if d.kind not in found]
    if not kinds:
        return cells

    def rebuilt(cell: Cell) -> Cell:
        spec = cell.kernel.source
        if spec is None:
            return cell
        spec = dataclasses.replace(spec, devices=tuple(sorted(kinds[cell.kernel.name])))
        return dataclasses.replace(cell, kernel=dataclasses.replace(cell.kernel, source=spec))

    return tuple(rebuilt(c) for c in cells)


def _name(node: Node | None, file: Path, top: Node) -> str:
    """name:, or the file's stem when it is a safe name."""
    if node is not None:
        return safe_name(node, "run name")
    if is_safe_name(file.stem):
        return file.stem
    raise top.error(
        f"the file name {file.stem!r} is not a safe run name", f"add name: ({NAME_RULE})"
    )


def _description(node: Node | None) -> str:
    return string(node, "what this run is for") if node is not None else ""


def _workload_dirs(node: Node | None, base: Path) -> tuple[Path, ...]:
    dirs: list[Path] = []
    for item in items(node, "[../my-workloads]") if node is not None else []:
        text = string(item, "../my-workloads")
        path = (base / Path(text).expanduser()).resolve()
        if not path.is_dir():
            raise item.error(
                f"workload folder {path} is not a directory",
                "fix the path (relative to the config file)",
            )
        dirs.append(path)
    return tuple(dirs)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
