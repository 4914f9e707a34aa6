"""Cells as key sets, and cells rebuilt from keys through the config loader (same ids)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from harness.bisect import cells, keys
from harness.config.load import Config, load
from harness.config.settings import AXES
from harness.errors import ConfigError, UsageError
from harness.model import Cell, KernelSource
from tests.fakes import kernels as fake

CONFIG = """
name: keys
kernels:
  mine: {image: Image, arch: arm64}
workload_dirs: [wl]
defaults:
  kernel: trixie-arm64
  iommu_platform: true
  workloads: [{name: dd-direct, params: {count: 200}}]
  timeouts: {boot: 100}
include:
  - {}                                                      # good
  - {dma_coherent: false, memory: 2G, slub_debug: true}     # bad
  - {kernel: mine, cpus: 1, swiotlb: noforce, cmdline: [loglevel=8, quiet, console=ttyAMA0, console=hvc0],
     workloads: [idle, {name: dd-direct, params: {count: 300, block_size: 512}}, mine],
     slub_debug: "U,kmalloc-*", iommu_platform: false, timeouts: {workload: 900}}
  - {kernel: trixie-x86_64}
expectations:
  - {name: bounce, metric: swiotlb.bounces, op: ">", value: 0, workload: dd-direct, when: {dma_coherent: false}}
  - {name: minalign, metric: slab.minalign, op: "==", value: 8, workload: idle}
  - {name: booted, metric: slab.minalign, op: ">", value: 0, workload: boot}
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "Image").write_bytes(fake.arm64_image())
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "mine.yaml").write_text("script: mine.sh\nparams: {n: 1}\n")
    (tmp_path / "wl" / "mine.sh").write_text("true\n")
    (tmp_path / "c.yaml").write_text(CONFIG)
    return load(tmp_path / "c.yaml")


def rebuild(config: Config, sp: keys.Space, chosen: tuple[str, ...], path: Path) -> Cell:
    org = cells.origin([config])
    doc = cells.document(org, sp.settings(keys.apply(sp, chosen)), "t", 1, config.cells[0].timeouts)
    return cells.build(org, doc, path).cells[0]


def test_every_axis_is_a_key() -> None:
    """A new axis must be seen by bisect: scalar axes generically, list axes by hand here."""
    assert set(keys.SCALAR_AXES) | set(keys.LIST_AXES) == set(AXES)


def test_keys_of_two_cells(config: Config) -> None:
    good, bad = config.cells[0], config.cells[1]
    sp = keys.space(good, bad)
    assert [k.name for k in sp.keys] == ["memory", "dma_coherent", "slub_debug"]
    assert [keys.describe(sp, k.name) for k in sp.keys] == [
        "memory: 1024 -> 2048", "dma_coherent: true -> false", "slub_debug: off -> on"]


def test_cmdline_parameters_and_workloads_are_keys_of_their_own(config: Config) -> None:
    sp = keys.space(config.cells[0], config.cells[2])
    names = [k.name for k in sp.keys]
    assert names == ["kernel", "cpus", "swiotlb", "iommu_platform", "slub_debug", "cmdline:loglevel",
                     "cmdline:quiet", "cmdline:console", "workload:idle", "workload:dd-direct.block_size",
                     "workload:dd-direct.count", "workload:mine"]
    assert sp.bad["cmdline:console"] == ["console=ttyAMA0", "console=hvc0"]  # one parameter, both words
    assert keys.describe(sp, "workload:idle") == "workload:idle: only in the bad cell"
    assert keys.describe(sp, "workload:dd-direct.block_size") == "workload:dd-direct.block_size: (default) -> 512"
    assert keys.describe(sp, "slub_debug") == "slub_debug: off -> U,kmalloc-*"


def test_a_workload_on_one_side_carries_its_parameters(config: Config) -> None:
    sp = keys.space(config.cells[2], config.cells[0])
    assert sp.key("workload:idle").entries == ("workload:idle",)
    flat = keys.apply(sp, ["workload:dd-direct.count"])
    assert flat["workload:dd-direct.count"] == 200 and flat["workload:dd-direct.block_size"] == 512


