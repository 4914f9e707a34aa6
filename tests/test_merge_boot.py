"""Two real shards, merged: the merged directory has every cell of the config, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.cli import main
from harness.config.load import load
from harness.results import load_run

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("parallel-boot")]

CONFIG = """
name: merge-boot
defaults: {memory: 512, cpus: 1, workloads: [idle]}
matrix:
  kernel: [trixie-arm64, bookworm-x86_64]
"""


def test_real_shards_merge_into_the_whole_config(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    cells = load(tmp_path / "c.yaml").cells
    for k in (1, 2):
        rc = main(["run", "-q", str(tmp_path / "c.yaml"), "--shard", f"{k}/2", "-o", str(tmp_path / f"s{k}")])
        assert rc == 0
        assert len(load_run(tmp_path / f"s{k}").reps) == 1  # two cells, two shards: one each
    assert main(["merge", "-q", str(tmp_path / "s1"), str(tmp_path / "s2"), "-o", str(tmp_path / "m")]) == 0
    merged = load_run(tmp_path / "m")
    assert sorted(r.record.cell_id for r in merged.reps) == sorted(c.id for c in cells)
    assert all(r.record.status == "pass" for r in merged.reps)
    assert all("Linux version" in (r.path / "console.log").read_text(errors="replace") for r in merged.reps)
    suites = list(JUnitXml.fromfile(str(tmp_path / "m" / "junit.xml")))
    assert sorted(s.name for s in suites) == sorted(f"{c.slug}#0" for c in cells)
    assert "slab.kmalloc.bytes by kernel" in (tmp_path / "m" / "report.html").read_text()
