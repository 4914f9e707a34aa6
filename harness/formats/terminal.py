"""How text meets a terminal or a pipe: colour, width and box-drawing tables.

One policy for every command (README "Command line"):

- colour: `--color always|never` decides; `auto` (the default) colours a
  terminal only, and not when NO_COLOR is set to anything (no-color.org) or
  TERM is `dumb`;
- width: COLUMNS when it is a number, else the terminal's width, else the
  caller's width for pipes and files (wide enough that a CI log's rows do not
  wrap);
- box-drawing tables only on a terminal: piped or redirected, a table is
  plain columns of text (`kharness kernel info X | cat`, grep, a mail).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from rich import box
from rich.console import Console
from rich.table import Table

COLOR_MODES = ("auto", "always", "never")
MIN_WIDTH = 20


@dataclass(frozen=True)
class Terminal:
    """What one output stream gets: colour or not, box tables or not, how wide."""

    tty: bool
    color: bool
    width: int

    def console(self, file: IO[str]) -> Console:
        """A rich console that writes `file` by this policy (values, not markup, are the caller's job)."""
        return Console(
            file=file, width=self.width, force_terminal=self.tty or self.color,
            color_system="auto" if self.color else None, no_color=not self.color,
            highlight=False, emoji=False, soft_wrap=False,
        )

    def print(self, file: IO[str], *renderables: Any) -> None:
        """Print to `file`; off a terminal, without the blanks rich pads table rows with."""
        console = self.console(file)
        if self.tty:
            console.print(*renderables, sep="\n")
            return
        with console.capture() as captured:
            console.print(*renderables, sep="\n")
        file.write(strip_trailing(captured.get()))

    def table(self, **kwargs: Any) -> Table:
        """A rich table: box drawing on a terminal, plain space-separated columns elsewhere."""
        if not self.tty:
            kwargs.setdefault("box", None)
            kwargs.setdefault("pad_edge", False)
            kwargs.setdefault("show_edge", False)
            kwargs.setdefault("title_justify", "left")
        else:
            kwargs.setdefault("box", box.HEAVY_HEAD)
        if not self.color:
            kwargs.setdefault("header_style", "")
            kwargs.setdefault("title_style", "")
        return Table(**kwargs)


def strip_trailing(text: str) -> str:
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def of(stream: IO[str], color: str = "auto", *, pipe_width: int = 80,
       environ: Mapping[str, str] | None = None) -> Terminal:
    """The policy for `stream` under `--color` mode `color` and the environment."""
    env = os.environ if environ is None else environ
    tty = _isatty(stream)
    return Terminal(tty=tty, color=wants_color(color, tty, env), width=width(stream, tty, pipe_width, env))


def wants_color(mode: str, tty: bool, environ: Mapping[str, str]) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return tty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def width(stream: IO[str], tty: bool, pipe_width: int, environ: Mapping[str, str]) -> int:
    """COLUMNS first (a person's explicit word), then the terminal, then `pipe_width`."""
    columns = environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return max(MIN_WIDTH, int(columns))
    if tty:
        try:
            return max(MIN_WIDTH, os.get_terminal_size(stream.fileno()).columns)
        except (OSError, ValueError, AttributeError):
            return 80
    return pipe_width


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (ValueError, AttributeError):  # closed, or a stand-in without isatty
        return False