@pytest.mark.parametrize(("g", "b"), list(itertools.permutations(range(3), 2)))
def test_both_ends_rebuild_to_the_same_cell_ids(config: Config, tmp_path: Path, g: int, b: int) -> None:
    good, bad = config.cells[g], config.cells[b]
    sp = keys.space(good, bad)
    every = tuple(k.name for k in sp.keys)
    assert rebuild(config, sp, (), tmp_path / "g.yaml").id == good.id
    assert rebuild(config, sp, every, tmp_path / "b.yaml").id == bad.id


def test_every_subset_of_keys_is_a_cell_or_a_config_error(config: Config, tmp_path: Path) -> None:
    sp = keys.space(config.cells[0], config.cells[2])
    for n in (1, 2):
        for chosen in itertools.combinations([k.name for k in sp.keys], n):
            cell = rebuild(config, sp, chosen, tmp_path / "s.yaml")
            assert cell.kernel.name == ("mine" if "kernel" in chosen else "trixie-arm64")


def test_an_impossible_combination_is_refused_like_a_users_cell(config: Config, tmp_path: Path) -> None:
    sp = keys.space(config.cells[3], config.cells[1])  # x86_64 -> arm64 non-coherent
    with pytest.raises(ConfigError, match="dma_coherent: false needs an arm64 kernel"):
        rebuild(config, sp, ("dma_coherent",), tmp_path / "x.yaml")


def test_expectations_attach_where_they_apply(config: Config, tmp_path: Path) -> None:
    sp = keys.space(config.cells[0], config.cells[1])
    good = rebuild(config, sp, (), tmp_path / "g.yaml")
    nc = rebuild(config, sp, ("dma_coherent",), tmp_path / "nc.yaml")
    assert [e.name for e in good.expectations] == ["booted"]  # no idle workload, coherent
    assert [e.name for e in nc.expectations] == ["bounce", "booted"]


def test_candidate_config_file_is_kept_and_loads(config: Config, tmp_path: Path) -> None:
    sp = keys.space(config.cells[0], config.cells[2])
    rebuild(config, sp, ("kernel",), tmp_path / "k.yaml")
    again = load(tmp_path / "k.yaml")
    assert again.cells[0].kernel.image == config.cells[2].kernel.image
    assert again.workload_dirs == config.workload_dirs


def test_cell_settings_load_back_to_the_same_cell(config: Config, tmp_path: Path) -> None:
    for cell in config.cells:
        org = cells.origin([config])
        doc = cells.document(org, keys.cell_settings(cell), "t", 1, cell.timeouts)
        assert cells.build(org, doc, tmp_path / "c2.yaml").cells[0].id == cell.id


def test_same_cells_do_not_differ(config: Config) -> None:
    with pytest.raises(UsageError, match="do not differ"):
        keys.space(config.cells[0], config.cells[0])


def test_common_items_in_another_order_are_refused() -> None:
    with pytest.raises(UsageError, match="different orders"):
        keys.merge_order(["a", "b"], ["b", "a"], "workloads")


@pytest.mark.parametrize(("good", "bad", "merged"), [
    (["A", "B", "Y"], ["A", "X", "B"], ("A", "X", "B", "Y")),
    (["A"], ["X", "A"], ("X", "A")),
    (["A", "B"], ["A", "X", "Y", "B"], ("A", "X", "Y", "B")),
    (["A", "G", "B"], ["A", "X", "B"], ("A", "X", "G", "B")),
])
def test_merge_order_keeps_both_sides_orders(good: list[str], bad: list[str], merged: tuple[str, ...]) -> None:
    out = keys.merge_order(good, bad, "x")
    assert out == merged
    for side in (good, bad):
        assert [i for i in out if i in side] == side


def test_pick_by_id_slug_or_only_cell(config: Config) -> None:
    cell = config.cells[1]
    assert cells.pick(config, cell.id) == cell and cells.pick(config, cell.slug) == cell
    with pytest.raises(UsageError, match="4 cells"):
        cells.pick(config, None)
    with pytest.raises(UsageError, match=r"no cell 'trixie-arm64\.iommx' .*did you mean"):
        cells.pick(config, "trixie-arm64.iommx")


def test_a_kernel_name_meaning_two_kernels_is_refused(config: Config, tmp_path: Path) -> None:
    other = KernelSource("mine", "arm64", image=tmp_path / "Other")
    with pytest.raises(UsageError, match="two different kernels"):
        cells.origin([config], [other])
