"""Plain values handed from one stage to the next (design.md: data flow).

Every stage takes and returns these frozen dataclasses, never live objects,
so each stage's output can be written to disk and read back by the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# A guest architecture by kharness's name for it; what each one is, is data
# in harness/arches/ (harness.arches.names() lists them).
Arch = str

DEFAULT_MIRROR = "http://deb.debian.org/debian"

Status = Literal["pass", "fail", "error", "skipped", "interrupted"]
# The one order of statuses, worst first, used wherever several are summed up
# into one (a repetition's testcases, a cell's repetitions, a run, a merge, a
# comparison): not finished, then the harness's fault, then the kernel's. An
# unknown is never reported as a pass.
STATUS_ORDER: tuple[Status, ...] = ("interrupted", "error", "fail", "pass", "skipped")


def worst(statuses: Iterable[str]) -> Status | None:
    """The worst of `statuses` by STATUS_ORDER; None if there is none (or none known)."""
    seen = set(statuses)
    return next((s for s in STATUS_ORDER if s in seen), None)

MetricKind = Literal["counter", "gauge"]
Better = Literal["higher", "lower", "neutral"]


@dataclass(frozen=True)
class DebianSource:
    """A kernel from the Debian archive, named by suite and (meta) package."""

    suite: str
    package: str
    arch: Arch
    mirror: str = DEFAULT_MIRROR


@dataclass(frozen=True)
class SourceTree:
    """A kernel to build: a git tree at a ref, optionally patched, from a kconfig.

    The patches are one of: files (`git format-patch` output or plain diffs),
    a ref range of the same repository, or an mbox; they are applied in a
    worktree of the ref, never in the user's checkout.
    """

    tree: Path  # a git work tree or repository
    ref: str = "HEAD"
    patches: tuple[Path, ...] = ()
    range: str | None = None  # A..B: the commits of B not in A
    mbox: Path | None = None
    kconfig: str = "defconfig"  # a .config file (absolute path) or a make target
    fragments: tuple[Path, ...] = ()  # config fragments merged on top, in order
    # Device kinds the cells booting this kernel need beyond every build's
    # (filled in by the config loader from their workloads). Not part of what
    # the kernel *is*: two configs naming the same tree and patches name the
    # same kernel.
    devices: tuple[str, ...] = field(default=(), compare=False)

    @property
    def patched(self) -> bool:
        return bool(self.patches or self.range or self.mbox)


@dataclass(frozen=True)
class KernelSource:
    """A kernel as a config names it: a local image, a Debian package or a source tree to build."""

    name: str
    arch: Arch
    image: Path | None = None
    modules: Path | None = None  # lib/modules/<release> tree or a tarball of one
    config: Path | None = None  # the kernel's .config
    debian: DebianSource | None = None
    source: SourceTree | None = None


@dataclass(frozen=True)
class Kernel:
    """A resolved kernel on disk, ready to boot."""

    name: str
    arch: Arch
    image: Path  # what QEMU's -kernel gets (decompressed where QEMU needs it)
    original_image: Path  # the image as shipped (vmlinuz, Image.gz, bzImage...)
    release: str  # `uname -r` of this kernel
    compression: str  # of the image as shipped: none, gzip, zstd, xz, lzma, ...
    image_sha256: str  # of the image as shipped
    modules_dir: Path | None = None  # .../lib/modules/<release>
    config: Path | None = None
    # version, url, deb_sha256; or path; or for a source build: ref, commit,
    # tree hash, patches with their ids, config sha256, compiler, build seconds
    origin: dict[str, Any] = field(default_factory=dict)
    page_size: int | None = None  # bytes, from the image header (arm64); None: not told
    # how QEMU starts it: "as shipped"; "unpacked" (an Image QEMU 7.2 cannot unwrap);
    # "pvh" (a bzImage's vmlinux, through its PVH entry: see kernel/image.py)
    entry: str = "as shipped"


@dataclass(frozen=True)
class Timeouts:
    """Seconds. boot: power-on to SSH ready; workload: one workload; cell: one boot."""

    boot: float = 180.0
    workload: float = 600.0
    cell: float = 1800.0


@dataclass(frozen=True)
class WorkloadRun:
    """A workload as a cell runs it: its name and the parameters given in YAML."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class Expectation:
    """A rule judged per cell and workload that becomes a JUnit testcase.

    `metric` is a metric name (e.g. `swiotlb.bounces`, `slab.minalign`);
    `workload` limits it to one workload (None: every workload that reports
    the metric); `when` limits it to cells whose axes match every pair.
    """

    name: str
    metric: str
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: float
    workload: str | None = None
    when: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Cell:
    """One point of the expanded matrix. `id` is stable across runs and machines."""

    id: str
    slug: str
    axes: tuple[tuple[str, Any], ...]  # the values that make this cell, sorted by key
    kernel: KernelSource
    memory_mib: int = 1024
    cpus: int = 2
    swiotlb: str = "default"  # default | force | noforce | <slots>
    dma_coherent: bool = True
    iommu_platform: bool = False
    iommu: str = "none"  # an IOMMU device kind in front of PCI (harness/devices/), or none
    slub_debug: str | None = None
    cmdline: tuple[str, ...] = ()  # extra kernel command line words
    workloads: tuple[WorkloadRun, ...] = ()
    repeat: int = 1
    timeouts: Timeouts = Timeouts()
    expectations: tuple[Expectation, ...] = ()

    @property
    def arch(self) -> Arch:
        return self.kernel.arch

    def kernel_cmdline(self) -> list[str]:
        """The cell's own command line words (the arch preset adds console etc.)."""
        words: list[str] = []
        if self.swiotlb in ("force", "noforce"):
            words.append(f"swiotlb={self.swiotlb}")
        elif self.swiotlb != "default":
            words.append(f"swiotlb={int(self.swiotlb)}")
        if self.slub_debug is not None:
            words.append(f"slub_debug={self.slub_debug}" if self.slub_debug else "slub_debug")
        words.extend(self.cmdline)
        return words


@dataclass(frozen=True)
class Metric:
    """One measured figure. `workload` is "boot" for figures taken after boot."""

    name: str
    value: float
    unit: str = ""
    kind: MetricKind = "gauge"
    better: Better = "neutral"
    workload: str = "boot"

    @property
    def key(self) -> str:
        return f"{self.workload}:{self.name}"


@dataclass(frozen=True)
class TestResult:
    """One JUnit testcase of a cell repetition."""

    name: str
    status: Status
    message: str = ""
    output: str = ""  # console excerpt, command output
    seconds: float = 0.0
