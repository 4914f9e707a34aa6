"""The `kharness` command line: one table of subcommands, errors to exit codes.

Each subcommand lives with its layer (`harness/<layer>/cli.py`) and exposes
`add_arguments(parser)` and `main(args) -> int`. This module is the only place
that turns exceptions into exit codes (design.md): 0 good, 1 kernel-side
failures or regressions, 2 usage or config error, 3 host/infrastructure error.

Here too: the global options (-v, -q, --color), accepted before the
subcommand and after it (`kharness compare -v A B`); bad arguments as one
line "problem; fix" with exit 2; and the commands about the command line
itself, which need the whole parser: `completion` (shtab) and `man`
(argparse-manpage).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from harness import __version__, atomic
from harness.errors import EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, KharnessError, internal_error
from harness.formats.terminal import COLOR_MODES

# name -> (module, one-line help). The module is imported only when used.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("harness.run.cli", "run a config: boot every cell, run workloads, write results"),
    "show": ("harness.run.show", "print a run's summary again (table or json)"),
    "expand": ("harness.run.expand", "list the cells a config expands to, without running"),
    "workloads": ("harness.workloads.cli", "list the workloads: devices, parameters, metrics"),
    "kernel": ("harness.kernel.cli", "fetch kernels and show what an image is"),
    "rootfs": ("harness.initramfs.cli", "build the guest userland (initramfs layers)"),
    "slab": ("harness.collect.cli", "slab what-if from a saved /proc/slabinfo or a result directory"),
    "compare": ("harness.compare.cli", "compare result directories"),
    "merge": ("harness.run.merge", "merge result directories (e.g. shards) into one"),
    "ci-matrix": ("harness.run.cimatrix", "print a config's shard matrix for a CI system"),
    "check": ("harness.bisect.check", "judge one kernel in one cell, for git bisect run"),
    "bisect": ("harness.bisect.cli", "find the settings that turn a good cell into a bad one"),
    "ab": ("harness.ab.cli", "evaluate a patch: build base and patched, boot every cell on both, compare"),
    "lava": ("harness.lava.cli", "cells on real boards through LAVA: ramdisks, job definitions, logs into results"),
    "kcidb": ("harness.kcidb.cli", "a result directory as KernelCI KCIDB JSON (checkouts, builds, tests)"),
}

# Commands about the command line itself: they need every subcommand's parser.
SHELLS = ("bash", "zsh", "tcsh")
SELF_COMMANDS: dict[str, str] = {
    "completion": "print a shell completion script (bash, zsh or tcsh)",
    "man": "print the manual page (roff), generated from this parser",
}

DESCRIPTION = "Kernel patch evaluation harness: QEMU guests, DMA stress, slab and swiotlb figures."
MAN_SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("exit status", (
        ("0", "good: every repetition passed, no regression, a good check"),
        ("1", "the kernel's failures (panic, oops, WARN, failed workload or expectation), a regression"),
        ("2", "bad usage, config or input; nothing ran"),
        ("3", "an infrastructure error (QEMU, download, SSH): rerun"),
        ("125", "check: this kernel cannot be tested (git bisect run skips it)"),
        ("130", "interrupted; kharness run --resume DIR continues"),
    )),
    ("environment", (
        ("KHARNESS_CACHE", "the content-addressed cache (default ~/.cache/kharness)"),
        ("KHARNESS_RESOLVE_TTL", "seconds a Debian version resolution is reused (default 86400)"),
        ("KHARNESS_ACCEL", "tcg, kvm or auto (default auto)"),
        ("NO_COLOR", "set to anything: no colour unless --color always"),
        ("COLUMNS", "the width of tables and the live display"),
    )),
)


class Parser(argparse.ArgumentParser):
    """Bad arguments are one line, "problem; fix", and exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see {self.prog} --help\n")


class TopParser(Parser):
    """The `kharness` parser: folds the global options given after the subcommand
    into those given before it, so every command sees `verbose`, `quiet`, `color`."""

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        ns, rest = super().parse_known_args(args, namespace)
        return merge_globals(ns), rest


def add_global_options(parser: argparse.ArgumentParser, where: str) -> None:
    """-v, -q and --color, into dests `_<where>_*`; a subcommand's own -q stays its own."""
    group = parser.add_argument_group("global options (before or after the command)")
    default: Any = argparse.SUPPRESS if where == "sub" else None
    options: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("-v", "--verbose"), {"action": "count", "help": "more log output (-vv: debug)"}),
        (("-q", "--quiet"), {"action": "store_true", "help": "less output: errors only in the log"}),
        (("--color",), {"choices": COLOR_MODES, "metavar": "WHEN",
                        "help": "colour: auto (a terminal, unless NO_COLOR is set), always, never"}),
    ]
    for flags, kwargs in options:
        name = flags[-1].lstrip("-")
        # A command with an option of that name (run's -q) keeps its own meaning.
        with contextlib.suppress(argparse.ArgumentError):
            group.add_argument(*flags, dest=f"_{where}_{name}", default=default, **kwargs)


