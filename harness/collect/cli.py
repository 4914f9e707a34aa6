"""`kharness slab`: slab figures from a saved /proc/slabinfo or alloc_traces, no guest needed.

    kharness slab whatif FILE|DIR --minalign 64 [--pagesize 4096] [--cell ID] [--rep N]
                         [--objects active|total] [--format table|json]
    kharness slab whatif FILE|DIR --gfp-dma-to-pages [...]    every dma-kmalloc object a page
    kharness slab whatif FILE|DIR --minalign 64 --by-caller [--at SNAPSHOT] [--top N]
    kharness slab callers RUN|CELL|FILE [--at SNAPSHOT] [--class 8 ...] [--top N]

The last two read the alloc_traces of a slub_debug U boot (`raw/<snapshot>/
alloc_traces/<cache>` in a result directory; FILE: one alloc_traces file, or a
folder of them named by cache, or a copy of /sys/kernel/debug/slab).

DIR is a result directory, a cell's directory (`cells/<id>/`) or one
repetition's (`cells/<id>/<rep>/`): the boot slabinfo it saved
(`raw/boot/slabinfo`) is used, and the guest's page size from
`raw/boot/pagesize`. A result directory is untrusted input: below the
directory given, no symlink is followed and every read is bounded.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.collect import alloc_traces, callers, gfpdma, slabinfo, snapshot, whatif
from harness.collect.text import MAX_INPUT, ParseError
from harness.errors import UsageError

BOOT_SLABINFO = ("raw", "boot", "slabinfo")
BOOT_PAGESIZE = ("raw", "boot", "pagesize")
MAX_LISTED = 8  # cell ids named in an error message
MAX_ENTRIES = 100_000  # directory entries looked at in one folder of a result directory
TRACES = "alloc_traces"
NO_TRACES_FIX = 'boot the cell with slub_debug: "U,kmalloc-*" (or pick another snapshot with --at)'
_SNAPSHOT_TAG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="slab_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser(
        "whatif",
        help="extra kmalloc memory if the minimum alignment were N",
        description="From a /proc/slabinfo taken at a small kmalloc minalign (e.g. 8 on "
        "arm64 6.5+), the extra memory if every kmalloc object were rounded up to "
        "minalign N, per size class, with the formula used. FILE may also be a result, "
        "cell or repetition directory: its boot slabinfo (raw/boot/slabinfo) is used.",
    )
    p.add_argument("file", type=Path, metavar="FILE|DIR",
                   help="a copy of /proc/slabinfo, or a result/cell/repetition directory")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--minalign", type=int, choices=whatif.ALIGNMENTS,
                      help="the minimum alignment to ask about, in bytes")
    what.add_argument("--gfp-dma-to-pages", action="store_true",
                      help="the memory if every dma-kmalloc object came from the page allocator "
                           "(a page, or the order that fits, per object)")
    p.add_argument("--by-caller", action="store_true",
                   help="with --minalign: which call sites would pay how many bytes, from the alloc_traces "
                        "of a slub_debug U boot (FILE: alloc_traces, or a result directory)")
    _traces_arguments(p, top=30)
    p.add_argument("--pagesize", type=_pagesize, default=None,
                   help="the guest's page size in bytes (default: the run's, else inferred from the slabs)")
    p.add_argument("--cell", metavar="ID",
                   help="with a result directory of several cells: which one (its id or slug)")
    p.add_argument("--rep", type=_rep, metavar="N",
                   help="with a result or cell directory: which repetition (default: the first with a slabinfo)")
    p.add_argument("--objects", choices=("active", "total"), default="active",
                   help="count objects in use (default) or every slot of the slabs")
    p.add_argument("--format", choices=("table", "json"), default="table")

    c = sub.add_parser(
        "callers",
        help="who holds each kmalloc size class (alloc_traces of a slub_debug U boot)",
        description="The call sites of every kmalloc size class, summed over the kmalloc families, "
        "from the alloc_traces of a boot with slub_debug=U,kmalloc-*: objects, the sizes asked for "
        "(from waste=), bytes and waste per caller function. RUN|CELL|FILE is a result, cell or "
        "repetition directory (its raw/<snapshot>/alloc_traces/), an alloc_traces file, or a folder of them.",
    )
    c.add_argument("file", type=Path, metavar="RUN|CELL|FILE",
                   help="a result, cell or repetition directory, an alloc_traces file or a folder of them")
    c.add_argument("--class", dest="classes", action="append", default=[], metavar="N",
                   help="only this size class, e.g. 8 or 1k (repeatable)")
    c.add_argument("--cell", metavar="ID", help="with a result directory of several cells: which one")
    c.add_argument("--rep", type=_rep, metavar="N", help="with a result or cell directory: which repetition")
    _traces_arguments(c, top=10)
    c.add_argument("--format", choices=("table", "json"), default="table")


def _traces_arguments(p: argparse.ArgumentParser, top: int) -> None:
    p.add_argument("--at", default="boot", type=_snapshot_tag, metavar="SNAPSHOT",
                   help="with a result directory: whose alloc_traces (boot, after-<workload>; default boot)")
    p.add_argument("--cache", metavar="NAME",
                   help="the kmalloc cache an alloc_traces FILE is of, when its path does not say")
    p.add_argument("--top", type=_top, default=top, metavar="N", help=f"callers listed (default {top})")


def main(args: argparse.Namespace) -> int:
    if args.slab_command == "callers":
        return _callers_main(args)
    if args.gfp_dma_to_pages or args.by_caller:
        return _whatif_more(args)
    source = find_source(args.file, getattr(args, "cell", None), getattr(args, "rep", None))
    info = parse_slabinfo(source.slabinfo, source.data)
    pagesize, how = args.pagesize, "given"
    if pagesize is None and source.pagesize is not None:
        pagesize, how = source.pagesize, "the run's raw/boot/pagesize"
    if pagesize is None:
        pagesize, how = slabinfo.infer_pagesize(info) or 4096, "inferred from the slabinfo"
    try:
        result = whatif.compute(info, args.minalign, pagesize, args.objects)
    except ValueError as exc:
        fix = "use a slabinfo taken at a minalign <= --minalign"
        raise UsageError(f"{source.slabinfo}: {exc}", fix) from exc
    if args.format == "json":
        doc = whatif.to_json(result, how)
        if source.slabinfo != args.file:
            doc["slabinfo"] = str(source.slabinfo)
        print(json.dumps(doc, indent=2))
    else:
        if source.slabinfo != args.file:
            print(f"slabinfo: {source.slabinfo}")
        print(whatif.table(result, how))
    return 0


def _pagesize_of(args: argparse.Namespace, source: Source, info: slabinfo.SlabInfo) -> tuple[int, str]:
    if args.pagesize is not None:
        return args.pagesize, "given"
    if source.pagesize is not None:
        return source.pagesize, "the run's raw/boot/pagesize"
    return slabinfo.infer_pagesize(info) or 4096, "inferred from the slabinfo"


def _whatif_more(args: argparse.Namespace) -> int:
    """--gfp-dma-to-pages on a slabinfo, or --minalign N --by-caller on alloc_traces."""
    if args.by_caller and args.gfp_dma_to_pages:
        raise UsageError("--by-caller goes with --minalign, not --gfp-dma-to-pages", "give --minalign N --by-caller")
    if args.gfp_dma_to_pages:
        source = find_source(args.file, args.cell, args.rep)
        info = parse_slabinfo(source.slabinfo, source.data)
        pagesize, how = _pagesize_of(args, source, info)
        w = gfpdma.compute(info, pagesize, args.objects)
        shown = f"slabinfo: {source.slabinfo}\n" if source.slabinfo != args.file else ""
        if args.format == "json":
            doc = gfpdma.to_json(w, how)
            doc["slabinfo"] = str(source.slabinfo)
            print(json.dumps(doc, indent=2))
        else:
            print(shown + gfpdma.table(w, how), end="")
        return 0
    found = find_traces(args.file, args.cell, args.rep, args.at, args.cache)
    result = callers.compute_whatif(found.classes, args.minalign)
    if args.format == "json":
        doc = callers.whatif_json(result, args.top, found.minalign)
        doc["alloc_traces"] = str(found.path)
        print(json.dumps(doc, indent=2))
    else:
        print(f"alloc_traces: {found.path}")
        print(callers.whatif_table(result, args.top, found.minalign), end="")
    return 0


def _callers_main(args: argparse.Namespace) -> int:
    found = find_traces(args.file, args.cell, args.rep, args.at, args.cache)
    classes = found.classes
    if args.classes:
        wanted = set(args.classes)
        known = {c.label for c in classes}
        unknown = sorted(wanted - known)
        if unknown:
            raise UsageError(f"{found.path}: no size class {', '.join(unknown)} in its alloc_traces",
                             f"give --class one of {', '.join(c.label for c in classes) or '(none)'}")
        classes = tuple(c for c in classes if c.label in wanted)
    if args.format == "json":
        doc = callers.callers_json(classes, args.top)
        doc["alloc_traces"] = str(found.path)
        print(json.dumps(doc, indent=2))
    else:
        print(f"alloc_traces: {found.path}")
        print(callers.callers_table(classes, args.top), end="")
    return 0


def parse_slabinfo(path: Path, data: bytes) -> slabinfo.SlabInfo:
    try:
        return slabinfo.parse(data)
    except ParseError as exc:
        raise UsageError(f"{path}: not a /proc/slabinfo ({exc})",
                         "give a copy of /proc/slabinfo read as root in the guest") from exc


# --- a result directory: untrusted, read without following symlinks ------------------


@dataclass(frozen=True)
class Source:
    slabinfo: Path  # what was read, for the messages and the output
    data: bytes
    pagesize: int | None = None  # the guest's, when the run saved it



def _must_exist(given: Path) -> None:
    if not given.exists() and not given.is_symlink():
        raise UsageError(f"cannot read {given}: it does not exist",
                         "give a result, cell or repetition directory, or an alloc_traces file")



def find_source(given: Path, cell: str | None = None, rep: int | None = None) -> Source:
    """The slabinfo FILE|DIR names: the file itself, or a directory's boot slabinfo."""
    if not given.is_dir():
        if cell is not None or rep is not None:
            raise UsageError(f"{given}: --cell and --rep need a result directory, not a file",
                             "leave them out, or give the result directory")
        return Source(given, _read_file(given))
    with _opendir(given) as top:
        path, fd = _rep_dir(given, top, cell, rep)
        try:
            data = _read_at(fd, path, BOOT_SLABINFO)
            try:
                size: int | None = snapshot.pagesize(_read_at(fd, path, BOOT_PAGESIZE).decode("ascii", "replace"))
            except (UsageError, ParseError):
                size = None  # not saved, or not readable: inferred from the slabs instead
        finally:
            if fd != top:
                os.close(fd)
    return Source(path.joinpath(*BOOT_SLABINFO), data, size)


