"""`kharness ab`: build base and patched, boot every cell on both (interleaved), compare, answer.

Exit codes, as compare's: 0 nothing regressed, 1 a regression (or the
patched kernel does not build: that is the patch's result, and report.txt
carries make's last lines), 2 bad input (not a git tree, an unknown ref, a
patch that does not apply: named, with the file of the failing hunk), 3
infrastructure (a missing cross compiler, with the apt line; a base that
does not build, so nothing can be compared; boots the host failed), 130
interrupted (`--resume DIR` continues: finished builds and boots are kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from harness import __version__, arches, atomic
from harness.ab import interleave, plan, report
from harness.ab.plan import AB_FILE, FORMAT, Inputs, Question, Side
from harness.compare.cli import compare_dirs
from harness.compare.load import Selection
from harness.compare.rules import Rules, load_rules
from harness.config.kernels import kernel_doc
from harness.errors import EXIT_FAILURES, EXIT_INTERRUPTED, InfraError, UsageError
from harness.kernel import source
from harness.kernel.build import BuildFailure, BuildInterrupted
from harness.kernel.resolve import resolve_built
from harness.run.building import build_kernel
from harness.run.parallel import Stop, on_signals
from harness.run.progress import Progress, for_terminal


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, nargs="?",
                   help="the config whose cells both kernels boot (with --resume: the run's own)")
    k = p.add_argument_group("the two kernels (default: the config's kernels named base and patched)")
    k.add_argument("--base", metavar="NAME", help="the config's kernel to compare against")
    k.add_argument("--patched", metavar="NAME", help="the config's kernel under test")
    k.add_argument("--tree", type=Path, metavar="DIR",
                   help="a kernel git tree: base is --ref, patched is --ref with the patches")
    k.add_argument("--ref", default="HEAD", help="with --tree: the commit, tag or branch (default HEAD)")
    k.add_argument("--patch", action="append", type=Path, default=[], metavar="FILE", dest="patches",
                   help="with --tree: a patch file (git format-patch, or a diff); repeat for a series, in order")
    k.add_argument("--range", metavar="A..B", help="with --tree: the commits of B not in A, applied onto --ref")
    k.add_argument("--mbox", type=Path, metavar="FILE", help="with --tree: a mailbox of patches (b4 am)")
    k.add_argument("--kconfig", metavar="KCONFIG",
                   help="with --tree: a .config file or a make target (default defconfig); the guest's needs "
                        "are added")
    k.add_argument("--fragment", action="append", type=Path, default=[], metavar="FILE", dest="fragments",
                   help="with --tree: a config fragment merged on top (repeatable)")
    k.add_argument("--arch", choices=arches.names(), help="with --tree: the arch (default: the config's cells')")
    p.add_argument("--repeat", type=int, metavar="N",
                   help=f"boots per cell and side (default {plan.DEFAULT_REPEAT}, or the cells' own if more)")
    p.add_argument("-o", "--output", type=Path, metavar="DIR",
                   help="the ab directory (default results/<name>-ab-<time>)")
    p.add_argument("--resume", type=Path, metavar="DIR",
                   help="continue an interrupted ab in DIR: finished builds and boots are kept")
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto", help="accelerator (default auto)")
    p.add_argument("-j", "--jobs", type=int, metavar="N", help="guests at once (default: what the host holds)")
    p.add_argument("--build-jobs", type=int, metavar="N", help="make -j (default: the host's cores)")
    p.add_argument("--rules", type=Path, metavar="YAML", help="compare's noise floors and directions")
    p.add_argument("--metric", action="append", default=[], metavar="GLOB", dest="metrics",
                   help="compare only metrics matching, e.g. 'swiotlb.*' (repeatable)")


def main(args: argparse.Namespace) -> int:
    progress = for_terminal(bool(getattr(args, "quiet", False)))
    with on_signals(Stop()) as stop:
        if args.resume is not None:
            out, inputs, doc = _resumed(args)
        else:
            inputs = _inputs(args)
            out = _new_dir(args.output, inputs)
            doc = {}
        q = plan.question(inputs, out)
        doc = _doc(doc, q, out)
        rules = load_rules(inputs.rules) if inputs.rules else Rules()
        try:
            return _run(q, doc, out, rules, progress, stop, quiet=bool(getattr(args, "quiet", False)))
        except BuildInterrupted:
            return _interrupted(doc, out, stop.reason or "SIGINT")


def _run(q: Question, doc: dict[str, Any], out: Path, rules: Rules, progress: Progress, stop: Stop,
         quiet: bool = False) -> int:
    doc["status"] = "building"
    atomic.write_json(out / AB_FILE, doc)
    for side in q.sides:  # a series that does not apply is bad input: say so before building anything
        if side.kernel.source is not None:
            source.check_series(side.kernel)
    for side in q.sides:
        failed = _build(side, doc, progress, stop, q.inputs.build_jobs)
        if failed is not None:
            return _build_failed(q, doc, out, side, failed, quiet)
    doc["status"] = "running"
    atomic.write_json(out / AB_FILE, doc)
    outcome = interleave.run_sides(q.sides, interleave.boot_under_qemu(q.inputs.accel), progress, stop,
                                   q.inputs.jobs, resume=q.base.run_dir.exists() and bool(doc.get("resumed")))
    if outcome.interrupted:
        return _interrupted(doc, out, outcome.interrupted)
    selection = Selection(metrics=q.inputs.metrics, ignore_axes=("kernel",))
    (cmp,) = compare_dirs(q.base.run_dir, [q.patched.run_dir], selection, rules)
    answer = report.judge(cmp, outcome.statuses(), "")
    doc["status"] = "finished"
    report.write(out, q, doc, answer)
    if not quiet:
        sys.stdout.write((out / "report.txt").read_text())
    print(f"kharness ab: {answer.headline}; exit {answer.exit_code}; report: {out / 'report.txt'}", file=sys.stderr)
    return answer.exit_code


def _build(side: Side, doc: dict[str, Any], progress: Progress, stop: Stop,
           jobs: int | None) -> BuildFailure | None:
    """Build the side's kernel if it is a source kernel; its facts go into ab.json."""
    kernel = side.kernel
    if kernel.source is None:
        doc["builds"][side.role] = {"source": "debian" if kernel.debian else "image"}
        return None
    try:
        built = build_kernel(kernel, progress.note, stop, jobs)
    except BuildFailure as exc:
        doc["builds"][side.role] = {"source": "build", "ok": False, "problem": exc.summary}
        return exc
    kernel_now = resolve_built(kernel, built)  # the image checked (arch, release) before any boot
    doc["builds"][side.role] = {**built.facts, "ok": True, "cache": "hit" if built.hit else "built",
                                "release": kernel_now.release, "image_sha256": kernel_now.image_sha256}
    atomic.write_json(side.run_dir.parent / AB_FILE, doc)
    return None


