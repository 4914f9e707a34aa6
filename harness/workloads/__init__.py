"""Workloads: a guest script plus a small YAML declaration beside it.

A declaration `<dir>/<name>.yaml` names the script, the QEMU devices it
needs, its parameters (with defaults, overridable per cell) and the metrics
its output reports. Built-in workloads live in the project's `guest_scripts/`;
a user adds one by putting the two files in a folder named by the config's
`workload_dirs:` (no change to kharness).

Script contract (runs in the guest under busybox sh):
- parameters arrive as environment variables `KH_<PARAM>` (upper case);
- devices are found by serial: `KH_DEV_<ID>` holds the guest path of the
  device whose `id` the declaration gives (e.g. KH_DEV_SCRATCH=/dev/vda);
  a virtio-net device gets `KH_NET_<ID>` instead: key=value words (mac,
  addr, peer and the traffic peer's ports) for the second NIC;
- `programs:` names guest programs beyond busybox the script needs (fio);
- each metric is one stdout line `metric <name> <value>`; other lines are kept
  as the workload's raw output; a non-zero exit is a workload failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError
from harness.model import Better, MetricKind

BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "guest_scripts"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
DEVICE_KINDS = ("virtio-blk", "nvme", "virtio-net", "usb-storage")
DECL_KEYS = {"description", "script", "devices", "params", "timeout", "metrics", "modules", "programs"}


@dataclass(frozen=True)
class DeviceDecl:
    kind: str  # one of DEVICE_KINDS
    id: str  # serial, and KH_DEV_<ID> in the guest
    size_mib: int = 256


@dataclass(frozen=True)
class MetricDecl:
    unit: str = ""
    kind: MetricKind = "gauge"
    better: Better = "neutral"


@dataclass(frozen=True)
class Workload:
    name: str
    script: Path
    description: str = ""
    devices: tuple[DeviceDecl, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()  # defaults
    timeout: float | None = None
    metrics: tuple[tuple[str, MetricDecl], ...] = ()
    modules: tuple[str, ...] = ()  # extra guest kernel modules it needs
    programs: tuple[str, ...] = ()  # guest programs beyond busybox (e.g. fio), see initramfs.base

    def metric_decl(self, name: str) -> MetricDecl:
        return dict(self.metrics).get(name, MetricDecl())


def search_path(extra: tuple[Path, ...] = ()) -> tuple[Path, ...]:
    """User folders first, so a user's workload can shadow a built-in one."""
    return (*extra, BUILTIN_DIR)


def available(dirs: tuple[Path, ...] = ()) -> list[str]:
    names = {p.stem for d in search_path(dirs) if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(n for n in names if NAME_RE.fullmatch(n))


def load(name: str, dirs: tuple[Path, ...] = ()) -> Workload:
    """Find and validate workload `name`; UsageError names the file and the fix."""
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"workload name {name!r} is not valid", "use lower-case letters, digits, - and _")
    for d in search_path(dirs):
        decl = d / f"{name}.yaml"
        if decl.is_file():
            return _parse(name, decl)
    known = ", ".join(available(dirs)) or "none"
    raise UsageError(f"unknown workload {name!r}", f"known workloads: {known}")


def _parse(name: str, decl: Path) -> Workload:
    try:
        raw = yaml.safe_load(decl.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{decl}: not valid YAML ({exc})".replace("\n", " "), "fix the declaration") from exc
    if not isinstance(raw, dict):
        raise UsageError(f"{decl}: a workload declaration is a mapping", "see guest_scripts/idle.yaml")
    unknown = set(raw) - DECL_KEYS
    if unknown:
        raise UsageError(f"{decl}: unknown key(s) {', '.join(sorted(unknown))}",
                         f"allowed: {', '.join(sorted(DECL_KEYS))}")
    script = decl.parent / str(raw.get("script", f"{name}.sh"))
    if not script.is_file() or script.parent != decl.parent:
        raise UsageError(f"{decl}: script {script.name} not found beside it", "put the script next to the .yaml")
    try:
        devices = tuple(_device(d) for d in raw.get("devices") or ())
        metrics = tuple(sorted((str(k), MetricDecl(**(v or {}))) for k, v in (raw.get("metrics") or {}).items()))
        params = tuple(sorted((str(k), v) for k, v in (raw.get("params") or {}).items()))
        timeout = float(raw["timeout"]) if raw.get("timeout") is not None else None
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{decl}: {exc}", "see guest_scripts/dd-direct.yaml for the format") from exc
    return Workload(
        name=name, script=script, description=str(raw.get("description", "")), devices=devices,
        params=params, timeout=timeout, metrics=metrics, modules=tuple(raw.get("modules") or ()),
        programs=tuple(str(p) for p in raw.get("programs") or ()),
    )


def _device(d: Any) -> DeviceDecl:
    if not isinstance(d, dict) or d.get("kind") not in DEVICE_KINDS:
        raise ValueError(f"device {d!r}: kind must be one of {', '.join(DEVICE_KINDS)}")
    dev = DeviceDecl(kind=str(d["kind"]), id=str(d.get("id", "scratch")), size_mib=int(d.get("size_mib", 256)))
    if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", dev.id) or not 1 <= dev.size_mib <= 65536:
        raise ValueError(f"device {d!r}: id is [a-z][a-z0-9]*, size_mib 1..65536")
    return dev
