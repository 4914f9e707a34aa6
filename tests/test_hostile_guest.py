"""Hostile guest output and its way into reports: refused where it enters, escaped where it leaves.

Also the last line of defence: an exception nobody expected is "internal
error", exit 3, with the path of its traceback; never a traceback on the
terminal and never exit 1 (which means "the kernel failed").
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import cli
from harness.config.load import load
from harness.errors import EXIT_INFRA
from harness.formats import junit
from harness.results import load_run
from harness.run.cell import workload_metrics
from harness.run.runner import RunOptions, run
from harness.workloads import load as load_workload
from tests.fakes.guest import fake_boot
from tests.fakes.runs import guest_factory, workload

CONFIG = "name: h\ndefaults: {workloads: [dd-direct]}\ninclude: [{kernel: trixie-arm64}]\n"


@pytest.mark.parametrize("token", ["nan", "NaN", "-nan", "inf", "+inf", "-Infinity", "infinity", "1e999",
                                   "-1e400", "1e31", "1_000", "0x10", "1e", ".", "", "١٢", "1.5.2",
                                   "9" * 100])
def test_a_value_that_is_no_finite_number_fails_the_workload(token: str) -> None:
    metrics, bad = workload_metrics(f"metric dd.requests {token}\n", load_workload("dd-direct"))
    assert metrics == []
    assert bad and ("not a finite number" in bad[0] or "malformed" in bad[0])


@pytest.mark.parametrize("token,value", [("10", 10.0), ("-2.5", -2.5), ("1e3", 1000.0), (".5", 0.5),
                                         ("+7.", 7.0), ("1e30", 1e30)])
def test_plain_numbers_are_taken(token: str, value: float) -> None:
    metrics, bad = workload_metrics(f"metric dd.requests {token}\n", load_workload("dd-direct"))
    assert bad == [] and [m.value for m in metrics] == [value]


def test_a_metric_is_taken_once_and_collector_names_are_not_the_workloads() -> None:
    text = "metric dd.requests 1\nmetric dd.requests 2\nmetric swiotlb.bounces 0\nmetric fio.x.read.iops 9\n"
    metrics, bad = workload_metrics(text, load_workload("dd-direct"))
    assert [(m.name, m.value) for m in metrics] == [("dd.requests", 1.0)]
    assert any("given twice" in b for b in bad)
    assert sum("collector's" in b for b in bad) == 2


def test_a_guest_printing_nan_fails_its_workload_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    out = b"metric dd.requests nan\nmetric dd.write.seconds inf\nmetric dd.read.seconds 0.5\n"
    outcome = run(load(tmp_path / "c.yaml"), RunOptions(output=tmp_path / "out"),
                  fake_boot(guest_factory(workload("dd-direct", out))))
    rec = outcome.records[0]
    test = next(t for t in rec.tests if t.name == "workload:dd-direct")
    assert test.status == "fail"
    assert "dd.requests: 'nan' is not a finite number" in test.message
    values = [m.value for m in load_run(outcome.path).reps[0].metrics]
    assert all(math.isfinite(v) for v in values)
    assert outcome.exit_code == 1


CONTROL = "".join(chr(c) for c in range(32)) + "\x7f\x85\ud800\udfff\ufffe\uffff\U0010ffff]]>&<\"'"


def test_junit_of_any_text_is_well_formed() -> None:
    case = junit.Case(CONTROL, CONTROL, math.nan, "failure", CONTROL, kind=CONTROL, output=CONTROL * 3)
    suite = junit.Suite(CONTROL, (case, junit.Case("x", "y", -math.inf, "error", kind=CONTROL)),
                        ((CONTROL, CONTROL),), id=CONTROL)
    text = junit.render([suite], CONTROL)
    root = ET.fromstring(text.encode())
    assert root.find("testsuite") is not None


def test_junit_of_a_run_with_control_characters_in_reasons_is_well_formed(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    out = b"metric dd.requests \x01\x02\x1b[31m\n"
    outcome = run(load(tmp_path / "c.yaml"), RunOptions(output=tmp_path / "out"),
                  fake_boot(guest_factory(workload("dd-direct", out))))
    ET.parse(outcome.path / "junit.xml")


def test_an_unexpected_exception_is_an_internal_error_exit_3(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from harness.run import merge

    def boom(args: object) -> int:
        raise KeyError("a bug")

    monkeypatch.setattr(merge, "main", boom)
    rc = cli.main(["merge", "a", "-o", "b"])
    err = capsys.readouterr().err
    assert rc == EXIT_INFRA
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("kharness: internal error (KeyError: 'a bug'); the details are in ")
    report = Path(err.split("the details are in ")[1].split(": please")[0])
    try:
        details = report.read_text()
        assert "Traceback" in details and "KeyError: 'a bug'" in details and "boom" in details
        assert report.stat().st_mode & 0o077 == 0  # private: it may hold paths and arguments
    finally:
        report.unlink()


def test_an_exception_with_a_message_of_many_lines_is_still_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from harness.run import merge

    def boom(args: object) -> int:
        raise RecursionError("deep\n\x1b[31mred\nmore")

    monkeypatch.setattr(merge, "main", boom)
    assert cli.main(["merge", "a", "-o", "b"]) == EXIT_INFRA
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "\x1b" not in err
    Path(err.split("the details are in ")[1].split(": please")[0]).unlink()


def _hist(entries: list[tuple[int, int]]) -> str:
    rows = "".join(f"{{ size: {size} }} hitcount: {n}\n" for size, n in entries)
    total = sum(n for _, n in entries)
    return ("# trigger info: hist:keys=size:vals=hitcount:sort=hitcount:size=2048 [active]\n\n"
            f"{rows}\nTotals:\n    Hits: {total}\n    Entries: {len(entries)}\n    Dropped: 0\n")


def test_a_figure_no_result_file_could_hold_is_left_out() -> None:
    """Each number a hostile guest prints is in range; sizes times hitcounts need not be."""
    from harness.collect import snapshot
    from harness.results import MAX_VALUE
    from tests.fakes.runs import snapshot_text

    before = snapshot.parse(snapshot.split(snapshot_text(hist=_hist([(8, 1)]), uptime=10.0)))
    huge = [(10 ** 19 - 1, 1 << 63)]  # a size of 19 digits, hits within u64
    after = snapshot.parse(snapshot.split(snapshot_text(hist=_hist([(8, 1), *huge]), uptime=20.0)))
    got = {m.name: m.value for m in snapshot.metrics(before, after, "w")}
    assert "swiotlb.bounced_bytes" not in got  # 1e19 x 2^63 bytes: no measurement
    assert "swiotlb.bounces" in got and all(math.isfinite(v) and abs(v) <= MAX_VALUE for v in got.values())
