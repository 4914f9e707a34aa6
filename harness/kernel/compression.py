"""Recognise and undo the compressions the kernel build can wrap an image in.

Kernels are compressed with whatever `CONFIG_KERNEL_*` chose: gzip, xz, lzma
and bzip2 are in Python's standard library; zstd, lz4 and lzo are not, so
they go through the Debian command-line tools (`zstd`, `lz4`, `lzop`) rather
than an extra Python dependency. Only EFI zboot images and non-gzip arm64
wrappers ever need this, because QEMU 7.2 takes bzImage and gzip'd Images as
they are.
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import subprocess
import zlib
from collections.abc import Callable

from harness.errors import InfraError, UsageError

# Leading bytes of each format as the kernel's build writes it (scripts/Makefile.lib).
MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x02\x21\x4c\x18", "lz4"),  # legacy frame: what `lz4 -l` (the kernel's choice) writes
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"BZh", "bzip2"),
    (b"\x89LZO\x00\r\n\x1a\n", "lzo"),
    (b"\x5d\x00\x00", "lzma"),  # lzma-alone: properties byte 0x5d, then dictionary size
)

# The package that provides each command-line decompressor on Debian.
_TOOLS: dict[str, tuple[list[str], str]] = {
    "zstd": (["zstd", "-dc", "--no-progress"], "zstd"),
    "lz4": (["lz4", "-dc"], "lz4"),
    "lzo": (["lzop", "-dc"], "lzop"),
}


def sniff(head: bytes) -> str | None:
    """The compression whose magic `head` starts with, or None."""
    for magic, kind in MAGICS:
        if head.startswith(magic):
            return kind
    return None


def decompress(data: bytes, kind: str, what: str = "image") -> bytes:
    """Decompress one stream of `kind`; trailing bytes after the stream are ignored.

    Kernel payloads often carry a trailing size word or padding after the
    compressed stream, which the standard decompressors would reject.
    A corrupt stream is the user's file at fault: UsageError naming `what`.
    """
    python: dict[str, Callable[[bytes], bytes]] = {
        "gzip": _gunzip,
        "xz": lambda d: lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(d),
        "lzma": lambda d: lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(d),
        "bzip2": lambda d: bz2.BZ2Decompressor().decompress(d),
    }
    if kind == "none":
        return data
    if kind in python:
        try:
            return python[kind](data)
        except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as exc:
            raise UsageError(
                f"{what}: corrupt {kind} data ({exc})", "check the file is complete"
            ) from exc
    if kind in _TOOLS:
        return _with_tool(data, kind, what)
    raise UsageError(f"{what}: unsupported compression {kind!r}", "use a gzip, xz or zstd image")


def _gunzip(data: bytes) -> bytes:
    # wbits=31: gzip header and trailer; anything after the member is left alone.
    return zlib.decompressobj(wbits=31).decompress(data)


def _with_tool(data: bytes, kind: str, what: str) -> bytes:
    argv, package = _TOOLS[kind]
    if shutil.which(argv[0]) is None:
        raise InfraError(
            f"{what} is {kind}-compressed and {argv[0]} is not installed",
            f"apt-get install {package}",
        )
    proc = subprocess.run(argv, input=data, capture_output=True, check=False)
    if proc.returncode != 0:  # the tool ran, so the data is at fault, not the host
        tail = (proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        raise UsageError(f"{what}: corrupt {kind} data ({tail[:200]})", "check the file")
    return proc.stdout
