"""A slub_debug U boot against a normal one: compare does not judge their slab figures.

Under U every object grows (kmalloc-8 objects take 80 bytes), so a U cell
meets a normal one only when an axis is ignored; then each slab metric is
"inconclusive" with the reason, the rest are judged as always, and compare
warns on stderr.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.compare import slubdebug
from harness.compare.cli import compare_dirs
from harness.compare.load import CellSamples, Selection
from harness.compare.rules import Rules
from harness.config import identity
from tests.fakes import synth


@dataclass(frozen=True)
class Cell(synth.SynthCell):
    """A synthetic cell whose axes (None, lists, '*') need not make a readable slug."""

    @property
    def slug(self) -> str:
        return "trixie-arm64"

    @property
    def id(self) -> str:
        return f"trixie-arm64-{identity.cell_hash(dict(self.axes))}"


def cells(slub: Any, kmalloc_bytes: float, store_user: float | None = None,
          cmdline: tuple[str, ...] = ()) -> list[synth.SynthCell]:
    metrics = [synth.SynthMetric("slab.kmalloc.bytes", kmalloc_bytes, 0.001, "bytes", better="lower"),
               synth.SynthMetric("meminfo.sunreclaim", kmalloc_bytes * 3, 0.001, "bytes", better="lower"),
               synth.SynthMetric("swiotlb.bounces", 100.0, 0.001, "bounces", "counter", "lower", "fio")]
    if store_user is not None:
        metrics.append(synth.SynthMetric("slab.store_user_caches", store_user, 0.0, "caches"))
    axes = (("kernel", "trixie-arm64"), ("slub_debug", slub), ("cmdline", " ".join(cmdline)))
    return [Cell(axes, tuple(metrics))]


def runs(tmp_path: Path, base: list[synth.SynthCell], new: list[synth.SynthCell]) -> tuple[Path, Path]:
    return synth.write_run(tmp_path / "base", base), synth.write_run(tmp_path / "new", new)


def test_u_against_normal_is_not_judged_on_slab(tmp_path: Path) -> None:
    a, b = runs(tmp_path, cells(None, 3_000_000), cells("U,kmalloc-*", 4_300_000))
    (cmp,) = compare_dirs(a, [b], Selection(ignore_axes=("slub_debug",)), Rules())
    (cell,) = cmp.cells
    verdicts = {m.key: m.judgement for m in cell.metrics}
    assert verdicts["boot:slab.kmalloc.bytes"].verdict == "inconclusive"
    assert verdicts["boot:slab.kmalloc.bytes"].reason == slubdebug.REASON
    assert verdicts["boot:meminfo.sunreclaim"].verdict == "inconclusive"
    assert verdicts["fio:swiotlb.bounces"].verdict == "unchanged"  # not a slab figure: judged
    assert cmp.regressions == 0  # 43% more kmalloc is U's, not a regression
    assert slubdebug.warnings([cmp]) == [
        "new: 1 cell(s) pair a slub_debug U boot with a normal one; their slab figures are not judged "
        "(objects grow under U)"]


def test_u_on_both_sides_is_judged(tmp_path: Path) -> None:
    a, b = runs(tmp_path, cells("U,kmalloc-*", 4_300_000), cells("U,kmalloc-*", 5_000_000))
    (cmp,) = compare_dirs(a, [b], Selection(), Rules())
    (cell,) = cmp.cells
    assert {m.key: m.judgement.verdict for m in cell.metrics}["boot:slab.kmalloc.bytes"] == "regressed"
    assert slubdebug.warnings([cmp]) == []


def test_the_guest_says_u_when_the_axes_do_not(tmp_path: Path) -> None:
    """A kernel with U on by itself (CONFIG_SLUB_DEBUG_ON) or slab_debug= in cmdline."""
    a, b = runs(tmp_path, cells(None, 3_000_000, store_user=0), cells(None, 4_300_000, store_user=39))
    (cmp,) = compare_dirs(a, [b], Selection(), Rules())
    verdicts = {m.key: m.judgement for m in cmp.cells[0].metrics}
    assert verdicts["boot:slab.kmalloc.bytes"].verdict == "inconclusive"
    assert verdicts["boot:slab.store_user_caches"].verdict == "changed"  # the tell itself is judged
    c, d = runs(tmp_path / "2", cells(None, 3_000_000), cells(None, 4_300_000, cmdline=("slab_debug=U,kmalloc-*",)))
    (cmp,) = compare_dirs(c, [d], Selection(ignore_axes=("cmdline",)), Rules())
    assert slubdebug.mixed(cmp.cells[0])


@pytest.mark.parametrize(
    ("axes", "stores"),
    [
        ({"slub_debug": None}, False),
        ({"slub_debug": ""}, True),  # plain slub_debug: every check, U included
        ({"slub_debug": "U,kmalloc-*"}, True),
        ({"slub_debug": "FZ,kmalloc-*"}, False),
        ({"slub_debug": "FZ;U,dentry"}, True),
        ({"slub_debug": "-"}, False),
        ({"slub_debug": ",kmalloc-*"}, True),  # no flags: the default ones
        ({"cmdline": "slub_debug"}, True),
        ({"cmdline": "quiet slab_debug=FPU"}, True),
        ({"cmdline": "slab_debug=F quiet"}, False),
    ],
)
def test_which_options_store_users(axes: dict[str, Any], stores: bool) -> None:
    assert slubdebug.stores_user(CellSamples("c", "c", axes)) is stores


def test_compare_cli_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = runs(tmp_path, cells(None, 3_000_000), cells("U,kmalloc-*", 4_300_000))
    rc = main(["compare", str(a), str(b), "--ignore-axis", "slub_debug", "--format", "json"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "kharness: warning: new: 1 cell(s) pair a slub_debug U boot with a normal one" in captured.err
    assert slubdebug.REASON in captured.out
