"""Zones and fragmentation: /proc/zoneinfo, /proc/buddyinfo, debugfs extfrag, vmstat's compaction.

What memory each zone holds and how broken up its free memory is:

- /proc/zoneinfo, per node and zone: `pages free`, the watermarks `min`,
  `low`, `high`, `spanned`, `present`, `managed` (pages), and for a populated
  zone its first page frame (`start_pfn:`); so the zone's range is
  [start_pfn, start_pfn + spanned) pages. Empty zones are listed too, with
  zeros and no start_pfn (domain.md: arm64 virt has an empty DMA32).
- /proc/buddyinfo, populated zones only: free blocks per order 0..MAX_ORDER::

      Node 0, zone      DMA     22      5      3      2      2      2      2      2      2      2    229

- debugfs extfrag/unusable_index (the share of free memory unusable for an
  allocation of that order, 0..1) and extfrag/extfrag_index (why such an
  allocation would fail: towards 0 lack of memory, towards 1 fragmentation;
  -1.000 when it would succeed), the same row shape with three decimals.
- vmstat's compact_* and pgmigrate_* counters: the compaction work done.

Pure functions from the guest's text to values; metric names in catalogue.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.collect.text import ParseError, count, decode, label, lines, shorten

MAX_ZONES = 64  # nodes x zones
MAX_ORDERS = 16  # MAX_PAGE_ORDER is 10 on 4K pages; 13 with 64K
MAX_PAGES = 1 << 44
_ZONE = re.compile(r"Node ([0-9]{1,4}), zone +([A-Za-z0-9_]{1,16})")
_ROW = re.compile(r"Node ([0-9]{1,4}), zone +([A-Za-z0-9_]{1,16})((?: +-?[0-9]{1,20}(?:\.[0-9]{1,6})?){1,16}) *")
# The zone fields of /proc/zoneinfo kept (per-node stats and per-CPU pagesets are not).
FIELDS = ("free", "min", "low", "high", "spanned", "present", "managed", "cma")
# vmstat counters of the compaction and migration machinery, reported as counters.
COMPACTION_PREFIXES = ("compact_", "pgmigrate_")


@dataclass(frozen=True)
class Zone:
    node: int
    name: str  # DMA, DMA32, Normal, Movable, Device, HighMem
    free: int  # pages
    min: int
    low: int
    high: int
    spanned: int
    present: int
    managed: int
    cma: int = 0
    start_pfn: int | None = None  # None: the zone is empty (zoneinfo prints no start_pfn)

    @property
    def label(self) -> str:
        return zone_label(self.node, self.name)

    def range(self, pagesize: int) -> tuple[int, int] | None:
        """[start, end) in bytes of a populated zone."""
        if self.start_pfn is None:
            return None
        return self.start_pfn * pagesize, (self.start_pfn + self.spanned) * pagesize


@dataclass(frozen=True)
class ZoneRow:
    """One row of buddyinfo or an extfrag index: a figure per order."""

    node: int
    name: str
    values: tuple[float, ...]  # per order 0.. (buddyinfo: free blocks; extfrag: index)

    @property
    def label(self) -> str:
        return zone_label(self.node, self.name)


def zone_label(node: int, name: str) -> str:
    """The zone as a metric name component: dma32 on node 0, node1-normal elsewhere."""
    z = label(name, 16, "zone")
    return z if node == 0 else f"node{node}-{z}"


def parse_zoneinfo(data: str | bytes) -> tuple[Zone, ...]:
    """Every zone of /proc/zoneinfo, in the file's order, empty ones included."""
    zones: list[Zone] = []
    current: tuple[int, str] | None = None
    fields: dict[str, int] = {}

    def close(where: str) -> None:
        if current is None:
            return
        missing = [f for f in FIELDS if f not in fields and f != "cma"]
        if missing:
            raise ParseError(f"zoneinfo {where}: zone {current[1]} has no {', '.join(missing)}")
        if len(zones) >= MAX_ZONES:
            raise ParseError(f"zoneinfo: more than {MAX_ZONES} zones")
        zones.append(Zone(current[0], current[1], fields["free"], fields["min"], fields["low"],
                          fields["high"], fields["spanned"], fields["present"], fields["managed"],
                          fields.get("cma", 0), fields.get("start_pfn")))

    for number, line in lines(decode(data, "zoneinfo"), "zoneinfo"):
        where = f"line {number}"
        if line.startswith("Node"):
            m = _ZONE.fullmatch(line.strip())
            if m is None:
                raise ParseError(f"zoneinfo {where}: not 'Node N, zone NAME': {shorten(line)!r}")
            close(where)
            current, fields = (int(m[1]), m[2]), {}
            continue
        words = line.split()
        if current is None or not words:
            if words:
                raise ParseError(f"zoneinfo {where}: a field before any zone: {shorten(line)!r}")
            continue
        key, value = _field(words)
        if key is not None and value is not None:
            if key in fields:
                raise ParseError(f"zoneinfo {where}: {key} given twice in zone {current[1]}")
            fields[key] = count(value, f"zoneinfo {where} {key}", MAX_PAGES)
    close("end")
    if not zones:
        raise ParseError("zoneinfo: no zone (empty or not /proc/zoneinfo)")
    return tuple(zones)


