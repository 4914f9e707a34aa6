"""Who allocates, for real: a Debian 6.12 arm64 boot with slub_debug U on the kmalloc caches.

Two short boots (idle for a second): one with the slub_debug axis
("U,kmalloc-*"), one with 6.12's other spelling, slab_debug= on the command
line; the guest detects U either way. Each snapshot carries every kmalloc
cache's alloc_traces; the callers and the by-caller what-if come from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.collect import alloc_traces, slabinfo
from harness.results import RunResult
from tests.runs_real import figures, run_config

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("callers-boot")]

CONFIG = """
name: callers-boot
defaults:
  kernel: trixie-arm64
  workloads: [{name: idle, params: {seconds: 1}}]
  timeouts: {boot: 300, workload: 120, cell: 600}
include:
  - {slub_debug: "U,kmalloc-*"}
  - {cmdline: ["slab_debug=U,kmalloc-*"]}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_config(tmp_path_factory.mktemp("callers"), CONFIG)


def rep_dir(run: RunResult, slug: str) -> Path:
    (rep,) = [r for r in run.reps if r.record.slug == slug]
    return run.path / "cells" / rep.record.cell_id / "0"


SLUGS = ["trixie-arm64.slub", "trixie-arm64.slab_debug-u-kmalloc"]


@pytest.mark.parametrize("slug", SLUGS)
def test_u_is_detected_and_callers_collected(run: RunResult, slug: str) -> None:
    m = figures(run, slug)
    assert m["boot:slab.store_user_caches"] >= 26  # kmalloc-N, -cg-N (and -rcl-N): not dma-kmalloc-*
    for size in ("8", "16", "32", "96"):
        assert m[f"boot:slab.callers.{size}.objects"] > 100
        assert m[f"boot:slab.callers.{size}.sites"] > 50
        top = {k: v for k, v in m.items() if k.startswith(f"boot:slab.callers.{size}.top.")}
        assert len(top) == 5 and all(v > 0 for v in top.values())
    assert m["boot:slab.callers.8.kharness_objects"] > 0  # the hist maps kharness-trace.sh sets
    assert m["idle:slab.callers.8.objects"] > 0  # every snapshot, not only boot's
    assert m["boot:slab.alloc_traces.cost_pgalloc"] > 0  # reading them allocates; it is reported


@pytest.mark.parametrize("slug", SLUGS)
def test_traces_count_the_live_objects(run: RunResult, slug: str) -> None:
    """alloc_traces is read right after slabinfo: per class they agree closely."""
    boot = rep_dir(run, slug) / "raw" / "boot"
    info = {c.size: c for c in slabinfo.size_classes(slabinfo.parse((boot / "slabinfo").read_text()))}
    traced: dict[int, int] = {}
    for f in (boot / "alloc_traces").iterdir():
        kc = slabinfo.kmalloc_class(f.name)
        assert kc is not None and kc[0] != "dma-kmalloc"  # kmalloc-* does not match dma-kmalloc-*
        traced[kc[1]] = traced.get(kc[1], 0) + alloc_traces.parse(f.read_text()).objects
    for size in (8, 16, 32, 96):
        assert traced[size] == pytest.approx(info[size].active_objs, rel=0.05), size
    assert (boot / "after_traces" / "slabinfo").is_file()


def test_callers_and_whatif_commands_on_the_run(run: RunResult, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["slab", "callers", str(run.path), "--cell", "trixie-arm64.slub", "--class", "8", "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["classes"][0]["class"] == "8"
    assert doc["classes"][0]["callers"][0]["objects"] > 50
    rc = main(["slab", "whatif", str(run.path), "--cell", "trixie-arm64.slub", "--minalign", "64",
               "--by-caller", "--format", "json"])
    w = json.loads(capsys.readouterr().out)
    assert rc == 0 and w["taken_at_minalign"] == 8
    # at 64 every object of class 8 lands in kmalloc-64: 56 bytes more each
    assert w["per_class"]["8"] == 56 * doc["classes"][0]["objects"]
    assert w["extra_bytes"] > 100_000
