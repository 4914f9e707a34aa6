"""The per-cell settings: one parser per key, each turning a Node into a value.

The same parser reads a setting wherever it appears (defaults, a matrix axis
value, an include entry, an exclude entry, an expectation's `when`), so a
value means the same thing everywhere and is refused the same way. Ranges
are what a guest under QEMU can sensibly have; values outside them are
typos, not experiments.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import arches, devices
from harness import workloads as workload_decls
from harness.document import (
    Node,
    boolean,
    did_you_mean,
    integer,
    items,
    mapping,
    number,
    string,
)
from harness.errors import UsageError
from harness.model import Arch, KernelSource, Timeouts, WorkloadRun

# Names become directory names (results, cells, caches): no '/', no '..',
# no leading '-' or '.', nothing a shell or a case-insensitive disk mangles.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
NAME_RULE = "use 1-64 of a-z 0-9 . _ -, starting with a letter or digit, no '..'"

MEMORY_MIB = (128, 65536)
CPUS = (1, 8)
REPEAT = (1, 100)
# swiotlb=<nslabs>: 2 KiB slots, allocated in segments of 128 slots.
SWIOTLB_SLOTS = (128, 1 << 25)
SWIOTLB_WORDS = ("default", "force", "noforce")
TIMEOUT_MAX = 7 * 24 * 3600.0
CMDLINE_WORDS = 64
WORD_MAX = 256
# One kernel parameter: printable ASCII, no space (it would split the word),
# no '"' (the kernel's own quoting would swallow the words after it).
WORD_RE = re.compile(r"[!#-~]+")
SLUB_DEBUG_RE = re.compile(r"[A-Za-z0-9,.*_;:-]{0,256}")
# Parameters a setting owns: given in cmdline they would contradict the axes.
OWNED_PARAMS = {"swiotlb": "swiotlb", "slub_debug": "slub_debug"}
_MEMORY_RE = re.compile(r"([0-9]{1,9}) ?([MG])(?:I?B)?")

# Settings that make a cell what it is (matrix axes, part of the cell id) ...
AXES = (
    "kernel",
    "memory",
    "cpus",
    "swiotlb",
    "dma_coherent",
    "iommu_platform",
    "iommu",
    "slub_debug",
    "cmdline",
    "workloads",
)
# ... and those that only say how to run it (not axes, not in the id).
RUN_SETTINGS = ("repeat", "timeouts")
SETTINGS = AXES + RUN_SETTINGS
# What exclude entries and expectations' `when` may match on: the axes plus
# the kernel's arch.
MATCH_KEYS = (*AXES, "arch")

# The value of each setting when nothing sets it (Cell's own defaults).
BUILTIN: dict[str, Any] = {
    "memory": 1024,
    "cpus": 2,
    "swiotlb": "default",
    "dma_coherent": True,
    "iommu_platform": False,
    "iommu": "none",
    "slub_debug": None,
    "cmdline": (),
    "workloads": (),
    "repeat": 1,
}


@dataclass
class Context:
    """What the setting parsers check names against."""

    kernels: Mapping[str, KernelSource]
    workload_dirs: tuple[Path, ...] = ()
    _workloads: dict[str, workload_decls.Workload] = field(default_factory=dict)

    def workload(self, name: str, node: Node) -> workload_decls.Workload:
        if name not in self._workloads:
            try:
                self._workloads[name] = workload_decls.load(name, self.workload_dirs)
            except UsageError as exc:
                raise node.error(exc.problem, exc.fix) from exc
        return self._workloads[name]


def is_safe_name(text: str) -> bool:
    return bool(NAME_RE.fullmatch(text)) and ".." not in text


def safe_name(node: Node, what: str) -> str:
    name = string(node, "my-kernel")
    if not is_safe_name(name):
        raise node.error(f"{what} {name!r} is not a safe name", NAME_RULE)
    return name


def parse_kernel(node: Node, ctx: Context) -> str:
    name = string(node, "trixie-arm64")
    if name not in ctx.kernels:
        known = sorted(ctx.kernels)
        raise node.error(
            f"unknown kernel {name!r}{did_you_mean(name, known)}",
            f"declare it under kernels: or use one of {', '.join(known)}",
        )
    return name


def parse_memory(node: Node, ctx: Context) -> int:
    """MiB: an integer, or a string with a binary unit ("512M", "2G", "1GiB")."""
    value = node.value
    if isinstance(value, str):
        m = _MEMORY_RE.fullmatch(value.strip().upper())
        if not m:
            raise node.error(
                f"memory {value!r} is not a size", 'give MiB as an integer, or e.g. "512M", "2G"'
            )
        value = int(m.group(1)) * (1024 if m.group(2) == "G" else 1)
        node = Node(value, node.line, node.path, node.file)
    return integer(node, *MEMORY_MIB, unit=" MiB", example='1024 or "2G"')


def parse_cpus(node: Node, ctx: Context) -> int:
    return integer(node, *CPUS)


def parse_repeat(node: Node, ctx: Context) -> int:
    return integer(node, *REPEAT)


def parse_swiotlb(node: Node, ctx: Context) -> str:
    """default | force | noforce | a slot count; stored as Cell.swiotlb's string."""
    value = node.value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        node = Node(int(value), node.line, node.path, node.file)
        value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(integer(node, *SWIOTLB_SLOTS, unit=" slots"))
    if value not in SWIOTLB_WORDS:
        hint = did_you_mean(value, SWIOTLB_WORDS) if isinstance(value, str) else ""
        raise node.error(
            f"swiotlb {value!r} is not a swiotlb setting{hint}",
            f"give {', '.join(SWIOTLB_WORDS)} or slots {SWIOTLB_SLOTS[0]}..{SWIOTLB_SLOTS[1]}",
        )
    return str(value)


