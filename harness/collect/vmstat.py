"""/proc/vmstat: the kernel's event counters and page counts, one `name value` per line."""

from __future__ import annotations

import re

from harness.collect.text import ParseError, count, decode, lines, shorten

MAX_FIELDS = 1024  # 6.12 has about 200
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def parse(data: str | bytes) -> dict[str, int]:
    """Counter name -> value, as the kernel prints it (pages, KiB or events per name)."""
    out: dict[str, int] = {}
    for number, line in lines(decode(data, "vmstat"), "vmstat"):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not _NAME.fullmatch(fields[0]):
            raise ParseError(f"vmstat line {number}: not 'name value': {shorten(line)!r}")
        name = fields[0]
        if name in out:
            raise ParseError(f"vmstat line {number}: {name} given twice")
        if len(out) >= MAX_FIELDS:
            raise ParseError(f"vmstat line {number}: more than {MAX_FIELDS} counters")
        out[name] = count(fields[1], f"vmstat line {number} {name}")
    if not out:
        raise ParseError("vmstat: empty")
    return out
