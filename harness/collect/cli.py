"""`kharness slab`: slab figures from a saved /proc/slabinfo, no guest needed.

    kharness slab whatif FILE --minalign 64 [--pagesize 4096]
                         [--objects active|total] [--format table|json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.collect import slabinfo, whatif
from harness.collect.text import MAX_INPUT, ParseError
from harness.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slab_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser(
        "whatif",
        help="extra kmalloc memory if the minimum alignment were N",
        description="From a /proc/slabinfo taken at a small kmalloc minalign (e.g. 8 on "
        "arm64 6.5+), the extra memory if every kmalloc object were rounded up to "
        "minalign N, per size class, with the formula used.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="a copy of /proc/slabinfo")
    p.add_argument("--minalign", type=int, required=True, choices=whatif.ALIGNMENTS,
                   help="the minimum alignment to ask about, in bytes")
    p.add_argument("--pagesize", type=_pagesize, default=None,
                   help="the guest's page size in bytes (default: inferred from the slabs)")
    p.add_argument("--objects", choices=("active", "total"), default="active",
                   help="count objects in use (default) or every slot of the slabs")
    p.add_argument("--format", choices=("table", "json"), default="table")


def main(args: argparse.Namespace) -> int:
    info = read_slabinfo(args.file)
    pagesize, source = args.pagesize, "given"
    if pagesize is None:
        pagesize, source = slabinfo.infer_pagesize(info) or 4096, "inferred from the slabinfo"
    try:
        result = whatif.compute(info, args.minalign, pagesize, args.objects)
    except ValueError as exc:
        fix = "use a slabinfo taken at a minalign <= --minalign"
        raise UsageError(f"{args.file}: {exc}", fix) from exc
    if args.format == "json":
        print(json.dumps(whatif.to_json(result, source), indent=2))
    else:
        print(whatif.table(result, source))
    return 0


def read_slabinfo(path: Path) -> slabinfo.SlabInfo:
    """Parse a saved slabinfo; UsageError (exit 2) with one line if it is not one."""
    fix = "give a copy of /proc/slabinfo read as root in the guest"
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})", fix) from exc
    try:
        return slabinfo.parse(data)
    except ParseError as exc:
        raise UsageError(f"{path}: not a /proc/slabinfo ({exc})", fix) from exc


def _pagesize(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes") from None
    if value < 1024 or value > 1 << 20 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"{value} is not a page size (4096, 16384, 65536)")
    return value
