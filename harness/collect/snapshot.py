"""One reading of every guest source, from guest_scripts/kharness-snapshot.sh's output.

The guest script prints all sources in one SSH round trip, each after a line
`@@kharness-section <name>@@`, ending with the section `end`. Pure functions,
from the output's text to values (harness.run.snapshots runs the script and
keeps each section under raw/<tag>/<name>):

    sections = split(output)                  # name -> text, problems noted
    snap = parse(sections)                    # parsed values + problems
    metrics(before_snap, snap, workload)      # -> list[Metric] (catalogue.py)

The guest is untrusted (a broken kernel, a hostile root), so the output is
bounded, section names are made safe to use as paths, and a source that does
not parse becomes a problem in Snapshot.problems and no metrics, never an
exception that loses the other sources.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from harness.collect import (
    alloc_traces,
    callers,
    catalogue,
    gfpdma,
    hist,
    iommu,
    meminfo,
    slabinfo,
    swiotlb,
    vmstat,
    whatif,
    zones,
)
from harness.collect.text import ParseError, count, label, shorten
from harness.model import Metric

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_TOTAL = 16 << 20  # bytes of script output read
MAX_SECTION = 4 << 20  # bytes of one section kept
MAX_SECTIONS = 256
MAX_NAME = 128
_DELIMITER = re.compile(r"@@kharness-section ([^@]{1,256})@@")
_UNSAFE = re.compile(r"[^a-z0-9_./-]")
# What a metric name may look like (dotted, e.g. slab.kmalloc-8.bytes), for
# names that come from the guest, such as a workload's `metric NAME VALUE` lines.
SAFE_METRIC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
BOUNCE_HIST = "hist/swiotlb_bounced"
MAP_HIST = "hist/dma_map_page"
SG_HIST = "hist/dma_map_sg"
# vmstat counters reported, and why: pgpgin/pgpgout show that the workload
# really moved block data (the denominator of bounces); pgalloc_* (summed over
# zones) counts page allocations, slab growth included; allocstall_* (summed)
# counts direct-reclaim stalls, memory pressure that would distort slab figures.
VMSTAT: tuple[tuple[str, str], ...] = (
    ("vmstat.pgpgin", "pgpgin"),
    ("vmstat.pgpgout", "pgpgout"),
    ("vmstat.pgalloc", "pgalloc_*"),
    ("vmstat.allocstall", "allocstall_*"),
)


@dataclass(frozen=True)
class Sections(Mapping[str, str]):
    """Section name -> text, as a read-only mapping, with what split() had to drop."""

    parts: Mapping[str, str]
    problems: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> str:
        return self.parts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)


@dataclass(frozen=True)
class Snapshot:
    """Parsed sources; None where a source was missing, unreadable or unknowable."""

    pagesize: int | None = None
    slab: slabinfo.SlabInfo | None = None
    meminfo: Mapping[str, int] | None = None  # bytes (kB fields) or counts
    vmstat: Mapping[str, int] | None = None
    swiotlb: swiotlb.Swiotlb | None = None  # None: debugfs missing, so unknown
    bounces: tuple[hist.Histogram, ...] | None = None  # None: no bounce histogram
    # dma:dma_map_page and dma:dma_map_sg histograms (6.12); None: no such events
    mappings: tuple[hist.Histogram, ...] | None = None
    sg_mappings: tuple[hist.Histogram, ...] | None = None
    iommu: tuple[iommu.GroupedDevice, ...] | None = None  # devices in IOMMU groups; None: not listed
    uptime: float | None = None  # seconds since boot, to spot a reboot between snapshots
    # init armed the bounce histograms before loading modules: at boot they
    # count every bounce since then (device probes included)
    armed_at_init: bool = False
    complete: bool = False  # the `end` section arrived: the output was not cut off
    problems: tuple[str, ...] = field(default=())
    # Zones and fragmentation (zones.py); None: the section was not there.
    zoneinfo: tuple[zones.Zone, ...] | None = None
    buddyinfo: tuple[zones.ZoneRow, ...] | None = None  # free blocks per order, populated zones
    unusable_index: tuple[zones.ZoneRow, ...] | None = None  # debugfs extfrag/unusable_index
    extfrag_index: tuple[zones.ZoneRow, ...] | None = None  # debugfs extfrag/extfrag_index
    # slub_debug U (alloc_traces.py): kmalloc caches storing their allocating user
    # (0: U is off; None: not reported), and each kmalloc cache's alloc_traces.
    store_user: int | None = None
    traces: Mapping[str, alloc_traces.AllocTraces] | None = None
    # slabinfo and vmstat read again after the alloc_traces (what reading them left):
    # the next workload's deltas start from these.
    slab_after_traces: slabinfo.SlabInfo | None = None
    vmstat_after_traces: Mapping[str, int] | None = None


# --- split ----------------------------------------------------------------


def safe_name(raw: str) -> str | None:
    """`raw` as a relative path of [a-z0-9_./-], without '..' or a leading '/' or '.'.

    None when nothing usable is left (the section is then dropped).
    """
    name = _UNSAFE.sub("_", raw.strip().lower())
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or len(parts) > 4 or any(set(p) == {"."} for p in parts):
        return None
    name = "/".join("_" + p[1:] if p.startswith(".") else p for p in parts)
    return name if len(name) <= MAX_NAME else None


@dataclass
class _Splitter:
    parts: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    current: str | None = None  # None: outside a kept section
    stray: int = 0

    def open(self, raw: str) -> None:
        self.current = None
        name = safe_name(raw)
        if name is None:
            self.problems.append(f"section name {shorten(raw)!r} refused")
        elif name in self.parts:
            self.problems.append(f"section {name} repeated; the first kept")
        elif len(self.parts) >= MAX_SECTIONS:
            self.problems.append(f"more than {MAX_SECTIONS} sections; {name} and later dropped")
        elif any(n.startswith(name + "/") or name.startswith(n + "/") for n in self.parts):
            self.problems.append(f"section {name} clashes with another as file and directory")
        else:
            self.parts[name], self.sizes[name], self.current = [], 0, name

    def add(self, line: str) -> None:
        if self.current is None:
            self.stray += bool(line.strip())
            return
        size = self.sizes[self.current] + len(line) + 1
        if size > MAX_SECTION:
            self.problems.append(f"section {self.current} over {MAX_SECTION} bytes; cut there")
            self.current = None
            return
        self.sizes[self.current] = size
        self.parts[self.current].append(line)

    def result(self) -> Sections:
        if self.stray:
            self.problems.append(f"{self.stray} line(s) outside any kept section ignored")
        texts = {name: _joined(lines) for name, lines in self.parts.items()}
        return Sections(texts, tuple(self.problems))


def _joined(lines: list[str]) -> str:
    text = "\n".join(lines).rstrip("\n")
    return text + "\n" if text else ""


def split(data: str | bytes) -> Sections:
    """Cut kharness-snapshot.sh output into sections; never raises on what the guest sent."""
    splitter = _Splitter()
    if len(data) > MAX_TOTAL:
        splitter.problems.append(f"output of {len(data)} bytes cut to {MAX_TOTAL}")
        data = data[:MAX_TOTAL]
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        m = _DELIMITER.fullmatch(line)
        if m:
            splitter.open(m[1])
        else:
            splitter.add(line)
    return splitter.result()


# --- parse ----------------------------------------------------------------


def parse(sections: Mapping[str, str]) -> Snapshot:
    """Parse every section that is there; what is missing or broken goes to .problems."""
    problems = list(sections.problems) if isinstance(sections, Sections) else []

    def attempt(name: str, parser: Callable[[str], T]) -> T | None:
        return _parsed(sections, name, parser, problems, required=True)

    probe = _probe(sections.get("probe", ""))
    snap = Snapshot(
        pagesize=attempt("pagesize", pagesize),
        slab=attempt("slabinfo", slabinfo.parse),
        meminfo=attempt("meminfo", meminfo.parse),
        vmstat=attempt("vmstat", vmstat.parse),
        uptime=attempt("uptime", uptime),
        swiotlb=_swiotlb(sections, probe, problems),
        bounces=_bounces(sections, probe, problems),
        mappings=_optional_hist(sections, MAP_HIST, problems),
        sg_mappings=_optional_hist(sections, SG_HIST, problems),
        iommu=attempt("iommu", iommu.parse) if "iommu" in sections else None,
        armed_at_init=probe.get("armed_at_init") == "yes",
        complete="end" in sections,
    )
    snap = _zones_and_callers(snap, sections, problems)
    if not snap.complete:
        problems.append("snapshot output cut off: no end section")
    return replace(snap, problems=tuple(problems))


def _probe(text: str) -> dict[str, str]:
    """The script's key=value facts: debugfs, tracefs, swiotlb_dir, bounce_event, hist."""
    pairs = (line.partition("=") for line in text.splitlines()[:64])
    return {k.strip(): v.strip() for k, sep, v in pairs if sep}


