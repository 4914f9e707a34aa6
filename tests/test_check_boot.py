"""`git bisect run kharness check` on a toy history, with real boots.

The toy repository's commits point at kernels the way a kernel tree's
build output would: `Image` and `modules` are symlinks to Debian's arm64
cloud kernels in the kharness cache, 6.1 (bookworm) in the first commits and
6.12 (trixie) from the third on. "Bad" is kmalloc's minimum alignment
dropping to 8 (arm64's series in 6.5), so git bisect must name the third
commit. This is the README's example, run as written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.kernel.defaults import DEFAULT_KERNELS
from harness.kernel.resolve import resolve
from harness.model import Kernel

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("bisect-boot")]

CELL = """
name: minalign-check
defaults:
  kernel: trixie-arm64        # replaced by --image in each check
  workloads: [idle]
  timeouts: {boot: 300, workload: 120, cell: 600}
include: [{}]
"""


def git(repo: Path, *argv: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "k", "GIT_AUTHOR_EMAIL": "k@example.org",
           "GIT_COMMITTER_NAME": "k", "GIT_COMMITTER_EMAIL": "k@example.org"}
    res = subprocess.run(["git", "-C", str(repo), *argv], capture_output=True, text=True, env=env, check=True)
    return res.stdout.strip()


def commit_kernel(repo: Path, kernel: Kernel, message: str) -> str:
    assert kernel.modules_dir is not None  # Debian kernels ship their modules
    for name, target in (("Image", kernel.original_image), ("modules", kernel.modules_dir)):
        link = repo / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target)
    (repo / "VERSION").write_text(f"{kernel.release}\n{message}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def test_git_bisect_run_names_the_first_commit_with_minalign_8(tmp_path: Path) -> None:
    old, new = resolve(DEFAULT_KERNELS["bookworm-arm64"]), resolve(DEFAULT_KERNELS["trixie-arm64"])
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    history = [commit_kernel(repo, k, f"commit {i}") for i, k in enumerate([old, old, new, new, new], 1)]
    (tmp_path / "cell.yaml").write_text(CELL)
    checks = tmp_path / "checks"
    git(repo, "bisect", "start", history[-1], history[0])
    run = subprocess.run(
        ["git", "-C", str(repo), "bisect", "run", sys.executable, "-m", "harness", "check", "-q",
         "--config", str(tmp_path / "cell.yaml"), "--image", "Image", "--modules", "modules",
         "--bad-if", "idle:slab.minalign == 8", "-o", str(checks)],
        capture_output=True, text=True, timeout=1800, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{history[2]} is the first bad commit" in run.stdout, run.stdout
    verdicts = sorted(json.loads((d / "check.json").read_text())["verdict"] for d in checks.iterdir())
    assert verdicts in (["bad", "good"], ["bad", "bad", "good"], ["bad", "good", "good"])
    for d in checks.iterdir():
        doc = json.loads((d / "check.json").read_text())
        assert doc["commit"] and d.name.endswith(doc["commit"])
        assert (d / "run" / "junit.xml").is_file()
