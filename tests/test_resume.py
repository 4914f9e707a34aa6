"""--resume with fake guests: only what is missing runs, finished results stay untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.cli import main
from harness.config.load import load
from harness.errors import UsageError
from harness.results import load_run
from harness.run import shard
from harness.run.parallel import Stop
from harness.run.resume import resume
from harness.run.runner import RunOptions, run
from tests.test_run_parallel import SlowBoots, StopAfter, config


def _interrupted(tmp_path: Path, cells: int = 4, repeat: int = 1) -> Path:
    """A run stopped once the fast first cell finished, while the next ones were booting."""
    stop = Stop()
    boots = SlowBoots(10.0, stop=stop, fast=("kh.n=0",))
    cfg = config(tmp_path, cells=cells, repeat=repeat)
    outcome = run(cfg, RunOptions(output=tmp_path / "out", jobs=2), boots, StopAfter(stop, repeat), stop)
    assert outcome.interrupted == "SIGINT"
    assert len(outcome.records) == repeat
    return outcome.path


def test_resume_runs_only_what_is_missing(tmp_path: Path) -> None:
    out = _interrupted(tmp_path)
    first = next((out / "cells").glob("*/0/cell.json"))
    before = first.stat()
    boots = SlowBoots(0.01)
    outcome = resume(load(tmp_path / "c.yaml"), out, RunOptions(jobs=2), boots)
    assert sorted(boots.booted) == ["kh.n=1", "kh.n=2", "kh.n=3"]
    assert outcome.exit_code == 0 and not outcome.unfinished
    assert [r.axes["cmdline"] for r in outcome.records] == [f"kh.n={i}" for i in range(4)]
    after = first.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    doc = load_run(out).run
    assert doc["status"] == "finished" and doc["finished"]
    assert len(doc["interruptions"]) == 1 and doc["resumed"][0]["repetitions"] == 3
    assert all(c["status"] == "pass" for c in doc["cells"])
    suites = list(JUnitXml.fromfile(str(out / "junit.xml")))
    assert len(suites) == 4 and all(s.errors == 0 and s.failures == 0 for s in suites)


def test_resume_of_repetitions(tmp_path: Path) -> None:
    out = _interrupted(tmp_path, cells=2, repeat=3)
    boots = SlowBoots(0.01)
    outcome = resume(load(tmp_path / "c.yaml"), out, RunOptions(), boots)
    assert len(outcome.records) == 6 and outcome.exit_code == 0
    assert len(boots.booted) == 6 - 3  # kh.n=0 (three fast repetitions) had finished


def test_resume_replaces_partial_files_of_a_cut_off_repetition(tmp_path: Path) -> None:
    out = _interrupted(tmp_path)
    cut = [p for p in (out / "cells").glob("*/0") if not (p / "cell.json").exists()]
    assert cut
    (cut[0] / "raw" / "stale.txt").write_text("from the attempt that was cut off")
    resume(load(tmp_path / "c.yaml"), out, RunOptions(), SlowBoots(0.01))
    assert not (cut[0] / "raw" / "stale.txt").exists()
    assert (cut[0] / "cell.json").exists()


def test_resume_refuses_another_config(tmp_path: Path) -> None:
    out = _interrupted(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(cfg.read_text() + "# edited\n")
    with pytest.raises(UsageError, match="not the config"):
        resume(load(cfg), out, RunOptions(), SlowBoots(0.01))


def test_resume_keeps_the_shard_and_refuses_another(tmp_path: Path) -> None:
    cfg = config(tmp_path, cells=5)
    part = shard.Shard(2, 2)
    stop = Stop()
    stop.request("SIGTERM")  # stopped before anything ran
    run(cfg, RunOptions(output=tmp_path / "out", shard=part), SlowBoots(0.01), None, stop)
    with pytest.raises(UsageError, match="--shard 1/2"):
        resume(cfg, tmp_path / "out", RunOptions(shard=shard.Shard(1, 2)), SlowBoots(0.01))
    boots = SlowBoots(0.01)
    outcome = resume(cfg, tmp_path / "out", RunOptions(), boots)
    assert {r.cell_id for r in outcome.records} == {c.id for c in shard.select(cfg.cells, part)}
    assert len(boots.booted) == 2


def test_resume_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _interrupted(tmp_path)
    assert main(["run", "--resume", str(out), "-o", str(tmp_path / "x")]) == 2
    assert "-o does not apply" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "nope")]) == 2
    assert "nope: not a directory" in capsys.readouterr().err
    (next((out / "cells").glob("*/0/cell.json"))).write_text("{")
    assert main(["run", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cell.json: not valid JSON" in err and len(err.strip().splitlines()) == 1


def test_run_refuses_a_used_directory_and_points_to_resume(tmp_path: Path) -> None:
    out = _interrupted(tmp_path)
    with pytest.raises(UsageError, match="--resume"):
        run(load(tmp_path / "c.yaml"), RunOptions(output=out), SlowBoots(0.01))