def pagesize(text: str) -> int:
    """`KernelPageSize:        4 kB` (from /proc/self/smaps) or a bare number of bytes."""
    fields = text.split()
    if fields[:1] == ["KernelPageSize:"] and fields[2:3] == ["kB"]:
        size = count(fields[1], "pagesize", 1 << 20) * 1024
    elif len(fields) == 1:
        size = count(fields[0], "pagesize", 1 << 30)
    else:
        raise ParseError(f"pagesize: not 'KernelPageSize: N kB': {shorten(text.strip())!r}")
    if size < 1024 or size > 1 << 30 or size & (size - 1):
        raise ParseError(f"pagesize: {size} bytes is not a page size")
    return size


def uptime(text: str) -> float:
    """The first figure of /proc/uptime: seconds since boot."""
    first = (text.split() or [""])[0]
    if not re.fullmatch(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", first):
        raise ParseError(f"uptime: {shorten(first)!r} is not seconds")
    return float(first)


def _swiotlb(
    sections: Mapping[str, str], probe: Mapping[str, str], problems: list[str]
) -> swiotlb.Swiotlb | None:
    files = {n.removeprefix("swiotlb/"): t for n, t in sections.items() if n.startswith("swiotlb/")}
    if not files and probe.get("debugfs") != "yes":
        problems.append("swiotlb: unknown (debugfs not mounted in the guest)")
        return None
    try:
        return swiotlb.parse(files)
    except ParseError as exc:
        problems.append(str(exc))
        return None


def _bounces(
    sections: Mapping[str, str], probe: Mapping[str, str], problems: list[str]
) -> tuple[hist.Histogram, ...] | None:
    if BOUNCE_HIST not in sections:
        why = "no tracepoint" if probe.get("bounce_event") == "no" else "no hist file"
        problems.append(f"{BOUNCE_HIST}: missing ({why}); bounces unknown")
        return None
    try:
        found = hist.parse(sections[BOUNCE_HIST])
    except ParseError as exc:
        problems.append(str(exc))
        return None
    if not found:
        problems.append(f"{BOUNCE_HIST}: no hist trigger set; run kharness-trace.sh after boot")
        return None
    return found


def _parsed(sections: Mapping[str, str], name: str, parser: Callable[[str], T], problems: list[str],
            *, required: bool) -> T | None:
    """One section parsed; a broken one, or a missing one that is `required`, is a problem and None."""
    if name not in sections:
        if required:
            problems.append(f"{name}: section missing")
        return None
    try:
        return parser(sections[name])
    except ParseError as exc:
        problems.append(str(exc))
        return None


def _optional_hist(sections: Mapping[str, str], name: str, problems: list[str]) -> tuple[hist.Histogram, ...] | None:
    """A histogram of an event that only some kernels have: absent is no problem, broken is."""
    return _parsed(sections, name, hist.parse, problems, required=False)


# --- metrics --------------------------------------------------------------

Pairs = list[tuple[str, float]]


def metrics(before: Snapshot | None, after: Snapshot, workload: str) -> list[Metric]:
    """The catalogue's metrics: gauges read from `after`, counters as after minus before.

    `before` is None (or `after` itself) for the after-boot snapshot or when no
    snapshot followed a workload: gauges only, since a counter of 0 there would
    claim a measurement nobody made; except the bounce counters of a guest
    whose init armed the histograms, which count from then (the boot's device
    probes). Counters are also left out when they went backwards (a reboot or
    a trigger set again).
    """
    pairs = _slab(after) + _meminfo(after) + _swiotlb_gauges(after) + _iommu_gauges(after)
    pairs += _dma_kmalloc(after) + _callers(after) + _zone_gauges(after)
    if after.pagesize is not None:
        pairs.append(("mm.page_size", after.pagesize))
    if (before is None or before is after) and after.armed_at_init:
        pairs += _bounce_counters(Snapshot(bounces=()), after)  # since init armed them
    if before is not None and before is not after:
        before = _baseline(before)  # what reading alloc_traces left belongs to no workload
        pairs += _slab_delta(before, after)
        if _same_boot(before, after):
            pairs += _bounce_counters(before, after) + _vmstat_counters(before, after)
            pairs += _mapping_counters(before, after)
            if before.vmstat is not None and after.vmstat is not None:
                pairs += zones.compaction_counters(before.vmstat, after.vmstat)
    return catalogue.measured(pairs, workload)


def _slab(s: Snapshot) -> Pairs:
    if s.slab is None:
        return []
    pairs: Pairs = []
    for c in slabinfo.size_classes(s.slab):
        pairs.append((f"slab.kmalloc-{c.label}.objects", c.active_objs))
        if s.pagesize is not None:
            pairs.append((f"slab.kmalloc-{c.label}.bytes", c.slab_pages * s.pagesize))
    total = _kmalloc_bytes(s)
    if total is not None:
        pairs.append(("slab.kmalloc.bytes", total))
    align = slabinfo.minalign(s.slab)
    if align is not None:
        pairs.append(("slab.minalign", align))
    return pairs + _whatif(s)


def _whatif(s: Snapshot) -> Pairs:
    """What every larger minalign would cost on this slab (whatif.py states the formula)."""
    if s.slab is None or s.pagesize is None or (align := slabinfo.minalign(s.slab)) is None:
        return []
    pairs: Pairs = []
    for n in (n for n in whatif.ALIGNMENTS if n > align):
        w = whatif.compute(s.slab, n, s.pagesize)
        pairs += [(f"slab.whatif.minalign-{n}.extra_bytes", w.extra_bytes),
                  (f"slab.whatif.minalign-{n}.extra_pages", w.extra_pages)]
    return pairs


def _kmalloc_bytes(s: Snapshot) -> int | None:
    if s.slab is None or s.pagesize is None:
        return None
    return sum(c.slab_pages for c in slabinfo.size_classes(s.slab)) * s.pagesize


def trace_cost(before_text: str, after_text: str, boot: Snapshot) -> list[Metric]:
    """What arming the histograms cost in kmalloc slab: init's slabinfo after minus before.

    The hist maps kmalloc their entries up front and stay, so every slab
    figure of the guest includes this; it is reported so nobody mistakes it
    for the kernel's (and so a change of kharness's tracing shows).
    """
    if boot.pagesize is None:
        return []
    try:
        before, after = slabinfo.parse(before_text), slabinfo.parse(after_text)
    except ParseError:
        return []
    pages = sum(c.slab_pages for c in slabinfo.size_classes(after)) - sum(
        c.slab_pages for c in slabinfo.size_classes(before))
    return [catalogue.metric("slab.kharness_trace.bytes", pages * boot.pagesize, "boot")]


def _slab_delta(before: Snapshot, after: Snapshot) -> Pairs:
    b, a = _kmalloc_bytes(before), _kmalloc_bytes(after)
    return [] if a is None or b is None else [("slab.kmalloc.bytes.delta", a - b)]


def _meminfo(s: Snapshot) -> Pairs:
    m = s.meminfo or {}
    return [(f"meminfo.{k.lower()}", m[k]) for k in ("Slab", "SUnreclaim") if k in m]


def _swiotlb_gauges(s: Snapshot) -> Pairs:
    t = s.swiotlb
    if t is None:
        return []
    pairs: Pairs = [("swiotlb.present", int(t.present)), ("swiotlb.slots", t.nslabs)]
    pairs.append(("swiotlb.used", t.used))
    if t.hiwater is not None or not t.present:
        pairs.append(("swiotlb.hiwater", t.hiwater or 0))
    return pairs


def _same_boot(before: Snapshot, after: Snapshot) -> bool:
    if before.uptime is not None and after.uptime is not None and after.uptime < before.uptime:
        log.warning("uptime went back (%s -> %s): guest rebooted; no counters", before.uptime,
                    after.uptime)
        return False
    return True


def _bounce_counters(before: Snapshot, after: Snapshot) -> Pairs:
    if before.bounces is None or after.bounces is None:
        return []
    pairs: Pairs = []
    sizes = _deltas(before.bounces, after.bounces, "size")
    if sizes is not None:
        total, per_key = sizes
        pairs.append(("swiotlb.bounces", total))
        by_size = {int(v): n for v, n in per_key.items() if v.isdigit() and len(v) < 20}
        pairs.append(("swiotlb.bounced_bytes", sum(size * n for size, n in by_size.items())))
        pairs += [(f"swiotlb.bounces.size-{size}", n) for size, n in sorted(by_size.items())]
    devices = _deltas(before.bounces, after.bounces, "dev_name")
    if devices is not None:
        if sizes is None:  # the dev_name histogram counts the same events
            pairs.append(("swiotlb.bounces", devices[0]))
        by_dev: dict[str, int] = {}
        for name, n in devices[1].items():
            by_dev[device_label(name)] = by_dev.get(device_label(name), 0) + n
        pairs += [(f"swiotlb.bounces.dev-{d}", n) for d, n in sorted(by_dev.items())]
    return pairs


def _iommu_gauges(s: Snapshot) -> Pairs:
    """The DMA path of each device in an IOMMU group: translated or not, strict or lazy."""
    if s.iommu is None:
        return []
    pairs: Pairs = [("iommu.groups", len({d.group for d in s.iommu}))]
    for d in s.iommu:
        dev = device_label(d.device)
        pairs.append((f"iommu.dev-{dev}.translated", int(d.translated)))
        if d.translated:
            pairs.append((f"iommu.dev-{dev}.lazy", int(d.lazy)))
    return pairs


def _mapping_counters(before: Snapshot, after: Snapshot) -> Pairs:
    """DMA mappings over the workload (dma_map_page + dma_map_sg), per device, and failed ones."""
    pairs: Pairs = []
    total = 0
    by_dev: dict[str, int] = {}
    seen = False
    for b, a in ((before.mappings, after.mappings), (before.sg_mappings, after.sg_mappings)):
        if a is None or b is None:
            continue
        per_device = _deltas(b, a, "device")
        if per_device is None:
            continue
        seen = True
        total += per_device[0]
        for name, n in per_device[1].items():
            by_dev[device_label(name)] = by_dev.get(device_label(name), 0) + n
    if not seen:
        return []
    pairs.append(("dma.mappings", total))
    pairs += [(f"dma.mappings.dev-{d}", n) for d, n in sorted(by_dev.items())]
    if before.mappings is not None and after.mappings is not None:
        failed = _deltas(before.mappings, after.mappings, "dir")
        if failed is not None:
            pairs.append(("dma.map_failures", failed[0]))
    return pairs


def _deltas(
    before: tuple[hist.Histogram, ...], after: tuple[hist.Histogram, ...], key: str
) -> tuple[int, dict[str, int]] | None:
    """(total, per key value) of one single-key histogram over the workload (from zero: `before` empty)."""
    b, a = hist.find(before, key), hist.find(after, key)
    if a is None or (b is None and before):
        return None
    old = {k[0][1]: n for k, n in b.counts().items()} if b is not None else {}
    per_key = {k[0][1]: n - old.get(k[0][1], 0) for k, n in a.counts().items()}
    total = a.total - (b.total if b is not None else 0)
    if total < 0 or any(n < 0 for n in per_key.values()):
        log.warning("hist keys=%s went backwards: trigger reset between snapshots", key)
        return None
    if (a.dropped or 0) > ((b.dropped or 0) if b is not None else 0):
        log.warning("hist keys=%s dropped events: per-%s figures are a lower bound", key, key)
    return total, per_key


def _vmstat_counters(before: Snapshot, after: Snapshot) -> Pairs:
    if before.vmstat is None or after.vmstat is None:
        return []
    pairs: Pairs = []
    for name, pattern in VMSTAT:
        prefix = pattern.removesuffix("*")
        keys = [k for k in after.vmstat if k in before.vmstat
                and (k == pattern or (pattern.endswith("*") and k.startswith(prefix)))]
        delta = sum(after.vmstat[k] - before.vmstat[k] for k in keys)
        if keys and delta >= 0:
            pairs.append((name, delta))
    return pairs


def device_label(name: str) -> str:
    """A dev_name as it appears in metric names: 0000:00:02.0 -> 0000_00_02_0."""
    return label(name, 64, "unknown")


# --- zones, fragmentation and who allocates (zones.py, alloc_traces.py) ---------

ALLOC_TRACES = "alloc_traces/"
AFTER_TRACES = "after_traces/"
TOP_CALLERS = 5  # callers per size class kept as metrics (kharness slab callers lists them all)
def _zones_and_callers(snap: Snapshot, sections: Mapping[str, str], problems: list[str]) -> Snapshot:
    """`snap` with the zone and alloc_traces sections parsed. Each is optional (a kernel
    without debugfs extfrag, a boot without slub_debug U); a broken one is a problem."""

    def optional(name: str, parser: Callable[[str], T]) -> T | None:
        return _parsed(sections, name, parser, problems, required=False)

    debug = _probe(sections.get("slab_debug", ""))
    users = debug.get("store_user", "")
    traces = _traces(sections, problems)
    return replace(
        snap,
        zoneinfo=optional("zoneinfo", zones.parse_zoneinfo),
        buddyinfo=optional("buddyinfo", zones.parse_buddyinfo),
        unusable_index=optional("extfrag/unusable_index", lambda t: zones.parse_index(t, "extfrag/unusable_index")),
        extfrag_index=optional("extfrag/extfrag_index", lambda t: zones.parse_index(t, "extfrag/extfrag_index")),
        store_user=int(users) if users.isdigit() and len(users) < 7 else None,
        traces=traces or None,
        slab_after_traces=optional(AFTER_TRACES + "slabinfo", slabinfo.parse) if traces else None,
        vmstat_after_traces=optional(AFTER_TRACES + "vmstat", vmstat.parse) if traces else None,
    )


def _traces(sections: Mapping[str, str], problems: list[str]) -> dict[str, alloc_traces.AllocTraces]:
    """alloc_traces/<cache> sections of kmalloc caches, parsed; a cut one noted."""
    traces: dict[str, alloc_traces.AllocTraces] = {}
    for name in sections:
        cache = name.removeprefix(ALLOC_TRACES)
        if not name.startswith(ALLOC_TRACES) or slabinfo.kmalloc_class(cache) is None:
            continue
        try:
            traces[cache] = found = alloc_traces.parse(sections[name], name)
        except ParseError as exc:
            problems.append(str(exc))
            continue
        if found.cut_at is not None:
            problems.append(f"{name}: cut by the guest at {found.cut_at} bytes; "
                            "the top callers are complete, the small ones are not")
    return traces


def _zone_gauges(s: Snapshot) -> Pairs:
    pairs: Pairs = []
    if s.zoneinfo is not None:
        pairs += zones.zone_pairs(s.zoneinfo, s.pagesize)
    if s.buddyinfo is not None:
        pairs += zones.buddy_pairs(s.buddyinfo)
    if s.unusable_index is not None:
        pairs += zones.index_pairs(s.unusable_index, "unusable")
    if s.extfrag_index is not None:
        pairs += zones.index_pairs(s.extfrag_index, "index")
    return pairs


def _dma_kmalloc(s: Snapshot) -> Pairs:
    """The dma-kmalloc-N caches on their own (empty ones too), and the GFP_DMA what-if (gfpdma.py)."""
    if s.slab is None:
        return []
    found = gfpdma.dma_caches(s.slab)
    if not found:
        return []  # a kernel without ZONE_DMA kmalloc caches: nothing to report as empty
    pairs: Pairs = []
    for cache, size in found:
        pairs.append((f"slab.dma-kmalloc-{slabinfo.class_label(size)}.objects", cache.active_objs))
        if s.pagesize is not None:
            pairs.append((f"slab.dma-kmalloc-{slabinfo.class_label(size)}.bytes", cache.bytes(s.pagesize)))
    pairs.append(("slab.dma-kmalloc.objects", sum(c.active_objs for c, _ in found)))
    if s.pagesize is not None:
        w = gfpdma.compute(s.slab, s.pagesize)
        pairs += [("slab.dma-kmalloc.bytes", w.bytes_now),
                  ("slab.gfp_dma_to_pages.bytes", w.bytes_then),
                  ("slab.gfp_dma_to_pages.extra_bytes", w.extra_bytes)]
    return pairs


def _callers(s: Snapshot) -> Pairs:
    """slub_debug U: per size class, its call sites, objects, waste, kharness's share, top callers."""
    pairs: Pairs = []
    if s.store_user is not None:
        pairs.append(("slab.store_user_caches", s.store_user))
    if not s.traces:
        return pairs
    for sc in callers.by_class(s.traces):
        p = f"slab.callers.{sc.label}"
        pairs += [(f"{p}.sites", sc.sites), (f"{p}.objects", sc.objects), (f"{p}.waste_bytes", sc.waste_bytes),
                  (f"{p}.kharness_objects", sc.kharness_objects)]
        top: dict[str, int] = {}
        for c in sc.callers[:TOP_CALLERS]:
            name = label(c.function, 48, "unknown")
            top[name] = top.get(name, 0) + c.objects
        pairs += [(f"{p}.top.{name}.objects", n) for name, n in top.items()]
    after = _baseline(s)
    before_bytes, after_bytes = _kmalloc_bytes(s), _kmalloc_bytes(after)
    if after is not s and before_bytes is not None and after_bytes is not None:
        pairs.append(("slab.alloc_traces.cost_bytes", after_bytes - before_bytes))
    if s.vmstat is not None and s.vmstat_after_traces is not None:
        keys = [k for k in s.vmstat_after_traces if k.startswith("pgalloc_") and k in s.vmstat]
        pairs.append(("slab.alloc_traces.cost_pgalloc",
                      sum(s.vmstat_after_traces[k] - s.vmstat[k] for k in keys)))
    return pairs


def _baseline(s: Snapshot) -> Snapshot:
    """`s` as the start of the next workload: slabinfo and vmstat as they were after the
    alloc_traces were read, so what reading them left is no workload's (it is reported
    as slab.alloc_traces.cost_*)."""
    if s.slab_after_traces is None and s.vmstat_after_traces is None:
        return s
    return replace(s, slab=s.slab_after_traces or s.slab, vmstat=s.vmstat_after_traces or s.vmstat)
