"""Hostile result directories given to `kharness compare`: nothing counts twice,
no value crashes a report, no name becomes markup, every problem is one line."""

from __future__ import annotations

import json
import math
import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from harness.cli import main
from harness.compare.load import Selection, load_samples
from harness.errors import ResultsError
from tests.fakes import synth

FORMATS = ("text", "markdown", "json", "html", "junit")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    cells = synth.bench_cells(2, 20, reps=3)
    synth.write_run(root / "base", cells)
    synth.write_run(root / "new", synth.planted(cells, "swiotlb.bounces", factor=1.5), seed=1)
    return root


@pytest.fixture
def dirs(pristine: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(pristine, tmp_path / "runs", symlinks=True)
    return tmp_path / "runs" / "base", tmp_path / "runs" / "new"


def reps(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "cells").glob("*/*"))


def edit(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def compare(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    rc = main(["compare", *map(str, argv)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


def refused(capsys: pytest.CaptureFixture[str], dirs: tuple[Path, Path], *names: str) -> str:
    rc, _, err = compare(capsys, *dirs)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    for name in names:
        assert name in err, err
    return err


# --- counts come from the disk ------------------------------------------------------


def test_a_metric_given_twice_is_refused_not_counted(dirs: tuple[Path, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = reps(dirs[1])[0] / "metrics.json"
    edit(path, lambda d: d["metrics"].append(d["metrics"][0]))
    refused(capsys, dirs, str(path), "given twice")


def test_repetition_directories_that_all_say_rep_0_are_refused(dirs: tuple[Path, Path],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's case: a 2-repetition cell was called "regressed, n 3/3"."""
    cell = reps(dirs[1])[0].parent
    shutil.rmtree(cell / "2")
    shutil.copytree(cell / "0", cell / "2")  # a third directory, a copy of repetition 0
    refused(capsys, dirs, f"{cell / '2' / 'cell.json'}", "says cell", "repetition 0")


def test_n_is_the_number_of_repetitions_on_disk(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cell = reps(dirs[1])[0].parent
    shutil.rmtree(cell / "2")
    rc, out, err = compare(capsys, *dirs, "--format", "json", "--all")
    assert rc in (0, 1), err
    doc = json.loads(out)
    cells = [c for c in doc["comparisons"][0]["cell_diffs"] if c["cell_id"]["new"] == cell.name]
    assert cells and cells[0]["metrics"] and all(m["new"]["n"] == 2 for m in cells[0]["metrics"] if m["new"])


def test_axes_that_differ_between_repetitions_are_refused(dirs: tuple[Path, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = reps(dirs[1])[1] / "cell.json"
    edit(path, lambda d: d["axes"].update(kernel="other"))
    refused(capsys, dirs, str(path), "axes differ")


# --- no value crashes a report -------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e29, -1e29])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_report_takes_any_value(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      value: float, fmt: str) -> None:
    for i, rd in enumerate(reps(dirs[1])):
        def change(d: dict[str, Any], i: int = i) -> None:
            for m in d["metrics"]:
                m.update(value=value if i % 2 else m["value"])

        edit(rd / "metrics.json", change)
    out = tmp_path / f"report.{fmt}"
    rc, _, err = compare(capsys, *dirs, "--format", fmt, "-o", out, "--all")
    assert rc in (0, 1), err
    text = out.read_text()
    if fmt == "json":
        json.loads(text)
    if fmt == "junit":
        ET.fromstring(text.encode())


@pytest.mark.parametrize("value", [1e300, -1e31, 10 ** 40, "many", True, None])
def test_a_value_no_kernel_measures_is_refused(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                               value: object) -> None:
    path = reps(dirs[1])[0] / "metrics.json"
    edit(path, lambda d: d["metrics"][0].update(value=value))
    refused(capsys, dirs, str(path), "malformed")


@pytest.mark.parametrize("text", [
    '{"format": 1, "metrics": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"format": 1, "metrics": [{"name": "a.b", "value": ' + "9" * 5000 + "}]}",
    '{"format": 1, "metrics": [{"name": "a.b", "value": 1, "x": ' + '{"a":' * 5000 + "1" + "}" * 5000 + "}]}",
    "\xff\xfe",
])
def test_deep_long_or_binary_metrics_json_is_one_line(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                                      text: str) -> None:
    path = reps(dirs[1])[0] / "metrics.json"
    path.write_bytes(text.encode("latin-1"))
    refused(capsys, dirs, str(path))


def test_links_are_not_followed(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = reps(dirs[1])[0] / "metrics.json"
    outside = tmp_path / "outside.json"
    shutil.copy(path, outside)
    path.unlink()
    path.symlink_to(outside)
    refused(capsys, dirs, f"{path}: a symbolic link")
    path.unlink()
    shutil.copy(outside, path)
    cell = reps(dirs[1])[0].parent
    cell.rename(tmp_path / "cell")
    cell.symlink_to(tmp_path / "cell")
    refused(capsys, dirs, f"{cell}: a symbolic link")


# --- names are text, never markup ----------------------------------------------------

EVIL = "b`<img src=x onerror=alert(1)>`|*x*[l](javascript:0)"


def evil_dirs(dirs: tuple[Path, Path]) -> tuple[Path, Path]:
    evil = dirs[1].parent / EVIL
    dirs[1].rename(evil)
    for rd in reps(evil):
        edit(rd / "metrics.json", lambda d: [m.update(unit="<script>u</script>`|") for m in d["metrics"]])
    return dirs[0], evil


def test_markdown_escapes_names_html_and_backticks(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base, evil = evil_dirs(dirs)
    rc, out, err = compare(capsys, base, evil, "--format", "markdown", "--all")
    assert rc in (0, 1), err
    html = MarkdownIt("commonmark").enable("table").render(out)
    assert "<img" not in html and "<script" not in html and 'href="javascript' not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown, as text
    assert "&lt;script&gt;u&lt;/script&gt;" in html
    for table in html.split("<table>")[1:]:  # every row keeps its 10 cells
        body = table.split("</table>")[0]
        for row in body.split("<tr>")[1:]:
            assert row.count("<td>") + row.count("<th>") == 10, row


def test_html_and_text_escape_names(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    base, evil = evil_dirs(dirs)
    rc, _, err = compare(capsys, base, evil, "--format", "html", "-o", tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert rc in (0, 1), err
    assert "<img" not in page and "<script" not in page
    rc, out, err = compare(capsys, base, evil, "--all")
    assert rc in (0, 1) and EVIL in out


def test_a_directory_name_that_is_not_utf8_reaches_every_format(dirs: tuple[Path, Path],
                                                                capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    odd = Path(os.fsdecode(os.fsencode(dirs[1].parent) + b"/n\xffw"))
    dirs[1].rename(odd)
    for fmt in FORMATS:
        out = tmp_path / f"r.{fmt}"
        rc, _, err = compare(capsys, dirs[0], odd, "--format", fmt, "-o", out)
        assert rc in (0, 1), err
        text = out.read_text()
        if fmt == "json":
            text = json.loads(text)["comparisons"][0]["new"]
        assert "n\\xffw" in text, fmt


def test_a_stray_name_in_cells_is_refused_naming_it(dirs: tuple[Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    stray = dirs[1] / "cells" / "<b>"
    stray.mkdir()
    refused(capsys, dirs, "'<b>' is not a cell id")


def test_an_id_in_run_json_that_is_no_id_is_refused(dirs: tuple[Path, Path],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    edit(dirs[1] / "run.json", lambda d: d["cells"].append({"id": "../../etc-0ff1d0ee", "repeat": 3}))
    refused(capsys, dirs, "run.json", "is not a cell id")


def test_the_fast_and_slow_readers_refuse_alike(dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.compare import fastread

    path = reps(dirs[1])[0] / "metrics.json"
    edit(path, lambda d: d["metrics"][0].update(extra=1))
    with pytest.raises(ResultsError, match="unknown key"):
        load_samples(dirs[1], Selection())
    monkeypatch.setattr(fastread, "_DECODER", None)
    with pytest.raises(ResultsError, match="unknown key"):
        load_samples(dirs[1], Selection())
