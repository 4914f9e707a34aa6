"""Bad result directories: exit 2 and a message that names the file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.cli import main
from harness.compare import fastread
from harness.compare.load import Selection, load_samples
from harness.errors import ResultsError
from tests.fakes import synth


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cells = synth.bench_cells(2, 20)
    return synth.write_run(tmp_path / "base", cells), synth.write_run(tmp_path / "new", cells, seed=1)


def first_rep(run_dir: Path) -> Path:
    return sorted((run_dir / "cells").glob("*/0"))[0]


def compare_fails(capsys: pytest.CaptureFixture[str], dirs: tuple[Path, Path], names: str) -> str:
    rc = main(["compare", str(dirs[0]), str(dirs[1])])
    err = capsys.readouterr().err
    assert rc == 2
    assert names in err
    assert len(err.strip().splitlines()) == 1
    return err


def test_truncated_metrics_json(dirs: tuple[Path, Path], capsys) -> None:
    path = first_rep(dirs[1]) / "metrics.json"
    path.write_text(path.read_text()[:200])
    err = compare_fails(capsys, dirs, f"{path}: not valid JSON")
    assert "truncated or corrupt" in err


def test_truncated_cell_json(dirs: tuple[Path, Path], capsys) -> None:
    path = first_rep(dirs[0]) / "cell.json"
    path.write_text(path.read_text()[:50])
    compare_fails(capsys, dirs, f"{path}: not valid JSON")


def test_other_result_format(dirs: tuple[Path, Path], capsys) -> None:
    path = dirs[0] / "run.json"
    doc = json.loads(path.read_text())
    doc["format"] = 2
    path.write_text(json.dumps(doc))
    compare_fails(capsys, dirs, f"{path}: result format 2, this kharness reads 1")


def test_other_format_in_a_metrics_file(dirs: tuple[Path, Path], capsys) -> None:
    path = first_rep(dirs[0]) / "metrics.json"
    doc = json.loads(path.read_text())
    del doc["format"]
    path.write_text(json.dumps(doc))
    compare_fails(capsys, dirs, f"{path}: result format None")


def test_missing_run_json(dirs: tuple[Path, Path], capsys) -> None:
    (dirs[1] / "run.json").unlink()
    compare_fails(capsys, dirs, f"{dirs[1] / 'run.json'}: missing")


def test_not_a_directory(dirs: tuple[Path, Path], capsys, tmp_path: Path) -> None:
    compare_fails(capsys, (dirs[0], tmp_path / "nope"), f"{tmp_path / 'nope'}: not a directory")


def test_malformed_cell_json(dirs: tuple[Path, Path], capsys) -> None:
    path = first_rep(dirs[0]) / "cell.json"
    doc = json.loads(path.read_text())
    doc["status"] = "great"
    path.write_text(json.dumps(doc))
    compare_fails(capsys, dirs, f"{path}: unknown status 'great'")


def test_malformed_metric(dirs: tuple[Path, Path], capsys) -> None:
    path = first_rep(dirs[0]) / "metrics.json"
    doc = json.loads(path.read_text())
    doc["metrics"][3]["value"] = "many"
    path.write_text(json.dumps(doc))
    compare_fails(capsys, dirs, f"{path}: malformed")


def test_nan_values_as_python_json_writes_them(dirs: tuple[Path, Path]) -> None:
    """json.dumps writes NaN (the result writers use it); reading must accept it."""
    path = first_rep(dirs[0]) / "metrics.json"
    text = path.read_text()
    doc = json.loads(text)
    doc["metrics"][0]["value"] = float("nan")
    path.write_text(json.dumps(doc))
    run = load_samples(dirs[0], Selection())
    values = [v for c in run.cells.values() for v in c.values[next(iter(c.values))]]
    assert any(math.isnan(v) for v in values)


def test_same_values_as_the_result_contract_reader(dirs: tuple[Path, Path]) -> None:
    """The fast reader sees what harness.results.load_run sees."""
    from harness.results import load_run

    fast = load_samples(dirs[0], Selection())
    slow = load_run(dirs[0])
    for rep in slow.reps:
        cell = next(c for c in fast.cells.values() if c.cell_id == rep.record.cell_id)
        for m in rep.metrics:
            assert cell.values[m.key][rep.record.rep] == m.value
    assert sum(len(c.statuses) for c in fast.cells.values()) == len(slow.reps)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="not a directory"):
        load_samples(tmp_path / "missing", Selection())


def test_without_msgspec_the_values_are_the_same(dirs: tuple[Path, Path], monkeypatch) -> None:
    fast = load_samples(dirs[0], Selection())
    monkeypatch.setattr(fastread, "_DECODER", None)
    slow = load_samples(dirs[0], Selection())
    assert {i: c.values for i, c in slow.cells.items()} == {i: c.values for i, c in fast.cells.items()}
    assert slow.info == fast.info


def test_metric_without_workload_is_a_boot_metric(dirs: tuple[Path, Path]) -> None:
    """Metric's default workload is "boot"; a writer may leave it out."""
    path = first_rep(dirs[0]) / "metrics.json"
    doc = json.loads(path.read_text())
    for m in doc["metrics"]:
        del m["workload"]
    path.write_text(json.dumps(doc))
    run = load_samples(dirs[0], Selection())
    cell = next(c for c in run.cells.values() if c.cell_id == path.parent.parent.name)
    assert all(k.startswith("boot:") for k in cell.values)
