"""`kharness merge` with fake guests: shards merge into what an unsharded run gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.cli import main
from harness.config.load import Config, load
from harness.errors import UsageError
from harness.results import load_run
from harness.run import merge, runner, shard
from harness.run.runner import RunOptions, run
from tests.test_run_parallel import SlowBoots


def _config(tmp_path: Path, name: str = "m", extra: str = "") -> Config:
    (tmp_path / f"{name}.yaml").write_text(f"""
name: {name}
defaults: {{workloads: [idle], memory: 128, cpus: 1}}
matrix:
  kernel: [trixie-x86_64, bookworm-x86_64, trixie-arm64]
  cmdline: [[], [quiet]]
include:
  - {{kernel: trixie-arm64, cmdline: [quiet], repeat: 3}}
{extra}""")
    return load(tmp_path / f"{name}.yaml")


def _shards(cfg: Config, tmp_path: Path, count: int, fail: tuple[str, ...] = ()) -> list[Path]:
    dirs = []
    for k in range(1, count + 1):
        out = tmp_path / f"shard-{k}"
        run(cfg, RunOptions(output=out, shard=shard.Shard(k, count), jobs=2), SlowBoots(0.0, fail=fail))
        dirs.append(out)
    return dirs


def _suites(path: Path) -> list[str]:
    return sorted(s.name for s in JUnitXml.fromfile(str(path / "junit.xml")))


def test_merge_of_shards_equals_an_unsharded_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    whole = run(cfg, RunOptions(output=tmp_path / "whole"), SlowBoots(0.0))
    dirs = _shards(cfg, tmp_path, 3)
    assert main(["merge", "-q", *map(str, dirs), "-o", str(tmp_path / "merged")]) == 0
    merged, unsharded = load_run(tmp_path / "merged"), load_run(whole.path)
    keys = sorted((r.record.cell_id, r.record.rep) for r in merged.reps)
    assert keys == sorted((r.record.cell_id, r.record.rep) for r in unsharded.reps)
    assert len(keys) == 5 + 3
    assert [c["id"] for c in merged.run["cells"]] == [c["id"] for c in unsharded.run["cells"]]
    assert [c["status"] for c in merged.run["cells"]] == ["pass"] * 6
    assert _suites(merged.path) == _suites(unsharded.path)
    assert merged.run["status"] == "finished" and merged.run["missing_cells"] == []
    assert [m["shard"] for m in merged.run["merged_from"]] == [{"index": k, "count": 3} for k in (1, 2, 3)]
    assert (merged.path / "report.html").stat().st_size > 1000
    for rep in merged.reps:  # files came along (hard links where the filesystem allows)
        assert (rep.path / "console.log").is_file() and (rep.path / "raw" / "boot" / "slabinfo").is_file()
    assert not list(tmp_path.glob(".merged.merging-*"))


def test_merge_refuses_different_configs_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = run(_config(tmp_path, "a"), RunOptions(output=tmp_path / "a", shard=shard.Shard(1, 2)), SlowBoots(0.0))
    b = run(_config(tmp_path, "a", extra="# another revision\n"),
            RunOptions(output=tmp_path / "b", shard=shard.Shard(2, 2)), SlowBoots(0.0))
    assert main(["merge", str(a.path), str(b.path), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "ran different configs" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()
    assert main(["merge", "-q", "--force", str(a.path), str(b.path), "-o", str(tmp_path / "m")]) == 0
    assert len(load_run(tmp_path / "m").reps) == 8


def test_merge_refuses_duplicate_repetitions(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    a = run(cfg, RunOptions(output=tmp_path / "a", shard=shard.Shard(1, 2)), SlowBoots(0.0))
    b = run(cfg, RunOptions(output=tmp_path / "b", shard=shard.Shard(1, 2)), SlowBoots(0.0))
    with pytest.raises(UsageError, match=r"repetition 0 is in both .*/a and .*/b"):
        merge.merge([a.path, b.path], tmp_path / "m")
    with pytest.raises(UsageError, match="given twice"):
        merge.merge([a.path, a.path], tmp_path / "m")
    with pytest.raises(UsageError, match="also an input"):
        merge.merge([a.path, b.path], b.path)


def test_merge_corrupt_input_is_one_line_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _shards(_config(tmp_path), tmp_path, 2)
    bad = next((dirs[1] / "cells").glob("*/0/metrics.json"))
    bad.write_text('{"format": 1, "metrics": [{"nam')
    assert main(["merge", *map(str, dirs), "-o", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kharness: error: {bad}: not valid JSON") and "\n" not in err
    (dirs[0] / "run.json").write_text("[]")
    assert main(["merge", *map(str, dirs), "-o", str(tmp_path / "m")]) == 2
    assert "run.json: not a JSON object" in capsys.readouterr().err
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.merging-*"))


def test_merge_failing_half_way_leaves_nothing_that_looks_complete(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = _shards(_config(tmp_path), tmp_path, 2)

    def disk_full(out: Path, doc: dict[str, object]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner, "finish", disk_full)
    assert main(["merge", *map(str, dirs), "-o", str(tmp_path / "m")]) == 3
    assert not (tmp_path / "m").exists()
    assert not list(tmp_path.glob(".m.merging-*"))


def test_merge_with_a_missing_shard_reports_its_cells(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    dirs = _shards(cfg, tmp_path, 3)
    assert main(["merge", "-q", str(dirs[0]), str(dirs[2]), "-o", str(tmp_path / "m")]) == 3
    merged = load_run(tmp_path / "m")
    lost = {c.id for c in shard.select(cfg.cells, shard.Shard(2, 3))}
    assert set(merged.run["missing_cells"]) == lost
    assert {c["id"] for c in merged.run["cells"]} == {c.id for c in cfg.cells}
    errors = [c.result[0].message for s in JUnitXml.fromfile(str(merged.path / "junit.xml")) for c in s
              if c.result and c.result[0].type == "interrupted"]
    assert len(errors) == len(lost) and all("none of the merged runs" in e for e in errors)


def test_merge_exit_code_is_the_verdict(tmp_path: Path) -> None:
    dirs = _shards(_config(tmp_path), tmp_path, 2, fail=("quiet",))
    assert main(["merge", "-q", *map(str, dirs), "-o", str(tmp_path / "m")]) == 3  # InfraError in a cell
    doc = json.loads((tmp_path / "m" / "run.json").read_text())
    assert {c["status"] for c in doc["cells"]} == {"pass", "error"}


def test_merge_of_an_interrupted_shard_lists_what_it_cut_off(tmp_path: Path) -> None:
    from harness.run.parallel import Stop

    cfg = _config(tmp_path)
    stop = Stop()
    stop.request("SIGTERM")
    a = run(cfg, RunOptions(output=tmp_path / "a", shard=shard.Shard(1, 2)), SlowBoots(0.0), None, stop)
    b = run(cfg, RunOptions(output=tmp_path / "b", shard=shard.Shard(2, 2)), SlowBoots(0.0))
    assert main(["merge", "-q", str(a.path), str(b.path), "-o", str(tmp_path / "m")]) == 3
    merged = load_run(tmp_path / "m")
    assert merged.run["status"] == "interrupted" and merged.run["missing_cells"] == []
    assert merged.run["interruptions"][0]["reason"] == "SIGTERM"