def _build_failed(q: Question, doc: dict[str, Any], out: Path, side: Side, exc: BuildFailure,
                  quiet: bool) -> int:
    """The base not building is ours to fix (3: nothing to compare); the patched, the patch's result (1)."""
    log = source.plan(side.kernel).lineage_dir() / source.LOG_FILE
    bf = {"role": side.role, "summary": exc.summary, "log": str(log), "tail": exc.excerpt}
    base = side.role == "base"
    headline = (f"the base kernel does not build ({exc.summary}): nothing to compare" if base else
                f"the patched kernel does not build ({exc.summary})")
    doc["status"] = f"{side.role}-does-not-build"
    report.write(out, q, doc, report.Answer(3 if base else EXIT_FAILURES, headline, build_failure=bf))
    if base:
        raise InfraError(headline.replace(": nothing to compare", ""),
                         f"make it build first (make's output: {log}); then run the same command again")
    if not quiet:
        sys.stdout.write((out / "report.txt").read_text())
    print(f"kharness ab: {headline}; exit 1; report: {out / 'report.txt'}", file=sys.stderr)
    return EXIT_FAILURES


def _interrupted(doc: dict[str, Any], out: Path, reason: str) -> int:
    doc["status"] = "interrupted"
    doc.setdefault("interruptions", []).append({"at": _now(), "reason": reason})
    atomic.write_json(out / AB_FILE, doc)
    print(f"kharness ab: interrupted ({reason}); finished builds and boots are kept; continue with: "
          f"kharness ab --resume {out}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _inputs(args: argparse.Namespace) -> Inputs:
    if args.config is None:
        raise UsageError("no CONFIG given", "e.g. kharness ab configs/quick.yaml --tree ../linux --patch fix.patch")
    for name in ("repeat", "jobs", "build_jobs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} {value}: give 1 or more")
    tree_only = [f"--{n}" for n, v in (("ref", args.ref != "HEAD"), ("patch", args.patches), ("range", args.range),
                                       ("mbox", args.mbox), ("kconfig", args.kconfig),
                                       ("fragment", args.fragments), ("arch", args.arch)) if v]
    if tree_only and args.tree is None:
        raise UsageError(f"{tree_only[0]} goes with --tree", "give the kernel tree: --tree DIR")
    return Inputs(
        config=args.config.absolute(), base=args.base, patched=args.patched,
        tree=args.tree.absolute() if args.tree else None, ref=args.ref,
        patches=tuple(p.absolute() for p in args.patches), range=args.range,
        mbox=args.mbox.absolute() if args.mbox else None, kconfig=args.kconfig,
        fragments=tuple(f.absolute() for f in args.fragments), arch=args.arch, repeat=args.repeat,
        accel=args.accel, jobs=args.jobs, build_jobs=args.build_jobs,
        rules=args.rules.absolute() if args.rules else None, metrics=tuple(args.metrics),
    )


def _new_dir(output: Path | None, inputs: Inputs) -> Path:
    if output is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        output = Path("results") / f"{inputs.config.stem}-ab-{stamp}"
    if output.exists() and any(output.iterdir()):
        raise UsageError(f"{output} exists and is not empty",
                         "choose another -o, remove it, or continue it with --resume")
    output.mkdir(parents=True, exist_ok=True)
    return output.absolute()


def _resumed(args: argparse.Namespace) -> tuple[Path, Inputs, dict[str, Any]]:
    given = [n for n in ("config", "base", "patched", "tree", "output", "range", "mbox", "kconfig", "arch",
                         "repeat", "rules") if getattr(args, n) is not None] + \
        [n for n in ("patches", "fragments", "metrics") if getattr(args, n)]
    if given:
        raise UsageError(f"--resume continues the question DIR asked; --{given[0].replace('_', '-')} does not apply",
                         "give only --resume DIR (and -j, --accel, --build-jobs)")
    out = args.resume.absolute()
    doc = report.load_doc(out)
    inputs = Inputs.from_json(doc.get("inputs") or {})
    inputs = dataclasses.replace(inputs, accel=args.accel, jobs=args.jobs or inputs.jobs,
                                 build_jobs=args.build_jobs or inputs.build_jobs)
    doc.setdefault("resumed", []).append({"at": _now()})
    return out, inputs, doc


def _doc(doc: dict[str, Any], q: Question, out: Path) -> dict[str, Any]:
    """ab.json: the question (a resume must ask the same one) and, later, the answer."""
    config = {"path": str(q.config.path), "sha256": q.config.sha256, "name": q.config.name}
    if doc:
        if doc.get("config", {}).get("sha256") != q.config.sha256:
            raise UsageError(f"{q.config.path} changed since {out} was started (sha256 {q.config.sha256[:12]})",
                             "resume with the config unchanged, or start a new kharness ab")
        doc.setdefault("builds", {})
        return doc
    return {
        "format": FORMAT, "tool": f"kharness {__version__} ab", "status": "planned", "dir": str(out),
        "started": _now(), "inputs": q.inputs.to_json(), "config": config, "repeat": q.repeat,
        "kernels": {s.role: {"name": s.kernel.name, **kernel_doc(s.kernel)} for s in q.sides},
        "sides": {s.role: {"config": f"{s.role}.yaml", "results": s.run_dir.name} for s in q.sides},
        "cells": {s.role: [c.id for c in s.config.cells] for s in q.sides},
        "command": q.reproduce(), "builds": {},
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
