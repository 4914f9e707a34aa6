"""/proc/meminfo: the kernel's memory accounting, in bytes.

`Slab` and `SUnreclaim` are the slab figures that do not depend on reading
/proc/slabinfo (no root needed) and include every cache, not only kmalloc.
"""

from __future__ import annotations

import re

from harness.collect.text import ParseError, count, decode, lines, shorten

MAX_FIELDS = 512  # 6.12 has about 60
_LINE = re.compile(r"(?P<key>[A-Za-z][A-Za-z0-9_()]{0,63}):\s+(?P<value>\S+)(?:\s+(?P<unit>\S+))?")


def parse(data: str | bytes) -> dict[str, int]:
    """Field -> value: sizes ("kB" in the file) in bytes, counts (HugePages_*) as they are."""
    out: dict[str, int] = {}
    for number, line in lines(decode(data, "meminfo"), "meminfo"):
        if not line.strip():
            continue
        m = _LINE.fullmatch(line.strip())
        if m is None or m["unit"] not in (None, "kB"):
            raise ParseError(f"meminfo line {number}: not 'Field: value [kB]': {shorten(line)!r}")
        key = m["key"]
        if key in out:
            raise ParseError(f"meminfo line {number}: {key} given twice")
        if len(out) >= MAX_FIELDS:
            raise ParseError(f"meminfo line {number}: more than {MAX_FIELDS} fields")
        value = count(m["value"], f"meminfo line {number} {key}", 1 << 54)
        out[key] = value * 1024 if m["unit"] == "kB" else value
    if "MemTotal" not in out:
        raise ParseError("meminfo: no MemTotal line (empty or not /proc/meminfo)")
    return out
