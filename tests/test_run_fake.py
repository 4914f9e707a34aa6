"""The runner's decisions, with a fake guest (no QEMU): statuses, testcases,
metrics, expectations, JUnit and exit codes."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
import xmlschema
from junitparser import JUnitXml

from harness.config.load import load
from harness.errors import GuestError, InfraError
from harness.machine.ssh import CommandResult
from harness.results import load_run
from harness.run import snapshots
from harness.run.runner import RunOptions, run
from tests.fakes.guest import FakeGuest, fake_boot, ok
from tests.fakes.runs import REAL, guest_factory, workload

SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"

CONFIG = """
name: fake
defaults:
  workloads: [idle, dd-direct]
matrix:
  kernel: [trixie-arm64, trixie-x86_64]
expectations:
  - {name: minalign-8, metric: slab.minalign, op: "==", value: 8, workload: idle}
"""

DD_OK = b"metric dd.write.seconds 0.5\nmetric dd.read.seconds 0.25\nmetric dd.requests 4000\n"


def _run(tmp_path: Path, make, config: str = CONFIG):  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config)
    return run(load(cfg), RunOptions(output=tmp_path / "out"), fake_boot(make))


def _tests(record) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {t.name: t.status for t in record.tests}


def test_fake_guest_passing_run_records_everything(tmp_path: Path) -> None:
    outcome = _run(tmp_path, guest_factory(workload("dd-direct", DD_OK)))
    assert outcome.exit_code == 0
    assert [r.status for r in outcome.records] == ["pass", "pass"]
    tests = _tests(outcome.records[0])
    assert tests["boot"] == "pass"
    assert tests["workload:idle"] == "pass" and tests["workload:dd-direct"] == "pass"
    assert tests["expect:minalign-8[idle]"] == "pass"
    assert tests["console:clean"] == "pass"
    loaded = load_run(outcome.path)
    metrics = {m.key: m for m in loaded.reps[0].metrics}
    assert metrics["boot:slab.minalign"].value == 8  # from the real trixie arm64 capture
    assert metrics["dd-direct:dd.requests"].value == 4000
    assert metrics["dd-direct:dd.read.seconds"].better == "lower"  # from the declaration
    rep_dir = loaded.reps[0].path
    assert (rep_dir / "raw" / "boot" / "slabinfo").is_file()
    assert (rep_dir / "raw" / "workload-dd-direct.txt").read_bytes() == DD_OK


def test_fake_guest_junit_validates_and_maps_statuses(tmp_path: Path) -> None:
    outcome = _run(tmp_path, guest_factory(workload("dd-direct", b"", status=3)))
    assert outcome.exit_code == 1
    junit = outcome.path / "junit.xml"
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(junit))
    xml = JUnitXml.fromfile(str(junit))
    suites = list(xml)
    assert len(suites) == 2
    failures = [c.name for s in suites for c in s if c.result and c.result[0]._tag == "failure"]
    assert failures.count("workload:dd-direct") == 2


def test_fake_guest_workload_timeout_is_a_failure(tmp_path: Path) -> None:
    outcome = _run(tmp_path, guest_factory(workload("dd-direct", b"partial", timed_out=True)))
    rec = outcome.records[0]
    assert rec.status == "fail"
    assert "timed out" in next(t.message for t in rec.tests if t.name == "workload:dd-direct")


def test_fake_guest_lost_ssh_is_an_error_not_a_pass(tmp_path: Path) -> None:
    boom = GuestError("the SSH connection to the guest is gone")
    outcome = _run(tmp_path, guest_factory(workload("dd-direct", error=boom)))
    assert outcome.records[0].status == "error"
    assert outcome.exit_code == 3


def test_fake_guest_panic_on_console_makes_lost_ssh_a_kernel_failure(tmp_path: Path) -> None:
    panic = (Path(__file__).parent / "data" / "collect" / "console-panic.log").read_text(errors="replace")
    boom = GuestError("the SSH connection to the guest is gone")
    outcome = _run(tmp_path, guest_factory(workload("dd-direct", error=boom), console=panic))
    rec = outcome.records[0]
    assert rec.status == "fail"
    console = [t for t in rec.tests if t.name.startswith("console:") and t.status == "fail"]
    assert console
    assert "Kernel panic" in console[0].output or "Oops" in console[0].output


def test_fake_guest_hostile_metric_lines_are_refused(tmp_path: Path) -> None:
    out = b"metric ../../etc/passwd 1\nmetric dd.requests NaNx\nmetric dd.requests 10\n"
    outcome = _run(tmp_path, guest_factory(workload("dd-direct", out)))
    rec = outcome.records[0]
    assert _tests(rec)["workload:dd-direct"] == "fail"
    names = {m.name for m in load_run(outcome.path).reps[0].metrics}
    assert "dd.requests" in names and not any("passwd" in n for n in names)


def test_fake_guest_unmeasured_expectation_fails(tmp_path: Path) -> None:
    config = CONFIG.replace("metric: slab.minalign", "metric: fio.nothing.iops")
    outcome = _run(tmp_path, guest_factory(workload("dd-direct", DD_OK)), config)
    rec = outcome.records[0]
    assert rec.status == "fail"
    assert "not measured" in next(t.message for t in rec.tests if t.name.startswith("expect:"))


def test_fake_boot_infra_failure_is_recorded_and_the_next_cell_runs(tmp_path: Path) -> None:
    calls = []

    def make(console_log: Path):  # type: ignore[no-untyped-def]
        calls.append(console_log)
        if len(calls) == 1:
            raise InfraError("qemu-system-aarch64 not found", "install qemu-system-arm")
        return guest_factory(workload("dd-direct", DD_OK))(console_log)

    outcome = _run(tmp_path, make)
    assert [r.status for r in outcome.records] == ["error", "pass"]
    first = json.loads((load_run(outcome.path).reps[0].path / "cell.json").read_text())
    assert first["tests"][0]["name"] == "boot" and "qemu-system-aarch64" in first["tests"][0]["message"]
    assert outcome.exit_code == 3


def test_fake_run_refuses_a_non_empty_output_dir(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("finished work")
    from harness.errors import UsageError

    with pytest.raises(UsageError, match="not empty"):
        _run(tmp_path, guest_factory())
    assert (tmp_path / "out" / "keep.txt").read_text() == "finished work"


def _dmesg(command: str, env: dict[str, str]) -> CommandResult | None:
    return ok(command, b"[    0.000000] Linux version 6.12.0-fake\n") if command == "dmesg" else None


@pytest.mark.parametrize("dd_times_out", [False, True])
def test_dmesg_is_saved_once_from_the_last_batch_or_on_its_own(tmp_path: Path, dd_times_out: bool) -> None:
    """dmesg rides in the last workload's batch; when that batch ends early (the
    workload's deadline), it is read on its own: raw/dmesg.txt either way, read once."""
    guests: list[FakeGuest] = []
    make = guest_factory(_dmesg, workload("dd-direct", DD_OK, timed_out=dd_times_out))

    def keep(console_log: Path) -> FakeGuest:
        guests.append(make(console_log))
        return guests[-1]

    outcome = _run(tmp_path, keep, CONFIG.replace("[trixie-arm64, trixie-x86_64]", "[trixie-arm64]"))
    rep_dir = load_run(outcome.path).reps[0].path
    assert (rep_dir / "raw" / "dmesg.txt").read_text().startswith("[    0.000000] Linux version")
    assert guests[0].commands.count("dmesg") == 1


