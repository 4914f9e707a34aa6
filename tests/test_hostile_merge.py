"""Hostile result directories given to `kharness merge` (and read back by load_run).

Result directories travel as CI artefacts and mail attachments (design.md):
nothing read from one may become a path, be followed as a link, be linked
into the output or count twice. Each case is one line naming the file, exit
2, and nothing written outside -o (nor a half-built output).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import results
from harness.cli import main
from harness.config.load import load
from harness.errors import ResultsError
from harness.run import shard
from harness.run.runner import RunOptions, run
from tests.test_run_parallel import SlowBoots


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two shards of a two-cell run, made once; every test works on a copy."""
    root = tmp_path_factory.mktemp("shards")
    (root / "m.yaml").write_text("name: m\ndefaults: {workloads: [idle], memory: 128, cpus: 1}\n"
                                 "matrix:\n  kernel: [trixie-x86_64, bookworm-x86_64]\n")
    cfg = load(root / "m.yaml")
    for k in (1, 2):
        run(cfg, RunOptions(output=root / f"s{k}", shard=shard.Shard(k, 2), jobs=1), SlowBoots(0.0))
    return root


@pytest.fixture
def shards(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the shards: tmp_path/work/{s1,s2}; outputs go to tmp_path/work/out."""
    work = tmp_path / "work"
    shutil.copytree(pristine, work, symlinks=True)
    return work


def rep(work: Path, shard_dir: str = "s1") -> Path:
    return next((work / shard_dir / "cells").glob("*/0"))


def edit(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def merge_fails(work: Path, capsys: pytest.CaptureFixture[str], *names: str) -> str:
    """merge exits 2 with one line naming `names`; no output, nothing beside the inputs."""
    before = sorted(p.name for p in work.parent.iterdir())
    rc = main(["merge", "-q", str(work / "s1"), str(work / "s2"), "-o", str(work / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("kharness: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, err
    assert not (work / "out").exists()
    assert not list(work.glob(".out.merging-*"))
    assert sorted(p.name for p in work.parent.iterdir()) == before  # nothing escaped -o
    return err


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --- ids are never paths -------------------------------------------------------


@pytest.mark.parametrize("cell_id", ["../../escaped", "/nonexistent-kharness/escaped-0ff1d0ee", "a/b-0ff1d0ee", "..",
                                     "x-0ff1d0ee\n", "[red]x[/]-0ff1d0ee", "x" * 80 + "-0ff1d0ee"])
def test_a_cell_id_that_is_no_id_is_refused(shards: Path, capsys: pytest.CaptureFixture[str], cell_id: str) -> None:
    before = tree(shards)
    edit(rep(shards) / "cell.json", lambda d: d.update(cell_id=cell_id))
    merge_fails(shards, capsys, "cell.json", "cell_id")
    assert tree(shards) == before
    assert not Path("/nonexistent-kharness/escaped-0ff1d0ee").exists()


def test_a_repetition_is_counted_where_it_is_on_disk(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Copies of one repetition under other numbers are not more repetitions."""
    one = rep(shards)
    shutil.copytree(one, one.parent / "1")
    merge_fails(shards, capsys, "says cell", "repetition 0", "/1")


def test_a_cell_json_in_another_cells_directory_is_refused(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = rep(shards, "s2").parent.name
    edit(rep(shards) / "cell.json", lambda d: d.update(cell_id=other))
    merge_fails(shards, capsys, f"says cell {other}")


@pytest.mark.parametrize("name", ["not-an-id", "..x", "UPPER-zzzzzzzz"])
def test_a_stray_directory_in_cells_is_refused(shards: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    (shards / "s1" / "cells" / name).mkdir()
    merge_fails(shards, capsys, "is not a cell id")


def test_a_non_utf8_name_is_refused_naming_it(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cell = rep(shards).parent
    os.mkdir(os.fsencode(cell) + b"/\xff\xfe")
    err = merge_fails(shards, capsys, "\\xff\\xfe", "is not a repetition number")
    err.encode("utf-8")  # printable as it is


# --- links are never followed, files never shared ---------------------------------


def test_a_raw_directory_linked_to_etc_is_refused(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = rep(shards) / "raw"
    shutil.rmtree(raw)
    raw.symlink_to("/etc")
    merge_fails(shards, capsys, f"{raw}: a symbolic link, refused")


def test_a_console_linked_to_a_host_file_is_refused(shards: Path, capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:supersecret\n")
    console = rep(shards) / "console.log"
    console.unlink()
    console.symlink_to(secret)
    edit(rep(shards) / "cell.json", lambda d: d.update(status="fail", reason="boot: a reason"))
    merge_fails(shards, capsys, f"{console}: a symbolic link")
    with pytest.raises(ResultsError, match="symbolic link"):  # nor does a report of the shard read it
        results.load_run(shards / "s1")


@pytest.mark.parametrize("where", ["raw/boot/slabinfo", "raw/deep/er/link", "metrics.json", "cell.json"])
def test_a_link_anywhere_in_a_repetition_is_refused(shards: Path, capsys: pytest.CaptureFixture[str],
                                                    where: str) -> None:
    path = rep(shards) / where
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    path.symlink_to("/etc/passwd")
    merge_fails(shards, capsys, "a symbolic link")


def test_a_linked_cells_directory_is_refused(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cells = shards / "s1" / "cells"
    cells.rename(shards / "elsewhere")
    cells.symlink_to(shards / "elsewhere")
    merge_fails(shards, capsys, "cells: a symbolic link")


def test_a_fifo_is_refused_without_hanging(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(rep(shards) / "raw" / "fifo")
    merge_fails(shards, capsys, "fifo: not a regular file")


def test_files_are_copied_never_hard_linked_and_modes_follow_the_umask(shards: Path) -> None:
    old = os.umask(0o022)
    try:
        rc = main(["merge", "-q", str(shards / "s1"), str(shards / "s2"), "-o", str(shards / "out")])
    finally:
        os.umask(old)
    assert rc == 0
    out = shards / "out"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # not a temporary directory's 0700
    src = rep(shards)
    for copied in (out / "cells").rglob("*"):
        st = copied.lstat()
        assert not stat.S_ISLNK(st.st_mode)
        if copied.is_dir():
            assert stat.S_IMODE(st.st_mode) == 0o755, copied
            continue
        assert st.st_nlink == 1, copied  # a hard link would tie the output to the input's file
        assert stat.S_IMODE(st.st_mode) == 0o644, copied
    original = src / "console.log"
    copy = out / src.relative_to(shards / "s1")
    assert (copy / "console.log").read_bytes() == original.read_bytes()
    assert (copy / "console.log").stat().st_ino != original.stat().st_ino


# --- odd shapes and sizes: one line, never a traceback ------------------------------

RUN_JSON_SHAPES = [
    {"cells": 5}, {"cells": [5]}, {"cells": [{"x": 1}]}, {"cells": [{"id": "../x-0ff1d0ee"}]},
    {"cells": [{"id": "a-0ff1d0ee", "repeat": "many"}]}, {"cells": [{"id": "a-0ff1d0ee", "repeat": 10 ** 9}]},
    {"cells": [{"id": "a-0ff1d0ee", "axes": {"k": [1]}}]}, {"cells": [{"id": "a-0ff1d0ee", "axes": {"a\x01b": 1}}]},
    {"config": []}, {"config": {"sha256": 7}}, {"config": {"sha256": "x", "cells": 7}},
    {"config": {"sha256": "x", "cells": ["../../x"]}}, {"interruptions": 3}, {"interruptions": [3]},
    {"shard": {"index": 3, "count": 2}}, {"shard": "1/2"}, {"status": "great"}, {"tools": {"qemu": 7}},
    {"name": ["m"]}, {"missing_cells": ["/etc"]}, {"host": []}, {"merged_from": "x"},
]


@pytest.mark.parametrize("shape", RUN_JSON_SHAPES, ids=[json.dumps(s)[:40] for s in RUN_JSON_SHAPES])
def test_odd_run_json_shapes_are_one_line(shards: Path, capsys: pytest.CaptureFixture[str],
                                          shape: dict[str, Any]) -> None:
    edit(shards / "s1" / "run.json", lambda d: d.update(shape))
    merge_fails(shards, capsys, "run.json")


CELL_JSON_SHAPES = [
    {"rep": "0"}, {"rep": -1}, {"rep": 10 ** 30}, {"rep": True}, {"slug": "[/]"}, {"slug": "a\nb"},
    {"axes": []}, {"axes": {"kernel": {"deep": 1}}}, {"axes": {"Kernel!": 1}}, {"tests": {}},
    {"tests": [1]}, {"tests": [{"name": "x", "status": "great"}]}, {"tests": [{"status": "pass"}]},
    {"tests": [{"name": "x", "status": "pass", "seconds": "slow"}]}, {"timings": {"boot": "slow"}},
    {"timings": []}, {"reason": 5}, {"kernel": "6.1"}, {"status": None},
]


@pytest.mark.parametrize("shape", CELL_JSON_SHAPES, ids=[json.dumps(s)[:40] for s in CELL_JSON_SHAPES])
def test_odd_cell_json_shapes_are_one_line(shards: Path, capsys: pytest.CaptureFixture[str],
                                           shape: dict[str, Any]) -> None:
    edit(rep(shards) / "cell.json", lambda d: d.update(shape))
    merge_fails(shards, capsys, "cell.json")


METRIC_SHAPES = [
    {"value": "many"}, {"value": True}, {"value": 1e300}, {"value": 10 ** 40}, {"name": "../x"},
    {"name": "<b>x</b>"}, {"workload": "a b"}, {"kind": "strange"}, {"better": "more"}, {"unit": 5},
    {"extra": 1},
]


@pytest.mark.parametrize("shape", METRIC_SHAPES, ids=[json.dumps(s)[:40] for s in METRIC_SHAPES])
def test_odd_metrics_are_one_line(shards: Path, capsys: pytest.CaptureFixture[str], shape: dict[str, Any]) -> None:
    edit(rep(shards) / "metrics.json", lambda d: d["metrics"][0].update(shape))
    merge_fails(shards, capsys, "metrics.json")


def test_a_metric_given_twice_is_refused(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(rep(shards) / "metrics.json", lambda d: d["metrics"].append(d["metrics"][0]))
    merge_fails(shards, capsys, "metrics.json", "given twice")


@pytest.mark.parametrize("text", [
    '{"format": 1, "deep": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"format": 1, "deep": ' + "[" * 70 + "]" * 70 + "}",
    '{"format": 1, "big": ' + "1" * 5000 + "}",
    '{"format": 1e999}',
    '{"format": 1, "x": "\\ud800"}',
])
def test_deep_or_huge_json_is_one_line(shards: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    (shards / "s1" / "run.json").write_text(text)
    merge_fails(shards, capsys, "run.json")


def test_a_file_over_the_size_bound_is_refused_unread(shards: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "MAX_JSON_BYTES", 1024)
    merge_fails(shards, capsys, "run.json", "more than the 1024")


def test_markup_in_a_reason_is_printed_as_text(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A reason is free text (guest output); the summary shows it, rich markup and all."""
    edit(rep(shards) / "cell.json", lambda d: d.update(status="fail", reason="[/] [bold]x[/bold] [link=file:///etc]"))
    rc = main(["merge", str(shards / "s1"), str(shards / "s2"), "-o", str(shards / "out")])
    captured = capsys.readouterr()
    assert rc == 1, captured.err
    assert "[/] [bold]x" in captured.out
    assert "&lt;" not in captured.out


def test_rep_dir_refuses_what_is_no_id() -> None:
    with pytest.raises(ValueError, match="not a cell id"):
        results.rep_dir(Path("/r"), "../x-0ff1d0ee", 0)
    with pytest.raises(ValueError, match="not a cell id"):
        results.rep_dir(Path("/r"), "x-0ff1d0ee", results.MAX_REPEAT)


def test_the_repetition_bound_is_the_configs() -> None:
    from harness.config import settings

    assert settings.REPEAT[1] == results.MAX_REPEAT
    assert results.REP_RE.fullmatch(str(results.MAX_REPEAT - 1))
    assert not results.REP_RE.fullmatch(str(results.MAX_REPEAT))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e29, 0.0])
def test_any_figure_reaches_the_summary_junit_and_report(shards: Path, capsys: pytest.CaptureFixture[str],
                                                         value: float) -> None:
    """Python's json writes NaN and Infinity; a report never crashes on one."""
    import xml.etree.ElementTree as ET

    edit(rep(shards) / "metrics.json", lambda d: [m.update(value=value) for m in d["metrics"]])
    rc = main(["merge", str(shards / "s1"), str(shards / "s2"), "-o", str(shards / "out")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    ET.parse(shards / "out" / "junit.xml")
    assert "kharness run" in (shards / "out" / "report.html").read_text()
