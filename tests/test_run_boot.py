"""`kharness run` end to end on the four default Debian kernels, for real.

One run of a quick-like config boots each kernel under QEMU; the tests then
assert on what was collected, as domain.md says a correct run shows.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import xmlschema
from junitparser import JUnitXml

from harness.cli import main
from harness.results import RunResult, load_run

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("run-boot")]

SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"
CONFIG = """
name: boot-test
defaults:
  workloads: [idle, dd-direct]
  timeouts: {boot: 240, workload: 120, cell: 600}
matrix:
  kernel: [bookworm-arm64, trixie-arm64, bookworm-x86_64, trixie-x86_64]
"""


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, RunResult]:
    tmp = tmp_path_factory.mktemp("four")
    (tmp / "c.yaml").write_text(CONFIG)
    rc = main(["run", "-q", str(tmp / "c.yaml"), "-o", str(tmp / "out")])
    return rc, load_run(tmp / "out")


def _metric(run: RunResult, kernel: str, key: str) -> float:
    (rep,) = [r for r in run.reps if r.record.axes["kernel"] == kernel]
    return {m.key: m.value for m in rep.metrics}[key]


def test_boot_all_four_default_kernels_pass(four: tuple[int, RunResult]) -> None:
    rc, run = four
    statuses = {r.record.axes["kernel"]: r.record.status for r in run.reps}
    assert statuses == dict.fromkeys(
        ["bookworm-arm64", "trixie-arm64", "bookworm-x86_64", "trixie-x86_64"], "pass"), statuses
    assert rc == 0


@pytest.mark.parametrize(("kernel", "minalign"), [
    ("bookworm-arm64", 128), ("trixie-arm64", 8), ("bookworm-x86_64", 8), ("trixie-x86_64", 8),
])
def test_boot_smallest_kmalloc_cache(four: tuple[int, RunResult], kernel: str, minalign: int) -> None:
    assert _metric(four[1], kernel, "boot:slab.minalign") == minalign


@pytest.mark.parametrize(("kernel", "slots"), [
    # domain.md: arm64 6.12 allocates a small swiotlb even with 1 GiB; the others none.
    ("bookworm-arm64", 0), ("trixie-arm64", 512), ("bookworm-x86_64", 0), ("trixie-x86_64", 0),
])
def test_boot_swiotlb_present_as_domain_says(four: tuple[int, RunResult], kernel: str, slots: int) -> None:
    run = four[1]
    assert _metric(run, kernel, "boot:swiotlb.present") == (1 if slots else 0)
    assert _metric(run, kernel, "boot:swiotlb.slots") == slots


def test_boot_coherent_dd_direct_does_not_bounce(four: tuple[int, RunResult]) -> None:
    for kernel in ("trixie-arm64", "trixie-x86_64"):
        assert _metric(four[1], kernel, "dd-direct:swiotlb.bounces") == 0
        assert _metric(four[1], kernel, "dd-direct:dd.requests") == 4000


def test_boot_results_follow_the_contract(four: tuple[int, RunResult]) -> None:
    run = four[1]
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(run.path / "junit.xml"))
    suites = list(JUnitXml.fromfile(str(run.path / "junit.xml")))
    assert len(suites) == 4
    for rep in run.reps:
        assert "Linux version" in (rep.path / "console.log").read_text(errors="replace")
        assert rep.record.qemu["accelerator"] in ("tcg", "kvm")
        assert "-no-reboot" in rep.record.qemu["argv"]
        assert rep.record.kernel["release"] in (rep.path / "console.log").read_text(errors="replace")
        assert (rep.path / "raw" / "boot" / "slabinfo").stat().st_size > 1000
    assert run.run["status"] == "finished"


def _qemu_children() -> list[int]:
    me = os.getpid()
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and comm.startswith("qemu-system"):
            pids.append(int(stat.parent.name))
    return pids


def test_boot_qemu_killed_mid_cell_is_an_error_and_the_next_cell_runs(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("""
name: kill-test
defaults:
  workloads: [{name: idle, params: {seconds: 20}}]
  timeouts: {boot: 240, workload: 120, cell: 600}
matrix:
  kernel: [trixie-x86_64, bookworm-x86_64]
""")
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            # Wait until the first guest is into its idle workload, then kill its QEMU.
            logs = list(tmp_path.glob("out/cells/trixie-x86_64*/0/raw/boot/end"))
            pids = _qemu_children()
            if logs and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)

    t = threading.Thread(target=killer)
    t.start()
    started = time.monotonic()
    # --jobs 1: the killer takes the first QEMU it sees, which must be the first cell's.
    rc = main(["run", "-q", "--jobs", "1", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "out")])
    t.join()
    assert killed, "the first guest never got to its workload"
    run = load_run(tmp_path / "out")
    by_kernel = {r.record.axes["kernel"]: r.record for r in run.reps}
    first = by_kernel["trixie-x86_64"]
    assert first.status == "error"
    assert any(t.status == "error" and t.name == "workload:idle" for t in first.tests)
    assert by_kernel["bookworm-x86_64"].status == "pass"
    assert rc == 3
    assert time.monotonic() - started < 200  # no hang waiting for the dead guest
    assert not _qemu_children()


@pytest.mark.parametrize("kernel", ["bookworm-arm64", "trixie-arm64", "bookworm-x86_64", "trixie-x86_64"])
def test_boot_reports_what_arming_the_histograms_cost(four: tuple[int, RunResult], kernel: str) -> None:
    """init arms the hist triggers between two slabinfo readings; their maps' kmalloc pages
    (README: about 200 KiB) are reported, so no slab figure is mistaken for the kernel's."""
    (rep,) = [r for r in four[1].reps if r.record.axes["kernel"] == kernel]
    assert (rep.path / "raw" / "trace-slabinfo-before").is_file()
    assert 0 < _metric(four[1], kernel, "boot:slab.kharness_trace.bytes") < 4 << 20
