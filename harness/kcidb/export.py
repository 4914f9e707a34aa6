"""A result directory as KCIDB I/O JSON (schema v5.3): what KernelCI's dashboards read.

    checkouts  one per kernel the run booted: what was checked out (a Debian
               package's version, a source tree's commit and patches, a local
               image's sha256)
    builds     one per kernel and arch: the image (sha256, release, config)
    tests      one per repetition and testcase: `boot` (KCIDB's boot test),
               `kharness.workload.<name>`, `kharness.expect.<name>.<workload>`,
               `kharness.console.<signature>` or `kharness.console.clean`; a
               repetition the run did not finish is a MISS of `boot`

Statuses: pass PASS, fail FAIL, error ERROR (the harness's fault: the
code's status is unknown), skipped SKIP, interrupted MISS. A test's metrics
(the workload's figures, the boot snapshot's for `boot`) go under `misc`,
with the cell's axes and the machine (QEMU's accelerator, or the LAVA
device type) in its `environment`.

Ids are `<origin>:<kind>-<key>`: a checkout and a build by what the kernel
is, so two runs of one kernel share them; a test by the run (its name and
start), cell, repetition and testcase, so submitting another run adds tests
and never replaces them. The result directory is untrusted input: it is read
through harness.results' checks, names are cut to KCIDB's path grammar, and
the document is validated against kcidb-io's schema before it is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from harness.errors import InfraError, UsageError
from harness.model import Metric, TestResult
from harness.results import RepRecord, RunResult
from harness.run import runner

ORIGIN = re.compile(r"[a-z0-9_]+")
STATUS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP", "interrupted": "MISS"}
EXCERPT = 16384  # KCIDB's log_excerpt maxLength
_PATH_PART = re.compile(r"[^a-zA-Z0-9_-]")


def check_origin(origin: str) -> str:
    if not ORIGIN.fullmatch(origin):
        raise UsageError(f"origin {origin!r} is not of KCIDB's grammar [a-z0-9_]+",
                         "give the CI system's name as KernelCI registered it, e.g. --origin kharness")
    return origin


def path_part(name: str) -> str:
    """A name as one segment of a KCIDB test path ([a-zA-Z0-9_-]+)."""
    return _PATH_PART.sub("_", name)[:100] or "_"


def test_path(name: str) -> str:
    """kharness's testcase name as a dotted KCIDB path; `boot` stays KCIDB's boot test."""
    if name == "boot":
        return "boot"
    kind, _, rest = name.partition(":")
    if kind == "expect":
        exp, _, wl = rest.partition("[")
        return ".".join(["kharness", "expect", path_part(exp), *([path_part(wl.rstrip("]"))] if wl else [])])
    if kind in ("workload", "console", "snapshot"):
        return f"kharness.{kind}.{path_part(rest)}"
    return f"kharness.{path_part(name)}"


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _text(value: Any, limit: int = 1000) -> str:
    return str(value).replace("\0", "")[:limit]


def _source(kernel: Mapping[str, Any]) -> dict[str, Any]:
    """cell.json's kernel.origin: where the kernel came from (a Debian package, a source build)."""
    value = kernel.get("origin")
    return value if isinstance(value, dict) else {}


def kernel_identity(kernel: Mapping[str, Any]) -> dict[str, Any]:
    """What makes the checkout: a Debian version, a source commit and patches, or an image's sha256."""
    origin = _source(kernel)
    keys = ("package", "image_package", "version", "suite", "commit", "tree_hash", "patched_tree_hash", "ref")
    ident = {k: origin[k] for k in keys if isinstance(origin.get(k), str | int)}
    if not ident:
        ident = {"image_sha256": kernel.get("image_sha256", "")}
    return ident


def _checkout(origin: str, kernel: Mapping[str, Any], started: str | None) -> tuple[str, dict[str, Any]]:
    ident = kernel_identity(kernel)
    cid = f"{origin}:checkout-{_digest(ident)}"
    src = _source(kernel)
    doc: dict[str, Any] = {"id": cid, "origin": origin, "valid": True,
                           "misc": {"kernel": _text(kernel.get("name", "")), **{k: _text(v) for k, v in ident.items()}}}
    commit = src.get("commit")
    if isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit):
        doc["git_commit_hash"] = commit
    if isinstance(src.get("ref"), str):
        doc["git_commit_name"] = _text(src["ref"], 200)
    if isinstance(src.get("suite"), str):
        doc["tree_name"] = _text(f"debian-{src['suite']}", 200)
    patches = src.get("patches")
    if isinstance(patches, list) and patches:
        ids = [str(p.get("patch_id", "")) for p in patches if isinstance(p, dict)]
        doc["patchset_hash"] = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    if started:
        doc["start_time"] = started
    return cid, doc