def _field(words: list[str]) -> tuple[str | None, str | None]:
    """(key, value) of a zone-level line this parser keeps, else (None, None)."""
    if words[:2] == ["pages", "free"] and len(words) == 3:
        return "free", words[2]
    if words[0] == "start_pfn:" and len(words) == 2:
        return "start_pfn", words[1]
    if len(words) == 2 and words[0] in FIELDS and words[0] != "free":
        return words[0], words[1]
    return None, None


def parse_buddyinfo(data: str | bytes) -> tuple[ZoneRow, ...]:
    """Free blocks per order of every populated zone."""
    rows = _rows(data, "buddyinfo", integers=True)
    if not rows:
        raise ParseError("buddyinfo: no zone (empty or not /proc/buddyinfo)")
    return rows


def parse_index(data: str | bytes, what: str) -> tuple[ZoneRow, ...]:
    """extfrag/unusable_index or extfrag/extfrag_index: an index per order, -1 or 0..1."""
    rows = _rows(data, what, integers=False)
    for r in rows:
        if any(not (v == -1.0 or 0.0 <= v <= 1.0) for v in r.values):
            raise ParseError(f"{what}: zone {r.name}: an index outside -1 and 0..1")
    return rows


def _rows(data: str | bytes, what: str, integers: bool) -> tuple[ZoneRow, ...]:
    out: list[ZoneRow] = []
    orders: int | None = None
    for number, line in lines(decode(data, what), what):
        if not line.strip():
            continue
        m = _ROW.fullmatch(line.strip())
        if m is None:
            raise ParseError(f"{what} line {number}: not 'Node N, zone NAME figures...': {shorten(line)!r}")
        tokens = m[3].split()
        if orders is not None and len(tokens) != orders:
            raise ParseError(f"{what} line {number}: {len(tokens)} orders, the lines before {orders}")
        orders = len(tokens)
        if integers:
            values: tuple[float, ...] = tuple(
                float(count(t, f"{what} line {number}", MAX_PAGES)) for t in tokens)
        else:
            values = tuple(float(t) for t in tokens)
        if len(out) >= MAX_ZONES:
            raise ParseError(f"{what}: more than {MAX_ZONES} zones")
        out.append(ZoneRow(int(m[1]), m[2], values))
    return tuple(out)


def largest_order(row: ZoneRow) -> int:
    """The highest order with a free block, -1 when the zone has none at all."""
    return max((k for k, n in enumerate(row.values) if n > 0), default=-1)


def free_pages(row: ZoneRow, from_order: int = 0) -> int:
    """Pages free in blocks of `from_order` and above: sum of blocks(k) x 2^k."""
    return int(sum(n * (1 << k) for k, n in enumerate(row.values) if k >= from_order))


# --- metrics -----------------------------------------------------------------

Pairs = list[tuple[str, float]]


def zone_pairs(zones: tuple[Zone, ...], pagesize: int | None) -> Pairs:
    """zone.<z>.* gauges: pages, watermarks and (populated, page size known) the range in bytes.

    An empty zone says so with its present, managed and spanned (all 0) and nothing else.
    """
    pairs: Pairs = []
    for z in zones:
        p = f"zone.{z.label}"
        pairs += [(f"{p}.present", z.present), (f"{p}.managed", z.managed), (f"{p}.spanned", z.spanned)]
        if not (z.present or z.spanned or z.managed):
            continue
        pairs += [(f"{p}.free", z.free), (f"{p}.cma", z.cma), (f"{p}.watermark_min", z.min),
                  (f"{p}.watermark_low", z.low), (f"{p}.watermark_high", z.high)]
        span = z.range(pagesize) if pagesize else None
        if span is not None:
            pairs += [(f"{p}.start", span[0]), (f"{p}.end", span[1])]
    return pairs


def buddy_pairs(rows: tuple[ZoneRow, ...]) -> Pairs:
    pairs: Pairs = []
    for r in rows:
        pairs += [(f"buddy.{r.label}.order-{k}", n) for k, n in enumerate(r.values)]
        pairs.append((f"buddy.{r.label}.largest_order", largest_order(r)))
    return pairs


def index_pairs(rows: tuple[ZoneRow, ...], which: str) -> Pairs:
    """extfrag.<z>.<which>.order-<k>: which is `unusable` or `index`."""
    return [(f"extfrag.{r.label}.{which}.order-{k}", v) for r in rows for k, v in enumerate(r.values)]


def compaction_counters(before: Mapping[str, int], after: Mapping[str, int]) -> Pairs:
    """vmstat.compact_* and vmstat.pgmigrate_* over a workload (after - before); none that went back."""
    pairs: Pairs = []
    for key in sorted(after):
        if key.startswith(COMPACTION_PREFIXES) and key in before and after[key] >= before[key]:
            pairs.append((f"vmstat.{key}", after[key] - before[key]))
    return pairs
