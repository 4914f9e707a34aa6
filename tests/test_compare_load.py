"""Bad result directories: exit 2 and a message that names the file."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def test_truncated_metrics_json(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = first_rep(dirs[1]) / "metrics.json"
    path.write_text(path.read_text()[:200])
    err = compare_fails(capsys, dirs, f"{path}: not valid JSON")
    assert "truncated or corrupt" in err


def test_truncated_cell_json(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = first_rep(dirs[0]) / "cell.json"
    path.write_text(path.read_text()[:50])
    compare_fails(capsys, dirs, f"{path}: not valid JSON")


def test_other_result_format(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = dirs[0] / "run.json"
    doc = json.loads(path.read_text())
    doc["format"] = 2
    path.write_text(json.dumps(doc))
    compare_fails(capsys, dirs, f"{path}: result format 2, this kharness reads 1")


def test_other_format_in_a_metrics_file(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = first_rep(dirs[0]) / "metrics.json"
    doc = json.loads(path.read_text())
    del doc["format"]
    path.write_text(json.dumps(doc))
    compare_fails(capsys, dirs, f"{path}: result format None")


def test_missing_run_json(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    (dirs[1] / "run.json").unlink()
    compare_fails(capsys, dirs, f"{dirs[1] / 'run.json'}: missing")


def test_not_a_directory(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    compare_fails(capsys, (dirs[0], tmp_path / "nope"), f"{tmp_path / 'nope'}: not a directory")


def test_malformed_cell_json(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = first_rep(dirs[0]) / "cell.json"
    doc = json.loads(path.read_text())
    doc["status"] = "great"
    path.write_text(json.dumps(doc))
    compare_fails(capsys, dirs, f"{path}: unknown status 'great'")


def test_malformed_metric(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
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


def test_without_msgspec_the_values_are_the_same(dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
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


def edit(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_reps_that_list_other_metrics_are_matched_by_key(dirs: tuple[Path, Path]) -> None:
    """Reading reuses the last file's keys when a file names the same metrics in the same order;
    one in another order, or with other metrics, still adds each value to its own metric."""
    from harness.results import load_run

    rep0 = first_rep(dirs[0])
    edit(rep0.parent / "1" / "metrics.json", lambda d: d["metrics"].reverse())
    edit(rep0.parent / "2" / "metrics.json",
         lambda d: d.update(metrics=[*d["metrics"][1:], {"name": "extra.only", "value": 7.0, "workload": "w"}]))
    for selection in (Selection(), Selection(metrics=("slab.*", "extra.*"))):
        fast = load_samples(dirs[0], selection)
        for cell in fast.cells.values():
            expected: dict[str, list[float]] = {}
            for rep in sorted((r for r in load_run(dirs[0]).reps if r.record.cell_id == cell.cell_id),
                              key=lambda r: r.record.rep):
                for m in rep.metrics:
                    if selection.metric_matches(m.key):
                        expected.setdefault(m.key, []).append(m.value)
            assert cell.values == expected
            assert list(cell.values) == list(expected)  # in the order first seen
        assert "w:extra.only" in fast.info


def test_the_reader_gives_the_last_files_keys_again(dirs: tuple[Path, Path]) -> None:
    paths = [rep / "metrics.json" for rep in sorted(dirs[0].glob("cells/*/*"))]
    reader = fastread.MetricsReader()
    first, _ = reader.read(paths[0])
    again, values = reader.read(paths[1])
    assert again is first
    assert values == [m["value"] for m in json.loads(paths[1].read_text())["metrics"]]
    edit(paths[2], lambda d: d["metrics"][0].update(workload="other"))
    other, _ = reader.read(paths[2])
    assert other is not first and other[0].startswith("other:") and other[1:] == first[1:]
    edit(paths[3], lambda d: d["metrics"][0].update(value=float("nan")))  # the slow way
    nan_keys, nan_values = reader.read(paths[3])
    assert nan_keys == first and math.isnan(nan_values[0])
    edit(paths[4], lambda d: d["metrics"].__setitem__(1, d["metrics"][0]))
    with pytest.raises(ResultsError, match="given twice"):
        reader.read(paths[4])


@pytest.mark.parametrize("value", [True, False, None, 0, 1, -7, 10**20, 1.5, -0.0, float("nan"), [1, {"b": 2, "a": 1}]])
def test_axis_text_is_the_json_of_what_is_not_a_string(value: object) -> None:
    from harness.compare.load import axis_text

    assert axis_text(value) == json.dumps(value, sort_keys=True)
    assert axis_text("bookworm") == "bookworm"
