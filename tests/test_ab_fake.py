"""`kharness ab` end to end on a toy tree with fake guests (no QEMU): tests say `fake`.

The toy tree (tests/fakes/trees.py) is a real git repository built by a toy
Makefile through kharness's real source-build path (worktree, patches,
cache, lineage); the guests are tests/fakes/guest.py's, answering the
snapshot script with a real x86_64 capture whose swiotlb pool is 32768
slots, or 16384 when the booted image carries the patch's mark. So the
patch's effect is known in advance, as in the real-build test.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.ab import interleave
from harness.ab.plan import Side
from harness.cli import main
from harness.kernel import source
from harness.kernel.resolve import resolve
from harness.machine.guest import Booted, BootFn
from harness.machine.ssh import CommandResult
from harness.model import Cell
from harness.run.boot import kernel_facts
from tests.fakes.guest import FakeGuest, ok
from tests.fakes.runs import snapshot_text
from tests.fakes.trees import git, patch_file, toy_tree

MARK = "HALVED"
KNOBS: dict[str, object] = {}
CONFIG = """
name: toy
defaults: {workloads: [idle], swiotlb: force, cpus: 1}
include: [{kernel: trixie-x86_64}]
expectations:
  - {name: some-pool, metric: swiotlb.slots, op: ">", value: 0, workload: idle}
  - {name: about-debian, metric: slab.minalign, op: "==", value: 8, when: {kernel: trixie-x86_64}}
"""


class Guest(FakeGuest):
    def describe(self) -> dict[str, object]:
        return {"argv": ["/usr/bin/qemu-system-x86_64", "-accel", "tcg", "-M", "q35"], "accelerator": "tcg"}


def _swiotlb(slots: int) -> Iterator[tuple[str, str]]:
    yield "swiotlb/io_tlb_nslabs", f"{slots}\n"
    yield "swiotlb/io_tlb_used", "0\n"
    yield "swiotlb/io_tlb_used_hiwater", "0\n"


def snapshot(slots: int, uptime: float) -> bytes:
    text = snapshot_text("trixie-x86_64", uptime=uptime).decode()
    extra = "".join(f"@@kharness-section {n}@@\n{t}\n" for n, t in _swiotlb(slots))
    return text.replace("@@kharness-section end@@", extra + "@@kharness-section end@@").encode()


@pytest.fixture
def booted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Fake guests for `kharness ab`; returns the (kernel, rep) of each boot, in the order booted.

    Knobs (module globals, set by a test): FAIL_PATCHED_IDLE makes the patched kernel's idle
    workload fail; INTERRUPT_AT sends this process SIGINT when that many boots have begun.
    """
    order: list[tuple[str, int]] = []

    def boot_for(side: Side) -> BootFn:
        @contextmanager
        def boot(cell: Cell, rep_path: Path) -> Iterator[Booted]:
            kernel = resolve(cell.kernel)  # the real resolution: a cache hit of the build
            patched = MARK.encode() in kernel.original_image.read_bytes()
            slots = 16384 if patched else 32768
            order.append((cell.kernel.name, int(rep_path.name)))
            if len(order) == KNOBS.get("interrupt_at"):
                os.kill(os.getpid(), signal.SIGINT)
            calls = [0]

            def respond(command: str, env: dict[str, str]) -> CommandResult | None:
                if patched and KNOBS.get("fail_patched_idle") and "/idle.sh" in command:
                    return ok(command, b"", status=1, stderr=b"idle: it broke\n")
                if "kharness-snapshot.sh" not in command:
                    return None
                calls[0] += 1
                return ok(command, snapshot(slots, 10.0 + calls[0]))

            guest = Guest(rep_path / "console.log", [respond])
            guest.console_log.parent.mkdir(parents=True, exist_ok=True)
            guest.console_log.write_text(guest.console_text)
            yield Booted(guest, kernel_facts(kernel) | {"accelerator_reason": "fake guests"}, 0.5)

        return boot

    monkeypatch.setattr(interleave, "boot_under_qemu", lambda accel: boot_for)
    KNOBS.clear()
    return order


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    source._FAILED.clear()
    tree = toy_tree(tmp_path / "linux")
    patch_file(tree, tmp_path / "0001-toy-halve-the-pool.patch", "file1.c", "return 1;",
               f"return 1; /* {MARK} */", "toy: halve the pool")
    (tmp_path / "c.yaml").write_text(CONFIG)
    return tmp_path


