"""Recognise and undo the compressions the kernel build can wrap an image in.

Kernels are compressed with whatever `CONFIG_KERNEL_*` chose: gzip, xz, lzma
and bzip2 are in Python's standard library; zstd, lz4 and lzo are not, so
they go through the Debian command-line tools (`zstd`, `lz4`, `lzop`) rather
than an extra Python dependency. Only EFI zboot images and non-gzip arm64
wrappers ever need this, because QEMU 7.2 takes bzImage and gzip'd Images as
they are.

Images come from anywhere, and a few MB of gzip can expand to gigabytes, so
decompression is a stream of bounded chunks with a bound on the total
(`limit`): crossing it is one UsageError, having held at most a chunk more
than the caller keeps.
"""

from __future__ import annotations

import bz2
import lzma
import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

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

CHUNK = 1 << 20  # bytes of output produced at a time
MAX_OUTPUT = 512 << 20  # the default bound: harness.kernel.image's MAX_IMAGE_BYTES
# What an xz/lzma decoder may allocate: its dictionary, whose size the stream's
# header states (an lzma-alone header can ask for 4 GiB in 13 bytes). The
# kernel's builds use at most 64 MiB (`lzma -9`; xz uses 32 MiB).
MAX_DECODER_MEMORY = 128 << 20


class _Decompressor(Protocol):
    """zlib's, lzma's and bz2's decompressor objects, as far as stream() uses them."""

    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


def sniff(head: bytes) -> str | None:
    """The compression whose magic `head` starts with, or None."""
    for magic, kind in MAGICS:
        if head.startswith(magic):
            return kind
    return None


def decompress(data: bytes, kind: str, what: str = "image", limit: int = MAX_OUTPUT) -> bytes:
    """Decompress one stream of `kind`, at most `limit` bytes of it (UsageError past that).

    Trailing bytes after the stream are ignored: kernel payloads often carry
    a trailing size word or padding after the compressed stream, which the
    standard decompressors would reject. A corrupt stream is the user's file
    at fault: UsageError naming `what`.
    """
    return b"".join(stream(data, kind, what, limit))


def gzip_member(data: bytes, what: str, limit: int = MAX_OUTPUT) -> tuple[bytes, int]:
    """The gzip member `data` starts with, at most `limit` bytes of it, and how many bytes of
    `data` it took (initramfs archives are gzip members and plain cpio concatenated)."""
    d = zlib.decompressobj(wbits=31)
    out = b"".join(_bounded(d, data, "gzip", what, limit))
    return out, len(data) - len(d.unused_data)


def stream(data: bytes, kind: str, what: str = "image", limit: int = MAX_OUTPUT) -> Iterator[bytes]:
    """decompress() as chunks of at most CHUNK bytes, for callers that need not hold it all."""
    if kind == "none":
        if len(data) > limit:
            raise _too_big(what, limit)
        for start in range(0, len(data), CHUNK):
            yield data[start:start + CHUNK]
        return
    python: dict[str, Callable[[], _Decompressor]] = {
        "gzip": lambda: zlib.decompressobj(wbits=31),  # header and trailer; what follows is left alone
        "xz": lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=MAX_DECODER_MEMORY),
        "lzma": lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=MAX_DECODER_MEMORY),
        "bzip2": bz2.BZ2Decompressor,
    }
    if kind in python:
        yield from _bounded(python[kind](), data, kind, what, limit)
    elif kind in _TOOLS:
        yield from _with_tool(data, kind, what, limit)
    else:
        raise UsageError(f"{what}: unsupported compression {kind!r}", "use a gzip, xz or zstd image")


def _too_big(what: str, limit: int) -> UsageError:
    return UsageError(f"{what}: decompresses to more than {limit >> 20} MiB, more than a kernel image holds",
                      "check the file (a compressed disk image? a decompression bomb?)")


def _bounded(d: _Decompressor, data: bytes, kind: str, what: str, limit: int) -> Iterator[bytes]:
    total = 0
    pending = data
    try:
        while not d.eof:
            chunk = d.decompress(pending, CHUNK)
            # zlib hands back what it did not consume (unconsumed_tail); lzma
            # and bz2 keep it, and give more output when fed nothing.
            tail = getattr(d, "unconsumed_tail", None)
            pending = b"" if tail is None else tail
            if not chunk and not pending and (tail is not None or getattr(d, "needs_input", True)):
                raise EOFError("compressed data ended before the end of the stream")
            total += len(chunk)
            if total > limit:
                raise _too_big(what, limit)
            if chunk:
                yield chunk
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as exc:
        raise UsageError(f"{what}: corrupt {kind} data ({exc})", "check the file is complete") from exc


def _with_tool(data: bytes, kind: str, what: str, limit: int) -> Iterator[bytes]:
    """The tool's output read as it comes, and the tool killed once it passes `limit`."""
    argv, package = _TOOLS[kind]
    if shutil.which(argv[0]) is None:
        raise InfraError(
            f"{what} is {kind}-compressed and {argv[0]} is not installed",
            f"apt-get install {package}",
        )
    with tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as errors:
        given.write(data)
        given.seek(0)
        proc = subprocess.Popen(argv, stdin=given, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        total = 0
        read_all = False
        try:
            while chunk := proc.stdout.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _too_big(what, limit)
                yield chunk
            read_all = True
        finally:  # past the bound, or the caller stopped reading: the tool is stopped
            proc.stdout.close()
            if not read_all:
                proc.kill()
            returncode = proc.wait()
        if returncode != 0:  # the tool ran, so the data is at fault, not the host
            errors.seek(max(0, os.fstat(errors.fileno()).st_size - 4096))
            tail = (errors.read().decode(errors="replace").strip().splitlines() or [""])[-1]
            raise UsageError(f"{what}: corrupt {kind} data ({tail[:200]})", "check the file")