def _rep_dir(given: Path, top: int, cell: str | None, rep: int | None) -> tuple[Path, int]:
    """(path, fd) of the repetition directory meant by `given` (a run, cell or repetition)."""
    names = _subdirs(top, given)
    if "raw" in names:  # a repetition's own directory
        if cell is not None or rep is not None:
            raise UsageError(f"{given}: a repetition's directory; --cell and --rep do not apply",
                             "leave them out, or give the result directory")
        return given, top
    if "cells" in names:  # a result directory
        with _opendir_at(top, "cells", given) as cells_fd:
            ids = sorted(_subdirs(cells_fd, given / "cells"))
            cell_id = _pick_cell(given, ids, cell)
            with _opendir_at(cells_fd, cell_id, given / "cells") as cell_fd:
                return _pick_rep(given / "cells" / cell_id, cell_fd, rep)
    reps = [n for n in names if n.isdigit()]
    if reps:  # a cell's directory
        if cell is not None:
            raise UsageError(f"{given}: a cell's directory; --cell does not apply", "leave it out")
        return _pick_rep(given, top, rep)
    raise UsageError(f"{given}: neither a slabinfo file nor a result, cell or repetition directory",
                     "give a copy of /proc/slabinfo, or a directory written by kharness run")


def _pick_cell(run_dir: Path, ids: list[str], cell: str | None) -> str:
    def listed() -> str:
        shown = ", ".join(ids[:MAX_LISTED]) + (f", ... ({len(ids)} in all)" if len(ids) > MAX_LISTED else "")
        return shown or "none"

    if cell is None:
        if len(ids) == 1:
            return ids[0]
        raise UsageError(f"{run_dir}: {len(ids)} cells, which one?", f"give --cell ID, one of: {listed()}")
    matches = [i for i in ids if i == cell] or [i for i in ids if i.rsplit("-", 1)[0] == cell]
    if len(matches) != 1:
        what = "no cell" if not matches else f"{len(matches)} cells"
        raise UsageError(f"{run_dir}: {what} named {cell!r}", f"give --cell ID, one of: {listed()}")
    return matches[0]


