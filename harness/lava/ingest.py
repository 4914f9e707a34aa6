"""Finished LAVA jobs' logs into an ordinary result directory.

Each log is one repetition of one cell: the test definition
(harness/lava/testdef.py) printed every part of it between markers on the
console, and the parts are read here as a QEMU run reads its SSH channel
(harness/run/cell.py): the snapshots are cut, saved under raw/ and parsed by
harness.collect.snapshot exactly as there, the workloads' `metric` lines,
fio reports and slab series by the same functions, the console is scanned
for kernel faults by the same scanner, and the cell's expectations are
judged by the same rules. So cell.json, metrics.json, console.log, raw/,
junit.xml and report.html are what `kharness run` writes, with the LAVA
device in cell.json's machine facts (`qemu.machine: lava`, its device
type), and compare, merge and report read a board run as they read a QEMU
run.

A log is untrusted input. Nothing read from it names a path except the
cell id, repetition and workload names, each checked against the result
directory's grammar first; every part is bounded; the header is checked
field by field; text goes into files and reports as text (the reports
escape it). A log that is not a kharness LAVA job's, or is cut before its
test printed its header, is one line and exit 2; a log cut later is a
result: the parts that are missing say how far the device got (the
kernel's fault if its console shows one, else an error).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__, atomic, results
from harness.collect import derived, sampler
from harness.collect import snapshot as snap
from harness.errors import ResultsError, UsageError
from harness.lava import testdef
from harness.lava.log import MAX_BYTES, JobLog, LogError
from harness.lava.log import parse as parse_log
from harness.machine.guest import scan_console
from harness.model import Expectation, Metric, TestResult, worst
from harness.results import RepRecord
from harness.run import expect, runner, sampling
from harness.run.cell import workload_metrics  # the one reader of `metric NAME VALUE` lines
from harness.run.snapshots import save_raw
from harness.workloads import Workload
from harness.workloads import load as load_workload

MARKER = re.compile(r"@@kharness-lava (begin|stderr|end) ([a-z0-9][a-z0-9_.-]{0,127})"
                    r"(?: rc=(-?[0-9]{1,6}) seconds=([0-9]{1,9}(?:\.[0-9]{1,6})?))?@@\s*$")
PART_LIMIT = snap.MAX_TOTAL  # characters of one part kept (a snapshot's bound; a workload's is less)
WORKLOAD_LIMIT = 8 << 20  # as run/cell.py RAW_OUTPUT_LIMIT
HEADER_LIMIT = 1 << 20
KILLED = (124, 137)  # busybox timeout: TERM, KILL


@dataclass
class Part:
    name: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    rc: int | None = None  # None: the part never ended (the device went away)
    seconds: float = 0.0
    size: int = 0
    cut: bool = False

    @property
    def out(self) -> str:
        return "".join(f"{line}\n" for line in self.stdout)

    @property
    def err(self) -> str:
        return "".join(f"{line}\n" for line in self.stderr)


def parts(console: Iterable[str]) -> tuple[dict[str, Part], list[str]]:
    """The parts between markers, by name (the first of a name kept), and what was odd."""
    found: dict[str, Part] = {}
    problems: list[str] = []
    current: Part | None = None
    into = "stdout"
    for line in console:
        m = MARKER.search(line)
        if m is None:
            if current is not None:
                current.size += len(line) + 1
                if current.size > PART_LIMIT:
                    if not current.cut:
                        problems.append(f"part {current.name}: output beyond {PART_LIMIT} characters cut")
                    current.cut = True
                    continue
                getattr(current, into).append(line)
            continue
        what, name = m[1], m[2]
        if what == "begin":
            if current is not None:
                problems.append(f"part {current.name}: no end marker before {name} began")
            current, into = None, "stdout"
            if name in found:
                problems.append(f"part {name} given twice; the first kept")
                continue
            current = found[name] = Part(name)
        elif current is not None and name == current.name:
            if what == "stderr":
                into = "stderr"
            else:
                current.rc, current.seconds, current = int(m[3] or -1), float(m[4] or 0), None
    return found, problems


# --- the header ----------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    cell_id: str
    slug: str
    rep: int
    repeat: int
    axes: dict[str, Any]
    device_type: str
    kernel: dict[str, Any]
    config: dict[str, Any]
    workloads: tuple[tuple[str, dict[str, Any]], ...]
    expectations: tuple[Expectation, ...]
    workload_timeout: float = math.inf  # seconds: the cell's timeouts.workload


def _text(d: dict[str, Any], key: str, limit: int = 200, grammar: re.Pattern[str] | None = None) -> str:
    v = d.get(key, "")
    if not isinstance(v, str) or len(v) > limit or not v.isprintable() or (grammar and not grammar.fullmatch(v)):
        raise results.ValueProblem(f"{key} is not a short line of text of its grammar")
    return v


def _scalars(d: Any, what: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise results.ValueProblem(f"{what} is not an object")
    out: dict[str, Any] = {}
    for k, v in list(d.items())[:64]:
        if not isinstance(k, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", k):
            raise results.ValueProblem(f"{what}: a key that is not a name")
        if isinstance(v, str):
            if len(v) > 4096 or not v.isprintable():
                raise results.ValueProblem(f"{what}.{k} is not a short line of text")
        elif isinstance(v, dict):  # a kernel's origin: its plain fields only
            out[k] = {str(a)[:64]: b for a, b in list(v.items())[:64] if isinstance(b, str | int | float | bool)
                      and (not isinstance(b, str) or (len(b) < 4096 and b.isprintable()))}
            continue
        elif not (v is None or isinstance(v, bool | int | float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise results.ValueProblem(f"{what}.{k} is not a plain value")
        out[k] = v
    return out


def header_of(part: Part, shown: str) -> Header:
    """The header part, checked; LogError naming the log if it is not one kharness wrote."""
    text = part.out.strip()
    try:
        if len(text) > HEADER_LIMIT:
            raise results.ValueProblem("too long")
        doc = results.parse_json(base64.b64decode(text, validate=True), Path(shown))
        if not isinstance(doc, dict) or doc.get("format") != testdef.HEADER_FORMAT:
            raise results.ValueProblem(f"not header format {testdef.HEADER_FORMAT}")
        rep = doc.get("rep")
        repeat = doc.get("repeat", 1)
        if not isinstance(rep, int) or not isinstance(repeat, int) or not 0 <= rep < repeat <= results.MAX_REPEAT:
            raise results.ValueProblem("rep/repeat are not repetition counts")
        wls = doc.get("workloads", [])
        if not isinstance(wls, list) or len(wls) > 64:
            raise results.ValueProblem("workloads is not a list")
        workloads = tuple((_text(w, "name", 64, results.WORKLOAD_RE), _scalars(w.get("params", {}), "params"))
                          for w in wls if isinstance(w, dict))
        exps = doc.get("expectations", [])
        if not isinstance(exps, list) or len(exps) > 1000:
            raise results.ValueProblem("expectations is not a list")
        return Header(
            cell_id=_text(doc, "cell_id", 80, results.CELL_ID_RE), slug=_text(doc, "slug", 64, results.SLUG_RE),
            rep=rep, repeat=repeat, axes=results.axes_of(doc.get("axes")),
            device_type=_text(doc, "device_type", 64, re.compile(r"[a-z0-9][a-z0-9_.-]*")),
            kernel=_scalars(doc.get("kernel", {}), "kernel"), config=_scalars(doc.get("config", {}), "config"),
            workloads=workloads, expectations=tuple(_expectation(e) for e in exps),
            workload_timeout=_seconds(doc.get("timeouts", {})),
        )
    except (binascii.Error, ValueError, ResultsError, results.ValueProblem) as exc:
        raise LogError(f"{shown}: the kharness header is not one kharness wrote ({exc})",
                       "give the log of a job `kharness lava job` wrote") from None


def _seconds(timeouts: Any) -> float:
    value = timeouts.get("workload") if isinstance(timeouts, dict) else None
    if value is None:
        return math.inf
    v = results.number(value, "timeouts.workload")
    if not 0 < v < 1e7:
        raise results.ValueProblem("timeouts.workload is not seconds")
    return v


def _expectation(e: Any) -> Expectation:
    if not isinstance(e, dict) or e.get("op") not in expect.OPS:
        raise results.ValueProblem("an expectation that is not one")
    value = results.number(e.get("value"), "expectation value")
    workload = e.get("workload")
    if workload is not None:
        workload = _text(e, "workload", 64, results.WORKLOAD_RE)
    return Expectation(_text(e, "name", 200), _text(e, "metric", 128, results.METRIC_RE), e["op"], value, workload)


# --- one repetition --------------------------------------------------------------


@dataclass
class _Rep:
    head: Header
    path: Path
    found: dict[str, Part]
    tests: list[TestResult] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lost: str = ""  # the first part that never came: where the device went away


def _part(rep: _Rep, name: str) -> Part | None:
    """A part that ended; None (and the loss noted) if it did not."""
    p = rep.found.get(name)
    if p is None or p.rc is None:
        rep.lost = rep.lost or name
        return None
    return p


def _snapshot(rep: _Rep, name: str, tag: str) -> snap.Snapshot | None:
    p = _part(rep, name)
    if p is None:
        return None
    sections = snap.split(p.out)
    save_raw(sections, rep.path / "raw", tag)
    parsed = snap.parse(sections)
    rep.timings[f"snapshot.{tag}"] = p.seconds
    rep.problems += [f"{tag}: {x}" for x in parsed.problems]
    if p.rc != 0:
        rep.problems.append(f"{tag}: kharness-snapshot.sh exit {p.rc}")
    return parsed


def _workload(rep: _Rep, wl: Workload, params: dict[str, Any], pagesize: int | None) -> bool:
    """One workload's parts; False if the device went away during it."""
    name = f"workload:{wl.name}"
    every = sampling.interval({**dict(wl.params), **{k: v for k, v in params.items() if k != "_timeout"}})
    if every:
        _part(rep, f"sampler-start-{wl.name}")
    p = _part(rep, f"workload-{wl.name}")
    if p is None:
        return False
    rep.timings[f"workload.{wl.name}"] = p.seconds
    rep.ran.append(wl.name)
    out, text = p.out, p.out
    if len(out) > WORKLOAD_LIMIT:
        rep.problems.append(f"{wl.name}: output cut at {WORKLOAD_LIMIT} bytes")
        out = text = out[:WORKLOAD_LIMIT]
    atomic.write_text(rep.path / "raw" / f"workload-{wl.name}.txt",
                      out + (f"\n--- stderr ---\n{p.err}" if p.err else ""))
    metrics, bad = workload_metrics(text, wl)
    fio_metrics, fio_bad = derived.fio_report(text, wl.name)
    rep.metrics += metrics + fio_metrics
    bad += fio_bad
    limit = float(params.pop("_timeout", math.inf))
    tail = text[-4000:]
    if p.rc in KILLED and p.seconds >= limit - 1:
        rep.tests.append(TestResult(name, "fail", f"timed out after {p.seconds:.0f}s", tail, p.seconds))
    elif p.rc != 0:
        rep.tests.append(TestResult(name, "fail", f"exit status {p.rc}: {p.err.strip()[-300:]}", tail, p.seconds))
    else:
        rep.tests.append(TestResult(name, "fail" if bad else "pass", "; ".join(bad)[:500], tail, p.seconds))
    if every:
        s = _part(rep, f"sampler-stop-{wl.name}")
        if s is not None and s.rc == 0:
            atomic.write_text(rep.path / "raw" / f"samples-{wl.name}.txt", s.out)
            series = sampler.parse(s.out, pagesize)
            atomic.write_json(rep.path / "raw" / f"series-{wl.name}.json", sampler.to_json(series, every))
            rep.metrics += sampler.metrics(series, wl.name)
            rep.problems += [f"sampler: {x}" for x in series.problems]
    return True