def ab(*extra: str) -> int:
    return main(["ab", "c.yaml", "--tree", "linux", "--patch", "0001-toy-halve-the-pool.patch",
                 "--kconfig", "tinyconfig", "-o", "out", *extra])


def test_fake_ab_names_the_known_change_and_nothing_regresses(setup: Path, booted: list[tuple[str, int]],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert ab("-j", "1") == 0  # one guest at a time: the boot order is the schedule's, not a race of threads
    out = setup / "out"
    doc = json.loads((out / "ab.json").read_text())
    assert doc["status"] == "finished" and doc["exit"] == 0
    changed = {f["metric"]: f for f in doc["findings"] if f["verdict"] in ("changed", "improved", "regressed")}
    slots = changed["boot:swiotlb.slots"]
    assert slots["base"]["mean"] == 32768 and slots["patched"]["mean"] == 16384
    assert slots["base"]["n"] == slots["patched"]["n"] == 3
    assert slots["p"] is not None and slots["p"] < 0.05
    assert not [f for f in doc["findings"] if f["verdict"] == "regressed"]
    # boots interleaved: base and patched of repetition 0, then of 1, then of 2. (Two guests at once,
    # a patched boot's thread can reach its boot after the next base's: the order was a race.)
    assert booted == [(role, r) for r in range(3) for role in ("base", "patched")]
    # the two result directories are ordinary runs
    for role in ("base", "patched"):
        run = json.loads((out / role / "run.json").read_text())
        assert run["status"] == "finished" and (out / role / "junit.xml").is_file()
    # cell.json records what was built
    (cell_dir,) = (out / "patched" / "cells").iterdir()
    origin = json.loads((cell_dir / "0" / "cell.json").read_text())["kernel"]["origin"]
    tree_hash = git(setup / "linux", "rev-parse", "HEAD^{tree}").strip()
    assert origin["ref"] == "HEAD" and origin["tree_hash"] == tree_hash
    assert [p["subject"] for p in origin["patches"]] == ["toy: halve the pool"] and origin["patches"][0]["patch_id"]
    assert origin["config_sha256"] and origin["compiler"] and origin["build_seconds"] >= 0
    assert origin["compiled_objects"] == 1  # the patched build reused the base's objects
    # the expectation about Debian's kernel does not come along; the general one does
    tests = {t["name"] for t in json.loads((cell_dir / "0" / "cell.json").read_text())["tests"]}
    assert "expect:some-pool[idle]" in tests and not any("about-debian" in t for t in tests)
    report = (out / "report.txt").read_text()
    assert max(len(line) for line in report.splitlines()) <= 72
    assert report == capsys.readouterr().out
    for needed in ("toy: halve the pool", "boot:swiotlb.slots", "32,768", "16,384", "n=3", "p < 0.0001",
                   "machine q35", "TCG", "Verdict: no regression", "kharness ab "):
        assert needed in report, needed
    assert "Reproduce with:" in report and "--patch" in report
    md = (out / "report.md").read_text()
    assert "`boot:swiotlb.slots [slots]`" in md and "toy: halve the pool" in md


def test_fake_ab_reproduce_command_is_the_same_question(setup: Path, booted: list[tuple[str, int]]) -> None:
    assert ab() == 0
    command = json.loads((setup / "out" / "ab.json").read_text())["command"]
    assert command[:3] == ["kharness", "ab", str(setup / "c.yaml")]
    ref = command[command.index("--ref") + 1]
    assert git(setup / "linux", "rev-parse", "HEAD").startswith(ref)  # HEAD moves: pinned to the commit
    booted.clear()
    assert main([*command[1:], "-o", "again"]) == 0
    assert len(booted) == 6
    again = json.loads((setup / "again" / "ab.json").read_text())
    assert again["builds"]["base"]["cache"] == again["builds"]["patched"]["cache"] == "hit"


def test_fake_ab_resume_runs_only_what_is_missing(setup: Path, booted: list[tuple[str, int]]) -> None:
    assert ab() == 0
    out = setup / "out"
    (cell_dir,) = (out / "patched" / "cells").iterdir()
    (cell_dir / "2" / "cell.json").unlink()  # as if cut off by Ctrl-C
    booted.clear()
    assert main(["ab", "--resume", "out"]) == 0
    assert booted == [("patched", 2)]
    doc = json.loads((out / "ab.json").read_text())
    assert doc["status"] == "finished" and doc["resumed"]
    assert doc["builds"]["base"]["cache"] == "hit"


def test_fake_ab_patched_tree_that_does_not_build_is_the_patchs_result(
        setup: Path, booted: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]) -> None:
    patch_file(setup / "linux", setup / "broken.patch", "file2.c", "int f2(void)", "#error broken\nint f2(void)",
               "toy: break file2")
    rc = main(["ab", "c.yaml", "--tree", "linux", "--patch", "broken.patch", "--kconfig", "tinyconfig", "-o", "out"])
    assert rc == 1
    assert booted == []
    report = (setup / "out" / "report.txt").read_text()
    assert "The patched kernel does not build: make bzImage exited with 2" in report
    assert "file2.c:1: error: #error" in report  # the log's tail
    assert max(len(line) for line in report.splitlines()) <= 72
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("kharness ab: the patched kernel does not build")


