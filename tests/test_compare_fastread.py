"""compare's fast reading (fastread.read_file, fastread.result_object, load's walk of
strings) takes only what harness.results' readers take, and leaves the rest to them:
the same values, the same refusals with the same messages."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import results
from harness.compare import fastread
from harness.compare.load import Selection, load_samples
from harness.errors import ResultsError
from tests.fakes import synth
from tests.test_fuzz_collect import FUZZ


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth.write_run(tmp_path_factory.mktemp("runs") / "run", synth.bench_cells(2, 10, reps=3))


@pytest.fixture
def run(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "run", symlinks=True))


def rep(run_dir: Path, n: int = 0) -> Path:
    return sorted((run_dir / "cells").glob("*/*"))[n]


def refusal(run_dir: Path) -> str:
    with pytest.raises(ResultsError) as exc:
        load_samples(run_dir, Selection())
    return str(exc.value)


def test_read_file_reads_a_plain_file_and_says_none_for_no_file(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b'{"format": 1}')
    assert fastread.read_file(str(path), os.path.exists) == results.read_bytes(path)
    assert fastread.read_file(str(tmp_path / "nope"), os.path.exists) is None


def test_read_file_refuses_what_read_bytes_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "target.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 100)
    monkeypatch.setattr(results, "MAX_JSON_BYTES", 99)
    for path in (link, fifo, tmp_path, big):
        with pytest.raises(ResultsError) as slow:
            results.read_bytes(path)
        with pytest.raises(ResultsError) as fast:
            fastread.read_file(str(path), os.path.exists)
        assert str(fast.value) == str(slow.value)


def test_a_dangling_link_is_no_metrics_json_but_a_refused_cell_json(run: Path) -> None:
    """As before: metrics.json was looked for with os.path.exists, cell.json with lexists."""
    metrics = rep(run) / "metrics.json"
    metrics.unlink()
    metrics.symlink_to(run / "nowhere")
    cell = next(c for c in load_samples(run, Selection()).cells.values() if c.cell_id == rep(run).parent.name)
    assert cell.used == 2 and len(cell.statuses) == 3
    record = rep(run, 1) / "cell.json"
    record.unlink()
    record.symlink_to(run / "nowhere")
    assert f"{record}: a symbolic link, refused" in refusal(run)


@pytest.mark.parametrize("damage", ["file in cells", "linked cell", "stray rep", "linked rep", "linked cells"])
def test_what_the_walk_finds_amiss_is_refused_as_results_refuses_it(run: Path, damage: str) -> None:
    cells = run / "cells"
    first = sorted(cells.iterdir())[0]
    if damage == "file in cells":
        (cells / "zz-0123abcd").write_text("")
        expected = "not a directory, where a cell id directories are"
    elif damage == "linked cell":
        first.rename(run / "away")
        first.symlink_to(run / "away")
        expected = f"{first}: a symbolic link, refused"
    elif damage == "stray rep":
        (first / "x").mkdir()
        expected = "'x' is not a repetition number"
    elif damage == "linked rep":
        (first / "0").rename(run / "away")
        (first / "0").symlink_to(run / "away")
        expected = f"{first / '0'}: a symbolic link, refused"
    else:
        cells.rename(run / "away")
        cells.symlink_to(run / "away")
        expected = f"{cells}: a symbolic link, refused"
    assert expected in refusal(run)


def test_a_cell_json_only_json_reads_is_read_the_slow_way(run: Path) -> None:
    path = rep(run) / "cell.json"
    doc = json.loads(path.read_text())
    doc["timings"] = {"boot": float("nan")}
    path.write_text(json.dumps(doc))  # NaN: msgspec refuses it, json reads it
    assert fastread.result_object(path.read_bytes()) is None
    assert math.isnan(results.load_record(path.parent).timings["boot"])
    assert load_samples(run, Selection()).cells


def test_a_cell_json_in_another_directory_is_refused(run: Path) -> None:
    shutil.copy(rep(run, 0) / "cell.json", rep(run, 1) / "cell.json")
    assert "says cell" in refusal(run) and "repetition 0, but is in" in refusal(run)


@FUZZ
@given(st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                 max_leaves=80).map(lambda v: json.dumps({"format": 1, "v": v}).encode()),
))
def test_result_object_gives_what_the_contract_reader_gives_or_nothing(data: bytes) -> None:
    fast = fastread.result_object(data)
    if fast is None:
        return
    path = Path("cell.json")
    assert fast == results.checked(results.parse_json(data, path), path)