def _run(rep: _Rep, workloads: dict[str, Workload]) -> None:
    rep.tests.append(TestResult("boot", "pass"))  # the header came: the device booted and ran the test
    setup = _part(rep, "trace-setup")
    if setup is not None:
        atomic.write_text(rep.path / "raw" / "trace-setup.txt", setup.out + setup.err)
    before = _snapshot(rep, "snapshot-boot", "boot")
    if before is None:
        return
    rep.metrics += snap.metrics(None, before, "boot")
    texts = [p.out for w in ("before", "after") if (p := rep.found.get(f"trace-slabinfo-{w}")) and p.rc == 0]
    if len(texts) == 2:
        for when, text in zip(("before", "after"), texts, strict=True):
            atomic.write_text(rep.path / "raw" / f"trace-slabinfo-{when}", text)
        rep.metrics += snap.trace_cost(texts[0], texts[1], before)
    for wl_name, params in rep.head.workloads:
        wl = workloads[wl_name]
        limit = min(rep.head.workload_timeout, wl.timeout or math.inf)
        if not _workload(rep, wl, {**params, "_timeout": limit}, before.pagesize):
            return
        after = _snapshot(rep, f"snapshot-after-{wl.name}", f"after-{wl.name}")
        if after is None:
            return
        rep.metrics += snap.metrics(before, after, wl.name)
        rep.metrics += derived.per_io(rep.metrics, wl.name)
        before = after
    dmesg = _part(rep, "dmesg")
    if dmesg is not None:
        atomic.write_text(rep.path / "raw" / "dmesg.txt", dmesg.out)


