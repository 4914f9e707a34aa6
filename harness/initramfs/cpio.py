"""A deterministic newc ("070701") cpio writer, and a reader for checking it.

The kernel unpacks newc archives into its rootfs at boot, and accepts several
archives concatenated (each optionally compressed): that is how the layers
(base, modules, per-run) become one initramfs without rebuilding the base.

Determinism is the point: the same members give the same bytes on every
host, so layers can be cached and compared by hash. Hence mtime 0, uid/gid 0,
inode numbers by position, members sorted with every directory before what
it contains, and gzip (if asked for) with mtime 0 and no file name.
Device nodes are never written: the guest's init mounts devtmpfs.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from harness.atomic import atomic_open
from harness.errors import UsageError

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
HEADER_LEN = 110
Kind = Literal["dir", "file", "symlink"]
_TYPE_BITS: dict[Kind, int] = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK}
_COPY_BLOCK = 1 << 20


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


def read(blob: bytes) -> list[Entry]:
    """Parse concatenated (optionally gzip-compressed) newc archives, trailers dropped."""
    entries: list[Entry] = []
    pos = 0
    while pos < len(blob):
        if blob[pos:pos + 2] == b"\x1f\x8b":
            # One gzip member per layer: decompress it and continue after it.
            d = _gzip_member(blob[pos:])
            entries.extend(read(d.data))
            pos += d.consumed
            continue
        if blob[pos] == 0:  # padding between archives, as the kernel skips it
            pos += 1
            continue
        entry, pos = _read_one(blob, pos)
        if entry is not None:
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class _Decompressed:
    data: bytes
    consumed: int


def _gzip_member(blob: bytes) -> _Decompressed:
    d = zlib.decompressobj(wbits=31)
    data = d.decompress(blob)
    return _Decompressed(data, len(blob) - len(d.unused_data))


def _read_one(blob: bytes, pos: int) -> tuple[Entry | None, int]:
    if blob[pos:pos + 6] != MAGIC:
        raise ValueError(f"no newc header at offset {pos}")
    v = [int(blob[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
    name_end = pos + HEADER_LEN + v[11]
    name = blob[pos + HEADER_LEN:name_end - 1].decode()
    data_start = name_end + _pad(HEADER_LEN + v[11])
    data_end = data_start + v[6]
    nxt = data_end + _pad(v[6])
    if name == TRAILER:
        return None, nxt
    return Entry(name, v[0], v[1], v[2], v[3], v[4], v[5], blob[data_start:data_end]), nxt
