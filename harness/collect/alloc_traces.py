"""/sys/kernel/debug/slab/<cache>/alloc_traces: who holds a cache's objects.

With `slub_debug=U,kmalloc-*` (6.12 also reads `slab_debug=`) SLUB stores
the allocating call site and stack of every object, and this debugfs file
lists the objects allocated now, one entry per call site, stack and (for
kmalloc caches) requested size, most objects first (mm/slub.c,
slab_debugfs_show)::

         58 kstrdup_const+0x48/0x60 waste=174/3 age=2777/2777/2779 pid=1 cpus=1
            kstrdup+0x54/0x98
            kstrdup_const+0x48/0x60
            __kernfs_new_node+0x60/0x280
            ...
    <blank line>

- the count of objects, then the caller as `%pS` (`function+off/size`, with
  ` [module]` for a module's code; `<not-available>` when unknown);
- ` waste=total/per-object` for kmalloc caches when the caller asked for
  less than the object size: per-object waste = object size - requested
  size, so the requested size is known (no waste=: exactly the class size);
- ` age=min/avg/max` (or one figure when all are equal) in jiffies,
  ` pid=min-max` (or one), ` cpus=` and ` nodes=` as CPU/node lists;
- the stack frames (STACKDEPOT), one per line, eight spaces in.

A file with no objects reads `No data`. kharness-snapshot.sh cuts a long
file at a bound and then ends it with a line `kharness: cut at N bytes`:
the file is sorted by count, so what is cut is the tail of small entries.
Pure functions, guest text in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.collect.text import MAX_INPUT, ParseError, count, decode, lines, shorten

MAX_ENTRIES = 1 << 17  # call sites of one cache; a busy 6.12 guest lists a few thousand
MAX_FRAMES = 64  # SLUB keeps 16 (TRACK_ADDRS_COUNT); the stack depot at most 64
NOT_AVAILABLE = "<not-available>"
NO_DATA = "No data"
CUT = re.compile(r"kharness: cut at ([0-9]{1,12}) bytes")
_HEAD = re.compile(r" *([0-9]{1,20}) (\S.*)")
_KEY = re.compile(r"([a-z_]{1,32})=(\S*)")
_SYMBOL = re.compile(r"(?P<fn>[^\s+\[\]]{1,256})(?:\+0x[0-9a-f]{1,16}/0x[0-9a-f]{1,16})?"
                     r"(?: \[(?P<mod>[^\s\]]{1,64})\])?")
_RANGE = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
_LIST = re.compile(r"[0-9]{1,5}(?:-[0-9]{1,5})?(?:,[0-9]{1,5}(?:-[0-9]{1,5})?){0,1023}")


@dataclass(frozen=True)
class Trace:
    """One entry: `count` objects allocated from `caller` through one stack (and size)."""

    count: int
    caller: str  # as %pS printed it: function+off/size [module], or <not-available>
    waste_total: int = 0  # bytes: count x waste_each
    waste_each: int = 0  # bytes per object: object size - requested size (0: no waste=)
    age: tuple[int, int, int] = (0, 0, 0)  # min, avg, max jiffies since allocation
    pids: tuple[int, int] = (0, 0)  # min, max
    cpus: str = ""  # a CPU list (0-1,3); empty when the kernel did not print one
    nodes: str = ""
    frames: tuple[str, ...] = ()

    @property
    def function(self) -> str:
        """The caller without offset or module (kstrdup_const), or <not-available>."""
        return symbol_function(self.caller)

    @property
    def module(self) -> str | None:
        m = _SYMBOL.fullmatch(self.caller)
        return m["mod"] if m else None

    def requested(self, object_size: int) -> int:
        """The size the caller asked kmalloc for: object size - per-object waste."""
        return object_size - self.waste_each


@dataclass(frozen=True)
class AllocTraces:
    entries: tuple[Trace, ...]
    cut_at: int | None = None  # the guest cut the file at this many bytes (the tail is missing)

    @property
    def objects(self) -> int:
        return sum(t.count for t in self.entries)


def symbol_function(symbol: str) -> str:
    """`kstrdup_const+0x48/0x60` -> `kstrdup_const`; `f+0x1/0x2 [virtio_blk]` -> `f`."""
    m = _SYMBOL.fullmatch(symbol.strip())
    return m["fn"] if m else symbol.strip()


def parse(data: str | bytes, what: str = "alloc_traces") -> AllocTraces:
    """Every entry of one alloc_traces file; ParseError names the first line that is not one."""
    text = decode(data, what, MAX_INPUT)
    entries: list[Trace] = []
    head: Trace | None = None
    frames: list[str] = []
    cut_at: int | None = None

    def close() -> None:
        nonlocal head
        if head is not None:
            if len(entries) >= MAX_ENTRIES:
                raise ParseError(f"{what}: more than {MAX_ENTRIES} entries")
            entries.append(_with_frames(head, frames))
            head = None
            frames.clear()

    for number, line in lines(text, what):
        if cut_at is not None and line.strip():
            raise ParseError(f"{what} line {number}: text after the cut mark")
        if not line.strip():
            close()
        elif (m := CUT.fullmatch(line.strip())) is not None:
            close()
            cut_at = int(m[1])
        elif line.strip() == NO_DATA and not entries and head is None:
            continue
        elif (h := _HEAD.fullmatch(line)) is not None:
            close()
            head = _entry(h[1], h[2], f"{what} line {number}")
        elif line[:1].isspace() and head is not None:
            if len(frames) >= MAX_FRAMES:
                raise ParseError(f"{what} line {number}: more than {MAX_FRAMES} stack frames")
            frame = line.strip()
            if _SYMBOL.fullmatch(frame) is None:
                raise ParseError(f"{what} line {number}: not a stack frame: {shorten(frame)!r}")
            frames.append(frame)
        else:
            raise ParseError(f"{what} line {number}: not an alloc_traces line: {shorten(line)!r}")
    close()
    return AllocTraces(tuple(entries), cut_at)


def _with_frames(head: Trace, frames: list[str]) -> Trace:
    return Trace(head.count, head.caller, head.waste_total, head.waste_each, head.age, head.pids,
                 head.cpus, head.nodes, tuple(frames))


def _entry(count_text: str, rest: str, where: str) -> Trace:
    """The first line of an entry: count, caller, then key=value fields."""
    tokens = rest.split(" ")
    split = next((i for i, t in enumerate(tokens) if _KEY.fullmatch(t)), len(tokens))
    caller = " ".join(tokens[:split])
    if caller != NOT_AVAILABLE and _SYMBOL.fullmatch(caller) is None:
        raise ParseError(f"{where}: caller {shorten(caller)!r} is not a %pS symbol")
    fields: dict[str, str] = {}
    for token in tokens[split:]:
        m = _KEY.fullmatch(token)
        if m is None or m[1] in fields:
            raise ParseError(f"{where}: {shorten(token)!r} is not one key=value field")
        fields[m[1]] = m[2]
    n = count(count_text, f"{where}: count", 1 << 48)
    waste_total, waste_each = _waste(fields.get("waste"), n, where)
    return Trace(
        count=n, caller=caller, waste_total=waste_total, waste_each=waste_each,
        age=_age(fields.get("age", "0"), where), pids=_pids(fields.get("pid", "0"), where),
        cpus=_cpu_list(fields.get("cpus", ""), "cpus", where),
        nodes=_cpu_list(fields.get("nodes", ""), "nodes", where),
    )


def _waste(text: str | None, n: int, where: str) -> tuple[int, int]:
    if text is None:
        return 0, 0
    total, sep, each = text.partition("/")
    if not sep:
        raise ParseError(f"{where}: waste={shorten(text)!r} is not total/per-object")
    t, e = count(total, f"{where}: waste total", 1 << 62), count(each, f"{where}: waste per object", 1 << 30)
    if t != n * e:
        raise ParseError(f"{where}: waste={t}/{e} is not count {n} x {e}")
    return t, e


def _age(text: str, where: str) -> tuple[int, int, int]:
    parts = text.split("/")
    if len(parts) not in (1, 3):
        raise ParseError(f"{where}: age={shorten(text)!r} is not min/avg/max")
    values = [count(p, f"{where}: age", 1 << 63) for p in parts]
    low, avg, high = (values * 3)[:3] if len(values) == 1 else values
    if not low <= avg <= high:
        raise ParseError(f"{where}: age={text} is not min <= avg <= max")
    return low, avg, high


def _pids(text: str, where: str) -> tuple[int, int]:
    m = _RANGE.fullmatch(text)
    if m is None:
        raise ParseError(f"{where}: pid={shorten(text)!r} is not a pid or a range")
    low = count(m[1], f"{where}: pid", 1 << 32)
    high = count(m[2], f"{where}: pid", 1 << 32) if m[2] else low
    if high < low:
        raise ParseError(f"{where}: pid={text} is not low-high")
    return low, high


def _cpu_list(text: str, key: str, where: str) -> str:
    if text and not _LIST.fullmatch(text):
        raise ParseError(f"{where}: {key}={shorten(text)!r} is not a list like 0-1,3")
    return text
