"""A deterministic newc ("070701") cpio writer, and a reader for checking it.

The kernel unpacks newc archives into its rootfs at boot, and accepts several
archives concatenated (each optionally compressed): that is how the layers
(base, modules, per-run) become one initramfs without rebuilding the base.

Determinism is the point: the same members give the same bytes on every
host, so layers can be cached and compared by hash. Hence mtime 0, uid/gid 0,
inode numbers by position, members sorted with every directory before what
it contains, and gzip (if asked for) with mtime 0 and no file name.
Device nodes are never written: the guest's init mounts devtmpfs.

The reader takes any file (`kharness rootfs ls` of an initrd from
anywhere): every header field must be 8 hex digits, every size must fit in
what is left, gzip members are decompressed within a bound on the whole
archive (MAX_UNPACKED) and hold plain cpio only, and the entries are
bounded in number. Anything else is one CpioError (a ValueError) saying where.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from harness.atomic import atomic_open
from harness.errors import UsageError
from harness.kernel import compression

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
HEADER_LEN = 110
Kind = Literal["dir", "file", "symlink"]
_TYPE_BITS: dict[Kind, int] = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK}
_COPY_BLOCK = 1 << 20
MAX_UNPACKED = 512 << 20  # bytes of gzip'd layers read back; the base layer with fio is 90 MB
MAX_ENTRIES = 1 << 20
MAX_NAME = 4096  # PATH_MAX, as the kernel's unpacker allows
_FIELD = re.compile(rb"[0-9A-Fa-f]{8}")


class CpioError(ValueError):
    """The bytes are not newc cpio (optionally gzip'd layers), or too much of it; says where."""


class _Sink(Protocol):
    """A raw file or a GzipFile: all the writer needs is write()."""

    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class Member:
    """One archive entry. `path` is relative to the guest's / ("usr/bin/fio").

    A file's content is `data` or, to avoid holding big files in memory,
    the host file `source`. A symlink's target is `target`. `mode` holds
    only permission bits; the type comes from `kind`.
    """

    path: str
    kind: Kind
    mode: int
    data: bytes = b""
    source: Path | None = None
    target: str = ""

    def size(self) -> int:
        if self.kind == "symlink":
            return len(self.target.encode())
        if self.kind == "file" and self.source is not None:
            return self.source.stat().st_size
        return len(self.data)


def directory(path: str, mode: int = 0o755) -> Member:
    return Member(path=_clean(path), kind="dir", mode=mode)


def file(path: str, data: bytes = b"", mode: int = 0o644, source: Path | None = None) -> Member:
    return Member(path=_clean(path), kind="file", mode=mode, data=data, source=source)


def symlink(path: str, target: str) -> Member:
    return Member(path=_clean(path), kind="symlink", mode=0o777, target=target)


def from_tree(root: Path) -> list[Member]:
    """Members for everything under `root` (a staged guest tree), not `root` itself.

    Permission bits are kept (0600 keys stay 0600); owners and times are not.
    Anything but directories, regular files and symlinks is refused, so a
    stray device node or socket in a staging tree is caught here.
    """
    members: list[Member] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            host = Path(dirpath) / name
            members.append(_member_of(host, host.relative_to(root).as_posix()))
    return members


def _member_of(host: Path, rel: str) -> Member:
    st = host.lstat()
    perm = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return symlink(rel, os.readlink(host))
    if stat.S_ISDIR(st.st_mode):
        return directory(rel, perm)
    if stat.S_ISREG(st.st_mode):
        return file(rel, mode=perm, source=host)
    raise UsageError(f"{host}: not a file, directory or symlink", "remove it from the staging tree")


def with_parents(members: Iterable[Member], mode: int = 0o755) -> list[Member]:
    """Add a directory member for every missing parent, so unpacking never fails."""
    by_path: dict[str, Member] = {}
    for m in members:
        if m.path in by_path:
            raise UsageError(f"cpio member {m.path!r} given twice", "give each path once")
        by_path[m.path] = m
    for path in list(by_path):
        for parent in PurePosixPath(path).parents:
            key = parent.as_posix()
            if key != "." and key not in by_path:
                by_path[key] = directory(key, mode)
    return list(by_path.values())


def ordered(members: Iterable[Member]) -> list[Member]:
    """Sort by path components: a directory sorts before everything inside it."""
    return sorted(members, key=lambda m: PurePosixPath(m.path).parts)


def write(members: Iterable[Member], out: Path, compress: bool = False) -> Path:
    """Write members (parents added, sorted) as one newc archive, atomically."""
    items = ordered(with_parents(members))
    with atomic_open(out, "wb") as raw:
        if compress:
            # filename="" and mtime=0 keep the gzip header free of host details.
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                _write_members(items, gz)
        else:
            _write_members(items, raw)
    return out


def _write_members(items: list[Member], f: _Sink) -> None:
    for ino, m in enumerate(items, start=1):
        nlink = 2 if m.kind == "dir" else 1
        mode = _TYPE_BITS[m.kind] | m.mode
        f.write(_header(m.path, ino=ino, mode=mode, nlink=nlink, size=m.size()))
        _write_body(f, m)
    f.write(_header(TRAILER, ino=0, mode=0, nlink=1, size=0))


def _header(name: str, *, ino: int, mode: int, nlink: int, size: int) -> bytes:
    encoded = name.encode() + b"\0"
    # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    fields = (ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(encoded), 0)
    head = MAGIC + b"".join(b"%08X" % v for v in fields) + encoded
    return head + b"\0" * _pad(len(head))


def _write_body(f: _Sink, m: Member) -> None:
    size = m.size()
    if m.kind == "symlink":
        f.write(m.target.encode())
    elif m.source is not None:
        with m.source.open("rb") as src:
            copied = 0
            for block in iter(lambda: src.read(_COPY_BLOCK), b""):
                f.write(block)
                copied += len(block)
        if copied != size:
            raise UsageError(f"{m.source} changed while archiving", "leave staging trees alone")
    else:
        f.write(m.data)
    f.write(b"\0" * _pad(size))


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _clean(path: str) -> str:
    """Normalise to a relative posix path; refuse ones that could leave the root."""
    parts = PurePosixPath(path.lstrip("/")).parts
    if not parts or any(p in ("..", ".") for p in parts):
        raise UsageError(f"bad archive path {path!r}", "use a path below / without . or ..")
    return "/".join(parts)


@dataclass(frozen=True)
class Entry:
    """An entry as read back from an archive (for tests and `rootfs` checks)."""

    name: str
    ino: int
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    data: bytes

    @property
    def kind(self) -> str:
        if stat.S_ISDIR(self.mode):
            return "dir"
        if stat.S_ISLNK(self.mode):
            return "symlink"
        return "file" if stat.S_ISREG(self.mode) else "other"


def read(blob: bytes, limit: int = MAX_UNPACKED) -> list[Entry]:
    """Parse concatenated (optionally gzip-compressed) newc archives, trailers dropped.

    CpioError for anything else: a bad header, a size beyond the data, a
    compressed member within a compressed member, more than `limit` bytes
    decompressed or MAX_ENTRIES entries.
    """
    entries: list[Entry] = []
    pos, unpacked = 0, 0
    while pos < len(blob):
        if blob.startswith(b"\x1f\x8b", pos):
            # One gzip member per layer: decompress it and continue after it.
            try:
                data, consumed = compression.gzip_member(blob[pos:], f"gzip member at offset {pos}",
                                                         limit - unpacked)
            except UsageError as exc:
                raise CpioError(str(exc)) from exc
            unpacked += len(data)
            _members(data, entries, f"gzip member at offset {pos}", plain=True)
            pos += consumed
            continue
        pos = _members(blob, entries, "archive", plain=False, start=pos)
    return entries


def _members(blob: bytes, entries: list[Entry], what: str, *, plain: bool, start: int = 0) -> int:
    """Read entries from `start` up to a gzip member (or the end, if `plain`); returns where it stopped."""
    pos = start
    while pos < len(blob):
        if blob[pos] == 0:  # padding between archives, as the kernel skips it
            pos += 1
            continue
        if blob.startswith(b"\x1f\x8b", pos):
            if plain:
                raise CpioError(f"{what}: a compressed member inside a compressed one, at offset {pos}")
            return pos
        entry, pos = _read_one(blob, pos, what)
        if entry is not None:
            if len(entries) >= MAX_ENTRIES:
                raise CpioError(f"{what}: more than {MAX_ENTRIES} entries")
            entries.append(entry)
    return pos


def _read_one(blob: bytes, pos: int, what: str) -> tuple[Entry | None, int]:
    where = f"{what} offset {pos}"
    if blob[pos:pos + 6] != MAGIC:
        raise CpioError(f"{where}: no newc header")
    if pos + HEADER_LEN > len(blob):
        raise CpioError(f"{where}: header cut off")
    raw = [blob[pos + 6 + 8 * i:pos + 14 + 8 * i] for i in range(13)]
    if not all(_FIELD.fullmatch(f) for f in raw):
        raise CpioError(f"{where}: a header field is not 8 hex digits")
    v = [int(f, 16) for f in raw]
    namesize, filesize = v[11], v[6]
    if not 1 <= namesize <= MAX_NAME:
        raise CpioError(f"{where}: name size {namesize}, not 1 to {MAX_NAME}")
    name_end = pos + HEADER_LEN + namesize
    data_start = name_end + _pad(HEADER_LEN + namesize)
    data_end = data_start + filesize
    if data_end > len(blob):
        raise CpioError(f"{where}: entry of {filesize} bytes cut off at {len(blob)}")
    if blob[name_end - 1] != 0:
        raise CpioError(f"{where}: name not NUL-terminated")
    name = blob[pos + HEADER_LEN:name_end - 1].decode("utf-8", errors="backslashreplace")
    nxt = data_end + _pad(filesize)
    if name == TRAILER:
        return None, nxt
    return Entry(name, v[0], v[1], v[2], v[3], v[4], v[5], blob[data_start:data_end]), nxt
