"""Faults an unattended nightly run meets, provoked for real under QEMU.

Each test runs `kharness run` on a real Debian kernel with a workload from
tests/faults/workloads/ that breaks something, and checks that kharness
records the right status, keeps going and leaves no QEMU behind.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.results import RunResult, load_run
from tests.faults.procs import qemu_children, qemu_processes

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("faults")]

WORKLOADS = Path(__file__).parent / "workloads"


def run_config(tmp_path: Path, body: str) -> tuple[int, RunResult]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: fault\nworkload_dirs: [{WORKLOADS}]\n{body}")
    rc = main(["run", "-q", str(cfg), "-o", str(tmp_path / "out")])
    return rc, load_run(tmp_path / "out")


def by_workloads(run: RunResult) -> dict[str, object]:
    return {r.record.axes["workloads"]: r.record for r in run.reps}


def cases_of(record) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {t.name: t for t in record.tests}


def test_guest_never_ready_is_an_error_with_the_console_tail(tmp_path: Path) -> None:
    rc, run = run_config(tmp_path, """
# init is replaced by a `cat` of the console: the kernel boots, init never reports ready.
defaults: {workloads: [idle], timeouts: {boot: 15, cell: 60}, cmdline: [rdinit=/bin/busybox, "--", cat]}
matrix: {kernel: [trixie-arm64, trixie-x86_64]}
""")
    assert rc == 3
    assert len(run.reps) == 2  # the second cell ran after the first timed out
    for rep in run.reps:
        boot = cases_of(rep.record)["boot"]
        assert boot.status == "error" and "not ready after" in boot.message  # type: ignore[attr-defined]
        assert boot.output  # type: ignore[attr-defined]  # the console tail
    assert not qemu_children()


def test_kernel_panic_during_a_workload_is_a_failure_and_the_next_cell_is_fine(tmp_path: Path) -> None:
    rc, run = run_config(tmp_path, """
defaults: {timeouts: {boot: 180, workload: 60}}
matrix:
  kernel: [trixie-arm64]
  workloads: [[panic], [idle]]
""")
    cells = by_workloads(run)
    panicked, fine = cells["panic"], cells["idle"]
    assert panicked.status == "fail"  # type: ignore[attr-defined]
    console = [t for t in panicked.tests if t.name.startswith("console:")]  # type: ignore[attr-defined]
    assert console and "Kernel panic" in console[0].output
    # QEMU ended with the panic (panic=-1, -no-reboot): the workload is the kernel's failure at once,
    # not a timeout (an SSH channel left hanging would have been "timed out after 60s")
    wl = cases_of(panicked)["workload:panic"]
    assert wl.status == "fail" and wl.message.startswith("the kernel failed: ")  # type: ignore[attr-defined]
    assert fine.status == "pass"  # type: ignore[attr-defined]
    assert rc == 1
    assert not qemu_children()


def test_ssh_server_killed_mid_workload_is_an_error_within_the_timeout(tmp_path: Path) -> None:
    rc, run = run_config(tmp_path, """
defaults: {workloads: [killssh], timeouts: {boot: 180, workload: 60}}
matrix: {kernel: [trixie-x86_64]}
""")
    (rep,) = run.reps
    wl = cases_of(rep.record)["workload:killssh"]
    # seen as the channel closed, not at the workload's timeout ("timed out after 60s")
    assert wl.status == "error" and wl.message == "the guest went away during the workload"  # type: ignore[attr-defined]
    # the console's last lines come with it: a guest lost without a kernel fault may still show why
    assert "--- console.log, last lines ---\n" in wl.output and "KHARNESS-READY" in wl.output  # type: ignore[attr-defined]
    assert rep.record.status == "error"
    assert rc == 3
    assert not qemu_children()


def test_out_of_memory_kills_the_workload_not_ssh_and_is_a_console_failure(tmp_path: Path) -> None:
    rc, run = run_config(tmp_path, """
defaults: {workloads: [oom, idle], timeouts: {boot: 180, workload: 60}}
matrix: {kernel: [trixie-x86_64]}
""")
    (rep,) = run.reps
    tests = cases_of(rep.record)
    out = (rep.path / "raw" / "workload-oom.txt").read_text()
    assert "workload oom_score_adj 0" in out and "dd survived" not in out
    assert re.search(r"^dropbear \d+ oom_score_adj -1000$", out, re.M)
    assert tests["workload:oom"].status == "fail"  # type: ignore[attr-defined]
    # SIGKILL, and the console since the workload's batch began names who sent it
    assert tests["workload:oom"].message.startswith(  # type: ignore[attr-defined]
        "killed by the OOM killer (it killed dd; see console:oom-kill): exit status 137")
    oom = tests["console:oom-kill"]
    assert oom.status == "fail" and re.search(r"Killed process \d+ \(dd\)", oom.message)  # type: ignore[attr-defined]
    assert tests["workload:idle"].status == "pass"  # type: ignore[attr-defined]  # SSH lived on
    assert (rep.path / "raw" / "after-oom" / "slabinfo").is_file()
    assert rc == 1
    assert not qemu_children()


def test_workload_that_never_ends_is_killed_at_its_timeout_and_collected(tmp_path: Path) -> None:
    rc, run = run_config(tmp_path, """
defaults: {workloads: [hang, idle], timeouts: {boot: 180, workload: 60}}
matrix: {kernel: [trixie-x86_64]}
""")
    (rep,) = run.reps
    tests = cases_of(rep.record)
    assert tests["workload:hang"].status == "fail"  # type: ignore[attr-defined]
    assert "timed out after 4s" in tests["workload:hang"].message  # type: ignore[attr-defined]
    assert tests["workload:idle"].status == "pass"  # type: ignore[attr-defined]  # the guest lived on
    assert (rep.path / "raw" / "after-hang" / "slabinfo").is_file()
    assert rc == 1
    assert not qemu_children()


def test_kharness_killed_with_sigkill_leaves_no_qemu(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: k9\ndefaults: {workloads: [{name: idle, params: {seconds: 60}}]}\n"
                   "matrix: {kernel: [trixie-x86_64]}\n")
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-q", str(cfg), "-o", str(tmp_path / "o")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not qemu_children(proc.pid):
            time.sleep(0.2)
        qemus = qemu_children(proc.pid)
        assert qemus, "kharness never started QEMU"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(p in qemu_processes() for p in qemus):
        time.sleep(0.1)
    assert not any(p in qemu_processes() for p in qemus), "QEMU outlived kharness"


def test_flooding_workload_output_is_bounded_and_hostile_names_refused(tmp_path: Path) -> None:
    rc, run = run_config(tmp_path, """
defaults: {workloads: [flood], timeouts: {boot: 180, workload: 120}}
matrix: {kernel: [trixie-arm64]}
""")
    (rep,) = run.reps
    raw = rep.path / "raw" / "workload-flood.txt"
    assert raw.stat().st_size <= 8 * 1024 * 1024 + 4096  # kept: at most the limit
    assert "output cut" in (rep.path / "raw" / "problems.txt").read_text()
    assert cases_of(rep.record)["workload:flood"].status == "fail"  # type: ignore[attr-defined]
    assert not any("evil" in m.name for m in rep.metrics)
    assert not list(tmp_path.rglob("evil"))  # nothing written outside the result directory
    assert rc == 1
