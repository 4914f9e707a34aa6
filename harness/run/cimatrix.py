"""`kharness ci-matrix CONFIG --shards N --format github|gitlab`: the CI system's job matrix.

Each CI job then runs `kharness run CONFIG --shard K/N`; which cells that
is follows from the config alone (harness/run/shard.py), so the matrix only
carries K/N, plus the number of cells and boots per shard for the job list.
N is capped at the number of cells: an empty shard is a wasted runner.

- github: one line of JSON for `strategy.matrix: ${{ fromJSON(...) }}`
  (print it into $GITHUB_OUTPUT from a planning job);
- gitlab: the `parallel: matrix:` block of a job, in YAML, each job getting
  $KHARNESS_SHARD (paste it, or generate a child pipeline with it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.config.load import load
from harness.errors import UsageError
from harness.model import Cell
from harness.run import shard

GITLAB_VARIABLE = "KHARNESS_SHARD"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="the YAML config the shards will run")
    p.add_argument("--shards", type=int, required=True, metavar="N", help="how many CI jobs to split the cells over")
    p.add_argument("--format", choices=("github", "gitlab"), required=True, help="the CI system")


def main(args: argparse.Namespace) -> int:
    cells = load(args.config).cells
    count = shard_count(len(cells), args.shards)
    if count < args.shards:
        print(f"kharness: {len(cells)} cells: {count} shards instead of {args.shards}", file=sys.stderr)
    print(render(cells, count, args.format), end="")
    return 0


def shard_count(cells: int, asked: int) -> int:
    if not 1 <= asked <= shard.MAX_SHARDS:
        raise UsageError(f"--shards {asked}: give 1..{shard.MAX_SHARDS}")
    return max(1, min(asked, cells))


def entries(cells: tuple[Cell, ...], count: int) -> list[dict[str, Any]]:
    return [{"shard": f"{k}/{count}", "index": k, "cells": len(part), "boots": sum(c.repeat for c in part)}
            for k, part in enumerate(shard.assign(cells, count), start=1)]


def render(cells: tuple[Cell, ...], count: int, fmt: str) -> str:
    rows = entries(cells, count)
    if fmt == "github":
        return json.dumps({"include": rows}, separators=(",", ":")) + "\n"
    block = {"parallel": {"matrix": [{GITLAB_VARIABLE: [r["shard"] for r in rows]}]}}
    return yaml.safe_dump(block, sort_keys=False, default_flow_style=None)
