"""Tracepoint hist trigger output: the text of events/<system>/<event>/hist.

Every hist trigger on an event prints its own block into the one `hist`
file, so kharness-trace.sh's two triggers (keys=size and keys=dev_name on
swiotlb:swiotlb_bounced) come back concatenated::

    # event histogram
    #
    # trigger info: hist:keys=size:vals=hitcount:sort=hitcount:size=2048 [active]
    #

    { size:          1 } hitcount:       2251

    Totals:
        Hits: 2251
        Entries: 1
        Dropped: 0

The counts are cumulative since the trigger was set, so a workload's figure
is the difference of two readings (snapshot.metrics does that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.collect.text import ParseError, count, decode, lines, shorten

MAX_ENTRIES = 1 << 17  # the kernel's largest hist map (size=) is 128 Ki entries
MAX_HISTOGRAMS = 64

Key = tuple[tuple[str, str], ...]  # (field, value) pairs of one entry, as printed

_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
# Between two key fields the kernel prints ", "; a string value could hold one
# too, so split only where one of the trigger's key names and ':' follow.
_ANY_KEY = r"[A-Za-z_][A-Za-z0-9_.]{0,63}"
_TOTAL = re.compile(r"\s*(Hits|Entries|Dropped):\s*(\S+)\s*")
_KEYS_IN_TRIGGER = re.compile(r"(?:^|:)keys=([^:\s]+)")


@dataclass(frozen=True)
class HistEntry:
    key: Key
    hitcount: int
    values: tuple[tuple[str, int], ...] = ()  # further vals= besides hitcount


@dataclass(frozen=True)
class Histogram:
    trigger: str  # e.g. "hist:keys=size:vals=hitcount:sort=hitcount:size=2048 [active]"
    entries: tuple[HistEntry, ...]
    hits: int | None = None  # Totals; None when the block was cut off before them
    dropped: int | None = None  # events not counted per key because the map was full

    @property
    def keys(self) -> tuple[str, ...]:
        """The key fields, modifiers (.hex, .sym) dropped: ("size",), ("dev_name",)."""
        m = _KEYS_IN_TRIGGER.search(self.trigger)
        if m is None:
            return tuple(name for name, _ in self.entries[0].key) if self.entries else ()
        return tuple(k.split(".", 1)[0] for k in m[1].split(","))

    @property
    def total(self) -> int:
        """Events seen: the Totals' Hits, or the sum of the entries if they were cut off."""
        return self.hits if self.hits is not None else sum(e.hitcount for e in self.entries)

    def counts(self) -> dict[Key, int]:
        out: dict[Key, int] = {}
        for e in self.entries:
            out[e.key] = out.get(e.key, 0) + e.hitcount
        return out


@dataclass
class _Block:
    trigger: str
    entries: list[HistEntry] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    key_split: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        names = Histogram(self.trigger, ()).keys
        pattern = "|".join(re.escape(n) for n in names) if names else _ANY_KEY
        self.key_split = re.compile(rf",\s+(?=(?:{pattern}):\s)")


def parse(data: str | bytes) -> tuple[Histogram, ...]:
    """Every histogram in a hist file, in order; () when no hist trigger is set."""
    blocks: list[_Block] = []
    for number, line in lines(decode(data, "hist"), "hist"):
        where = f"hist line {number}"
        stripped = line.strip()
        if stripped.startswith("# trigger info:"):
            if len(blocks) >= MAX_HISTOGRAMS:
                raise ParseError(f"{where}: more than {MAX_HISTOGRAMS} histograms")
            blocks.append(_Block(stripped.removeprefix("# trigger info:").strip()))
        elif not stripped or stripped.startswith("#") or stripped == "Totals:":
            continue
        elif not blocks:
            raise ParseError(f"{where}: {shorten(stripped)!r} before any '# trigger info' line")
        elif stripped.startswith("{"):
            _add_entry(blocks[-1], _entry(stripped, blocks[-1].key_split, where), where)
        elif m := _TOTAL.fullmatch(line):
            blocks[-1].totals[m[1]] = count(m[2], f"{where} {m[1]}")
        else:
            raise ParseError(f"{where}: not hist output: {shorten(stripped)!r}")
    return tuple(_histogram(b) for b in blocks)


def _add_entry(block: _Block, entry: HistEntry, where: str) -> None:
    if len(block.entries) >= MAX_ENTRIES:
        raise ParseError(f"{where}: more than {MAX_ENTRIES} entries in one histogram")
    block.entries.append(entry)


def _entry(line: str, key_split: re.Pattern[str], where: str) -> HistEntry:
    """`{ size:          1 } hitcount:       2251` (more vals may follow hitcount)."""
    close = line.rfind("}")
    tokens = line[close + 1 :].split()
    if close < 0 or len(tokens) < 2 or len(tokens) % 2:
        raise ParseError(f"{where}: not a hist entry: {shorten(line)!r}")
    values: list[tuple[str, int]] = []
    for name, number in zip(tokens[::2], tokens[1::2], strict=True):
        if not name.endswith(":") or not _FIELD.fullmatch(name[:-1]):
            raise ParseError(f"{where}: {shorten(name)!r} is not a value name")
        values.append((name[:-1], count(number, f"{where} {name[:-1]}")))
    if values[0][0] != "hitcount":
        raise ParseError(f"{where}: entry without hitcount: {shorten(line)!r}")
    return HistEntry(_key(line[1:close], key_split, where), values[0][1], tuple(values[1:]))


def _key(body: str, key_split: re.Pattern[str], where: str) -> Key:
    fields: list[tuple[str, str]] = []
    for part in key_split.split(body.strip()):
        name, colon, value = part.partition(":")
        if not colon or not _FIELD.fullmatch(name.strip()):
            raise ParseError(f"{where}: key {shorten(part)!r} is not 'field: value'")
        fields.append((name.strip(), value.strip()))
    return tuple(fields)


def _histogram(block: _Block) -> Histogram:
    listed = block.totals.get("Entries")
    if listed is not None and listed != len(block.entries):
        raise ParseError(
            f"hist: {block.trigger!r} says {listed} entries, {len(block.entries)} listed (cut off?)"
        )
    return Histogram(
        trigger=block.trigger,
        entries=tuple(block.entries),
        hits=block.totals.get("Hits"),
        dropped=block.totals.get("Dropped"),
    )


def find(histograms: tuple[Histogram, ...], *keys: str) -> Histogram | None:
    """The first histogram keyed by exactly `keys`, e.g. find(h, "size")."""
    return next((h for h in histograms if h.keys == keys), None)
