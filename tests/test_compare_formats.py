"""Every --format parses as what it claims to be, and carries the verdicts."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
import xmlschema
from junitparser import Failure, JUnitXml, Skipped

from harness import __version__
from harness.cli import main
from harness.compare import jsondoc
from harness.compare.diff import Comparison, MetricDiff, compare_runs
from harness.compare.judge import VERDICTS
from harness.compare.load import CellSamples, Selection, load_samples
from harness.compare.rules import Rules
from harness.compare.stats import summarize
from harness.formats.svg import Chart, Series
from harness.formats.svg import human as compact
from harness.formats.svg import render as bar_chart
from tests.fakes import synth

SHARED_XSD = Path(__file__).parent / "data" / "junit-10.xsd"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three runs: a baseline, one with a bounce regression, one that saves slab memory."""
    tmp = tmp_path_factory.mktemp("runs")
    base = synth.bench_cells(4, 60, reps=3, noise=0.005)
    worse = synth.planted(base, "swiotlb.bounces", factor=1.3)
    better = synth.planted(base, "slab.kmalloc-*.bytes", factor=0.8)
    return [synth.write_run(tmp / "base", base), synth.write_run(tmp / "worse", worse, seed=1),
            synth.write_run(tmp / "better", better, seed=2)]


def compare(capsys: pytest.CaptureFixture[str], dirs: list[Path], *argv: str) -> tuple[int, str]:
    rc = main(["compare", *map(str, dirs), *argv])
    return rc, capsys.readouterr().out


