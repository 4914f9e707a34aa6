"""A cell's identity: its axes, its readable slug and its id.

The id must be the same for the same cell in every run, shard and machine,
and across configs, so that compare, merge and bisect can line cells up. So
it is a pure function of the cell's settings, never of the config's shape
(which axes happen to vary) or of the machine:

- identity = the kernel's identity plus every axis whose value differs from
  the built-in default (so a setting added later, at its default, keeps
  today's ids);
- a Debian kernel is its name, suite, package and arch. The mirror is only
  where it is fetched from (signed, same bytes);
- a local kernel is its name and arch. Its paths say where it is today, and
  its contents change with every rebuild: the image's sha256 is recorded with
  the results instead. So "baseline" vs "patched" runs of one config, with
  the image rebuilt in between, line up cell by cell;
- a source kernel likewise is its name and arch: its ref moves, its patches
  are revised; the commit, tree hash, patch ids and config sha256 of each
  build are recorded with the results;
- repeat, timeouts and expectations say how a cell is run and judged, not
  what it is: they are not part of the id.

id = f"{slug}-{hash8}", hash8 = the first 8 hex digits of the sha256 of the
identity as canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from harness.config.settings import AXES, BUILTIN
from harness.model import KernelSource, WorkloadRun

SLUG_MAX = 64
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def axis_value(key: str, value: Any) -> Any:
    """A setting as an axis: a JSON scalar, so cell.json round-trips and matches.

    cmdline words have no spaces, so joining them by spaces loses nothing.
    """
    if key == "cmdline":
        return " ".join(value)
    if key == "workloads":
        return ",".join(_workload_text(run) for run in value)
    return value


def _workload_text(run: WorkloadRun) -> str:
    if not run.params:
        return run.name
    params = ",".join(f"{k}={json.dumps(v)}" for k, v in run.params)
    return f"{run.name}({params})"


def axes(kernel: KernelSource, settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Every axis of the cell (not only the varied ones) plus arch, sorted by key."""
    out = {key: axis_value(key, settings[key]) for key in AXES if key != "kernel"}
    out["kernel"] = kernel.name
    out["arch"] = kernel.arch
    return tuple(sorted(out.items()))


def kernel_identity(kernel: KernelSource) -> dict[str, Any]:
    if kernel.debian is not None:
        deb = kernel.debian
        return {
            "name": kernel.name,
            "debian": {"suite": deb.suite, "package": deb.package, "arch": deb.arch},
        }
    if kernel.source is not None:
        return {"name": kernel.name, "arch": kernel.arch, "source": True}
    return {"name": kernel.name, "arch": kernel.arch, "local": True}


def identity(kernel: KernelSource, settings: Mapping[str, Any]) -> dict[str, Any]:
    ident: dict[str, Any] = {"kernel": kernel_identity(kernel)}
    for key in AXES:
        if key == "kernel" or settings[key] == BUILTIN[key]:
            continue
        value = settings[key]
        if key == "workloads":
            value = [{"name": run.name, "params": dict(run.params)} for run in value]
        ident[key] = list(value) if isinstance(value, tuple) else value
    return ident


def cell_hash(ident: Mapping[str, Any]) -> str:
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def slug(kernel: KernelSource, settings: Mapping[str, Any]) -> str:
    """Readable, safe, bounded: the kernel, then each boot setting off its default.

    Workloads and their params are left to the hash (and the axes): they are
    the same in most cells and would only make every id longer.
    """
    s = settings
    tokens = [kernel.name]
    if s["memory"] != BUILTIN["memory"]:
        tokens.append(f"mem{s['memory']}")
    if s["cpus"] != BUILTIN["cpus"]:
        tokens.append(f"cpu{s['cpus']}")
    if s["swiotlb"] != BUILTIN["swiotlb"]:
        tokens.append(f"swiotlb-{s['swiotlb']}")
    if not s["dma_coherent"]:
        tokens.append("nc")  # non-coherent DMA
    if s["iommu_platform"]:
        tokens.append("iommu")  # virtio's ACCESS_PLATFORM (the DMA API), not an IOMMU
    if s["iommu"] != BUILTIN["iommu"]:
        tokens.append(s["iommu"])
    if s["slub_debug"] is not None:
        tokens.append("slub")
    tokens.extend(s["cmdline"])
    safe = (_UNSAFE.sub("-", t.lower()).strip("-") for t in tokens)
    text = ".".join(t for t in safe if t)
    return text[:SLUG_MAX].rstrip("._-")


def cell_id(kernel: KernelSource, settings: Mapping[str, Any]) -> tuple[str, str]:
    """(id, slug) of the cell with these settings."""
    name = slug(kernel, settings)
    return f"{name}-{cell_hash(identity(kernel, settings))}", name
