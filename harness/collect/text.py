"""What every collector parser shares: ParseError, bounded decoding, checked numbers.

Guest output is untrusted: the kernel under test may be broken, the console
may carry binary noise, and a file may be cut off. Parsers therefore take a
whole text (never a live file), bound how much they read, and turn every
surprise into one ParseError whose message says where and what, instead of
an IndexError deep inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_INPUT = 16 << 20  # bytes: far above any real source (slabinfo is ~100 KiB)
MAX_LINE = 4096  # characters: real lines of these sources are < 300
MAX_COUNT = (1 << 64) - 1  # kernel counters are u64 at most

_DIGITS = re.compile(r"[0-9]{1,20}")
_NOT_LABEL = re.compile(r"[^a-z0-9_-]+")


class ParseError(ValueError):
    """The input is not the format the parser reads; the message names where and why."""


def decode(data: str | bytes, what: str, limit: int = MAX_INPUT) -> str:
    """`data` as text, refused above `limit`; invalid UTF-8 becomes U+FFFD, not an error."""
    if len(data) > limit:
        raise ParseError(f"{what}: {len(data)} bytes, more than the {limit} this parser reads")
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data


def lines(text: str, what: str, max_line: int = MAX_LINE) -> Iterator[tuple[int, str]]:
    """(1-based number, line) pairs; a CR before the newline is dropped, a huge line refused."""
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > max_line:
            raise ParseError(f"{what} line {number}: {len(line)} characters, over {max_line}")
        yield number, line.removesuffix("\r")


def count(token: str, where: str, limit: int = MAX_COUNT) -> int:
    """A non-negative decimal integer no larger than `limit` (negative, signs, '1e3' refused)."""
    if not _DIGITS.fullmatch(token):
        raise ParseError(f"{where}: {shorten(token)!r} is not a non-negative integer")
    value = int(token)
    if value > limit:
        raise ParseError(f"{where}: {value} is larger than {limit}")
    return value


def shorten(text: str, width: int = 60) -> str:
    """`text` cut to `width` characters for an error message."""
    return text if len(text) <= width else text[: width - 3] + "..."


def label(name: str, width: int, default: str) -> str:
    """A guest-given name as one component of a dotted metric name: [a-z0-9_-], bounded.

    Dots and colons go too (0000:00:02.0 -> 0000_00_02_0): a name must not add
    components to the metric name it sits in.
    """
    return _NOT_LABEL.sub("_", name.lower()).strip("_")[:width] or default