def test_text_is_a_table(dirs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = compare(capsys, dirs)
    assert rc == 1
    assert "regressed" in out and "improved" in out
    assert "verdict" in out  # the header
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_markdown_has_a_table_per_comparison(dirs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = compare(capsys, dirs, "--format", "markdown")
    assert rc == 1
    assert out.count("| cell | metric | baseline | new |") == 2
    assert re.search(r"^\|---\|---\|", out, re.M)
    assert "**regressed**" in out and "**improved**" in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert {line.count(" | ") for line in rows} == {9}  # 10 columns on every row


def test_json_loads_and_lists_every_metric(dirs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = compare(capsys, dirs, "--format", "json")
    doc = json.loads(out)
    assert rc == 1
    assert doc["regressions"] == doc["comparisons"][0]["regressions"] > 0
    counts = doc["comparisons"][1]["metrics"]
    assert sum(counts.values()) == 4 * 60
    assert counts["regressed"] == 0 and counts["improved"] > 0


def test_junit_validates_and_has_a_failure_per_regression(dirs: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = compare(capsys, dirs, "--format", "junit")
    assert rc == 1
    xmlschema.XMLSchema(str(SHARED_XSD)).validate(out)
    xml = JUnitXml.fromstring(out)
    suites = list(xml)
    assert len(suites) == 2
    failures = [c for c in suites[0] if any(isinstance(r, Failure) for r in c.result)]
    # swiotlb.bounces and bounced_bytes... only the planted name: bounces, per workload and cell
    assert failures and all(c.name.endswith(":swiotlb.bounces") for c in failures)
    assert xml.failures == len(failures)
    assert not [c for c in suites[1] if any(isinstance(r, Failure) for r in c.result)]


def test_junit_skips_what_was_not_judged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synth.bench_cells(2, 10, reps=1)
    dirs = [synth.write_run(tmp_path / "a", base), synth.write_run(tmp_path / "b", base, seed=1)]
    rc, out = compare(capsys, dirs, "--format", "junit")
    xmlschema.XMLSchema(str(SHARED_XSD)).validate(out)
    cases = [c for s in JUnitXml.fromstring(out) for c in s]
    skipped = [c for c in cases if any(isinstance(r, Skipped) for r in c.result)]
    assert len(skipped) == 2 * 10  # every metric of both cells: one repetition a side
    assert "too few samples" in skipped[0].result[0].message
    assert rc == 0


def test_html_is_self_contained_with_plots(dirs: list[Path], capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    out_file = tmp_path / "report.html"
    rc, _ = compare(capsys, dirs, "--format", "html", "-o", str(out_file))
    page = out_file.read_text()
    assert rc == 1
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") >= 4 * 4  # slab, bounces, bounce sizes, fio, per cell
    assert "slab bytes per kmalloc size class" in page
    assert "swiotlb bounces per workload" in page and "fio IOPS" in page
    assert not re.search(r"(src|href)\s*=|https?://|url\(", page)  # nothing fetched
    for name in ("base", "worse", "better"):  # one series per directory
        assert f">{name}</text>" in page


def test_svg_bar_chart() -> None:
    chart = Chart("t <1>", "bytes", ("8", "16"),
                  (Series("a", (100.0, None), (5.0, 0.0)), Series("b", (50.0, 2e6), (0.0, 0.0))))
    svg = bar_chart(chart)
    assert svg.count("<rect") == 2 + 3  # legend squares + bars; the missing one is a dash
    assert "t &lt;1&gt;" in svg
    assert compact(2_500_000) == "2.5M" and compact(999) == "999"


def _plain_document(comparisons: list[Comparison]) -> dict[str, Any]:
    """The JSON document as plain dicts, as jsondoc made it before it streamed Structs."""

    def side(values: list[float] | None) -> dict[str, Any] | None:
        if not values:
            return None
        s = summarize(values)
        return {"n": s.n, "mean": s.mean, "stddev": s.stddev, "min": s.min, "max": s.max, "values": values}

    def metric(m: MetricDiff, cmp: Comparison) -> dict[str, Any]:
        base = m.summary("base")
        return {"key": m.key, "workload": m.workload, "name": m.name, "unit": m.info.unit,
                "kind": m.info.kind, "better": m.info.better, "baseline": side(m.base), "new": side(m.new),
                "change_pct": m.percent(), "noise_floor": cmp.rules.rule_for(m.key).floor(base.mean) if base else None,
                "p": m.judgement.p, "verdict": m.judgement.verdict, "reason": m.judgement.reason,
                "suspect": m.suspect}

    def status(cell: CellSamples | None) -> dict[str, Any] | None:
        return None if cell is None else {
            "status": cell.status, "reps": {str(k): v for k, v in sorted(cell.statuses.items())},
            "unfinished": cell.unfinished, "used": cell.used}

    def comparison(cmp: Comparison) -> dict[str, Any]:
        metrics, cells = cmp.metric_counts(), cmp.presence_counts()
        return {
            "baseline": cmp.base.shown_path, "new": cmp.new.shown_path, "regressions": cmp.regressions,
            "metrics": {v: metrics[v] for v in VERDICTS},
            "cells": {"matched": cells["both"], "new": cells["new"], "gone": cells["gone"]},
            "missing": {"baseline": cmp.base.missing, "new": cmp.new.missing},
            "cell_diffs": [{
                "slug": c.slug, "axes": c.axes, "presence": c.presence,
                "cell_id": {"baseline": c.base.cell_id if c.base else None, "new": c.new.cell_id if c.new else None},
                "status": {"baseline": status(c.base), "new": status(c.new), "verdict": c.status.verdict,
                           "reason": c.status.reason},
                "metrics": [metric(m, cmp) for m in c.metrics],
            } for c in cmp.cells],
        }

    first = comparisons[0]
    return {"format": jsondoc.DOC_FORMAT, "tool": f"kharness {__version__} compare",
            "baseline": first.base.shown_path, "alpha": first.rules.alpha, "min_samples": first.rules.min_samples,
            "regressions": sum(c.regressions for c in comparisons),
            "comparisons": [comparison(c) for c in comparisons]}


def test_json_is_the_plain_document_streamed(tmp_path: Path) -> None:
    """Made a cell at a time into one buffer, the document is byte for byte the plain one: with
    failed and unfinished repetitions, one-sided cells and metrics, NaN, and a comparison of no cells."""
    metrics = synth.bench_metrics(30)
    cells = [synth.SynthCell((("kernel", "a"),), metrics), synth.SynthCell((("kernel", "b"),), metrics[:20],
             statuses=("pass", "fail", "pass")),
             synth.SynthCell((("kernel", "c"),), metrics, unfinished=(2,)),
             synth.SynthCell((("kernel", "gone"),), metrics, reps=1)]
    changed = [*synth.planted(cells[:2], "fio.*", factor=0.7),
               synth.SynthCell((("kernel", "c"),), metrics[5:]), synth.SynthCell((("kernel", "new"),), metrics)]
    base, new = synth.write_run(tmp_path / "base", cells), synth.write_run(tmp_path / "new", changed, seed=1)
    nan_file = sorted((new / "cells").glob("a-*/1"))[0] / "metrics.json"
    doc = json.loads(nan_file.read_text())
    doc["metrics"][0]["value"] = math.nan
    nan_file.write_text(json.dumps(doc))
    # NaN in a baseline (its noise floor), and a baseline of zeros, one of them negative (no %change)
    for i, rep in enumerate(sorted((base / "cells").glob("b-*/*"))):
        doc = json.loads((rep / "metrics.json").read_text())
        doc["metrics"][1]["value"] = math.nan if i == 1 else doc["metrics"][1]["value"]
        doc["metrics"][2]["value"] = -0.0 if i == 0 else 0.0
        (rep / "metrics.json").write_text(json.dumps(doc))
    empty = synth.write_run(tmp_path / "empty", [])
    runs = [load_samples(d, Selection()) for d in (base, new, empty)]
    comparisons = [compare_runs(runs[0], runs[1], Rules()), compare_runs(runs[2], runs[2], Rules())]
    assert {c.presence for c in comparisons[0].cells} == {"both", "new", "gone"} and not comparisons[1].cells
    text = jsondoc.render(comparisons)
    assert text == msgspec.json.encode(_plain_document(comparisons)).decode() + "\n"
    assert json.loads(text)["comparisons"][1]["cell_diffs"] == []


def test_json_to_stdout_and_to_a_file_is_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Written as UTF-8 bytes, not decoded first: the same text, non-ASCII included."""
    metrics = synth.bench_metrics(5)
    cells = [synth.SynthCell((("kernel", "a"),), metrics)]
    base, new = synth.write_run(tmp_path / "größer ✓", cells), synth.write_run(tmp_path / "new", cells, seed=1)
    comparisons = [compare_runs(load_samples(base, Selection()), load_samples(new, Selection()), Rules())]
    document = jsondoc.render(comparisons)
    assert "größer ✓" in document
    assert main(["compare", str(base), str(new), "--format", "json"]) == 0
    assert capsys.readouterr().out == document
    out = tmp_path / "doc.json"
    assert main(["compare", str(base), str(new), "--format", "json", "-o", str(out)]) == 0
    assert out.read_bytes() == document.encode()
