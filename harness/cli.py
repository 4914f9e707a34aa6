"""The `kharness` command line: one table of subcommands, errors to exit codes.

Each subcommand lives with its layer (`harness/<layer>/cli.py`) and exposes
`add_arguments(parser)` and `main(args) -> int`. This module is the only place
that turns exceptions into exit codes (design.md): 0 good, 1 kernel-side
failures or regressions, 2 usage or config error, 3 host/infrastructure error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from harness import __version__
from harness.errors import EXIT_INFRA, EXIT_INTERRUPTED, EXIT_USAGE, KharnessError

# name -> (module, one-line help). The module is imported only when used.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("harness.run.cli", "run a config: boot every cell, run workloads, write results"),
    "expand": ("harness.config.cli", "list the cells a config expands to, without running"),
    "kernel": ("harness.kernel.cli", "fetch kernels and show what an image is"),
    "rootfs": ("harness.initramfs.cli", "build the guest userland (initramfs layers)"),
    "slab": ("harness.collect.cli", "slab what-if from a saved /proc/slabinfo"),
    "compare": ("harness.compare.cli", "compare result directories"),
    "merge": ("harness.run.merge", "merge result directories (e.g. shards) into one"),
    "ci-matrix": ("harness.run.cimatrix", "print a config's shard matrix for a CI system"),
    "check": ("harness.bisect.check", "judge one kernel in one cell, for git bisect run"),
    "bisect": ("harness.bisect.cli", "find the settings that turn a good cell into a bad one"),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` has its module imported."""
    parser = argparse.ArgumentParser(
        prog="kharness",
        description="Kernel patch evaluation harness: QEMU guests, DMA stress, slab and swiotlb figures.",
    )
    parser.add_argument("--version", action="version", version=f"kharness {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        rc: int = args._main(args)
    except KharnessError as exc:
        print(f"kharness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kharness: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `kharness expand x | head`
        return 0
    except OSError as exc:  # e.g. disk full while writing results
        print(f"kharness: error: {exc}; check the disk and permissions", file=sys.stderr)
        return EXIT_INFRA
    return rc


__all__ = ["EXIT_USAGE", "main"]