def parse_bool(node: Node, ctx: Context) -> bool:
    return boolean(node)


def parse_iommu(node: Node, ctx: Context) -> str:
    """none, or an IOMMU device kind (harness/devices/: smmuv3, virtio-iommu, intel-iommu)."""
    known = ("none", *devices.names("iommu"))
    value = string(node, "smmuv3")
    if value not in known:
        raise node.error(f"unknown iommu {value!r}{did_you_mean(value, known)}", f"give one of {', '.join(known)}")
    return value


def parse_slub_debug(node: Node, ctx: Context) -> str | None:
    """null/false: off; true: plain `slub_debug` (all checks); a string: its options."""
    value = node.value
    if value is None or value is False:
        return None
    if value is True:
        return ""
    text = string(node, '"U,kmalloc-*"')
    if not SLUB_DEBUG_RE.fullmatch(text):
        raise node.error(
            f"slub_debug {text!r} has characters a slub_debug option cannot have",
            'give flags and caches like "FZPU,kmalloc-*"',
        )
    return text


def parse_cmdline(node: Node, ctx: Context) -> tuple[str, ...]:
    """Extra kernel words. They go to QEMU's -append, never through a shell."""
    words = items(node, "[loglevel=8, mitigations=off]")
    if len(words) > CMDLINE_WORDS:
        raise node.error(f"{len(words)} cmdline words", f"give at most {CMDLINE_WORDS}")
    return tuple(_cmdline_word(w) for w in words)


def _cmdline_word(node: Node) -> str:
    word = string(node, "loglevel=8")
    if not word or len(word) > WORD_MAX or not WORD_RE.fullmatch(word):
        raise node.error(
            f"cmdline word {word!r} is not one kernel parameter",
            "one parameter per list item: printable ASCII without spaces or '\"', "
            f"at most {WORD_MAX} characters",
        )
    param = word.split("=", 1)[0]
    if param in OWNED_PARAMS:
        raise node.error(
            f"{param} is a setting of its own",
            f"use {OWNED_PARAMS[param]}: so the cell's axes say it",
        )
    return word


