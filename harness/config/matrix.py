"""Expansion: defaults, matrix, exclude and include into cells.

- Each cell starts from the built-in defaults, then `defaults:`, then its
  matrix combination (or its include entry); a later layer wins per key
  (timeouts merge per field).
- `matrix:` is the cartesian product of its axes, in the order written: the
  first axis varies slowest. That order, then the include entries in order,
  is the order of the cells (deterministic; `--shard` splits by id anyway).
- `exclude:` drops matrix cells that match every pair of an entry. It does
  not apply to include entries, so a slice can be excluded and one cell of
  it added back.
- `include:` adds one cell per entry. An entry that yields a cell already
  listed replaces it in place (e.g. to give one cell `repeat: 5`).
- Cross-setting rules are checked after exclude, so an exclude entry can take
  out the impossible corner of a matrix (dma_coherent: false on x86_64).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness import arches, devices
from harness.config import identity
from harness.config.settings import (
    AXES,
    BUILTIN,
    MATCH_KEYS,
    MATCH_PARSERS,
    PARSERS,
    RUN_SETTINGS,
    SETTINGS,
    Context,
    timeouts,
)
from harness.document import Node, items, mapping
from harness.model import KernelSource

log = logging.getLogger(__name__)

MAX_CELLS = 10_000
SLOT_KIB = 2
Layer = dict[str, tuple[Any, Node]]  # setting -> (value, the node that gave it)
Pattern = dict[str, Any]  # axis -> axis value (exclude entries, expectations' when)
LIST_AXES = ("cmdline", "workloads")
MATRIX_EXAMPLE = "kernel: [trixie-arm64, bookworm-arm64]"
EXCLUDE_EXAMPLE = "{kernel: bookworm-x86_64, swiotlb: noforce}"
INCLUDE_EXAMPLE = "{kernel: trixie-arm64, swiotlb: force}"


@dataclass(frozen=True)
class Draft:
    """A cell before its expectations are attached."""

    id: str
    slug: str
    kernel: KernelSource
    settings: dict[str, Any]  # every setting, final
    axes: tuple[tuple[str, Any], ...]


def parse_layer(node: Node, ctx: Context) -> Layer:
    keys = mapping(node, SETTINGS, example=INCLUDE_EXAMPLE)
    return {key: (PARSERS[key](child, ctx), child) for key, child in keys.items()}


def parse_matrix(node: Node, ctx: Context) -> list[tuple[str, list[tuple[Any, Node]]]]:
    """Axes in the order written, each a list of distinct (value, node)."""
    for key, child in node.value.items() if isinstance(node.value, dict) else ():
        if key in RUN_SETTINGS:
            raise child.error(
                f"{key} is not an axis: it says how a cell runs, not what it is",
                f"set {key}: in defaults: or in an include entry",
            )
    keys = mapping(node, AXES, example=MATRIX_EXAMPLE)
    axes: list[tuple[str, list[tuple[Any, Node]]]] = []
    for axis, values_node in keys.items():
        values = items(values_node, f"{axis}: [..., ...] (one cell per value)")
        if not values:
            raise values_node.error(
                f"matrix axis {axis} has no values", "give at least one, or remove the axis"
            )
        parsed: list[tuple[Any, Node]] = []
        for child in values:
            if axis in LIST_AXES and not isinstance(child.value, list):
                raise child.error(
                    f"each matrix.{axis} value is a list",
                    f"write e.g. {axis}: [[], [{child.value}]]",
                )
            value = PARSERS[axis](child, ctx)
            if any(value == seen for seen, _ in parsed):
                raise child.error(f"{child.value!r} appears twice in matrix.{axis}", "remove one")
            parsed.append((value, child))
        axes.append((axis, parsed))
    return axes


def parse_pattern(node: Node, ctx: Context, example: str) -> Pattern:
    """An exclude entry or a `when`: axis -> axis value, matched with ==."""
    keys = mapping(node, MATCH_KEYS, example=example)
    if not keys:
        raise node.error(
            "an empty pattern matches every cell", f"give axis: value pairs, e.g. {example}"
        )
    return {
        key: identity.axis_value(key, MATCH_PARSERS[key](child, ctx)) for key, child in keys.items()
    }


def matches(pattern: Pattern, axes: dict[str, Any]) -> bool:
    return all(axes[key] == value for key, value in pattern.items())


def expand(root: dict[str, Node], top: Node, ctx: Context) -> list[Draft]:
    """The config's cells in order; ConfigError at the first that cannot be."""
    defaults = parse_layer(root["defaults"], ctx) if "defaults" in root else {}
    matrix = root.get("matrix")
    axes = parse_matrix(matrix, ctx) if matrix is not None else []
    exclude = [
        (parse_pattern(e, ctx, EXCLUDE_EXAMPLE), e)
        for e in _entries(root, "exclude", EXCLUDE_EXAMPLE)
    ]
    include = [(parse_layer(e, ctx), e) for e in _entries(root, "include", INCLUDE_EXAMPLE)]
    _check_count(axes, len(include), matrix or top)
    cells = _matrix_cells(defaults, axes, exclude, matrix or top, ctx)
    for layer, entry in include:
        layers = [defaults, layer]
        kernel, settings, nodes = _settings(layers, entry, ctx)
        draft = _draft(layers, kernel, settings, nodes, identity.axes(kernel, settings), ctx)
        cells[draft.id] = draft  # an existing id keeps its place
    if not cells:
        raise _no_cells(root, top, bool(axes))
    return list(cells.values())


def _entries(root: dict[str, Node], key: str, example: str) -> list[Node]:
    return items(root[key], f"[{example}]") if key in root else []