def _lost(rep: _Rep, hits: list[Any], job_result: dict[str, Any] | None) -> None:
    """The test stopped before `rep.lost`: the kernel's fault if the console shows one, else ours."""
    if not rep.lost:
        return
    phase = rep.lost.removeprefix("workload-")
    name = f"workload:{phase}" if rep.lost.startswith("workload-") else rep.lost
    if hits:
        rep.tests.append(TestResult(name, "fail", f"the device went away: {hits[0].summary}", hits[0].excerpt))
    else:
        why = (job_result or {}).get("error_msg") or "the job's log ends there"
        rep.tests.append(TestResult(name, "error", f"the test stopped before {rep.lost}: {str(why)[:300]}"))


def repetition(job: JobLog, shown: str, run_dir: Path,
               workload_dirs: tuple[Path, ...] = ()) -> tuple[RepRecord, Header]:
    """Write one log's repetition under `run_dir`; its record (cell.json written last) and header."""
    if job.job_result() is None:
        raise LogError(f"{shown}: cut off: no LAVA job result at its end",
                       "fetch the whole log once the job has finished (lavacli jobs logs --raw ID)")
    found, problems = parts(job.console)
    head_part = found.get("header")
    if head_part is None or head_part.rc is None:
        verdict = job.job_result() or {}
        said = f" (LAVA: {str(verdict.get('error_msg'))[:200]})" if verdict.get("error_msg") else ""
        raise LogError(f"{shown}: no kharness header: not a kharness job, or cut before its test ran{said}",
                       "give the log of a job `kharness lava job` wrote; a job that did not boot has no result")
    head = header_of(head_part, shown)
    workloads: dict[str, Workload] = {}
    for wl_name, _ in head.workloads:
        try:
            workloads[wl_name] = load_workload(wl_name, workload_dirs)
        except UsageError as exc:
            raise LogError(f"{shown}: workload {wl_name}: {exc.problem}",
                           "give --workload-dir, as the config's workload_dirs") from None
    path = results.rep_dir(run_dir, head.cell_id, head.rep)
    if results.finished(path):
        raise LogError(f"{shown}: a second log of cell {head.cell_id} repetition {head.rep}",
                       "give each repetition's log once")
    (path / "raw").mkdir(parents=True, exist_ok=True)
    atomic.write_text(path / results.CONSOLE_FILE, "".join(f"{line}\n" for line in job.console))
    rep = _Rep(head, path, found, problems=[f"log: {p}" for p in problems + job.problems])
    _run(rep, workloads)
    hits = scan_console(path / results.CONSOLE_FILE)
    _lost(rep, hits, job.job_result())
    for hit in hits:
        rep.tests.append(TestResult(f"console:{hit.signature}", "fail", f"console line {hit.line}: {hit.summary}",
                                    hit.excerpt))
    if not hits:
        rep.tests.append(TestResult("console:clean", "pass"))
    for exp in head.expectations:
        rep.tests += expect.judge(exp, rep.metrics, rep.ran)
    if rep.problems:
        atomic.write_text(path / "raw" / "problems.txt", "\n".join(rep.problems) + "\n")
    verdict = job.job_result() or {}
    machine = {"machine": "lava", "device_type": head.device_type, "lava_dispatcher": job.dispatcher,
               "lava_job_result": str(verdict.get("result", "unknown"))[:40],
               "log": Path(shown).name[:200], "started": job.started, "finished": job.finished}
    record = RepRecord(
        cell_id=head.cell_id, slug=head.slug, axes=head.axes, rep=head.rep,
        status=worst(t.status for t in rep.tests) or "error", reason=_reason(rep.tests),
        kernel=dict(head.kernel), qemu=machine, timings=rep.timings, tests=rep.tests,
    )
    twice = results.duplicate([m.key for m in rep.metrics])
    if twice is not None:
        raise LogError(f"{shown}: metric {twice} measured twice", "the log is not one kharness's test wrote")
    results.write_metrics(path, _finite(rep.metrics))
    results.write_record(path, record)
    return record, head


