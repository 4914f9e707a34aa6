"""`kharness expand CONFIG [--shard K/N]`: the cells a config expands to, or one shard's.

The listing is the config layer's (harness/config/cli.py); this module only
adds `--shard`, whose rule is the run's (harness/run/shard.py), so that
`kharness expand CONFIG --shard 2/4` lists exactly what
`kharness run CONFIG --shard 2/4` would boot.
"""

from __future__ import annotations

import argparse

from harness.config import cli as config_cli
from harness.config.load import load
from harness.errors import EXIT_OK
from harness.run import shard


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config_cli.add_arguments(parser)
    parser.add_argument("--shard", metavar="K/N",
                        help="only the cells `kharness run --shard K/N` would run (K counted from 1)")


def main(args: argparse.Namespace) -> int:
    part = shard.parse(args.shard) if args.shard else None  # a bad K/N before the config is read
    config = load(config_cli.locate(args.config))
    cells = shard.select(config.cells, part)
    config_cli.show(config, cells, args.format, getattr(args, "color", "auto"), str(part or ""))
    return EXIT_OK
