"""The LAVA test definition of one cell repetition: what a QEMU run does over SSH, on the console.

A QEMU run (harness/run/cell.py) arms the bounce histograms, waits for the
workloads' disks, snapshots, and around each workload starts the slab
sampler, runs the workload, stops the sampler and snapshots again, then
saves dmesg. The steps here are those, one line each, every one through
`kharness-lava.sh NAME SECONDS COMMAND...`, which prints the command's
output between markers once it has ended. `kharness lava ingest` reads the
parts back from the job's log by NAME:

    header                      the cell, repetition, axes, kernel and expectations (base64 JSON)
    trace-setup                 kharness-trace.sh (the histograms, set again: harmless)
    trace-slabinfo-before|after init's /proc/slabinfo around arming them (their kmalloc cost)
    disks                       kharness-run.sh /dev/null: the workloads' disks found (if any)
    snapshot-boot               kharness-snapshot.sh
    sampler-start-W, workload-W, sampler-stop-W, snapshot-after-W   per workload W, in order
    dmesg

The console's kernel messages are turned down to emergencies first (`dmesg
-n 1`): nothing of the kernel's lands between the markers, and the whole
ring buffer is in the dmesg part.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from harness.initramfs.runlayer import GUEST_SCRIPTS
from harness.model import Cell, Expectation
from harness.run import expect, sampling
from harness.workloads import Workload

HEADER_FORMAT = 1
DRIVER = f"sh {GUEST_SCRIPTS}/kharness-lava.sh"
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,127}")
SHORT = 30  # seconds: trace, disks, sampler, dmesg
SNAPSHOT = 60  # as harness/run/snapshots.py
TRACE_SLABINFO = 4 << 20  # bytes of init's slabinfo read, as run/cell.py does


def header(cell: Cell, rep: int, device_type: str, kernel: Mapping[str, Any],
           config: Mapping[str, Any]) -> dict[str, Any]:
    """What ingest needs to know about the repetition that the console does not say."""
    return {
        "format": HEADER_FORMAT,
        "cell_id": cell.id, "slug": cell.slug, "rep": rep, "repeat": cell.repeat,
        "axes": dict(cell.axes), "device_type": device_type, "kernel": dict(kernel), "config": dict(config),
        "workloads": [{"name": w.name, "params": dict(w.params)} for w in cell.workloads],
        "expectations": [expectation_json(e) for e in cell.expectations if expect.applies(e, cell)],
        "timeouts": {"workload": cell.timeouts.workload, "cell": cell.timeouts.cell},
    }


def expectation_json(e: Expectation) -> dict[str, Any]:
    return {"name": e.name, "metric": e.metric, "op": e.op, "value": e.value, "workload": e.workload}


def encode_header(doc: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).decode()


def part(name: str, seconds: float, command: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(f"part name {name!r}")
    return f"{DRIVER} {name} {max(0, int(seconds))} {command}"


def env_words(env: Mapping[str, str]) -> str:
    """`env K='v' ...` for a command: names are identifiers, values quoted for the guest's sh."""
    for k in env:
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", k):
            raise ValueError(f"environment name {k!r}")
    return "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())) if env else ""


def steps(cell: Cell, workloads: Sequence[Workload], head: Mapping[str, Any],
          device_env: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The test's shell lines; `device_env[w]` is workload w's disks (KH_SERIAL_*/KH_FIND_* or KH_DEV_*)."""
    scripts = GUEST_SCRIPTS
    run = f"sh {scripts}/kharness-run.sh"
    lines = [
        "dmesg -n 1",
        part("header", SHORT, f"echo {encode_header(head)}"),
        part("trace-setup", SHORT, f"sh {scripts}/kharness-trace.sh"),
        *(part(f"trace-slabinfo-{when}", SHORT, f"head -c {TRACE_SLABINFO} /run/slabinfo-{when}-trace")
          for when in ("before", "after")),
    ]
    disks: dict[str, str] = {}
    for wl in workloads:
        disks.update({k: v for k, v in device_env.get(wl.name, {}).items() if k.startswith("KH_SERIAL_")
                      or k.startswith("KH_FIND_")})
    if disks:
        lines.append(part("disks", SHORT, f"{env_words(disks)} {run} /dev/null"))
    lines.append(part("snapshot-boot", SNAPSHOT, f"sh {scripts}/kharness-snapshot.sh"))
    by_name = {wl.name: wl for wl in workloads}
    for wl_run in cell.workloads:
        wl = by_name[wl_run.name]
        params = {**dict(wl.params), **dict(wl_run.params)}
        every = sampling.interval(params)
        env = {f"KH_{k.upper()}": str(v) for k, v in params.items()} | dict(device_env.get(wl.name, {}))
        timeout = min(cell.timeouts.workload, wl.timeout or cell.timeouts.workload)
        if every:
            lines.append(part(f"sampler-start-{wl.name}", SHORT, f"sh {scripts}/kharness-sample.sh start {every:g}"))
        lines.append(part(f"workload-{wl.name}", timeout,
                          f"{env_words(env)} {run} {scripts}/{shlex.quote(wl.script.name)}"))
        if every:
            lines.append(part(f"sampler-stop-{wl.name}", SHORT, f"sh {scripts}/kharness-sample.sh stop"))
        lines.append(part(f"snapshot-after-{wl.name}", SNAPSHOT, f"sh {scripts}/kharness-snapshot.sh"))
    lines.append(part("dmesg", SHORT, "dmesg"))
    return lines


def seconds(cell: Cell, workloads: Sequence[Workload]) -> float:
    """The longest the steps may take: every part's limit, plus the console's time to print them."""
    by_name = {wl.name: wl for wl in workloads}
    total = float(6 * SHORT + SNAPSHOT)
    for w in cell.workloads:
        wl = by_name[w.name]
        total += min(cell.timeouts.workload, wl.timeout or cell.timeouts.workload) + 2 * SHORT + SNAPSHOT
    return min(total, cell.timeouts.cell + 6 * SHORT) + 120


def definition(cell: Cell, rep: int, lines: list[str]) -> dict[str, Any]:
    """The inline LAVA test definition (Lava-Test Test Definition 1.0)."""
    return {
        "metadata": {
            "format": "Lava-Test Test Definition 1.0",
            "name": "kharness",
            "description": f"kharness cell {cell.id} repetition {rep}: snapshots around its workloads",
        },
        "run": {"steps": lines},
    }
