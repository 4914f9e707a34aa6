"""--shard K/N: every cell in exactly one shard, balanced, the same on every machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.load import load
from harness.errors import UsageError
from harness.model import Cell, KernelSource
from harness.run import shard


def _cells(n: int, repeats: tuple[int, ...] = (1,)) -> tuple[Cell, ...]:
    kernel = KernelSource("k", "x86_64")
    return tuple(Cell(id=f"c{(i * 7919) % 1000:03d}-{i:08x}", slug=f"c{i}", axes=(), kernel=kernel,
                      repeat=repeats[i % len(repeats)]) for i in range(n))


@pytest.mark.parametrize("n", [0, 1, 2, 5, 8, 17, 64])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 10])
def test_shard_every_cell_exactly_once(n: int, count: int) -> None:
    cells = _cells(n)
    parts = [shard.select(cells, shard.Shard(k, count)) for k in range(1, count + 1)]
    ids = [c.id for part in parts for c in part]
    assert sorted(ids) == sorted(c.id for c in cells)
    assert len(ids) == len(set(ids))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # equal repeats: round-robin over sorted ids


def test_shard_keeps_config_order_within_a_shard() -> None:
    cells = _cells(20)
    for k in (1, 2, 3):
        part = shard.select(cells, shard.Shard(k, 3))
        positions = [cells.index(c) for c in part]
        assert positions == sorted(positions)


def test_shard_depends_on_ids_not_on_config_order() -> None:
    cells = _cells(13)
    forward = [{c.id for c in p} for p in shard.assign(cells, 4)]
    backward = [{c.id for c in p} for p in shard.assign(tuple(reversed(cells)), 4)]
    assert forward == backward


def test_shard_balances_boots_when_repeats_differ() -> None:
    cells = _cells(11, repeats=(1, 5, 2))
    parts = shard.assign(cells, 3)
    boots = [sum(c.repeat for c in p) for p in parts]
    assert max(boots) - min(boots) <= max(c.repeat for c in cells)
    assert sorted(c.id for p in parts for c in p) == sorted(c.id for c in cells)


def test_shard_of_a_real_config_partitions_its_cells(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("""
name: s
defaults: {workloads: [idle]}
matrix:
  kernel: [trixie-arm64, trixie-x86_64, bookworm-x86_64]
  swiotlb: [default, force]
  memory: [512, 1024]
""")
    cells = load(tmp_path / "c.yaml").cells
    assert len(cells) == 12
    parts = [shard.select(cells, shard.parse(f"{k}/5")) for k in range(1, 6)]
    assert sorted(c.id for p in parts for c in p) == sorted(c.id for c in cells)
    assert [len(p) for p in parts] == [3, 3, 2, 2, 2]


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/4", (2, 4)), (" 3 / 3 ", (3, 3))])
def test_shard_parse(text: str, expected: tuple[int, int]) -> None:
    s = shard.parse(text)
    assert (s.index, s.count) == expected
    assert str(s) == f"{expected[0]}/{expected[1]}"


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "2", "a/b", "1/4/2", "-1/4", "1/100000"])
def test_shard_parse_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--shard"):
        shard.parse(text)


def test_shard_none_is_every_cell() -> None:
    cells = _cells(3)
    assert shard.select(cells, None) == cells
