"""Half of the JSON document encoded, and the later directories loaded, by a forked child:
the same bytes and runs, and this process's own work whenever the child cannot be used."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cli import main
from harness.compare import beside, jsondoc, load
from harness.compare.diff import compare_runs
from harness.compare.load import Selection, check_selection, load_samples
from harness.compare.rules import Rules
from harness.errors import ResultsError
from tests.fakes import synth

needs_fork = pytest.mark.skipif(not beside.usable() or beside.cpus() < 2, reason="no child can be forked here")


@pytest.fixture(autouse=True)
def idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child whether or not a CPU is idle now (the test suite keeps them busy)."""
    monkeypatch.setattr(beside, "_idle_cpu", lambda: beside.cpus() >= 2)


def test_no_child_when_every_cpu_is_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beside, "_idle_cpu", lambda: False)
    assert beside.beside(lambda: b"x", lambda: 1) == (1, None)


@needs_fork
def test_the_child_works_beside_the_parent() -> None:
    big = os.urandom(3 << 20)  # far more than a pipe holds
    value, sent = beside.beside(lambda: str(os.getpid()).encode() + big, os.getpid)
    assert value == os.getpid()
    assert sent is not None
    assert int(bytes(sent[:-len(big)])) != os.getpid()
    assert sent[-len(big):] == big


def _raises() -> bytes:
    raise ValueError("in the child")


def test_a_child_that_fails_gives_none() -> None:
    value, sent = beside.beside(_raises, lambda: 7)
    assert (value, sent) == (7, None)
    value, sent = beside.beside(lambda: os._exit(0), lambda: 8)  # nothing sent, exit 0
    assert (value, sent) == (8, None)


@needs_fork
def test_the_parents_error_is_raised_and_the_child_reaped(monkeypatch: pytest.MonkeyPatch) -> None:
    forked: list[int] = []
    fork = os.fork

    def recorded() -> int:
        pid = fork()
        if pid:
            forked.append(pid)
        return pid

    def parent() -> int:
        raise KeyError("in the parent")

    monkeypatch.setattr(os, "fork", recorded)
    with pytest.raises(KeyError):
        beside.beside(lambda: b"x", parent)
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)  # killed and reaped: no child left behind


def test_no_child_when_other_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "active_count", lambda: 2)
    forks: list[int] = []

    def fork() -> int:
        forks.append(1)
        return 0

    monkeypatch.setattr(os, "fork", fork)
    assert beside.beside(lambda: b"x", lambda: 1) == (1, None)
    assert not forks


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    metrics = synth.bench_metrics(30)
    cells = [synth.SynthCell((("kernel", k),), metrics) for k in "abcdefg"]
    cells.append(synth.SynthCell((("kernel", "h"),), metrics[:10], statuses=("pass", "fail", "pass")))
    changed = synth.planted(cells, "fio.*", factor=0.7)
    return (synth.write_run(tmp_path / "base", cells), synth.write_run(tmp_path / "new", changed, seed=1),
            synth.write_run(tmp_path / "new2", changed[2:], seed=2))


def _no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beside, "usable", lambda: False)


@pytest.mark.parametrize("child", [True, False])
def test_the_json_document_encoded_in_halves_is_the_same(runs: tuple[Path, Path, Path],
                                                         monkeypatch: pytest.MonkeyPatch, child: bool) -> None:
    loaded = [load_samples(d, Selection()) for d in runs]
    comparisons = [compare_runs(loaded[0], r, Rules()) for r in loaded[1:]]
    whole = jsondoc.render(comparisons)
    monkeypatch.setattr(jsondoc, "SPLIT_METRICS", 1)
    if not child:
        _no_child(monkeypatch)
    assert jsondoc.render(comparisons) == whole


