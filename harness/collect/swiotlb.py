"""swiotlb debugfs (/sys/kernel/debug/swiotlb/): is there a bounce buffer, how big, how used.

Units are slots of 2 KiB (IO_TLB_SIZE). The directory is empty when the
kernel has no swiotlb (domain.md), so "no files" means absent; telling that
apart from "debugfs not mounted" is the snapshot's job, not this parser's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.collect.text import ParseError, count, decode, shorten

SLOT_BYTES = 2048
MAX_SLOTS = 1 << 40  # 2 PiB of bounce buffer: anything above is garbage
# Files read; others (a future kernel's additions) are ignored.
_KNOWN = ("io_tlb_nslabs", "io_tlb_used", "io_tlb_used_hiwater", "io_tlb_transient_nslabs")


@dataclass(frozen=True)
class Swiotlb:
    present: bool
    nslabs: int = 0  # slots in the default pool (io_tlb_nslabs)
    used: int = 0  # slots in use when read (io_tlb_used)
    hiwater: int | None = None  # most slots ever in use (io_tlb_used_hiwater, 6.2+)
    transient_nslabs: int | None = None  # SWIOTLB_DYNAMIC pools (io_tlb_transient_nslabs)


def parse(files: Mapping[str, str | bytes]) -> Swiotlb:
    """The swiotlb state from the debugfs files, keyed by file name; {} means no swiotlb."""
    if not files:
        return Swiotlb(present=False)
    if "io_tlb_nslabs" not in files:
        names = ", ".join(sorted(shorten(n, 40) for n in files)[:8])
        raise ParseError(f"swiotlb: io_tlb_nslabs missing among the debugfs files ({names})")
    values = {name: value(name, files[name]) for name in _KNOWN if name in files}
    nslabs = values["io_tlb_nslabs"]
    used = values.get("io_tlb_used", 0)
    if used > nslabs:
        raise ParseError(f"swiotlb: io_tlb_used {used} is more than io_tlb_nslabs {nslabs}")
    return Swiotlb(
        present=nslabs > 0,
        nslabs=nslabs,
        used=used,
        hiwater=values.get("io_tlb_used_hiwater"),
        transient_nslabs=values.get("io_tlb_transient_nslabs"),
    )


def value(name: str, data: str | bytes) -> int:
    """One debugfs file: a single decimal number of slots on one line."""
    text = decode(data, f"swiotlb/{name}", 4096).strip()
    if not text:
        raise ParseError(f"swiotlb/{name}: empty")
    return count(text, f"swiotlb/{name}", MAX_SLOTS)