def _build(origin: str, checkout_id: str, kernel: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    arch = re.sub(r"[^a-z0-9_]", "_", str(kernel.get("arch", "")).lower())
    bid = f"{origin}:build-{_digest(kernel_identity(kernel), kernel.get('image_sha256'), arch)}"
    src = _source(kernel)
    doc: dict[str, Any] = {
        "id": bid, "origin": origin, "checkout_id": checkout_id, "architecture": arch, "status": "PASS",
        "misc": {k: _text(kernel[k]) for k in ("release", "image_sha256", "compression", "name") if k in kernel},
    }
    if isinstance(src.get("compiler"), str):
        doc["compiler"] = _text(src["compiler"], 200)
    if isinstance(src.get("build_seconds"), int | float) and math.isfinite(src["build_seconds"]):
        doc["duration"] = float(src["build_seconds"])
    if isinstance(src.get("config_sha256"), str):
        doc["misc"]["config_sha256"] = _text(src["config_sha256"], 64)
    return bid, doc


def _metrics(metrics: list[Metric], workload: str) -> dict[str, float]:
    return {m.name: m.value for m in metrics if m.workload == workload and math.isfinite(m.value)}


def _environment(record: RepRecord) -> dict[str, Any]:
    machine = record.qemu or {}
    if machine.get("machine") == "lava":
        comment = f"LAVA device type {_text(machine.get('device_type', '?'), 64)}"
    else:
        comment = f"QEMU, {_text(machine.get('accelerator', 'tcg'), 32)}"
    misc = {"cell_id": record.cell_id, "slug": record.slug, "rep": record.rep,
            "axes": {k: v for k, v in record.axes.items() if not (isinstance(v, float) and not math.isfinite(v))}}
    misc |= {k: _text(machine[k], 200) for k in ("machine", "device_type", "accelerator", "version") if k in machine}
    return {"comment": comment, "misc": misc}


def _test(origin: str, run_key: str, build_id: str, record: RepRecord, t: TestResult,
          metrics: list[Metric], started: str | None) -> dict[str, Any]:
    path = test_path(t.name)
    doc: dict[str, Any] = {
        "id": f"{origin}:{run_key}.{record.cell_id}.{record.rep}.{_text(t.name, 300)}",
        "origin": origin, "build_id": build_id, "path": path, "status": STATUS[t.status],
        "environment": _environment(record),
        "misc": {"kharness_test": _text(t.name, 300), "kharness_status": t.status},
    }
    if t.message:
        doc["comment"] = _text(t.message)
    if t.output:
        doc["log_excerpt"] = _text(t.output[-EXCERPT:], EXCERPT)
    if t.seconds and math.isfinite(t.seconds):
        doc["duration"] = float(t.seconds)
    if started:
        doc["start_time"] = started
    workload = "boot" if t.name == "boot" else t.name.partition(":")[2] if t.name.startswith("workload:") else ""
    if workload:
        doc["misc"]["metrics"] = _metrics(metrics, workload)
    return doc


def document(run: RunResult, origin: str) -> dict[str, Any]:
    """The KCIDB I/O document of `run` (validated against kcidb-io's latest schema)."""
    check_origin(origin)
    started = run.run.get("started") if isinstance(run.run.get("started"), str) else None
    start_time = _time(started)
    run_key = f"run-{_digest(run.run.get('name'), started)}"
    checkouts: dict[str, dict[str, Any]] = {}
    builds: dict[str, dict[str, Any]] = {}
    tests: list[dict[str, Any]] = []
    kernels: dict[str, str] = {}  # cell id -> build id, for the repetitions that did not finish
    metrics = {(r.record.cell_id, r.record.rep): r.metrics for r in run.reps}
    finished, unfinished = runner.records_of(run, run.run)
    for record in finished:
        cid, checkout = _checkout(origin, record.kernel, start_time)
        checkouts.setdefault(cid, checkout)
        bid, build = _build(origin, cid, record.kernel)
        builds.setdefault(bid, build)
        kernels.setdefault(record.cell_id, bid)
        for t in record.tests:
            tests.append(_test(origin, run_key, bid, record, t, metrics.get((record.cell_id, record.rep), []),
                               start_time))
    for record in unfinished:
        bid = kernels.get(record.cell_id) or _unknown_build(origin, checkouts, builds, record)
        t = TestResult("boot", "interrupted", record.reason)
        tests.append(_test(origin, run_key, bid, record, t, [], start_time))
    doc = {"version": {"major": 5, "minor": 3}, "checkouts": list(checkouts.values()),
           "builds": list(builds.values()), "tests": tests}
    _validate(doc)
    return doc


def _unknown_build(origin: str, checkouts: dict[str, Any], builds: dict[str, Any], record: RepRecord) -> str:
    """A cell none of whose repetitions finished: its kernel is known by name only."""
    kernel = {"name": str(record.axes.get("kernel", "unknown")), "arch": str(record.axes.get("arch", ""))}
    cid, checkout = _checkout(origin, {**kernel, "image_sha256": f"unbooted:{kernel['name']}"}, None)
    checkouts.setdefault(cid, checkout)
    bid, build = _build(origin, cid, {**kernel, "image_sha256": f"unbooted:{kernel['name']}"})
    build["status"] = "MISS"
    builds.setdefault(bid, build)
    return bid


def _time(value: str | None) -> str | None:
    """An ISO time with its zone, as KCIDB's date-time wants; None if it is not one."""
    if value and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(\+\d\d:\d\d|Z)", value):
        return value
    return None


def _validate(doc: dict[str, Any]) -> None:
    import kcidb_io

    try:
        kcidb_io.schema.LATEST.validate(doc)
    except Exception as exc:  # jsonschema's ValidationError: ours, not the input's
        raise InfraError(f"the KCIDB document does not validate: {str(exc).splitlines()[0][:300]}",
                         "report it: kharness wrote something KCIDB's schema refuses") from exc
