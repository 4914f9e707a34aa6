"""Property-based fuzzing of result directories and the writers that show them.

A result directory is untrusted (design.md). Its JSON files get random
values in every field (and random bytes): reading them gives a value or a
ResultsError naming the file, nothing else; what is accepted renders
(junit.xml, report.html, every compare format) without an exception; and
whatever text the writers get, JUnit stays well-formed XML and markdown
shows it literally.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from harness import results
from harness.compare import fastread, markdown
from harness.compare.diff import compare_runs
from harness.compare.load import Selection, load_samples
from harness.compare.rules import Rules
from harness.config.load import load
from harness.errors import ResultsError
from harness.formats import junit
from harness.run import runner
from harness.run.runner import RunOptions, run
from tests.test_fuzz_collect import FUZZ, bounded
from tests.test_run_parallel import SlowBoots

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["pass", "fail", "../x-0ff1d0ee", "[/]", "<b>", "\x00"]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def pristine() -> Iterator[Path]:
    """A finished two-cell run with a failing repetition (so reports show failures too)."""
    with tempfile.TemporaryDirectory(prefix="kharness-fuzz-") as d:
        root = Path(d)
        (root / "m.yaml").write_text("name: m\ndefaults: {workloads: [idle], memory: 128, cpus: 1}\n"
                                     "matrix:\n  kernel: [trixie-x86_64, bookworm-x86_64]\n")
        run(load(root / "m.yaml"), RunOptions(output=root / "run", jobs=1), SlowBoots(0.0, panic=("",)))
        yield root / "run"


@pytest.fixture
def work(pristine: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kharness-fuzz-") as d:
        yield Path(d)


def fresh(pristine: Path, work: Path) -> Path:
    target = work / "run"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(pristine, target)
    return target


@st.composite
def edited(draw: st.DrawFn, doc: Any) -> Any:
    """`doc` with a few fields (at any depth) replaced, removed or added."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 4))):
        node, key = doc, None
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = draw(st.sampled_from(keys))
            if not isinstance(node[key], dict | list) or not node[key]:
                break
            node = node[key]
        if isinstance(node, dict):
            action = draw(st.sampled_from(("set", "delete", "add")))
            if action == "add" or not node:
                node[draw(st.text(max_size=6))] = draw(JSON)
            elif action == "delete":
                del node[draw(st.sampled_from(list(node)))]
            else:
                node[draw(st.sampled_from(list(node)))] = draw(JSON)
        elif isinstance(node, list) and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(JSON)
    return doc


def contents(original: Any) -> st.SearchStrategy[bytes]:
    as_json = edited(original).map(lambda d: json.dumps(d).encode())
    return st.one_of(as_json, as_json, st.binary(max_size=200), JSON.map(lambda d: json.dumps(d).encode()))


def first_rep(run_dir: Path) -> Path:
    return sorted((run_dir / "cells").glob("*/0"))[0]


def _doc(pristine: Path, name: str) -> Any:
    path = pristine / results.RUN_FILE if name == results.RUN_FILE else first_rep(pristine) / name
    return json.loads(path.read_text())


def renders(run_dir: Path) -> None:
    """What is accepted goes through every writer: junit.xml, report.html, compare's formats."""
    runner.write_reports(run_dir)
    ET.parse(run_dir / "junit.xml")
    samples = load_samples(run_dir, Selection())
    cmp = compare_runs(samples, samples, Rules())
    from harness.compare import htmlpage, jsondoc, junitreport, text

    for render in (markdown.render, htmlpage.render, text.render):
        render([cmp])
    jsondoc.render([cmp])
    ET.fromstring(junitreport.render([cmp]).encode())


