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
from typing import Any, get_args

from harness import data_dir, devices, document
from harness.document import (
    Kind,
    Node,
    did_you_mean,
    integer,
    items,
    mapping,
    named,
    number,
    string,
    type_name,
)
from harness.errors import UsageError
from harness.model import Better, MetricKind

BUILTIN_DIR = data_dir("guest_scripts")  # the checkout's guest_scripts/, or the wheel's copy
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
DECL_KEYS = ("description", "script", "devices", "params", "timeout", "metrics", "modules", "programs")
DECL = Kind("workload declaration", "guest_scripts/dd-direct.yaml")
_DEVICE_EXAMPLE = "{kind: virtio-blk, id: scratch, size_mib: 64}"
_PARAM_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class DeviceDecl:
    kind: str  # a device kind of role disk or nic (harness/devices/)
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
    """The declaration at `decl`; ConfigError `decl:line: problem; fix` for what is wrong."""
    top = document.load(decl, DECL)
    if not isinstance(top.value, dict):
        raise top.error("a workload declaration is a mapping of keys", f"start from {DECL.example}")
    # A key left empty (`devices:` with its items commented out) is absent.
    keys = {k: v for k, v in mapping(top, DECL_KEYS).items() if v.value is not None}
    return Workload(
        name=name,
        script=_script(keys.get("script"), decl, f"{name}.sh", top),
        description=string(keys["description"], "what it does") if "description" in keys else "",
        devices=_devices(keys.get("devices")),
        params=_params(keys.get("params")),
        timeout=_timeout(keys["timeout"]) if "timeout" in keys else None,
        metrics=_metrics(keys.get("metrics")),
        modules=_words(keys.get("modules"), "virtio_rng"),
        programs=_words(keys.get("programs"), "fio"),
    )


def _script(node: Node | None, decl: Path, default: str, top: Node) -> Path:
    """The script, a file beside the declaration (the guest gets that folder's files)."""
    script = decl.parent / (string(node, "idle.sh") if node is not None else default)
    if script.parent != decl.parent or not script.is_file():
        raise (node if node is not None else top).error(f"script {script.name} not found beside the declaration",
                       "put the script next to the .yaml and name it here without a folder")
    return script


def _devices(node: Node | None) -> tuple[DeviceDecl, ...]:
    found: list[DeviceDecl] = []
    for item in items(node, _DEVICE_EXAMPLE) if node is not None else ():
        dev = _device(item)
        if any(d.id == dev.id for d in found):  # one serial, one KH_DEV_<ID>: which disk?
            raise item.error(f"device id {dev.id!r} appears twice", "give each device its own id")
        found.append(dev)
    return tuple(found)


def _device(node: Node) -> DeviceDecl:
    keys = mapping(node, ("kind", "id", "size_mib"), ("kind",), _DEVICE_EXAMPLE)
    dev_id = string(keys["id"], "scratch") if "id" in keys else "scratch"
    if not re.fullmatch(r"[a-z][a-z0-9]{0,15}", dev_id):
        # It becomes a serial and part of an environment variable's name.
        raise keys["id"].error(f"device id {dev_id!r} is not valid",
                               "use a lower-case letter, then up to 15 letters or digits")
    size = integer(keys["size_mib"], 1, 65536, " MiB", "64") if "size_mib" in keys else 256
    return DeviceDecl(kind=_device_kind(keys["kind"]), id=dev_id, size_mib=size)


def _device_kind(node: Node) -> str:
    """A kind harness.devices can attach to a workload (not a boot-only device)."""
    kind = string(node, "virtio-blk")
    known = devices.names("disk") + devices.names("nic")
    if kind not in known:
        raise node.error(f"unknown device kind {kind!r}{did_you_mean(kind, known)}",
                         f"use one of {', '.join(known)}")
    return kind


def _params(node: Node | None) -> tuple[tuple[str, Any], ...]:
    """Defaults of the parameters. Each reaches the guest as one variable KH_<PARAM>,
    so a name is a lower-case identifier and a value a scalar."""
    params = named(node, "{count: 2000}") if node is not None else {}
    for key, child in params.items():
        if not _PARAM_RE.fullmatch(key):
            raise child.error(f"parameter name {key!r} is not valid",
                              "use a lower-case letter, then letters, digits or _")
        if isinstance(child.value, dict | list):
            raise child.error(f"must be a string, number or boolean, not {type_name(child.plain())}",
                              "give one value, e.g. count: 2000")
    return tuple(sorted((k, v.value) for k, v in params.items()))


def _timeout(node: Node) -> float:
    seconds = number(node, "300")
    if seconds <= 0:
        raise node.error(f"timeout {seconds:g} s is not positive", "give seconds, e.g. 300")
    return seconds


def _metrics(node: Node | None) -> tuple[tuple[str, MetricDecl], ...]:
    decls = named(node, "{dd.requests: {unit: requests, kind: counter}}") if node is not None else {}
    return tuple(sorted((name, _metric(child)) for name, child in decls.items()))


def _metric(node: Node) -> MetricDecl:
    keys = mapping(node, ("unit", "kind", "better"), example="{unit: s, kind: gauge, better: lower}")
    return MetricDecl(
        unit=string(keys["unit"], "s") if "unit" in keys else "",
        kind=_choice(keys["kind"], get_args(MetricKind)) if "kind" in keys else "gauge",
        better=_choice(keys["better"], get_args(Better)) if "better" in keys else "neutral",
    )


def _choice(node: Node, choices: tuple[str, ...]) -> Any:
    value = string(node, choices[0])
    if value not in choices:
        raise node.error(f"unknown value {value!r}{did_you_mean(value, choices)}",
                         f"write one of {', '.join(choices)}")
    return value


def _words(node: Node | None, example: str) -> tuple[str, ...]:
    """A list of names (modules, programs)."""
    if node is None:
        return ()
    return tuple(string(item, example) for item in items(node, f"[{example}]"))
