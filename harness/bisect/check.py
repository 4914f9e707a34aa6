"""`kharness check`: judge one kernel in one cell; the test script of `git bisect run`.

    git bisect run kharness check --config cell.yaml --image arch/x86/boot/bzImage \\
        --bad-if 'idle:slab.minalign == 8'

Exit 0 good, 1 bad, 125 untestable: git bisect skips the commit. Untestable
is the infrastructure failing (QEMU, downloads, SSH), no kernel to test (the
image given does not exist, e.g. this commit's build made none), a build
that failed (unless --build-failure-is-bad), or a judgement that could not
be made (a metric not measured). Bad arguments exit 2, which git bisect run
takes as "bad": run the command once by hand before handing it over.

Each check keeps its files in a directory of its own: the cell as a
one-cell config, the result directory of its boots, the build log, and
check.json with the verdict and why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import atomic
from harness.bisect import cells, keys
from harness.bisect.judge import Judge, Verdict
from harness.bisect.options import add_judge_arguments, judge_from_args, repeat_and_rule
from harness.bisect.trial import Booter, TrialResult, real_boot, run_trial
from harness.cache import sha256_file
from harness.config.load import Config, load
from harness.errors import InfraError, UsageError
from harness.kernel import build as kbuild
from harness.kernel.image import identify
from harness.model import Cell, KernelSource
from harness.run.building import Reporter, Say
from harness.run.parallel import Stop, on_signals
from harness.run.progress import for_terminal
from harness.workloads import load as load_workload

EXIT_GOOD, EXIT_BAD, EXIT_UNTESTABLE = 0, 1, 125
EXIT_OF: dict[Verdict, int] = {"good": EXIT_GOOD, "bad": EXIT_BAD, "untestable": EXIT_UNTESTABLE}
KERNEL_NAME = "under-test"  # the kernel given on the command line, as the cell names it
CHECK_FILE = "check.json"
STATE_DIR = ".kharness"  # in the tree (kernel trees ignore dot-directories) or the working directory


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="the kharness config with the cell to boot")
    p.add_argument("--cell", metavar="ID", help="the cell, by id or slug (default: the config's only cell)")
    k = p.add_argument_group("the kernel (default: the cell's own)")
    src = k.add_mutually_exclusive_group()
    src.add_argument("--image", type=Path, help="a kernel image (Image, Image.gz, bzImage, vmlinuz)")
    src.add_argument("--tree", type=Path, metavar="DIR", help="a kernel source tree: build it first")
    k.add_argument("--modules", type=Path, metavar="PATH",
                   help="with --image: its lib/modules/<release> tree or a tarball")
    k.add_argument("--kconfig", metavar="KCONFIG",
                   help="with --image: the kernel's .config; with --tree: the config to build from, "
                        "a file or a make target (default defconfig); the guest's needs are added")
    k.add_argument("--build-dir", type=Path, metavar="DIR",
                   help=f"with --tree: make O= (default TREE/{STATE_DIR}/build-ARCH, reused between commits)")
    k.add_argument("--build-jobs", type=int, metavar="N", help="with --tree: make -j (default: the host's cores)")
    k.add_argument("--build-failure-is-bad", action="store_true",
                   help="with --tree: a tree that does not build is bad (1), not untestable (125)")
    add_judge_arguments(p)
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help=f"where each check keeps its files (default {STATE_DIR}/checks in the tree, "
                        "else in the working directory)")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto", help="accelerator (default auto)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line")


def main(args: argparse.Namespace) -> int:
    """Infrastructure trouble is 125 here, not 3: git bisect must skip, not blame the commit."""
    try:
        return check(args, real_boot(args.accel))
    except InfraError as exc:
        print(f"kharness check: untestable: {exc}", file=sys.stderr)
        return EXIT_UNTESTABLE


def check(args: argparse.Namespace, booter: Booter) -> int:
    judge = judge_from_args(args)
    repeat, rule = repeat_and_rule(args)
    _check_kernel_args(args)
    config = load(args.config)
    cell = cells.pick(config, args.cell)
    out = _check_dir(args)
    facts: dict[str, Any] = {"config": str(config.path), "config_cell": cell.id, "judge": judge.to_json(),
                             "judged_by": judge.describe(), "repeat": repeat, "rule": rule,
                             "commit": _commit(args.tree or Path.cwd())}
    try:
        result = _build_and_run(args, config, cell, out, facts, booter, judge)
    except InfraError as exc:  # recorded like any other check, then main's 125
        _finish(out, facts, TrialResult("untestable", f"infrastructure: {exc}"))
        raise
    return _finish(out, facts, result)


def _build_and_run(args: argparse.Namespace, config: Config, cell: Cell, out: Path, facts: dict[str, Any],
                   booter: Booter, judge: Judge) -> TrialResult:
    """Build (with --tree), then boot and judge; an early result (no kernel) ends it."""
    progress = for_terminal(args.quiet, color=getattr(args, "color", "auto"))
    with on_signals(Stop()) as stop:
        kernel, early = _kernel(args, config, cell, out, facts, progress.note, stop)
        if early is not None:
            return early
        trial_config = _cell_config(config, cell, kernel, facts["repeat"], out)
        return run_trial(trial_config, out / "run", judge, facts["rule"], booter, progress, stop)


def _check_kernel_args(args: argparse.Namespace) -> None:
    if args.modules and not args.image:
        raise UsageError("--modules goes with --image", "give the image too")
    if (args.build_dir or args.build_jobs or args.build_failure_is_bad) and not args.tree:
        raise UsageError("--build-dir, --build-jobs and --build-failure-is-bad go with --tree", "give --tree DIR")
    if args.build_jobs is not None and args.build_jobs < 1:
        raise UsageError(f"--build-jobs {args.build_jobs}: give 1 or more")
    if args.kconfig and not (args.image or args.tree):
        raise UsageError("--kconfig goes with --image or --tree", "give one of them")


def _kernel(args: argparse.Namespace, config: Config, cell: Cell, out: Path, facts: dict[str, Any],
            say: Say, stop: Stop) -> tuple[KernelSource | None, TrialResult | None]:
    """The kernel to boot (None: the cell's own), or the early result that ends the check."""
    if args.tree:
        return _built_kernel(args, config, cell, out, facts, say, stop)
    if args.image:
        missing = [p for p in (args.image, args.modules) if p is not None and not p.exists()]
        if missing:  # e.g. this commit's build made no image: nothing to test
            return None, TrialResult("untestable", f"no kernel to test: {missing[0]} does not exist")
        info = identify(args.image.absolute())
        kconfig = Path(args.kconfig).absolute() if args.kconfig else None
        return KernelSource(KERNEL_NAME, info.arch, image=args.image.absolute(),
                            modules=args.modules.absolute() if args.modules else None, config=kconfig), None
    return None, None


def _built_kernel(args: argparse.Namespace, config: Config, cell: Cell, out: Path, facts: dict[str, Any],
                  say: Say, stop: Stop) -> tuple[KernelSource | None, TrialResult | None]:
    """The checked-out tree built in place (out of tree, O=): what `git bisect run` moves from commit
    to commit. The same make path as a config's source kernels (harness/kernel/build.py)."""
    tree: Path = args.tree.absolute()
    decls = [load_workload(w.name, config.workload_dirs) for w in cell.workloads]
    kinds = tuple(dict.fromkeys(d.kind for wl in decls for d in wl.devices))
    req = kbuild.BuildRequest(tree, (args.build_dir or tree / STATE_DIR / f"build-{cell.arch}").absolute(),
                              cell.arch, args.kconfig or "defconfig", args.build_jobs or os.cpu_count() or 1,
                              devices=kinds)
    log = out / "build.log"
    tools = kbuild.toolchain(cell.arch)
    try:
        built = kbuild.build(req, log, Reporter("tree", say), stop)
    except kbuild.BuildFailure as exc:
        verdict: Verdict = "bad" if args.build_failure_is_bad else "untestable"
        facts["build"] = {"ok": False, "log": str(log), "problem": exc.summary}
        return None, TrialResult(verdict, f"build failed: {exc.summary} (see {log})")
    facts["build"] = {"ok": True, "log": str(log), "seconds": built.seconds,
                      "cpu_seconds": built.cpu_seconds, "image": str(built.image),
                      "kconfig": req.kconfig, "dir": str(req.out), "compiled_objects": built.compiled,
                      "config_sha256": sha256_file(built.config), "compiler": tools.compiler,
                      "linker": tools.linker}
    return KernelSource(KERNEL_NAME, cell.arch, image=built.image, config=built.config), None


def _cell_config(config: Config, cell: Cell, kernel: KernelSource | None, repeat: int, out: Path) -> Config:
    """The cell as a one-cell config in the check's directory, with the kernel under test."""
    settings = keys.cell_settings(cell)
    if kernel is not None:
        settings["kernel"] = kernel.name
    org = cells.origin([config], [kernel] if kernel else [])
    doc = cells.document(org, settings, "check", repeat, cell.timeouts)
    return cells.build(org, doc, out / "cell.yaml", f"kharness check of cell {cell.id} of {config.path}")


def _check_dir(args: argparse.Namespace) -> Path:
    """A new directory for this check: <output>/<time>-<commit>."""
    base: Path = args.output or ((args.tree or Path.cwd()) / STATE_DIR / "checks")
    label = _commit(args.tree or Path.cwd()) or "check"
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = base / (f"{stamp}-{label}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise UsageError(f"cannot make a new check directory in {base}", "clean it up or give another -o")


def _commit(where: Path) -> str:
    """The short commit id checked out at `where`, or "" outside git."""
    try:
        res = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


def _finish(out: Path, facts: dict[str, Any], result: TrialResult) -> int:
    """check.json, and the verdict line on stdout (the one line a bisect log needs)."""
    code = EXIT_OF[result.verdict]
    atomic.write_json(out / CHECK_FILE, {**facts, **result.to_json(), "exit": code})
    print(f"kharness check: {result.verdict} ({result.reason}); exit {code}; files in {out}")
    return code

