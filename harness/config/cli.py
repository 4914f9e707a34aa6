"""`kharness expand CONFIG`: the cells a config expands to, without running them.

The table shows each cell's id and the axes that differ between cells; the
axes every cell shares are printed once above it. `--format json` gives
everything (ids, slugs, all axes, repeat, timeouts, workload params,
expectations) for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from harness.config.load import Config, load
from harness.config.settings import AXES
from harness.errors import EXIT_OK
from harness.model import Cell


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", help="config file, e.g. configs/quick.yaml")
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table (default; a rich table on a terminal, plain text otherwise) or json",
    )


def main(args: argparse.Namespace) -> int:
    config = load(args.config)
    if args.format == "json":
        print(json.dumps(_json(config), indent=2))
    elif sys.stdout.isatty():
        _rich_table(config)
    else:
        print(_plain_table(config))
    return EXIT_OK


def _json(config: Config) -> dict[str, Any]:
    return {
        "name": config.name,
        "description": config.description,
        "path": str(config.path),
        "sha256": config.sha256,
        "count": len(config.cells),
        "boots": _boots(config),
        "cells": [_cell_json(c) for c in config.cells],
    }


def _cell_json(cell: Cell) -> dict[str, Any]:
    return {
        "id": cell.id,
        "slug": cell.slug,
        "axes": dict(cell.axes),
        "repeat": cell.repeat,
        "timeouts": asdict(cell.timeouts),
        "workloads": [{"name": w.name, "params": dict(w.params)} for w in cell.workloads],
        "expectations": [e.name for e in cell.expectations],
    }


def _boots(config: Config) -> int:
    return sum(c.repeat for c in config.cells)


def _columns(config: Config) -> tuple[list[str], dict[str, Any]]:
    """(axes that differ between cells, axes every cell shares -> value)."""
    keys = ["kernel", "arch", *(k for k in AXES if k != "kernel")]
    varied = [k for k in keys if len({_text(k, dict(c.axes)[k]) for c in config.cells}) > 1]
    common = {k: dict(config.cells[0].axes)[k] for k in keys if k not in varied}
    if len({c.repeat for c in config.cells}) > 1:
        varied.append("repeat")
    else:
        common["repeat"] = config.cells[0].repeat
    return varied, common


def _row(cell: Cell, varied: list[str]) -> list[str]:
    values = {**dict(cell.axes), "repeat": cell.repeat}
    return [cell.id, *(_text(k, values[k]) for k in varied)]


def _text(key: str, value: Any) -> str:
    """An axis value as a person reads it (slub_debug "" is the plain, all-checks form)."""
    if key == "slub_debug":
        return "off" if value is None else value or "all"
    if isinstance(value, bool):
        return json.dumps(value)
    return str(value) if value != "" else "(none)"


def _summary(config: Config, common: dict[str, Any]) -> tuple[str, str]:
    head = f"{config.name}: {len(config.cells)} cells, {_boots(config)} boots"
    return head, "same in every cell: " + " ".join(f"{k}={_text(k, v)}" for k, v in common.items())


def _plain_table(config: Config) -> str:
    varied, common = _columns(config)
    rows = [["id", *varied], *(_row(c, varied) for c in config.cells)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([*_summary(config, common), "", *lines])


def _rich_table(config: Config) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    varied, common = _columns(config)
    head, shared = _summary(config, common)
    table = Table(
        title=Text(head), caption=Text(shared), title_justify="left", caption_justify="left"
    )
    for column in ["id", *varied]:
        table.add_column(column, no_wrap=column == "id")
    for cell in config.cells:  # Text: values are data, never rich markup
        table.add_row(*(Text(v) for v in _row(cell, varied)))
    Console().print(table)
