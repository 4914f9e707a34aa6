"""configs/zones.yaml for real: the zone layouts domain.md states, on Debian 6.12 under QEMU.

Six short boots (no workload): arm64 virt at 1, 3 and 4 GiB, x86_64 q35 at
1 GiB, 2815 and 2816 MiB. Every expectation of the config must pass (ZONE_DMA
from 1 GiB up to 4 GiB on arm64 with DMA32 empty and Normal only past 3 GiB
of RAM; DMA 16 MiB and DMA32 to 4 GiB on x86_64 with Normal only from 2816
MiB; swiotlb sizes; empty dma-kmalloc caches), and the collectors' other
figures must agree with each other.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.collect import zones
from harness.results import RunResult
from tests.runs_real import run_config

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("zones-boot")]
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "zones.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return run_config(tmp_path_factory.mktemp("zones"), CONFIG)


def figures(run: RunResult, slug: str) -> dict[str, float]:
    (rep,) = [r for r in run.reps if r.record.slug == slug]
    return {m.name: m.value for m in rep.metrics if m.workload == "boot"}


def test_every_expectation_passes(run: RunResult) -> None:
    judged = [t for r in run.reps for t in r.record.tests if t.name.startswith("expect:")]
    assert len(judged) >= 40 and all(t.status == "pass" for t in judged), [
        (t.name, t.message) for t in judged if t.status != "pass"]


@pytest.mark.parametrize("slug", ["trixie-arm64", "trixie-arm64.mem3072", "trixie-arm64.mem4096",
                                  "trixie-x86_64", "trixie-x86_64.mem2815", "trixie-x86_64.mem2816"])
def test_buddyinfo_and_extfrag_cover_the_populated_zones(run: RunResult, slug: str) -> None:
    m = figures(run, slug)
    populated = sorted(z for z in ("dma", "dma32", "normal") if m[f"zone.{z}.present"] > 0)
    assert sorted({k.split(".")[1] for k in m if k.startswith("buddy.")}) == populated
    assert sorted({k.split(".")[1] for k in m if k.startswith("extfrag.")}) == populated
    for z in populated:
        assert m[f"zone.{z}.free"] <= m[f"zone.{z}.managed"] <= m[f"zone.{z}.present"] <= m[f"zone.{z}.spanned"]
        assert m[f"zone.{z}.watermark_min"] < m[f"zone.{z}.watermark_low"] < m[f"zone.{z}.watermark_high"]
        assert m[f"buddy.{z}.largest_order"] == 10  # a fresh guest has free 4 MiB blocks everywhere
        assert 0 <= m[f"extfrag.{z}.unusable.order-10"] <= 1
        assert m[f"extfrag.{z}.index.order-10"] == -1  # an order-10 allocation would succeed
    assert m["slab.dma-kmalloc.bytes"] == 0 and m["slab.gfp_dma_to_pages.extra_bytes"] == 0
    assert sum(1 for k in m if k.startswith("slab.dma-kmalloc-") and k.endswith(".objects")) == 13


def test_raw_zone_files_are_kept_and_parse(run: RunResult) -> None:
    (rep,) = [r for r in run.reps if r.record.slug == "trixie-x86_64.mem2816"]
    raw = run.path / "cells" / rep.record.cell_id / "0" / "raw" / "boot"
    layout = {z.label: z.range(4096) for z in zones.parse_zoneinfo((raw / "zoneinfo").read_text())}
    assert layout["normal"] == (4 << 30, (4 << 30) + (768 << 20))
    assert [r.label for r in zones.parse_buddyinfo((raw / "buddyinfo").read_text())] == ["dma", "dma32", "normal"]
    assert (raw / "extfrag" / "unusable_index").is_file() and (raw / "extfrag" / "extfrag_index").is_file()
