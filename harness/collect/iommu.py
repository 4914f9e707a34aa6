"""IOMMU groups as the snapshot script lists them: which devices are translated, and how.

One line per device in an IOMMU group (from /sys/kernel/iommu_groups/)::

    group=2 type=DMA dev=0000:00:03.0

The domain type says the DMA path: `DMA` translated with strict TLB
invalidation, `DMA-FQ` translated with lazy (flush queue) invalidation,
`identity` passed through untranslated. A device in no group is on the
direct path (no IOMMU in front of it). An empty section: no IOMMU at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.collect.text import ParseError, count, decode, lines, shorten

MAX_DEVICES = 4096
_LINE = re.compile(r"group=([0-9]{1,9}) type=([A-Za-z0-9_-]{1,32}) dev=([A-Za-z0-9:._-]{1,64})")
TRANSLATED = ("DMA", "DMA-FQ")


@dataclass(frozen=True)
class GroupedDevice:
    group: int
    type: str  # DMA, DMA-FQ, identity, blocked, unknown
    device: str  # e.g. 0000:00:03.0

    @property
    def translated(self) -> bool:
        return self.type in TRANSLATED

    @property
    def lazy(self) -> bool:
        return self.type == "DMA-FQ"


def parse(data: str | bytes) -> tuple[GroupedDevice, ...]:
    """The section's devices; ParseError names the first line that is not `group= type= dev=`."""
    found: list[GroupedDevice] = []
    for n, line in lines(decode(data, "iommu"), "iommu"):
        if not line.strip():
            continue
        m = _LINE.fullmatch(line.strip())
        if m is None:
            raise ParseError(f"iommu line {n}: not 'group=N type=T dev=D': {shorten(line)!r}")
        if len(found) == MAX_DEVICES:
            raise ParseError(f"iommu: more than {MAX_DEVICES} devices")
        found.append(GroupedDevice(count(m.group(1), f"iommu line {n}: group"), m.group(2), m.group(3)))
    return tuple(found)