def _fuzz_file(pristine: Path, work: Path, name: str, data: bytes) -> None:
    run_dir = fresh(pristine, work)
    path = run_dir / results.RUN_FILE if name == results.RUN_FILE else first_rep(run_dir) / name
    path.write_bytes(data)
    try:
        bounded(results.load_run, run_dir)
    except ResultsError as exc:
        assert str(exc.problem).startswith(results.shown(path)), exc
        assert "\n" not in str(exc)
        if name != results.RUN_FILE:  # compare refuses it too (it reads run.json loosely)
            with pytest.raises(ResultsError):
                load_samples(run_dir, Selection())
            return
        try:
            samples = load_samples(run_dir, Selection())
        except ResultsError:
            return
        markdown.render([compare_runs(samples, samples, Rules())])
        return
    bounded(renders, run_dir)


@pytest.mark.parametrize("name", [results.RUN_FILE, results.CELL_FILE, results.METRICS_FILE])
def test_result_files_of_any_shape(pristine: Path, work: Path, name: str) -> None:
    @FUZZ
    @given(contents(_doc(pristine, name)))
    def fuzz(data: bytes) -> None:
        _fuzz_file(pristine, work, name, data)

    fuzz()


@FUZZ
@given(st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a.b", "c.d", "x"]),
                                       "value": st.one_of(st.floats(), st.integers(-(10 ** 40), 10 ** 40)),
                                       "workload": st.sampled_from(["boot", "w"])},
                                      optional={"unit": st.text(max_size=70), "kind": st.text(max_size=8)}),
                max_size=6))
def test_the_fast_and_slow_metrics_readers_agree(rows: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "metrics.json"
        path.write_text(json.dumps({"format": results.RESULT_FORMAT, "metrics": rows}))
        try:
            fast = fastread.metric_values(path)
        except ResultsError:
            fast = None
        try:
            slow = [(m.key, m.value) for m in results.load_metrics(Path(d))]
        except ResultsError:
            slow = None
    # The fast reader checks what compare takes from every file (keys, values); the slow one
    # all of it (compare reads units and directions the slow way, where a metric first shows).
    assert fast is not None or slow is None, (fast, slow)
    if fast is not None and slow is not None:
        assert fast[0] == [k for k, _ in slow]
        assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(fast[1], [v for _, v in slow],
                                                                               strict=True))


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([b"", b"{", b"[" * 70, b'{"format": 1, "x": ']))
def test_parse_json_of_any_bytes(data: bytes, prefix: bytes) -> None:
    try:
        value = bounded(results.parse_json, prefix + data, Path("f.json"))
    except ResultsError as exc:
        assert str(exc).startswith("f.json: ")
        return
    assert not results._depth_over(value, results.MAX_DEPTH)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=60) | st.sampled_from(
    ["\x00\x01\x1b[31m", "]]>", "\ud800", "\ufffe", "&amp;", "<![CDATA[x]]>", "a" * 5000])


@FUZZ
@given(st.lists(st.tuples(TEXT, TEXT, TEXT, TEXT, st.floats()), min_size=1, max_size=4), TEXT)
def test_junit_of_any_text_parses(cases: list[tuple[str, str, str, str, float]], name: str) -> None:
    built = tuple(junit.Case(n, c, s, "failure" if i % 3 == 0 else "error" if i % 3 == 1 else "pass", m, kind=k,
                             output=m * 2) for i, (n, c, m, k, s) in enumerate(cases))
    suite = junit.Suite(name, built, tuple((f"p{i}{c[0]}", c[2]) for i, c in enumerate(cases)), id=f"s{name}")
    ET.fromstring(junit.render([suite], name).encode())


MD = MarkdownIt("commonmark").enable("table")


@FUZZ
@given(TEXT, TEXT)
def test_markdown_shows_any_text_literally(free: str, name: str) -> None:
    table = f"| a | b |\n|---|---|\n| {markdown.escape(free)} | {markdown.code(name)} |\n"
    html = MD.render(table)
    assert html.count("<td>") == 2  # nothing split the row or broke out of it
    body = html.split("<tbody>")[1]
    for tag in ("<a ", "<img", "<em>", "<strong>", "<script", "<b>"):
        assert tag not in body.replace("<code>", ""), (free, name, html)
