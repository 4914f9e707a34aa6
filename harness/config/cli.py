"""`kharness expand CONFIG`: the cells a config expands to, without running them.

The table shows each cell's id and the axes that differ between cells; the
axes every cell shares are printed once above it. `--format json` gives
everything (ids, slugs, all axes, repeat, timeouts, workload params,
expectations) for scripts. `--shard K/N` (harness/run/expand.py, since
shards are the run's) lists one shard's cells through `show`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import data_dir
from harness.config.load import Config, load
from harness.config.settings import AXES
from harness.errors import EXIT_OK
from harness.formats import terminal
from harness.model import Cell

PIPE_WIDTH = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG", type=Path,
                        help="config file, e.g. configs/quick.yaml (a shipped one also by name: quick)")
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="table (default; a rich table on a terminal, plain text otherwise) or json",
    )


def locate(given: str | Path) -> Path:
    """The config file named: the path as given, else one of the configs kharness ships.

    `configs/quick.yaml`, `quick.yaml` and `quick` all name the shipped one when
    no such file is here, so an installed kharness (no checkout to stand in)
    runs its reference configs from anywhere.
    """
    path = Path(given)
    if path.exists() or path.parent not in (Path(), Path("configs")):
        return path
    shipped = data_dir("configs")
    for name in (path.name, f"{path.name}.yaml"):
        if (shipped / name).is_file():
            return shipped / name
    return path


def main(args: argparse.Namespace) -> int:
    config = load(locate(args.config))
    show(config, config.cells, args.format, getattr(args, "color", "auto"))
    return EXIT_OK


def show(config: Config, cells: Sequence[Cell], fmt: str, color: str = "auto", part: str = "") -> None:
    """Print `cells` of `config` (all of them, or one shard's, named by `part`)."""
    cells = tuple(cells)
    if fmt == "json":
        print(json.dumps(_json(config, cells, part), indent=2))
        return
    term = terminal.of(sys.stdout, color, pipe_width=PIPE_WIDTH)
    if term.tty:
        _rich_table(config, cells, part, term)
    elif cells:
        print(_plain_table(config, cells, part))
    else:
        print(_summary(config, cells, part, {})[0])


def _json(config: Config, cells: tuple[Cell, ...], part: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": config.name,
        "description": config.description,
        "path": str(config.path),
        "sha256": config.sha256,
        "count": len(cells),
        "boots": _boots(cells),
        "cells": [_cell_json(c) for c in cells],
    }
    if part:
        doc["shard"] = part
        doc["config_count"] = len(config.cells)
    return doc


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


def _boots(cells: tuple[Cell, ...]) -> int:
    return sum(c.repeat for c in cells)


def _columns(cells: tuple[Cell, ...]) -> tuple[list[str], dict[str, Any]]:
    """(axes that differ between cells, axes every cell shares -> value)."""
    keys = ["kernel", "arch", *(k for k in AXES if k != "kernel")]
    varied = [k for k in keys if len({_text(k, dict(c.axes)[k]) for c in cells}) > 1]
    common = {k: dict(cells[0].axes)[k] for k in keys if k not in varied}
    if len({c.repeat for c in cells}) > 1:
        varied.append("repeat")
    else:
        common["repeat"] = cells[0].repeat
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


def _summary(config: Config, cells: tuple[Cell, ...], part: str, common: dict[str, Any]) -> tuple[str, str]:
    of = f" (shard {part} of {len(config.cells)} cells)" if part else ""
    head = f"{config.name}: {len(cells)} cells, {_boots(cells)} boots{of}"
    return head, "same in every cell: " + " ".join(f"{k}={_text(k, v)}" for k, v in common.items())


def _plain_table(config: Config, cells: tuple[Cell, ...], part: str) -> str:
    varied, common = _columns(cells)
    rows = [["id", *varied], *(_row(c, varied) for c in cells)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([*_summary(config, cells, part, common), "", *lines])


def _rich_table(config: Config, cells: tuple[Cell, ...], part: str, term: terminal.Terminal) -> None:
    from rich.text import Text

    varied, common = _columns(cells) if cells else ([], {})
    head, shared = _summary(config, cells, part, common)
    table = term.table(
        title=Text(head), caption=Text(shared), title_justify="left", caption_justify="left"
    )
    for column in ["id", *varied]:
        table.add_column(column, no_wrap=column == "id")
    for cell in cells:  # Text: values are data, never rich markup
        table.add_row(*(Text(v) for v in _row(cell, varied)))
    term.print(sys.stdout, table)