def test_compare_with_children_prints_the_same(runs: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["compare", *map(str, runs), "--format", "json"]
    rc = main(argv)
    whole = capsys.readouterr()
    monkeypatch.setattr(jsondoc, "SPLIT_METRICS", 1)
    assert main(argv) == rc
    assert capsys.readouterr() == whole


def test_compare_with_children_writes_the_same_file(runs: tuple[Path, Path, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["compare", *map(str, runs), "--format", "json", "-o"]
    rc = main([*argv, str(tmp_path / "serial.json")])
    monkeypatch.setattr(jsondoc, "SPLIT_METRICS", 1)
    monkeypatch.setattr(load, "BESIDE_CELLS", 0)
    assert main([*argv, str(tmp_path / "children.json")]) == rc
    assert (tmp_path / "children.json").read_bytes() == (tmp_path / "serial.json").read_bytes()


@needs_fork
def test_the_callers_signal_handlers_do_not_run_in_the_child(tmp_path: Path) -> None:
    """A handler of the caller's (cleaning up what the parent owns) is the default again in the child."""
    import signal

    ran = tmp_path / "ran"

    def handler(signum: int, frame: object) -> None:
        ran.write_text(str(os.getpid()))

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        def child() -> bytes:
            return str(signal.getsignal(signal.SIGUSR1)).encode()

        _, sent = beside.beside(child, lambda: None)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert sent is not None and bytes(sent) == str(signal.SIG_DFL).encode()
    assert not ran.exists()


def test_what_the_child_left_counts_only_whole() -> None:
    fd = os.memfd_create("test-beside")
    try:
        os.write(fd, beside._HEADER.pack(10) + b"12345")
        assert beside._received(fd) is None  # less than it said
        os.write(fd, b"67890")
        got = beside._received(fd)
        assert got is not None and bytes(got) == b"1234567890"
        os.write(fd, b"!")
        assert beside._received(fd) is None  # more than it said
    finally:
        os.close(fd)
    empty = os.memfd_create("test-beside")
    try:
        assert beside._received(empty) is None  # nothing at all
    finally:
        os.close(empty)


# --- the later directories loaded by a child ---------------------------------


@pytest.fixture
def varied(tmp_path: Path) -> list[Path]:
    """Directories with what a load records besides values: a failed, an unfinished and an
    error repetition, a cell with nothing finished, metrics one side has, axes of all kinds."""
    metrics = synth.bench_metrics(12)
    cells = [synth.SynthCell((("kernel", k), ("iodepth", 4), ("coherent", k == "a")), metrics) for k in "abcd"]
    cells += [synth.SynthCell((("kernel", "f"), ("iodepth", 4), ("coherent", False)), metrics,
                              statuses=("pass", "fail", "error"), unfinished=(2,)),
              synth.SynthCell((("kernel", "u"), ("iodepth", 4), ("coherent", False)), metrics, unfinished=(0, 1, 2))]
    more = [*cells[:3], synth.SynthCell(cells[3].axes, (*metrics, synth.SynthMetric("only.new", 5.0)))]
    return [synth.write_run(tmp_path / "base", cells), synth.write_run(tmp_path / "new", more, seed=1),
            synth.write_run(tmp_path / "new2", cells[1:], seed=2)]


def _child_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "BESIDE_CELLS", 0)


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("selection", [Selection(), Selection(metrics=("fio.*", "only.*")),
                                       Selection(where=(("kernel", ("a", "d", "f")),), ignore_axes=("iodepth",))])
def test_runs_a_child_loads_are_the_ones_this_process_loads(varied: list[Path], monkeypatch: pytest.MonkeyPatch,
                                                            count: int, selection: Selection) -> None:
    selection, serial = replace(selection), replace(selection)  # (fresh: they record what they matched)
    expected = [load_samples(d, serial) for d in varied[:count]]
    _child_always(monkeypatch)
    sent: list[object] = []

    def spied(child_work: Callable[[], bytes], parent_work: Callable[[], object]) -> tuple[object, object]:
        value, data = beside.beside(child_work, parent_work)
        sent.append(data)
        return value, data

    monkeypatch.setattr(load, "beside", spied)
    assert load.load_runs(varied[:count], selection) == expected
    if beside.usable() and beside.cpus() >= 2:
        assert sent and sent[0] is not None  # the child's runs, not this process's second try
    assert (selection._patterns_hit, selection._metric_cache) == (serial._patterns_hit, serial._metric_cache)


def test_a_pattern_only_the_childs_directory_matches_is_matched(varied: list[Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _child_always(monkeypatch)
    selection = Selection(metrics=("only.new",))
    runs = load.load_runs(varied[:2], selection)
    check_selection(runs, selection)  # no "matches no metric"
    assert selection.unused_patterns() == []


@pytest.mark.parametrize("child", [True, False])
def test_a_bad_file_in_the_childs_directory_is_refused_as_a_serial_load_refuses_it(
        varied: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], child: bool) -> None:
    bad = sorted((varied[1] / "cells").glob("*/0/metrics.json"))[0]
    bad.write_text(bad.read_text()[:100])
    worse = sorted((varied[2] / "cells").glob("*/0/cell.json"))[0]
    worse.write_text("{}")
    argv = ["compare", *map(str, varied)]
    assert main(argv) == 2
    serial = capsys.readouterr()
    if child:
        _child_always(monkeypatch)
    else:
        _no_child(monkeypatch)
    with pytest.raises(ResultsError, match="not valid JSON"):
        load.load_runs(varied, Selection())
    assert main(argv) == 2
    assert capsys.readouterr() == serial
    assert str(bad) in serial.err


@needs_fork
def test_a_bad_baseline_is_refused_while_the_child_loads(varied: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (varied[0] / "run.json").write_text("[")
    _child_always(monkeypatch)
    with pytest.raises(ResultsError, match=r"run\.json: not valid JSON"):
        load.load_runs(varied, Selection())


def test_small_directories_are_loaded_here(varied: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "beside", lambda *_: pytest.fail("a child for a few cells"))
    assert load.load_runs(varied, Selection()) == [load_samples(d, Selection()) for d in varied]


def test_compare_with_a_child_loading_prints_the_same(varied: list[Path], monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for fmt in ("json", "text"):
        argv = ["compare", *map(str, varied), "--format", fmt, "--all"]
        rc = main(argv)
        whole = capsys.readouterr()
        with monkeypatch.context() as m:
            _child_always(m)
            assert main(argv) == rc
        assert capsys.readouterr() == whole


def test_a_run_the_child_cannot_pack_is_loaded_here(varied: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """An integer msgpack cannot hold (run.json is read as it is) fails the child, not the load."""
    path = varied[1] / "run.json"
    doc = json.loads(path.read_text())
    doc["config"]["seed"] = 10**30
    path.write_text(json.dumps(doc))
    expected = [load_samples(d, Selection()) for d in varied]
    _child_always(monkeypatch)
    assert load.load_runs(varied, Selection()) == expected