def _matrix_cells(
    defaults: Layer,
    axes: list[tuple[str, list[tuple[Any, Node]]]],
    exclude: list[tuple[Pattern, Node]],
    origin: Node,
    ctx: Context,
) -> dict[str, Draft]:
    cells: dict[str, Draft] = {}
    used = [False] * len(exclude)
    for layer in _combinations(axes):
        layers = [defaults, layer]
        kernel, settings, nodes = _settings(layers, origin, ctx)
        cell_axes = identity.axes(kernel, settings)
        hit = next(
            (i for i, (pattern, _) in enumerate(exclude) if matches(pattern, dict(cell_axes))),
            None,
        )
        if hit is not None:
            used[hit] = True
            continue
        draft = _draft(layers, kernel, settings, nodes, cell_axes, ctx)
        cells[draft.id] = draft
    for (_, node), hit in zip(exclude, used, strict=True):
        if not hit:
            log.warning("%s: exclude entry matches no cell of the matrix", node.where)
    return cells


def _combinations(axes: list[tuple[str, list[tuple[Any, Node]]]]) -> Iterator[Layer]:
    if not axes:
        return
    names = [axis for axis, _ in axes]
    for combo in itertools.product(*(values for _, values in axes)):
        yield dict(zip(names, combo, strict=True))


def _check_count(axes: list[tuple[str, list[tuple[Any, Node]]]], includes: int, node: Node) -> None:
    product = math.prod(len(values) for _, values in axes) if axes else 0
    if product + includes > MAX_CELLS:
        raise node.error(
            f"the matrix expands to {product + includes} cells, more than {MAX_CELLS}",
            "drop axis values, or split the config into several",
        )


def _settings(
    layers: list[Layer], origin: Node, ctx: Context
) -> tuple[KernelSource, dict[str, Any], dict[str, Node]]:
    """Every axis of the cell (later layers win) and the node each came from."""
    settings: dict[str, Any] = dict(BUILTIN)
    nodes: dict[str, Node] = {}
    for layer in layers:
        for key, (value, node) in layer.items():
            if key != "timeouts":
                settings[key] = value
                nodes[key] = node
    if "kernel" not in settings:
        raise origin.error(
            "this cell has no kernel",
            "add kernel: to defaults:, to matrix: or to the include entry",
        )
    return ctx.kernels[settings["kernel"]], settings, nodes


def _draft(
    layers: list[Layer],
    kernel: KernelSource,
    settings: dict[str, Any],
    nodes: dict[str, Node],
    axes: tuple[tuple[str, Any], ...],
    ctx: Context,
) -> Draft:
    _check_combination(kernel, settings, nodes, ctx)
    settings["timeouts"] = timeouts([layer["timeouts"] for layer in layers if "timeouts" in layer])
    cell_id, slug = identity.cell_id(kernel, settings)
    return Draft(cell_id, slug, kernel, settings, axes)


def _check_combination(
    kernel: KernelSource, settings: dict[str, Any], nodes: dict[str, Node], ctx: Context
) -> None:
    """Rules across settings, reported at the setting that breaks them."""
    if settings["iommu"] != "none":
        _check_iommu(kernel, settings, nodes, ctx)
    able = [p.name for p in arches.presets().values() if p.noncoherent_dma]
    if not settings["dma_coherent"] and kernel.arch not in able:
        raise nodes["dma_coherent"].error(
            f"dma_coherent: false needs an {' or '.join(able)} kernel, and {kernel.name} is {kernel.arch} "
            "(whose DMA is always coherent)",
            f"add exclude: [{{arch: {kernel.arch}, dma_coherent: false}}]",
        )
    swiotlb = settings["swiotlb"]
    if swiotlb.isdigit() and int(swiotlb) * SLOT_KIB > settings["memory"] * 1024 // 2:
        raise nodes["swiotlb"].error(
            f"swiotlb of {swiotlb} slots is {int(swiotlb) * SLOT_KIB // 1024} MiB, "
            f"more than half of the guest's {settings['memory']} MiB",
            "give fewer slots (2 KiB each) or more memory",
        )


def _check_iommu(kernel: KernelSource, settings: dict[str, Any], nodes: dict[str, Node], ctx: Context) -> None:
    """The IOMMU must exist on the kernel's QEMU machine and translate the bus of every workload device."""
    iommu = devices.get(settings["iommu"])
    machine = arches.preset(kernel.arch).machine
    if iommu.machines and machine not in iommu.machines:
        have = [p.name for p in arches.presets().values() if p.machine in iommu.machines]
        raise nodes["iommu"].error(
            f"iommu: {iommu.name} exists on {' and '.join(have)} (QEMU {'/'.join(iommu.machines)}), "
            f"and {kernel.name} is {kernel.arch} (QEMU {machine})",
            f"add exclude: [{{arch: {kernel.arch}, iommu: {iommu.name}}}]",
        )
    where = nodes.get("workloads", nodes["iommu"])
    for run in settings["workloads"]:
        for dev in ctx.workload(run.name, where).devices:
            kind = devices.get(dev.kind)
            if kind.transport not in iommu.translates:
                raise where.error(
                    f"workload {run.name}'s {kind.name} device is on {kind.transport}, "
                    f"which iommu: {iommu.name} does not translate (only {', '.join(iommu.translates)})",
                    f"use a device on {' or '.join(iommu.translates)}, or exclude the pair",
                )


def _no_cells(root: dict[str, Node], top: Node, had_matrix: bool) -> Exception:
    if had_matrix and "exclude" in root:
        return root["exclude"].error(
            "exclude drops every cell of the matrix", "remove or narrow an exclude entry"
        )
    return top.error(
        "the config has no cells", "add matrix: (e.g. kernel: [trixie-arm64]) or include: entries"
    )
