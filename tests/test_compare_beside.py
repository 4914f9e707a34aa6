"""Half of the JSON document encoded by a forked child: the same bytes, and this process's
own work whenever the child cannot be used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.compare import beside, jsondoc
from harness.compare.diff import compare_runs
from harness.compare.load import Selection, load_samples
from harness.compare.rules import Rules
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

    monkeypatch.setattr(beside.os, "fork", recorded)
    with pytest.raises(KeyError):
        beside.beside(lambda: b"x", parent)
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)  # killed and reaped: no child left behind


def test_no_child_when_other_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(beside.threading, "active_count", lambda: 2)
    forks: list[int] = []
    monkeypatch.setattr(beside.os, "fork", lambda: forks.append(1) or 0)
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
        assert beside._received(fd) == bytearray(b"1234567890")
        os.write(fd, b"!")
        assert beside._received(fd) is None  # more than it said
    finally:
        os.close(fd)
    empty = os.memfd_create("test-beside")
    try:
        assert beside._received(empty) is None  # nothing at all
    finally:
        os.close(empty)