def _finite(metrics: list[Metric]) -> list[Metric]:
    return [m for m in metrics if not (math.isfinite(m.value) and abs(m.value) > results.MAX_VALUE)]


def _reason(tests: list[TestResult]) -> str:
    for t in tests:
        if t.status in ("error", "fail", "interrupted"):
            return f"{t.name}: {t.message}"[:300]
    return ""


# --- the run --------------------------------------------------------------------


def ingest(logs: list[Path], out: Path,
           workload_dirs: tuple[Path, ...] = ()) -> tuple[list[RepRecord], list[RepRecord]]:
    """Every log into the new result directory `out`; its (finished, unfinished) records.

    Built under a hidden name beside `out` and renamed at the end (as merge
    does), so a log refused half-way leaves nothing that looks like a result.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{results.shown(out)} exists and is not empty", "choose another -o")
    jobs = [(results.shown(p), parse_log(_read(p), results.shown(p))) for p in logs]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.ingesting-{secrets.token_hex(6)}"
    tmp.mkdir()
    try:
        done = [repetition(job, shown, tmp, workload_dirs) for shown, job in jobs]
        doc = run_doc(done, out.name)
        atomic.write_json(tmp / results.RUN_FILE, doc)
        finished, unfinished = runner.finish(tmp, doc)
        if out.is_dir():
            out.rmdir()
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return finished, unfinished


def _read(path: Path) -> bytes:
    """A log file, without following a link, at most MAX_BYTES (+1, so more shows)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"{results.shown(path)}: cannot read ({exc.strerror})",
                         "give LAVA job logs (lavacli jobs logs --raw ID > job.yaml)") from None
    with os.fdopen(fd, "rb") as f:
        return f.read(MAX_BYTES + 1)