def test_what_arming_the_histograms_cost_is_a_boot_metric(tmp_path: Path) -> None:
    """The setup step carries init's slabinfo from before and after arming the hist triggers;
    their difference in kmalloc pages is boot:slab.kharness_trace.bytes (once lost to a
    section name that clashed with the "trace" section)."""
    before = (REAL / "trixie-arm64" / "slabinfo").read_text()
    row = next(line for line in before.splitlines() if line.startswith("kmalloc-128 "))
    fields = row.split()
    fields[14] = str(int(fields[14]) + 10)  # num_slabs: 10 more one-page slabs
    after = before.replace(row, " ".join(fields))
    answer = (b"@@kharness-section init@@\nok modules=2\n@@kharness-section trace@@\nkharness-trace: ok\n"
              + f"@@kharness-section slabinfo-before-trace@@\n{before}"
                f"@@kharness-section slabinfo-after-trace@@\n{after}\n".encode()
              + b"@@kharness-section disks@@\nok\n")

    def setup(command: str, env: dict[str, str]) -> CommandResult | None:
        return ok(command, answer) if "kharness-setup.sh" in command else None

    outcome = _run(tmp_path, guest_factory(setup, workload("dd-direct", DD_OK)),
                   CONFIG.replace("[trixie-arm64, trixie-x86_64]", "[trixie-arm64]"))
    rep = load_run(outcome.path).reps[0]
    assert {m.key: m.value for m in rep.metrics}["boot:slab.kharness_trace.bytes"] == 10 * 4096
    assert (rep.path / "raw" / "trace-slabinfo-after").read_text() == after


