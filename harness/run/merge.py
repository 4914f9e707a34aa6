"""`kharness merge DIR... -o DIR`: the shards of one run as one result directory.

The output is an ordinary result directory (compare, report and a later
merge read it as they read a run): the finished repetitions of every input,
one run.json listing all cells of the config, one junit.xml, one
report.html. Cells that no input ran (a shard job that died before its
upload) are listed, and each of their repetitions is an "interrupted" error
in junit.xml, so a lost shard can never look like a pass.

Refused, exit 2: inputs of different configs (name or sha256; --force
merges them anyway), a repetition present in two inputs (which one is
right?), and any corrupt file (the message names it).

The output is built in a hidden temporary directory beside it and renamed
into place at the end, so a merge that fails half-way leaves nothing under
the output's name. Its directories get the modes the umask gives (like
`kharness run`'s), not a temporary directory's 0700.

The inputs are untrusted (CI artefacts, mail attachments; design.md): they
are read with harness.results' checks (every id and repetition number of its
grammar, so no path is ever taken from content), and copied file by file:
a symbolic link, device or FIFO anywhere in a repetition is refused, naming
it, and files are copied, never hard-linked (a link would tie the output to
whatever the input's file is, or later becomes).

Exit code, so that a CI merge job can be the nightly's verdict: as
`kharness run` (0 all pass, 1 kernel failures, 3 errors or results missing).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any

from harness import atomic, results
from harness.errors import ResultsError, UsageError
from harness.results import RepRecord, RunResult
from harness.run import runner, summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", metavar="DIR", help="result directories (e.g. the shards)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the merged result directory (must not exist)")
    p.add_argument("--force", action="store_true", help="merge runs of different configs anyway")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary table")


def main(args: argparse.Namespace) -> int:
    out: Path = args.output
    finished, unfinished = merge(list(args.inputs), out, force=args.force)
    if not args.quiet:
        summary.print_summary(out, finished + unfinished)
    return runner.exit_code_of(finished + unfinished)


def merge(inputs: list[Path], out: Path, force: bool = False) -> tuple[list[RepRecord], list[RepRecord]]:
    """Merge `inputs` into `out`; returns (finished, unfinished) records of the result."""
    _check_output(inputs, out)
    runs = [results.load_run(p) for p in inputs]  # ResultsError (exit 2) names the bad file
    check_configs(runs, force)
    check_disjoint(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.merging-{secrets.token_hex(6)}"
    tmp.mkdir()  # the umask's mode, as the output will have
    try:
        for run in runs:
            for rep in run.reps:
                # The destination is made of the record's checked id and rep, never of a path read.
                copy_tree(rep.path, results.rep_dir(tmp, rep.record.cell_id, rep.record.rep))
        doc = merged_doc(runs)
        atomic.write_json(tmp / results.RUN_FILE, doc)
        finished, unfinished = runner.finish(tmp, doc)
        if out.is_dir():
            out.rmdir()  # _check_output allowed only an empty one
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return finished, unfinished


def _check_output(inputs: list[Path], out: Path) -> None:
    resolved = [p.resolve() for p in inputs]
    if out.resolve() in resolved:
        raise UsageError(f"{out} is also an input", "merge into a new directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} exists", "merge into a new directory")
    for i, p in enumerate(resolved):
        if p in resolved[:i]:
            raise UsageError(f"{inputs[i]} is given twice")


def _identity(run: RunResult) -> tuple[str, str]:
    cfg = run.run.get("config")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("sha256"), str):
        raise UsageError(f"{run.path / results.RUN_FILE}: no config sha256", "was it written by kharness run?")
    return str(run.run.get("name")), cfg["sha256"]


def check_configs(runs: list[RunResult], force: bool) -> None:
    """Shards of one run share the config file byte for byte; anything else is refused unless forced."""
    first = _identity(runs[0])
    for run in runs[1:]:
        other = _identity(run)
        if other != first and not force:
            raise UsageError(
                f"{runs[0].path} (config {first[0]}, sha256 {first[1][:12]}) and {run.path} "
                f"(config {other[0]}, sha256 {other[1][:12]}) ran different configs",
                "merge only the shards of one run, or pass --force",
            )


def check_disjoint(runs: list[RunResult]) -> None:
    """Two results for one repetition: there is no right one to keep, so refuse."""
    seen: dict[tuple[str, int], Path] = {}
    for run in runs:
        for rep in run.reps:
            key = (rep.record.cell_id, rep.record.rep)
            if key in seen:
                raise UsageError(f"{rep.record.slug} repetition {rep.record.rep} is in both {seen[key]} and {run.path}",
                                 "merge runs that do not overlap (e.g. the shards of one run)")
            seen[key] = run.path


def merged_doc(runs: list[RunResult]) -> dict[str, Any]:
    """run.json of the merge: the first input's config, every input's cells, where each came from."""
    docs = [r.run for r in runs]
    first = docs[0]
    cells: dict[str, dict[str, Any]] = {}
    for doc in docs:
        for entry in doc.get("cells", []):
            cells.setdefault(str(entry["id"]), {**entry, "status": None})
    order = [str(c) for c in (first.get("config") or {}).get("cells", [])]
    missing = [cid for cid in order if cid not in cells]
    for cid in missing:  # in the config, in no input: a shard that never came back
        cells[cid] = {"id": cid, "slug": cid.rsplit("-", 1)[0], "axes": {}, "repeat": 1, "status": None}
    rank = {cid: i for i, cid in enumerate(order)}
    statuses = {str(d.get("status")) for d in docs}
    return {
        "format": results.RESULT_FORMAT,
        "status": "finished" if statuses == {"finished"} else "interrupted",
        "name": first.get("name"),
        "config_path": first.get("config_path"),
        "config": first.get("config"),
        "started": min((str(d.get("started")) for d in docs if d.get("started")), default=None),
        "finished": max((str(d.get("finished")) for d in docs if d.get("finished")), default=None),
        "host": None,
        "tools": first.get("tools", {}),
        "shard": None,
        "merged_from": [_source(r) for r in runs],
        "missing_cells": missing,
        "interruptions": [dict(i, run=str(r.path)) for r in runs for i in r.run.get("interruptions", [])],
        "resumed": [],
        "cells": sorted(cells.values(), key=lambda e: (rank.get(e["id"], len(rank)), e["id"])),
    }


def _source(run: RunResult) -> dict[str, Any]:
    doc = run.run
    return {"path": str(run.path), "name": doc.get("name"), "sha256": (doc.get("config") or {}).get("sha256"),
            "status": doc.get("status"), "shard": doc.get("shard"), "started": doc.get("started"),
            "finished": doc.get("finished"), "host": doc.get("host"), "repetitions": len(run.reps)}


MAX_TREE_DEPTH = 16  # raw/<tag>/<section>: a repetition's tree is 4 deep


def copy_tree(src: Path, dst: Path, depth: int = 0) -> None:
    """Copy a repetition's directory: plain directories and regular files only, nothing followed.

    Files get fresh inodes with the umask's modes (no set-id bits, no link to
    the input); a symbolic link, a device, a FIFO or a socket is refused with
    ResultsError naming it.
    """
    if depth > MAX_TREE_DEPTH:
        raise ResultsError(f"{results.shown(src)}: directories nested deeper than {MAX_TREE_DEPTH}",
                           "the result directory is not one kharness wrote")
    dst.mkdir(parents=depth == 0)
    with os.scandir(src) as it:
        found = sorted(it, key=lambda e: e.name)
    for e in found:
        here = Path(e.path)
        if e.is_symlink():
            raise ResultsError(f"{results.shown(here)}: a symbolic link, refused",
                               "result directories hold plain files; replace it by the file, or remove it")
        if e.is_dir(follow_symlinks=False):
            copy_tree(here, dst / e.name, depth + 1)
        elif e.is_file(follow_symlinks=False):
            _copy_file(here, dst / e.name)
        else:
            raise ResultsError(f"{results.shown(here)}: not a regular file, refused",
                               "result directories hold plain files; remove it")


def _copy_file(src: Path, dst: Path) -> None:
    try:
        fd = os.open(src, results.READ_FLAGS)
    except OSError as exc:
        raise ResultsError(f"{results.shown(src)}: cannot read ({exc.strerror})",
                           "a file that is not a plain file is refused") from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # swapped since the directory was listed
            raise ResultsError(f"{results.shown(src)}: not a regular file, refused", "remove it")
        with dst.open("xb") as out:
            shutil.copyfileobj(f, out, 1 << 20)