def _pick_rep(cell_dir: Path, cell_fd: int, rep: int | None) -> tuple[Path, int]:
    reps = sorted(int(n) for n in _subdirs(cell_fd, cell_dir) if n.isdigit() and len(n) < 7)
    if rep is not None:
        if rep not in reps:
            raise UsageError(f"{cell_dir}: no repetition {rep}",
                             f"give --rep one of {', '.join(map(str, reps)) or '(none)'}")
        reps = [rep]
    for r in reps:
        fd = _open_dir_fd(cell_fd, str(r), cell_dir)
        try:
            os.stat(BOOT_SLABINFO[0], dir_fd=fd, follow_symlinks=False)
            return cell_dir / str(r), fd
        except OSError:
            os.close(fd)
    raise UsageError(f"{cell_dir}: no repetition with a boot slabinfo (raw/boot/slabinfo)",
                     "did the cell boot? see its console.log")


def _subdirs(fd: int, where: Path) -> set[str]:
    """Names of the real directories (never symlinks) in the folder open at `fd`, bounded."""
    found: set[str] = set()
    with os.scandir(fd) as entries:
        for i, entry in enumerate(entries):
            if i >= MAX_ENTRIES:
                raise UsageError(f"{where}: more than {MAX_ENTRIES} entries", "not a kharness result directory")
            if entry.is_dir(follow_symlinks=False):
                found.add(entry.name)
    return found


