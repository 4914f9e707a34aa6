"""fio --output-format=json: per job and direction, IOPS, bandwidth, completion latency.

fio may print warnings ("fio: ...", "note: ...") before the JSON on the same
stream, so the document is looked for at the first line that starts with
'{'. Bandwidth is reported in bytes/s (fio's `bw` is KiB/s); latency
percentiles are fio's completion latency (clat_ns), the time the device and
the DMA path take, without submission.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.collect import catalogue
from harness.collect.text import MAX_INPUT, ParseError, decode, label, shorten
from harness.model import Metric

DIRECTIONS = ("read", "write")
PERCENTILES = (("p50", "50.000000"), ("p99", "99.000000"), ("p99_9", "99.900000"))
MAX_VALUE = 1e18
MAX_JOBS = 4096


@dataclass(frozen=True)
class FioDirection:
    iops: float
    bw_bytes: float  # bytes per second
    ios: int  # completed I/Os (total_ios)
    clat_ns: tuple[tuple[str, float], ...] = ()  # ("p50", ns), ("p99", ns), ("p99_9", ns)


@dataclass(frozen=True)
class FioJob:
    name: str
    error: int  # fio's per-job error (an errno); non-zero means the job failed
    directions: tuple[tuple[str, FioDirection], ...]  # only those that did I/O


@dataclass(frozen=True)
class FioResult:
    version: str
    jobs: tuple[FioJob, ...]


def parse(data: str | bytes) -> FioResult:
    """The jobs of one fio JSON report; ParseError names the missing or bad field."""
    doc = _document(decode(data, "fio output", MAX_INPUT))
    jobs = doc.get("jobs")
    if not isinstance(jobs, list) or not jobs:
        raise ParseError("fio: no 'jobs' list in the JSON report")
    if len(jobs) > MAX_JOBS:
        raise ParseError(f"fio: {len(jobs)} jobs, more than {MAX_JOBS}")
    return FioResult(
        version=str(doc.get("fio version", "unknown"))[:40],
        jobs=tuple(_job(i, j) for i, j in enumerate(jobs)),
    )


def _document(text: str) -> dict[str, Any]:
    """The first JSON object that starts a line; what surrounds it is fio's chatter."""
    decoder = json.JSONDecoder()
    starts = re.finditer(r"^\{", text, re.MULTILINE)
    for m in itertools.islice(starts, 16):  # a bound: each failed try may read far
        try:
            doc, _ = decoder.raw_decode(text, m.start())
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(doc, dict) and "jobs" in doc:
            return doc
    first = text.strip().splitlines()[:1] or [""]
    raise ParseError(f"fio: no JSON report found (first line: {shorten(first[0])!r})")


def _job(index: int, job: Any) -> FioJob:
    where = f"fio job {index}"
    if not isinstance(job, dict):
        raise ParseError(f"{where}: not a JSON object")
    name = job.get("jobname")
    if not isinstance(name, str) or not name:
        raise ParseError(f"{where}: no jobname")
    where = f"fio job {index} ({shorten(name, 40)})"
    directions = tuple(
        (d, _direction(job[d], f"{where} {d}"))
        for d in DIRECTIONS
        if isinstance(job.get(d), dict) and _number(job[d], "total_ios", f"{where} {d}") > 0
    )
    return FioJob(name=name, error=int(_number(job, "error", where)), directions=directions)


def _direction(d: Mapping[str, Any], where: str) -> FioDirection:
    bw = _number(d, "bw_bytes", where) if "bw_bytes" in d else _number(d, "bw", where) * 1024
    clat = d.get("clat_ns")
    percentiles = clat.get("percentile") if isinstance(clat, dict) else None
    found = tuple(
        (pct, _number(percentiles, key, f"{where} clat_ns"))
        for pct, key in PERCENTILES
        if isinstance(percentiles, dict) and key in percentiles
    )
    return FioDirection(
        iops=_number(d, "iops", where),
        bw_bytes=bw,
        ios=int(_number(d, "total_ios", where)),
        clat_ns=found,
    )


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    if key not in obj:
        raise ParseError(f"{where}: no {key}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(f"{where}: {key} is {shorten(repr(value))}, not a number")
    if not math.isfinite(value) or not 0 <= value <= MAX_VALUE:
        raise ParseError(f"{where}: {key} = {value} is out of range")
    return float(value)


def job_label(name: str) -> str:
    """A job name as it appears in metric names: "Rand Read" -> rand_read."""
    return label(name, 48, "job")


def metrics(result: FioResult, workload: str) -> list[Metric]:
    """fio.<job>.<read|write>.{iops,bw,ios,clat_p50_ns,clat_p99_ns,clat_p99_9_ns}.

    fio without group_reporting repeats a job's name for every numjobs
    clone: such jobs are added up (IOPS, bandwidth, I/Os), and the worst
    (highest) of their latency percentiles is kept, since percentiles do not add.
    """
    merged: dict[str, dict[str, float]] = {}
    for job in result.jobs:
        for direction, d in job.directions:
            acc = merged.setdefault(f"fio.{job_label(job.name)}.{direction}", {})
            for key, value in (("iops", d.iops), ("bw", d.bw_bytes), ("ios", float(d.ios))):
                acc[key] = acc.get(key, 0.0) + value
            for pct, ns in d.clat_ns:
                acc[f"clat_{pct}_ns"] = max(acc.get(f"clat_{pct}_ns", 0.0), ns)
    return [
        catalogue.metric(f"{prefix}.{key}", value, workload)
        for prefix, acc in merged.items()
        for key, value in acc.items()
    ]
