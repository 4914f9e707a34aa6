"""Kernel fault signatures in a serial console log, one hit per incident.

One kernel fault prints many matching lines: an arm64 NULL dereference
gives "Unable to handle kernel", "Internal error: Oops", the trace, then
"Kernel panic - not syncing: Oops: Fatal exception". A testcase wants one
failure for that, naming its cause, so lines are grouped into incidents:

- a report closes at its "---[ end trace ... ]---" line, except that a panic
  right after it still belongs to it (the panic is the Oops' consequence);
- without such a line (hung task, RCU stall, BUG: sleeping function...), a
  signature within GAP lines of the incident's last one joins it;
- a "cut here" line always opens a new incident: it starts every WARN/BUG report.

The console is the guest's raw serial output: CRs, ANSI colour codes, and
bytes that are not UTF-8 are cleaned off rather than refused.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from harness.collect.text import decode

# (name, pattern). The first match names a line, so the specific comes before
# the general ("watchdog: BUG: soft lockup" is a soft-lockup, not a bug).
SIGNATURES: tuple[tuple[str, str], ...] = (
    ("panic", r"Kernel panic - not syncing"),
    ("kasan", r"BUG: KASAN:"),
    ("kfence", r"BUG: KFENCE:"),
    ("soft-lockup", r"soft lockup"),
    ("kernel-bug", r"kernel BUG at"),
    ("gpf", r"general protection fault"),
    ("unable-to-handle", r"Unable to handle kernel"),
    ("internal-error", r"Internal error:"),
    ("oops", r"\bOops\b(?::| -| \[#)"),
    ("bug", r"\bBUG:"),
    ("warning", r"WARNING: CPU:"),
    ("lockdep", r"WARNING: (?:possible |suspicious RCU usage|inconsistent lock)"),
    ("cut-here", r"-+\[ cut here \]-+"),
    ("ubsan", r"UBSAN:"),
    # domain.md's `rcu.*stall`, narrowed so the boot line "RCU CPU stall
    # warnings timeout set to ..." is not a hit.
    ("rcu-stall", r"rcu.*detected stall"),
    ("hung-task", r"blocked for more than \d+ seconds"),
    # The OOM killer's verdict (its report starts "X invoked oom-killer" some
    # lines before): "Killed process" since 5.0, "Kill process" before.
    ("oom-kill", r"[Oo]ut of memory: Kill(?:ed)? process"),
    ("swiotlb-full", r"swiotlb buffer is full"),
    ("dma-api-eexist", r"DMA-API: .*cacheline tracking EEXIST"),
)
_SIGNATURES = tuple((name, re.compile(p)) for name, p in SIGNATURES)
_END = re.compile(r"---\[ end (?:trace|Kernel panic)")
# CSI (colours, cursor), OSC (titles) and two-byte escapes, then other controls.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]{0,256}(?:\x07|\x1b\\)?|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_OOM_VICTIM = re.compile(r"[Oo]ut of memory: Kill(?:ed)? process \d+ \(([^)\n]{0,16})\)")
_COMM_JUNK = re.compile(r"[^A-Za-z0-9_./:+-]")
_STAMP = re.compile(r"^\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])?\s*")

GAP = 60  # lines: a stall or hung-task report with its backtraces fits
PANIC_AFTER_END = 12  # lines after "end trace" in which a panic is still that report's
BEFORE = 5  # excerpt lines before an incident's first line
EXCERPT = 30  # excerpt lines in all
MAX_LINE = 512  # characters kept of one line
MAX_HITS = 100
MAX_BYTES = 64 << 20  # of a console log scanned; scan_file keeps head and tail of more


@dataclass(frozen=True)
class ConsoleHit:
    line: int  # 1-based line of the incident's first signature
    signature: str  # the cause: the first signature other than cut-here
    title: str  # that line, cleaned, without the printk timestamp
    signatures: tuple[str, ...]  # every signature of the incident, first seen first
    last_line: int
    excerpt: str  # at most EXCERPT lines around `line`

    @property
    def fatal(self) -> bool:
        """The kernel panicked: the guest is gone."""
        return "panic" in self.signatures

    @property
    def summary(self) -> str:
        """One line for a test report: the cause's line, then what followed it."""
        rest = [s for s in self.signatures if s not in (self.signature, "cut-here")]
        head = self.title[:200] or self.signature
        return f"{head} (then: {', '.join(rest)})" if rest else head


@dataclass
class _Incident:
    first: int
    before: list[str]
    names: list[str] = field(default_factory=list)
    title: tuple[str, str] = ("", "")  # (signature, line) of the cause
    last: int = 0
    ended_at: int | None = None  # line of "---[ end trace"
    after: list[str] = field(default_factory=list)

    def add(self, name: str, number: int, line: str) -> None:
        if name not in self.names:
            self.names.append(name)
        if not self.title[0] and name != "cut-here":
            self.title = (name, _STAMP.sub("", line))
        self.last = number

    def joins(self, name: str, number: int) -> bool:
        if name == "cut-here":  # the line that opens every WARN/BUG report
            return False
        if self.ended_at is not None:
            return name == "panic" and number - self.ended_at <= PANIC_AFTER_END
        return number - self.last <= GAP

    def hit(self) -> ConsoleHit:
        signature, title = self.title if self.title[0] else ("cut-here", "")
        return ConsoleHit(
            line=self.first, signature=signature, title=title, signatures=tuple(self.names),
            last_line=self.last, excerpt="\n".join(self.before + self.after),
        )


def clean(line: str) -> str:
    """A console line without escape sequences and control characters, bounded."""
    return _CONTROL.sub("", _ANSI.sub("", line[: MAX_LINE * 4]))[:MAX_LINE]


def signature(line: str) -> str | None:
    """The name of the first signature that `line` shows, or None."""
    return next((name for name, rx in _SIGNATURES if rx.search(line)), None)


def scan(data: str | bytes) -> list[ConsoleHit]:
    """Every incident in a console log, in order; at most MAX_HITS of them.

    ParseError only for more than MAX_BYTES (scan_file reads big logs in part).
    """
    text = decode(data, "console log", MAX_BYTES)
    incidents: list[_Incident] = []
    recent: deque[str] = deque(maxlen=BEFORE)
    for number, raw in enumerate(_lines(text), 1):
        line = clean(raw)
        current = incidents[-1] if incidents else None
        if current is not None and len(current.before) + len(current.after) < EXCERPT:
            current.after.append(line)
        name = signature(line)
        if current is not None and current.ended_at is None and _END.search(line):
            current.ended_at = number
        if name is not None:
            if current is None or not current.joins(name, number):
                if len(incidents) >= MAX_HITS:
                    break
                current = _Incident(first=number, before=list(recent))
                current.after.append(line)
                incidents.append(current)
            current.add(name, number, line)
        recent.append(line)
    return [i.hit() for i in incidents]


def oom_victims(data: str | bytes) -> list[str]:
    """The processes the OOM killer killed in a stretch of console, in order: "dd", "dropbear"
    (a name is the kernel's comm, at most 15 characters; anything else in it is dropped)."""
    text = decode(data, "console log", MAX_BYTES)
    return [_COMM_JUNK.sub("", m.group(1)) or "?" for m in _OOM_VICTIM.finditer(text)][:MAX_HITS]


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` one at a time: a big log is not copied into a list."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield text[start:end]
        start = end + 1


def scan_ends(head: bytes, tail: bytes) -> list[ConsoleHit]:
    """scan() of a log too big to read whole, from its first and last parts (the reader bounds them)."""
    return scan(head + b"\n[kharness: middle of the log skipped]\n" + tail)