@contextmanager
def _opendir(path: Path) -> Iterator[int]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise UsageError(f"{path}: cannot open ({exc.strerror})", "give a result directory") from exc
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _opendir_at(parent: int, name: str, where: Path) -> Iterator[int]:
    fd = _open_dir_fd(parent, name, where)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_dir_fd(parent: int, name: str, where: Path) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        raise _refused(where / name, exc) from exc


def _read_at(fd: int, base: Path, parts: tuple[str, ...]) -> bytes:
    """Read base/parts... below the directory open at `fd`: no symlink, a regular file, bounded."""
    opened: list[int] = []
    try:
        here = fd
        for i, name in enumerate(parts[:-1]):
            here = _open_dir_fd(here, name, base.joinpath(*parts[:i]))
            opened.append(here)
        path = base.joinpath(*parts)
        try:
            file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=here)
        except OSError as exc:
            raise _refused(path, exc) from exc
        with os.fdopen(file_fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UsageError(f"{path}: not a regular file", "a result directory holds plain files")
            return f.read(MAX_INPUT + 1)
    finally:
        for o in reversed(opened):
            os.close(o)


def _read_file(path: Path) -> bytes:
    """The FILE a person named (a symlink of theirs is fine); bounded, a regular file."""
    try:
        with path.open("rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UsageError(f"{path}: not a regular file", "give a copy of /proc/slabinfo")
            return f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror or exc})",
                         "give a copy of /proc/slabinfo read as root in the guest") from exc


def _refused(path: Path, exc: OSError) -> UsageError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return UsageError(f"{path}: a symlink or not a directory, not followed",
                          "a result directory is read without following symlinks; give the file itself")
    if exc.errno == errno.ENOENT:
        return UsageError(f"{path}: missing", "did the cell boot? see its console.log")
    return UsageError(f"{path}: cannot read ({exc.strerror})", "check the permissions")


# --- alloc_traces: a file, a folder of them, or a result directory's snapshot ----------------