def test_fake_ab_base_that_does_not_build_is_exit_3_one_line(setup: Path, booted: list[tuple[str, int]],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    tree = setup / "linux"
    (tree / "file3.c").write_text("#error the base is broken\n")
    git(tree, "commit", "-q", "-am", "break the base")
    assert ab() == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("kharness: error: the base kernel does not build (make bzImage exited with 2); "
                              "make it build first")
    assert booted == []
    assert json.loads((setup / "out" / "ab.json").read_text())["status"] == "base-does-not-build"


@pytest.mark.parametrize(("argv", "message"), [
    (["--tree", "plain", "--patch", "0001-toy-halve-the-pool.patch"], "plain is not a git tree; give a git checkout"),
    (["--tree", "linux", "--ref", "v11", "--patch", "0001-toy-halve-the-pool.patch"],
     "unknown ref 'v11' in .*linux \\(did you mean 'v1'\\?\\)"),
    (["--tree", "linux", "--patch", "nope.patch"], "nope.patch does not exist"),
    (["--tree", "linux"], "--tree needs the patch"),
    (["--patch", "0001-toy-halve-the-pool.patch"], "--patch goes with --tree"),
    (["--base", "trixie-x86_64"], "--base and --patched go together"),
    ([], "c.yaml declares no kernels named base and patched"),
    (["--tree", "linux", "--patch", "0001-toy-halve-the-pool.patch", "--repeat", "0"], "--repeat 0: give 1 or more"),
])
def test_bad_input_is_one_line_and_exit_2(setup: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                          message: str) -> None:
    import re

    (setup / "plain").mkdir()
    assert main(["ab", "c.yaml", "-o", "out", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kharness: error: "), err
    assert re.search(message, err[0]), err[0]


def test_fake_patch_that_does_not_apply_is_exit_2_naming_patch_and_file(
        setup: Path, booted: list[tuple[str, int]], capsys: pytest.CaptureFixture[str]) -> None:
    tree = setup / "linux"
    (tree / "file1.c").write_text((tree / "file1.c").read_text().replace("return 1;", "return 11;"))
    git(tree, "commit", "-q", "-am", "file1 moved on")
    assert ab() == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "patch 0001-toy-halve-the-pool.patch (toy: halve the pool) does not apply to" in err
    assert "hunk at file1.c:" in err and err.endswith("give the ref it was made for")
    assert booted == []
    assert not (setup / "cache" / source.BUILDS).exists()  # found before anything was built


def test_missing_cross_compiler_is_exit_3_with_the_apt_line(setup: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from harness.kernel import build

    tree = setup / "linux"
    (tree / "arch/arm64").mkdir()
    (tree / "arch/arm64/Kconfig").write_text("config ARM64\n\tdef_bool y\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "arm64 too")
    (setup / "arm.yaml").write_text("defaults: {workloads: [idle]}\ninclude: [{kernel: trixie-arm64}]\n")
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name.endswith("-gcc") else real_which(name))
    monkeypatch.setattr(build, "_TOOLCHAINS", {})
    rc = main(["ab", "arm.yaml", "--tree", "linux", "--patch", "0001-toy-halve-the-pool.patch", "-o", "out"])
    assert rc == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("kharness: error: no aarch64-linux-gnu-gcc to build an arm64 kernel")
    assert err[-1].endswith("; apt-get install gcc-aarch64-linux-gnu")


def test_the_reproduce_command_fits_72_columns_and_the_shell_reads_it_back() -> None:
    import subprocess

    from harness.ab.report import shell_lines

    argv = ["kharness", "ab", "/very/" + "long/" * 20 + "config.yaml", "--patch", "it's a $HOME `file`.patch",
            "--ref", "v6.12", "--metric", "fio-*:fio.*.iops", "--tree", "/" + "x" * 150]
    lines = shell_lines(argv)
    assert max(len(line) for line in lines) <= 72
    script = "printf '%s\\n' " + "\n".join(lines[0].strip().split(" ", 1)[1:] + lines[1:])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == argv[1:]


def test_fake_ab_a_kernel_that_now_fails_is_a_regression_exit_1(setup: Path, booted: list[tuple[str, int]]) -> None:
    KNOBS["fail_patched_idle"] = True
    assert ab() == 1
    doc = json.loads((setup / "out" / "ab.json").read_text())
    assert doc["exit"] == 1
    regressed = [f for f in doc["findings"] if f["verdict"] == "regressed"]
    assert regressed[0]["metric"] == "(status)" and "fails now" in regressed[0]["reason"]
    report = (setup / "out" / "report.txt").read_text()
    first = report.index("Changed beyond the noise floor")
    assert report.index("regressed", first) < report.index("changed ", first)  # regressions first
    assert "Verdict: 1 regression(s)" in report


def test_fake_ab_ctrl_c_keeps_finished_boots_and_resume_finishes(setup: Path, booted: list[tuple[str, int]],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    KNOBS["interrupt_at"] = 3
    assert ab() == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("kharness ab: interrupted (SIGINT)") and err.endswith(f"kharness ab --resume {setup / 'out'}")
    out = setup / "out"
    assert json.loads((out / "ab.json").read_text())["status"] == "interrupted"
    finished = list(out.glob("*/cells/*/*/cell.json"))
    assert 0 < len(finished) < 6  # kept; the cut-off boot recorded nothing
    KNOBS.clear()
    booted.clear()
    assert main(["ab", "--resume", "out"]) == 0
    assert len(booted) == 6 - len(finished)  # only what was missing
    assert len(list(out.glob("*/cells/*/*/cell.json"))) == 6


def test_the_schedule_interleaves_sides_repetition_by_repetition(setup: Path) -> None:
    from harness.ab import plan

    q = plan.question(plan.Inputs(config=setup / "c.yaml", tree=setup / "linux", kconfig="tinyconfig",
                                  patches=(setup / "0001-toy-halve-the-pool.patch",), repeat=3), setup / "q")
    todo = interleave.order(q.sides, {"base": set(), "patched": set()})
    assert [(side.role, rep) for side, _, rep in todo] == [("base", 0), ("patched", 0), ("base", 1),
                                                            ("patched", 1), ("base", 2), ("patched", 2)]
    base_cell = q.base.config.cells[0]
    again = interleave.order(q.sides, {"base": {(base_cell.id, 1)}, "patched": set()})  # resuming
    assert [(side.role, rep) for side, _, rep in again] == [("base", 0), ("patched", 0), ("patched", 1),
                                                             ("base", 2), ("patched", 2)]