def test_a_setup_section_dropped_is_a_problem_on_record(tmp_path: Path) -> None:
    answer = (b"@@kharness-section init@@\nok modules=2\n@@kharness-section trace@@\nkharness-trace: ok\n"
              b"@@kharness-section trace/x@@\n1\n@@kharness-section disks@@\nok\n")

    def setup(command: str, env: dict[str, str]) -> CommandResult | None:
        return ok(command, answer) if "kharness-setup.sh" in command else None

    outcome = _run(tmp_path, guest_factory(setup, workload("dd-direct", DD_OK)),
                   CONFIG.replace("[trixie-arm64, trixie-x86_64]", "[trixie-arm64]"))
    problems = (load_run(outcome.path).reps[0].path / "raw" / "problems.txt").read_text()
    assert "setup: section trace/x clashes" in problems



def test_output_after_a_batch_ended_is_a_problem_of_that_batch(tmp_path: Path) -> None:
    """A process a workload left running wrote after its batch ended: the next batch's first
    result counts the bytes dropped (GuestShell.run_steps), and the repetition's problems
    name the workload they came after, so its author sees it; the figures stand."""
    class Leaky(FakeGuest):
        batches = 0

        def run_steps(self, steps):  # type: ignore[no-untyped-def]
            results = super().run_steps(steps)
            self.batches += 1
            if self.batches == 3:  # setup, idle, then dd-direct's batch finds idle's leftovers
                results[0] = dataclasses.replace(results[0], dropped_before=5)
            return results

    def make(console_log: Path) -> FakeGuest:
        plain = guest_factory(workload("dd-direct", DD_OK))(console_log)
        return Leaky(console_log, plain.responders)

    outcome = _run(tmp_path, make, CONFIG.replace("[trixie-arm64, trixie-x86_64]", "[trixie-arm64]"))
    assert [r.status for r in outcome.records] == ["pass"]
    problems = (load_run(outcome.path).reps[0].path / "raw" / "problems.txt").read_text().splitlines()
    dropped = [p for p in problems if "after the batch had ended" in p]
    assert dropped == ["idle: the guest wrote 5 bytes after the batch had ended (a process left running?); "
                       "they were dropped"]

def test_the_next_batch_runs_while_the_last_snapshot_is_parsed(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest does not wait for the host's parsing: each snapshot's record waits until the
    next workload's batch has started (it would wait forever, here 30 s, were they in turn),
    and every figure still lands where it belongs."""
    started: dict[str, threading.Event] = {"idle": threading.Event(), "dd-direct": threading.Event()}
    waited: list[str] = []
    real_record = snapshots.record

    def record(res: CommandResult, raw_dir: Path, tag: str) -> object:
        following = {"boot": "idle", "after-idle": "dd-direct"}.get(tag)
        if following is not None:
            assert started[following].wait(30), f"{following}'s batch did not start while {tag} was parsed"
            waited.append(tag)
        return real_record(res, raw_dir, tag)

    def mark(command: str, env: dict[str, str]) -> CommandResult | None:
        for name, event in started.items():
            if f"/{name}.sh" in command and not event.is_set():
                event.set()
        return None

    monkeypatch.setattr(snapshots, "record", record)
    config = CONFIG.replace("kernel: [trixie-arm64, trixie-x86_64]", "kernel: [trixie-arm64]")
    outcome = _run(tmp_path, guest_factory(mark, workload("dd-direct", DD_OK)), config)
    assert waited == ["boot", "after-idle"] and outcome.exit_code == 0
    metrics = {m.key for m in load_run(outcome.path).reps[0].metrics}
    assert {"boot:slab.minalign", "idle:slab.kmalloc.bytes.delta", "dd-direct:slab.kmalloc.bytes.delta",
            "dd-direct:dd.requests"} <= metrics


def test_a_bad_snapshot_found_while_the_next_batch_runs_ends_the_repetition_there(tmp_path: Path) -> None:
    """idle's snapshot fails while dd-direct's batch already runs: the repetition is an error
    at that snapshot, dd-direct's figures are not recorded, and cell.json is written."""
    def bad_after_idle(command: str, env: dict[str, str]) -> CommandResult | None:
        if "kharness-snapshot.sh" in command:
            bad_after_idle.calls += 1  # type: ignore[attr-defined]
            if bad_after_idle.calls == 2:  # type: ignore[attr-defined]
                return ok(command, b"", status=1)
        return None

    bad_after_idle.calls = 0  # type: ignore[attr-defined]
    config = CONFIG.replace("kernel: [trixie-arm64, trixie-x86_64]", "kernel: [trixie-arm64]")
    outcome = _run(tmp_path, guest_factory(bad_after_idle, workload("dd-direct", DD_OK)), config)
    (record,) = outcome.records
    assert record.status == "error" and record.reason.startswith("snapshot:after-idle: snapshot 'after-idle' failed")
    assert "workload:dd-direct" not in _tests(record)
    loaded = load_run(outcome.path).reps[0]
    assert not any(m.workload == "dd-direct" for m in loaded.metrics)