@dataclass(frozen=True)
class Traces:
    path: Path  # what was read: a file, or the folder of the files
    files: dict[str, bytes]  # cache name -> alloc_traces text
    minalign: int | None = None  # of the snapshot's slabinfo, when there is one

    @property
    def classes(self) -> tuple[callers.SizeClass, ...]:
        parsed = {}
        for cache, data in sorted(self.files.items()):
            try:
                parsed[cache] = alloc_traces.parse(data, f"{self.path}: {cache}")
            except ParseError as exc:
                raise UsageError(f"not an alloc_traces file ({exc})",
                                 "give /sys/kernel/debug/slab/<cache>/alloc_traces as the guest printed it") from exc
        return callers.by_class(parsed)


def find_traces(given: Path, cell: str | None, rep: int | None, at: str, cache: str | None) -> Traces:
    """The alloc_traces FILE|DIR names (see the module's docstring)."""
    _must_exist(given)
    if not given.is_dir():
        if cell is not None or rep is not None:
            raise UsageError(f"{given}: --cell and --rep need a result directory, not a file",
                             "leave them out, or give the result directory")
        name = cache or next((n for n in (given.name, given.parent.name) if slabinfo.kmalloc_class(n)), None)
        if name is None or slabinfo.kmalloc_class(name) is None:
            raise UsageError(f"{given}: which kmalloc cache's alloc_traces is this?",
                             "give --cache kmalloc-8 (or name the file after its cache)")
        return Traces(given, {name: _read_file(given)})
    with _opendir(given) as top:
        names = _subdirs(top, given)
        if not ({"raw", "cells"} & names or any(n.isdigit() for n in names)):
            return Traces(given, _trace_folder(top, given))
        path, fd = _rep_dir(given, top, cell, rep)
        try:
            where = path / "raw" / at / TRACES
            try:
                with _opendir_at(fd, "raw", path) as raw, _opendir_at(raw, at, path / "raw") as snap:
                    files = _trace_folder(_open_dir_fd(snap, TRACES, where.parent), where, close=True)
                    minalign = _minalign_at(snap)
            except UsageError as exc:
                raise UsageError(f"{where}: no alloc_traces ({exc.problem})", NO_TRACES_FIX) from exc
        finally:
            if fd != top:
                os.close(fd)
    return Traces(where, files, minalign)


def _trace_folder(fd: int, where: Path, close: bool = False) -> dict[str, bytes]:
    """Cache name -> alloc_traces of a folder: files named by cache, or <cache>/alloc_traces."""
    files: dict[str, bytes] = {}
    try:
        with os.scandir(fd) as entries:
            listed = [(e.name, e.is_dir(follow_symlinks=False), e.is_file(follow_symlinks=False))
                      for _, e in zip(range(MAX_ENTRIES), entries, strict=False)]
        for name, is_dir, is_file in sorted(listed):
            if slabinfo.kmalloc_class(name) is None:
                continue
            if is_file:
                files[name] = _read_at(fd, where, (name,))
            elif is_dir:
                try:
                    files[name] = _read_at(fd, where, (name, TRACES))
                except UsageError:
                    continue  # a cache folder without alloc_traces (not U-debugged)
    finally:
        if close:
            os.close(fd)
    if not files:
        raise UsageError(f"{where}: no kmalloc cache's alloc_traces in it",
                         "give a folder of alloc_traces files named by cache, or a result directory")
    return files


def _minalign_at(snap_fd: int) -> int | None:
    try:
        return slabinfo.minalign(slabinfo.parse(_read_at(snap_fd, Path("."), ("slabinfo",))))
    except (UsageError, ParseError):
        return None


def _snapshot_tag(text: str) -> str:
    if not _SNAPSHOT_TAG.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a snapshot name (boot, after-<workload>)")
    return text


def _top(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of callers (1 or more)")
    return int(text)


def _pagesize(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes") from None
    if value < 1024 or value > 1 << 20 or value & (value - 1):
        raise argparse.ArgumentTypeError(f"{value} is not a page size (4096, 16384, 65536)")
    return value


def _rep(text: str) -> int:
    if not text.isdigit() or len(text) > 6:
        raise argparse.ArgumentTypeError(f"{text!r} is not a repetition number (0, 1, ...)")
    return int(text)