def _digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def run_doc(done: list[tuple[RepRecord, Header]], name: str) -> dict[str, Any]:
    """run.json of the ingested repetitions: their cells, each with the repeat its config asked.

    A repetition the config asked for whose log was not given is then listed
    as not finished (junit.xml, report.html), never silently left out.
    """
    cells: dict[str, dict[str, Any]] = {}
    for record, head in done:
        entry = cells.setdefault(record.cell_id, {"id": record.cell_id, "slug": record.slug,
                                                  "axes": dict(record.axes), "repeat": head.repeat, "status": None})
        entry["repeat"] = max(entry["repeat"], head.repeat)
    config = dict(done[0][1].config) if done else {}
    return {
        "format": results.RESULT_FORMAT, "status": "finished", "name": str(config.get("name") or name),
        "config_path": None,
        # merge compares configs by name and sha256: a job that did not say its config's gets one of what it said
        "config": {"name": config.get("name") or name, "cells": list(cells),
                   "sha256": config.get("sha256") or _digest(config)},
        "started": min((str(r.qemu.get("started", "")) for r, _ in done), default=None),
        "finished": runner.now_iso(), "host": runner.host_facts(), "tools": {"kharness": __version__},
        "shard": None, "interruptions": [], "resumed": [], "cells": list(cells.values()),
        "lava": {"logs": [str(r.qemu.get("log", "")) for r, _ in done],
                 "device_types": sorted({str(r.qemu.get("device_type", "")) for r, _ in done})},
    }