def merge_globals(ns: argparse.Namespace) -> argparse.Namespace:
    values = vars(ns)
    ns.verbose = (values.pop("_top_verbose", None) or 0) + (values.pop("_sub_verbose", None) or 0)
    top_quiet, sub_quiet = values.pop("_top_quiet", None), values.pop("_sub_quiet", None)
    ns.quiet = bool(values.get("quiet") or top_quiet or sub_quiet)
    top_color, sub_color = values.pop("_top_color", None), values.pop("_sub_color", None)
    ns.color = sub_color or top_color or "auto"
    return ns


def build_parser(argv: Sequence[str] = (), *, full: bool = False,
                 globals_after: bool = True) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` has its module imported (all with `full`).
    `globals_after=False` leaves the global options out of the subcommands (the man page
    says once that they may follow the command)."""
    parser = TopParser(prog="kharness", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"kharness {__version__}")
    add_global_options(parser, "top")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    chosen = next((a for a in argv if a in COMMANDS or a in SELF_COMMANDS), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if full or name == chosen:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            p.set_defaults(_main=mod.main)
            for level in _parsers_within(p) if globals_after else ():  # `kernel info X -v` too
                add_global_options(level, "sub")
    for name, help_text in SELF_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        _SELF_ARGUMENTS[name](p)
        if globals_after:
            add_global_options(p, "sub")
    return parser


def _parsers_within(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and every subcommand parser below it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += _parsers_within(child)
    return found


def _completion_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help=f"one of {', '.join(SHELLS)}")
    p.epilog = ("bash: kharness completion bash > /etc/bash_completion.d/kharness "
                "(or eval \"$(kharness completion bash)\" in ~/.bashrc); "
                "zsh: kharness completion zsh > ~/.zfunc/_kharness")
    p.set_defaults(_main=_completion)


def _man_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write it here instead of stdout")
    p.epilog = "read it: kharness man | man -l -; install it: kharness man -o /usr/local/share/man/man1/kharness.1"
    p.set_defaults(_main=_man)


_SELF_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "completion": _completion_arguments,
    "man": _man_arguments,
}


def completion_script(shell: str) -> str:
    """shtab's script for `shell`, from the whole parser; path arguments complete files."""
    import shtab

    parser = build_parser(full=True)
    _mark_paths(parser, shtab.FILE)
    return str(shtab.complete(parser, shell=shell))


def man_page() -> str:
    """The manual page, roff, from the whole parser (every subcommand and option)."""
    from argparse_manpage.manpage import Manpage

    page = Manpage(build_parser(full=True, globals_after=False))
    page.source = f"kharness {__version__}"
    page.manual = "kharness manual"
    page.description = DESCRIPTION.rstrip(".")
    for heading, items in MAN_SECTIONS:
        page.add_section(heading, ">", "\n".join(f".TP\n.B {_roff(k)}\n{_roff(v)}" for k, v in items))
    return str(page)


def _roff(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def _mark_paths(parser: argparse.ArgumentParser, hint: Any) -> None:
    """Arguments typed Path complete file names (shtab reads `action.complete`)."""
    for level in _parsers_within(parser):
        for action in level._actions:
            if action.type is Path and not hasattr(action, "complete"):
                action.complete = hint  # type: ignore[attr-defined]


def _completion(args: argparse.Namespace) -> int:
    sys.stdout.write(completion_script(args.shell))
    return EXIT_OK


def _man(args: argparse.Namespace) -> int:
    text = man_page()
    if args.output:
        atomic.write_text(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # paramiko imports invoke, and invoke unittest.mock: about 60 ms of every
    # run's start, for the one thing kharness never asks of paramiko (a `Match
    # exec` line in an OpenSSH config file). An entry of None makes that import
    # fail as if invoke were not installed, which paramiko expects and handles.
    sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet and not args.verbose else logging.WARNING - 10 * min(args.verbose, 2)
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
    except Exception as exc:  # a bug of ours: no traceback, and never exit 1 (a kernel failure)
        print(f"kharness: {internal_error(exc)}", file=sys.stderr)
        return EXIT_INFRA
    return rc


__all__ = ["COMMANDS", "EXIT_USAGE", "build_parser", "main"]
