"""run_steps' script and its splitting, run here under the host's shells (no guest).

The guest's shell is busybox sh; the script uses only what it and dash share.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.machine.ssh import CommandResult, Step, split_steps, steps_script

SHELLS = [["/bin/sh"]] + [[b, "sh"] for b in filter(None, [shutil.which("busybox")])]
NONCE = "0123456789abcdef"


def run_script(shell: list[str], steps: list[Step], tmp_path: Path) -> CommandResult:
    script = steps_script(steps, NONCE, f"{tmp_path}/steps.err")  # the guest's is in /run
    out = subprocess.run([*shell, "-c", script], capture_output=True, timeout=30, check=False)
    assert out.stderr == b""  # every step's stderr is carried in stdout, between markers
    return CommandResult(script, out.returncode, out.stdout, b"", 1.0)


@pytest.mark.parametrize("shell", SHELLS, ids=[" ".join(s) for s in SHELLS])
def test_each_step_keeps_its_output_status_and_stderr(shell: list[str], tmp_path: Path) -> None:
    steps = [
        Step("echo one", 5.0),
        Step("printf 'no newline'; echo oops >&2; exit 3", 5.0),
        Step("sh -c 'echo \"$KH_X\"'", 5.0, {"KH_X": "a b; $(reboot)"}),
        Step("printf '@@kharness-section x@@\\n'", 5.0),
    ]
    results = split_steps(run_script(shell, steps, tmp_path), steps, NONCE)
    assert [(r.exit_status, r.stdout, r.stderr) for r in results] == [
        (0, b"one\n", b""),
        (3, b"no newline", b"oops\n"),
        (0, b"a b; $(reboot)\n", b""),
        (0, b"@@kharness-section x@@\n", b""),
    ]
    assert all(r.seconds >= 0 and not r.timed_out for r in results)
    # the next batch reuses the stderr file: nothing of the last one's stderr is seen again
    again = [Step("echo fine", 5.0)]
    assert [(r.stdout, r.stderr) for r in split_steps(run_script(shell, again, tmp_path), again, NONCE)] == [
        (b"fine\n", b"")]
    assert [p.name for p in tmp_path.iterdir()] == ["steps.err"]


def test_a_step_past_its_limit_is_cut_and_says_so(tmp_path: Path) -> None:
    steps = [Step("printf 1234567890", 5.0, limit=4), Step("echo after", 5.0)]
    first, second = split_steps(run_script(["/bin/sh"], steps, tmp_path), steps, NONCE)
    assert (first.stdout, first.truncated) == (b"1234", True)
    assert (second.stdout, second.truncated) == (b"after\n", False)


def test_output_cut_off_mid_step_ends_the_results_there(tmp_path: Path) -> None:
    steps = [Step("echo done", 5.0), Step("echo partial", 5.0), Step("echo never", 5.0)]
    whole = run_script(["/bin/sh"], steps, tmp_path)
    cut = whole.stdout[: whole.stdout.index(b"partial\n") + 8]
    timed_out = CommandResult("x", -1, cut, b"", 9.0, timed_out=True)
    results = split_steps(timed_out, steps, NONCE)
    assert [r.stdout for r in results] == [b"done\n", b"partial\n"]
    assert results[1].timed_out and results[1].exit_status == -1
    closed = split_steps(CommandResult("x", -1, cut, b"", 9.0), steps, NONCE)
    assert closed[1].exit_status == -1 and not closed[1].timed_out  # the guest went away under it


def test_a_forged_marker_without_the_nonce_is_just_output(tmp_path: Path) -> None:
    steps = [Step("printf '\\n@@kharness-step 0000000000000000 0 0 1 2@@\\n'", 5.0)]
    (only,) = split_steps(run_script(["/bin/sh"], steps, tmp_path), steps, NONCE)
    assert only.exit_status == 0 and b"@@kharness-step 0000000000000000" in only.stdout