def parse_workloads(node: Node, ctx: Context) -> tuple[WorkloadRun, ...]:
    runs = tuple(_workload(item, ctx) for item in items(node, "[idle, dd-direct]"))
    seen: set[str] = set()
    for item, run in zip(node.value, runs, strict=True):
        if run.name in seen:
            raise item.error(
                f"workload {run.name!r} appears twice in one cell",
                "metrics are keyed by workload name: vary its params with a matrix axis instead",
            )
        seen.add(run.name)
    return runs


def _workload(node: Node, ctx: Context) -> WorkloadRun:
    if isinstance(node.value, str):
        ctx.workload(node.value, node)
        return WorkloadRun(node.value)
    keys = mapping(node, ("name", "params"), ("name",), "{name: dd-direct, params: {count: 500}}")
    name = string(keys["name"], "dd-direct")
    decl = ctx.workload(name, keys["name"])
    params = keys.get("params")
    given = mapping(params, dict(decl.params), example="{count: 500}") if params else {}
    declared = dict(decl.params)
    return WorkloadRun(name, tuple(sorted((k, _param(v, declared[k])) for k, v in given.items())))


def _param(node: Node, default: Any) -> Any:
    """A workload parameter: a scalar of its default's type (int may stand for float)."""
    value = node.value
    want = type(default)
    ok = isinstance(value, want) and not (isinstance(value, bool) and want is not bool)
    ok = ok or (want is float and isinstance(value, int) and not isinstance(value, bool))
    ok = ok or (default is None and isinstance(value, str | int | float | bool))
    if not ok:
        raise node.error(
            f"must be like its default {default!r}, not {value!r}", "give a value of the same type"
        )
    if isinstance(value, str) and not value.isprintable():
        # Parameters reach the guest as environment variables: no NUL, no newline.
        raise node.error(f"parameter {value!r} has control characters", "give one line of text")
    return value


def parse_timeouts(node: Node, ctx: Context) -> dict[str, float]:
    """Seconds; only the keys given (they are merged onto the earlier layers)."""
    keys = mapping(
        node, ("boot", "workload", "cell"), example="{boot: 180, workload: 600, cell: 1800}"
    )
    out: dict[str, float] = {}
    for key, child in keys.items():
        seconds = number(child, "600")
        if not 0 < seconds <= TIMEOUT_MAX:
            raise child.error(
                f"timeout {seconds:g} s is out of range", f"give 1..{TIMEOUT_MAX:.0f} seconds"
            )
        out[key] = seconds
    return out


def timeouts(layers: list[tuple[dict[str, float], Node]]) -> Timeouts:
    """Merge the timeouts layers (defaults, then include) and check they fit together."""
    merged: dict[str, float] = {}
    for layer, _ in layers:
        merged.update(layer)
    result = Timeouts(**merged)
    if result.cell < result.boot and layers:
        raise layers[-1][1].error(
            f"timeouts.cell ({result.cell:g} s) is shorter than timeouts.boot ({result.boot:g} s)",
            "raise cell or lower boot (a cell's timeout covers its boot)",
        )
    return result


Parser = Callable[[Node, Context], Any]
PARSERS: dict[str, Parser] = {
    "kernel": parse_kernel,
    "memory": parse_memory,
    "cpus": parse_cpus,
    "swiotlb": parse_swiotlb,
    "dma_coherent": parse_bool,
    "iommu_platform": parse_bool,
    "iommu": parse_iommu,
    "slub_debug": parse_slub_debug,
    "cmdline": parse_cmdline,
    "workloads": parse_workloads,
    "repeat": parse_repeat,
    "timeouts": parse_timeouts,
}


def arch(node: Node) -> Arch:
    """arm64 or x86_64; the other spellings people use get pointed home."""
    known = arches.names()
    value = string(node, known[0])
    if value not in known:
        alias = arches.canonical(value)
        hint = f" (kharness calls it {alias!r})" if alias else did_you_mean(value, known)
        raise node.error(f"unknown arch {value!r}{hint}", f"give one of {', '.join(known)}")
    return value


MATCH_PARSERS: dict[str, Parser] = {
    **{key: PARSERS[key] for key in AXES},
    "arch": lambda node, ctx: arch(node),
}
