"""`kharness bisect` end to end with fake guests (no QEMU): answers, files, resume, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.bisect import cli as bisect_cli
from harness.bisect import state as st
from harness.model import Cell
from harness.results import load_run
from tests.fakes.bisect import FakeBooter, parse

CONFIG = """
name: fakebisect
defaults:
  kernel: trixie-arm64
  iommu_platform: true
  workloads: [dd-direct]
include:
  - {}
  - {dma_coherent: false, memory: 2G, slub_debug: true}
  - {kernel: bookworm-arm64}
  - {kernel: trixie-x86_64}
"""
GOOD, BAD, OLD, X86 = ("trixie-arm64.iommu", "trixie-arm64.mem2048.nc.iommu.slub",
                       "bookworm-arm64.iommu", "trixie-x86_64.iommu")
JUDGE = ["--bad-if", "dd-direct:fake.bounces > 0"]


def noncoherent(cell: Cell) -> int:
    return 0 if cell.dma_coherent else 2251


def noncoherent_612(cell: Cell) -> int:
    """Bounces only with the 6.5+ rule: a trixie arm64 kernel and a non-coherent device."""
    return noncoherent(cell) if cell.kernel.name == "trixie-arm64" else 0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return path


def bisect(config: Path, out: Path, booter: FakeBooter, good: str = GOOD, bad: str = BAD,
           *extra: str) -> int:
    argv = ["bisect", "--config", str(config), "--good", good, "--bad", bad, *JUDGE, "-q", "-o", str(out), *extra]
    return bisect_cli.bisect(parse(argv), booter)


def test_single_key_answer(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    booter = FakeBooter(noncoherent)
    out = tmp_path / "b"
    assert bisect(config, out, booter) == 0
    state = json.loads((out / st.STATE_FILE).read_text())
    assert state["answer"]["outcome"] == "found" and state["answer"]["keys"] == ["dma_coherent"]
    report = (out / st.REPORT_FILE).read_text()
    assert "**dma_coherent** alone turns the good cell bad" in report
    assert "- dma_coherent: true -> false" in report and "Confirming run" in report
    assert capsys.readouterr().out == report
    assert len(booter.boots) == len(state["steps"])  # one boot per step (--repeat 1)
    for step in state["steps"]:  # every step is a result directory and a config of its own
        run_dir = out / step["run_dir"]
        assert load_run(run_dir).reps[0].record.cell_id == step["cell_id"]
        assert (run_dir.parent / "cell.yaml").is_file()


def test_pair_answer_with_a_second_config(config: Path, tmp_path: Path) -> None:
    """Two configs: the good cell is the only one of its own config."""
    old = tmp_path / "old.yaml"
    old.write_text("defaults: {kernel: bookworm-arm64, iommu_platform: true, workloads: [dd-direct]}\n"
                   "include: [{}]\n")
    out = tmp_path / "b"
    rc = bisect(config, out, FakeBooter(noncoherent_612), str(old), f"{config}:{BAD}")
    assert rc == 0
    answer = json.loads((out / st.STATE_FILE).read_text())["answer"]
    assert answer["keys"] == ["kernel", "dma_coherent"]
    assert "**kernel + dma_coherent** together turn the good cell bad" in (out / st.REPORT_FILE).read_text()


def test_impossible_steps_are_untestable_and_skipped(config: Path, tmp_path: Path) -> None:
    """x86_64 -> arm64 non-coherent: dma_coherent alone on x86_64 is not a cell."""
    out = tmp_path / "b"
    assert bisect(config, out, FakeBooter(noncoherent), X86, BAD) == 0
    state = json.loads((out / st.STATE_FILE).read_text())
    assert state["answer"]["keys"] == ["kernel", "dma_coherent"]
    refused = [s for s in state["steps"] if s["verdict"] == "untestable"]
    assert refused and all("not a valid cell" in s["reason"] for s in refused)


def test_repeat_runs_each_step_n_times(config: Path, tmp_path: Path) -> None:
    booter = FakeBooter(noncoherent)
    out = tmp_path / "b"
    assert bisect(config, out, booter, GOOD, BAD, "--repeat", "3", "--rule", "all") == 0
    steps = json.loads((out / st.STATE_FILE).read_text())["steps"]
    assert len(booter.boots) == 3 * len(steps)
    assert all(len(s["reps"]) == 3 for s in steps)


def test_ends_that_do_not_hold_give_no_answer(config: Path, tmp_path: Path) -> None:
    assert bisect(config, tmp_path / "b", FakeBooter(lambda cell: 5)) == 1
    assert "the good cell is not good" in (tmp_path / "b" / st.REPORT_FILE).read_text()


def test_interrupted_bisection_resumes_to_the_same_answer(config: Path, tmp_path: Path) -> None:
    straight = FakeBooter(noncoherent)
    assert bisect(config, tmp_path / "straight", straight) == 0
    with pytest.raises(KeyboardInterrupt):
        bisect(config, tmp_path / "cut", FakeBooter(noncoherent, cut_at=3))
    resumed = FakeBooter(noncoherent)
    args = parse(["bisect", "--resume", "-q", "-o", str(tmp_path / "cut")])
    assert bisect_cli.bisect(args, resumed) == 0
    first = json.loads((tmp_path / "straight" / st.STATE_FILE).read_text())
    second = json.loads((tmp_path / "cut" / st.STATE_FILE).read_text())
    assert second["answer"] == first["answer"]
    assert [(s["role"], s["keys"]) for s in second["steps"]] == [(s["role"], s["keys"]) for s in first["steps"]]
    assert len(resumed.boots) == len(straight.boots) - 2  # the two finished steps are not run again
    assert (tmp_path / "cut" / "steps" / "02-probe.interrupted").is_dir()


def test_resume_with_another_question_is_refused(config: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert bisect(config, tmp_path / "b", FakeBooter(noncoherent)) == 0
    rc = cli.main(["bisect", "--resume", "-o", str(tmp_path / "b"), "--config", str(config),
                   "--good", GOOD, "--bad", BAD, "--bad-if", "dd-direct:fake.bounces > 5"])
    assert rc == 2 and "started with another judge" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--good", "nope", "--bad", BAD], "no cell 'nope'"),
    (["--good", GOOD, "--bad", GOOD], "do not differ"),
    (["--good", GOOD, "--bad", BAD, "--bad-if", "bounces > 0"], "is not a metric comparison"),
    (["--good", GOOD], "needs --good and --bad"),
    (["--good", GOOD, "--bad", BAD, "--repeat", "0"], "--repeat 0 is out of range"),
])
def test_bad_input_is_one_line_and_exit_2(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          argv: list[str], message: str) -> None:
    rc = cli.main(["bisect", "--config", str(config), "-o", str(tmp_path / "b"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1


def test_resume_needs_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bisect", "--resume"]) == 2
    assert "give -o DIR" in capsys.readouterr().err


def test_an_existing_bisection_is_not_overwritten(config: Path, tmp_path: Path) -> None:
    assert bisect(config, tmp_path / "b", FakeBooter(noncoherent)) == 0
    rc = cli.main(["bisect", "--config", str(config), "--good", GOOD, "--bad", BAD, "-o", str(tmp_path / "b")])
    assert rc == 2
