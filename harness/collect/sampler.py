"""The slab time series kharness-sample.sh takes during a workload.

Snapshots before and after a workload only see what it left behind; the
samples show what it held at its peak. Each sample is a slabinfo cut to its
kmalloc rows plus meminfo's Slab and SUnreclaim, after a line
`@@kharness-sample <uptime>@@`; the output ends with the sampler's own CPU
time (`@@kharness-sampler ticks=N hz=100@@`), so every run states what the
sampling cost. A sample that does not parse is dropped: silently if it is
the last one (`stop` cut it short), else named in `problems`; nothing raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.collect import catalogue, meminfo, slabinfo
from harness.collect.text import ParseError, shorten
from harness.model import Metric

MAX_INPUT = 16 << 20  # bytes read from the guest
MAX_SAMPLES = 4096  # the guest script stops at 3600 by default
MAX_PROBLEMS = 20
_SAMPLE = re.compile(r"^@@kharness-sample ([0-9]{1,12}(?:\.[0-9]{1,9})?)@@$", re.MULTILINE)
_COST = re.compile(r"^@@kharness-sampler ticks=([0-9]{1,15}) hz=([1-9][0-9]{0,5})@@$", re.MULTILINE)
_MEMINFO_KEYS = ("MemTotal", "Slab", "SUnreclaim")


@dataclass(frozen=True)
class Sample:
    uptime: float  # seconds since boot, when the sample was taken
    kmalloc_bytes: int  # slab memory of every kmalloc cache (as slab.kmalloc.bytes)
    classes: tuple[tuple[str, int], ...]  # (size class label, bytes)
    slab: int | None  # meminfo Slab, bytes
    sunreclaim: int | None  # meminfo SUnreclaim, bytes


@dataclass(frozen=True)
class Series:
    samples: tuple[Sample, ...]
    cpu_seconds: float | None  # the sampler's own CPU time; None if stop did not report it
    problems: tuple[str, ...] = ()


def parse(data: str | bytes, pagesize: int | None) -> Series:
    """The samples in `data` (kharness-sample.sh stop's output), at the guest's page size.

    pagesize None: inferred from each sample's slab layout (slabinfo.infer_pagesize).
    """
    text = data[:MAX_INPUT].decode("utf-8", errors="replace") if isinstance(data, bytes) else data[:MAX_INPUT]
    problems: list[str] = []
    marks = list(_SAMPLE.finditer(text))
    if len(marks) > MAX_SAMPLES:
        problems.append(f"{len(marks)} samples; the first {MAX_SAMPLES} kept")
        marks = marks[:MAX_SAMPLES]
    samples: list[Sample] = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else _end(text, m.end())
        try:
            samples.append(_sample(float(m[1]), text[m.end():end], pagesize))
        except ParseError as exc:
            if i == len(marks) - 1 and samples:
                continue  # the sample `stop` cut short: expected, not a problem
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"sample {i} at {m[1]} s dropped: {shorten(str(exc), 200)}")
    cost = _COST.search(text)
    cpu = int(cost[1]) / int(cost[2]) if cost else None
    if cost is None:
        problems.append("no sampler cost line: the sampler was not stopped cleanly")
    return Series(tuple(samples), cpu, tuple(problems))


def _end(text: str, start: int) -> int:
    cost = _COST.search(text, start)
    return cost.start() if cost else len(text)


def _sample(uptime: float, body: str, pagesize: int | None) -> Sample:
    lines = body.strip("\n").split("\n")
    mem = [ln for ln in lines if ln.split(":", 1)[0] in _MEMINFO_KEYS]
    slab = [ln for ln in lines if ln.split(":", 1)[0] not in _MEMINFO_KEYS]
    info = slabinfo.parse("\n".join(slab))
    fields = meminfo.parse("\n".join(mem))
    pagesize = pagesize or slabinfo.infer_pagesize(info)
    if pagesize is None:
        raise ParseError("no page size given and none inferable from the slabs")
    classes = tuple((c.label, c.slab_pages * pagesize) for c in slabinfo.size_classes(info))
    return Sample(uptime=uptime, kmalloc_bytes=sum(b for _, b in classes), classes=classes,
                  slab=fields.get("Slab"), sunreclaim=fields.get("SUnreclaim"))


def metrics(series: Series, workload: str) -> list[Metric]:
    """Peaks of the series, the number of samples and the sampler's own CPU time."""
    pairs: list[tuple[str, float]] = [("sampler.samples", len(series.samples))]
    if series.cpu_seconds is not None:
        pairs.append(("sampler.cpu_seconds", series.cpu_seconds))
    if series.samples:
        sizes = [s.kmalloc_bytes for s in series.samples]
        pairs += [("slab.kmalloc.bytes.max", max(sizes)), ("slab.kmalloc.bytes.min", min(sizes))]
        unreclaim = [s.sunreclaim for s in series.samples if s.sunreclaim is not None]
        if unreclaim:
            pairs.append(("meminfo.sunreclaim.max", max(unreclaim)))
    return catalogue.measured(pairs, workload)


def to_json(series: Series, interval: float) -> dict[str, Any]:
    """The series as raw/series-<workload>.json keeps it: one list per figure, for plots."""
    labels = sorted({label for s in series.samples for label, _ in s.classes}, key=_size)
    return {
        "interval": interval,
        "uptime": [s.uptime for s in series.samples],
        "slab.kmalloc.bytes": [s.kmalloc_bytes for s in series.samples],
        "meminfo.slab": [s.slab for s in series.samples],
        "meminfo.sunreclaim": [s.sunreclaim for s in series.samples],
        "classes": {lb: [dict(s.classes).get(lb, 0) for s in series.samples] for lb in labels},
        "sampler.cpu_seconds": series.cpu_seconds,
        "problems": list(series.problems),
    }


def _size(label: str) -> int:
    return int(label[:-1]) * 1024 if label.endswith("k") else int(label)
