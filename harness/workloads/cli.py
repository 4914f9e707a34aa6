"""`kharness workloads [NAME ...] [--dir DIR] [--format text|json]`: what each workload is.

Read from the declarations themselves (`guest_scripts/<name>.yaml`, and the
folders `--dir` names first, as a config's `workload_dirs:` would): its
devices, guest programs, parameters with their defaults, and metrics. A fio
workload also gets fio's metrics from its JSON report (the catalogue's
`fio.*`); every workload gets the collectors' (swiotlb, slab, meminfo,
vmstat), which are listed once, not per workload.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness import devices
from harness.collect.catalogue import CATALOGUE
from harness.errors import EXIT_OK, UsageError
from harness.workloads import DeviceDecl, Workload, available, load, search_path

COLLECTORS_NOTE = ("every workload also reports the collectors' metrics: swiotlb.*, slab.*, "
                   "meminfo.*, vmstat.* (README \"Result directory\")")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="only these workloads (default: all)")
    parser.add_argument("--dir", action="append", default=[], type=Path, metavar="DIR", dest="dirs",
                        help="also a folder of workload declarations, searched first (repeatable)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")


def main(args: argparse.Namespace) -> int:
    dirs = tuple(args.dirs)
    for d in dirs:
        if not d.is_dir():
            raise UsageError(f"--dir {d}: not a folder", "give a folder of <name>.yaml + <name>.sh")
    names = args.names or available(dirs)
    workloads = [load(name, dirs) for name in names]
    if args.format == "json":
        print(json.dumps({"search_path": [str(d) for d in search_path(dirs)],
                          "workloads": [as_json(w) for w in workloads]}, indent=2))
    else:
        print("\n\n".join(as_text(w) for w in workloads) + f"\n\nnote: {COLLECTORS_NOTE}")
    return EXIT_OK


def fio_metrics(w: Workload) -> list[dict[str, str]]:
    """What fio's JSON report gives a workload that runs fio (per job and direction)."""
    if "fio" not in w.programs:
        return []
    return [{"name": s.pattern, "unit": s.unit, "kind": s.kind, "better": s.better, "meaning": s.meaning}
            for s in CATALOGUE if s.pattern.startswith("fio.")]


def as_json(w: Workload) -> dict[str, Any]:
    return {
        "name": w.name,
        "description": w.description,
        "script": str(w.script),
        "devices": [{"kind": d.kind, "id": d.id, "size_mib": d.size_mib} for d in w.devices],
        "programs": list(w.programs),
        "modules": list(w.modules),
        "params": dict(w.params),
        "timeout": w.timeout,
        "metrics": [{"name": n, "unit": m.unit, "kind": m.kind, "better": m.better} for n, m in w.metrics],
        "fio_metrics": fio_metrics(w),
    }


def as_text(w: Workload) -> str:
    devices = ", ".join(_device(d) for d in w.devices) or "-"
    params = " ".join(f"{k}={_value(v)}" for k, v in w.params) or "-"
    lines = [
        f"{w.name}: {w.description}" if w.description else w.name,
        f"  devices   {devices}",
        f"  programs  {' '.join(w.programs) or '-'}" + (f"; modules {' '.join(w.modules)}" if w.modules else ""),
        f"  params    {params}",
        f"  timeout   {f'{w.timeout:g} s' if w.timeout else 'the cell default'}",
        f"  script    {w.script}",
    ]
    metrics: list[tuple[str, str, str, str, str]] = [(n, m.unit, m.kind, m.better, "") for n, m in w.metrics]
    metrics += [(f["name"], f["unit"], f["kind"], f["better"], "  (fio JSON)") for f in fio_metrics(w)]
    if not metrics:
        lines.append("  metrics   - (the collectors' only)")
    for i, (name, unit, kind, better, source) in enumerate(metrics):
        what = ", ".join(x for x in (unit, kind, f"{better} is better" if better != "neutral" else "") if x)
        lines.append(f"  {'metrics' if i == 0 else '':<9} {name} [{what}]{source}")
    return "\n".join(lines)


def _device(d: DeviceDecl) -> str:
    size = f", {d.size_mib} MiB" if devices.get(d.kind).role == "disk" else ""
    return f"{d.kind} (id {d.id}{size})"


def _value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, bool) or v == "" else str(v)
