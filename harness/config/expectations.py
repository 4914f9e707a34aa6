"""The `expectations:` section: rules judged per cell that become JUnit testcases.

An expectation that applies to no cell is refused: it would never be judged,
and a rule that silently never runs reads like a rule that passes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from harness.config.matrix import Draft, Pattern, matches, parse_pattern
from harness.config.settings import Context
from harness.document import Node, items, mapping, number, string
from harness.model import Expectation

KEYS = ("name", "metric", "op", "value", "workload", "when")
OPS = ("==", "!=", "<", "<=", ">", ">=")  # Expectation.op
# Dotted, stable metric names: slab.minalign, swiotlb.bounces, slab.kmalloc-8.bytes.
METRIC_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_-]+)+")
BOOT = "boot"  # figures taken after boot, before any workload
NAME_MAX = 100
EXAMPLE = "{name: no-bounces, metric: swiotlb.bounces, op: '==', value: 0}"


def parse(node: Node | None, ctx: Context) -> list[tuple[Expectation, Node]]:
    """Every expectation with its node; names are unique (they name testcases)."""
    out: list[tuple[Expectation, Node]] = []
    for entry in items(node, f"[{EXAMPLE}]") if node is not None else []:
        exp = _expectation(entry, ctx)
        if any(exp.name == seen.name for seen, _ in out):
            raise entry.error(
                f"two expectations are named {exp.name!r}", "give each a name of its own"
            )
        out.append((exp, entry))
    return out


def _expectation(node: Node, ctx: Context) -> Expectation:
    keys = mapping(node, KEYS, ("metric", "op", "value"), EXAMPLE)
    metric = string(keys["metric"], "swiotlb.bounces")
    if not METRIC_RE.fullmatch(metric):
        raise keys["metric"].error(
            f"metric {metric!r} is not a metric name", "dotted lower case, e.g. swiotlb.bounces"
        )
    op = keys["op"].value
    if op not in OPS:
        raise keys["op"].error(
            f"op {op!r} is not a comparison", f'quote one of {" ".join(OPS)}, e.g. op: ">="'
        )
    value = _value(keys["value"])
    workload = _workload(keys["workload"], ctx) if "workload" in keys else None
    when: Pattern = parse_pattern(keys["when"], ctx, "{arch: arm64}") if "when" in keys else {}
    name = _name(keys["name"]) if "name" in keys else f"{metric} {op} {value:g}"
    return Expectation(
        name=name,
        metric=metric,
        op=cast(Any, op),
        value=value,
        workload=workload,
        when=tuple(sorted(when.items())),
    )


def _value(node: Node) -> float:
    """A number; true and false count as 1 and 0 (swiotlb.present == true)."""
    return float(node.value) if isinstance(node.value, bool) else number(node, "0")


def _workload(node: Node, ctx: Context) -> str:
    name = string(node, "dd-direct")
    if name != BOOT:
        ctx.workload(name, node)
    return name


def _name(node: Node) -> str:
    name = string(node, "no-bounces-coherent")
    if not name.strip() or len(name) > NAME_MAX or not name.isprintable():
        raise node.error(
            f"expectation name {name!r} is not usable",
            f"one line of 1..{NAME_MAX} printable characters",
        )
    return name


def applies(exp: Expectation, draft: Draft) -> bool:
    """Does `exp` judge something in this cell? (`boot` figures exist in every cell.)"""
    names = {run.name for run in draft.settings["workloads"]}
    if exp.workload not in (None, BOOT, *names):
        return False
    return matches(dict(exp.when), dict(draft.axes))


def attach(
    expectations: list[tuple[Expectation, Node]], drafts: Sequence[Draft]
) -> dict[str, tuple[Expectation, ...]]:
    """Cell id -> the expectations that judge it; refuse those that judge nothing."""
    for exp, node in expectations:
        if not any(applies(exp, d) for d in drafts):
            raise node.error(
                f"expectation {exp.name!r} applies to no cell",
                "check its when: and workload: against `kharness expand`",
            )
    return {d.id: tuple(e for e, _ in expectations if applies(e, d)) for d in drafts}
