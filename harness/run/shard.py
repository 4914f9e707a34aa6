"""Splitting a config's cells over N CI jobs: `--shard K/N`.

The rule, so any job can work out its share alone with no coordinator:
cells are taken in order of their ids (stable across machines and YAML
edits that do not change a cell), heaviest first (`repeat` = boots), and
each goes to the shard with the fewest boots so far, the lowest K on a tie.
With equal repeats this is round-robin over the sorted ids, so shard sizes
differ by at most one cell. Every cell lands in exactly one shard, and all
repetitions of a cell stay together (one host: comparable noise).

The assignment depends on the whole set of cells, so the shards of one run
must use the same config: merge checks the config's sha256 to be sure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import UsageError
from harness.model import Cell

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 1000


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, both counted from 1 as CI systems do."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


def parse(text: str) -> Shard:
    """`K/N` with 1 <= K <= N; UsageError says what a good one looks like."""
    m = _SPEC.match(text)
    if not m:
        raise UsageError(f"--shard {text!r} is not K/N", "e.g. --shard 2/4 (the second of four shards)")
    index, count = int(m.group(1)), int(m.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise UsageError(f"--shard {text}: N must be 1..{MAX_SHARDS}", "e.g. --shard 1/4 (the first of four shards)")
    if not 1 <= index <= count:
        raise UsageError(f"--shard {text}: K must be 1..{count}", "shards are counted from 1, as CI_NODE_INDEX is")
    return Shard(index, count)


def assign(cells: tuple[Cell, ...] | list[Cell], count: int) -> list[list[Cell]]:
    """All shards at once: shard K is element K-1; each list keeps config order."""
    load = [0] * count
    chosen: dict[str, int] = {}
    for cell in sorted(cells, key=lambda c: (-c.repeat, c.id)):
        k = min(range(count), key=lambda i: (load[i], i))
        chosen[cell.id] = k
        load[k] += cell.repeat
    shards: list[list[Cell]] = [[] for _ in range(count)]
    for cell in cells:
        shards[chosen[cell.id]].append(cell)
    return shards


def select(cells: tuple[Cell, ...], shard: Shard | None) -> tuple[Cell, ...]:
    """The cells shard `shard` runs, in config order (all of them for None)."""
    if shard is None:
        return cells
    return tuple(assign(cells, shard.count)[shard.index - 1])
