"""The shared-library closure of guest programs, read from ELF headers.

The guest userland is cut from an extracted Debian tree of a foreign
architecture, so nothing in it may be run on the host (no ldd): the
dependencies are read with pyelftools instead. For each program this follows
PT_INTERP and DT_NEEDED recursively, looking libraries up the way the
dynamic loader does (DT_RPATH or DT_RUNPATH, then the multiarch and plain
library directories), and keeps every symlink met on the way so that the
names the loader asks for exist in the guest.

Symlinks are followed inside the tree only: an absolute target means the
tree's root, and `..` stops at it, as in a chroot. A Debian tree may or may
not be merged-/usr (bookworm's extract has a real /lib, trixie's has only
/usr/lib); a missing top-level `bin`, `sbin`, `lib` or `lib64` is treated as
the merged-/usr symlink into `usr/`, and that symlink is kept in the result.
Of the loader's dynamic string tokens only $ORIGIN is expanded; Debian's
programs use no $LIB or $PLATFORM.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal

from harness import arches
from harness.errors import UsageError

if TYPE_CHECKING:
    from elftools.elf.dynamic import DynamicTag
    from elftools.elf.elffile import ELFFile

# pyelftools is imported where an ELF file is read: importing it costs about
# 50 ms of every command's start, and a run whose layers are cached reads none.

MERGED_USR = ("bin", "sbin", "lib", "lib64")
MAX_SYMLINKS = 40  # as the kernel's path walk


@dataclass(frozen=True)
class Node:
    """A path the guest needs: a file (copied from `source`) or a symlink."""

    path: str  # relative to the guest's / ("usr/lib/aarch64-linux-gnu/libc.so.6")
    kind: Literal["file", "symlink"]
    source: Path | None = None
    target: str = ""


@dataclass(frozen=True)
class ElfInfo:
    """What the loader reads from one object."""

    machine: str
    elfclass: int
    interp: str | None
    needed: tuple[str, ...]
    search: tuple[str, ...]  # DT_RUNPATH, or DT_RPATH when there is no RUNPATH


def closure(root: Path, programs: Iterable[str]) -> list[Node]:
    """Nodes for `programs` (guest paths) plus everything they load, sorted by path.

    UsageError names a program or library that is not in the tree, and who
    needs it.
    """
    found: dict[str, Node] = {}
    todo: list[tuple[Node, str]] = []
    for prog in programs:
        chain = lookup(root, prog)
        if chain is None:
            raise UsageError(f"program {prog} not found in {root}", "check the package list")
        _add(found, chain, todo, prog)
    machine: tuple[str, int] | None = None
    while todo:
        node, origin = todo.pop()
        assert node.source is not None
        info = read_elf(node.source)
        if info is None:
            continue  # a script or data file: nothing to load
        machine = machine or (info.machine, info.elfclass)
        if (info.machine, info.elfclass) != machine:
            raise UsageError(f"{origin} is {info.machine}, others are {machine[0]}", "mixed arches")
        for name in _wanted(info):
            chain = _find_library(root, name, info, node.path)
            if chain is None:
                raise UsageError(f"library {name} needed by {origin} not found in {root}",
                                 "add the package that ships it")
            _add(found, chain, todo, name)
    return sorted(found.values(), key=lambda n: n.path)


def _add(found: dict[str, Node], chain: list[Node], todo: list[tuple[Node, str]], why: str) -> None:
    for node in chain:
        if node.path not in found:
            found[node.path] = node
            if node.kind == "file":
                todo.append((node, why))


def _wanted(info: ElfInfo) -> tuple[str, ...]:
    return ((info.interp,) if info.interp else ()) + info.needed


def read_elf(path: Path) -> ElfInfo | None:
    """The loader-relevant fields of an ELF file; None if it is not ELF."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
        f.seek(0)
        try:
            elf = ELFFile(f)
            return _info(elf)
        except ELFError as exc:
            raise UsageError(f"{path}: broken ELF file ({exc})", "re-extract the tree") from exc


def _info(elf: ELFFile) -> ElfInfo:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.segments import InterpSegment

    interp = None
    for seg in elf.iter_segments():
        if isinstance(seg, InterpSegment):
            interp = str(seg.get_interp_name())
    tags: dict[str, list[str]] = {"DT_NEEDED": [], "DT_RUNPATH": [], "DT_RPATH": []}
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                if tag.entry.d_tag in tags:
                    tags[tag.entry.d_tag].append(_tag_string(tag))
    needed = tags["DT_NEEDED"]
    runpath = [p for v in tags["DT_RUNPATH"] for p in v.split(":")]
    rpath = [p for v in tags["DT_RPATH"] for p in v.split(":")]
    return ElfInfo(
        machine=str(elf["e_machine"]), elfclass=int(elf.elfclass), interp=interp,
        needed=tuple(needed), search=tuple(runpath or rpath),
    )


def _tag_string(tag: DynamicTag) -> str:
    """pyelftools puts a string tag's value in an attribute named after it."""
    attr = str(tag.entry.d_tag).removeprefix("DT_").lower()  # DT_NEEDED -> needed
    return str(getattr(tag, attr))


def _find_library(root: Path, name: str, info: ElfInfo, obj: str) -> list[Node] | None:
    """Look `name` up as ld.so would for the object at guest path `obj`."""
    if "/" in name:
        return lookup(root, name)
    origin = PurePosixPath("/", obj).parent.as_posix()
    for d in (*(p.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for p in info.search),
              *default_dirs(info.machine)):
        chain = lookup(root, f"{d}/{name}")
        if chain is not None and _compatible(chain[-1], info):
            return chain
    return None


def default_dirs(machine: str) -> tuple[str, ...]:
    preset = arches.by_elf_machine(machine)
    triplet = preset.triplet if preset else None
    multiarch = (f"/lib/{triplet}", f"/usr/lib/{triplet}") if triplet else ()
    return (*multiarch, "/lib", "/usr/lib")


def _compatible(node: Node, info: ElfInfo) -> bool:
    """ld.so skips a library of another machine or class and keeps searching."""
    assert node.source is not None
    other = read_elf(node.source)
    return other is not None and (other.machine, other.elfclass) == (info.machine, info.elfclass)


def lookup(root: Path, guest_path: str) -> list[Node] | None:
    """Resolve a guest path inside `root`: the symlinks passed, then the file.

    None when it does not exist or is not a regular file.
    """
    chain: list[Node] = []
    real: list[str] = []  # components of the resolved directory so far
    queue = list(PurePosixPath(guest_path).parts)
    hops = 0
    while queue:
        comp = queue.pop(0)
        if comp in ("/", ".", ""):
            real = [] if comp == "/" else real
            continue
        if comp == "..":
            real = real[:-1]
            continue
        rel = "/".join((*real, comp))
        host = root / rel
        link = _link_target(root, real, comp)
        if link is None and not host.exists():
            return None
        if link is not None:
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            chain.append(Node(rel, "symlink", target=link))
            queue[:0] = PurePosixPath(link).parts
            continue
        real.append(comp)
    host = root.joinpath(*real)
    if not real or not host.is_file() or host.is_symlink():
        return None
    chain.append(Node("/".join(real), "file", source=host))
    return chain


def _link_target(root: Path, real: list[str], comp: str) -> str | None:
    """The target if root/real/comp is a symlink, real or merged-/usr implied."""
    host = root.joinpath(*real, comp)
    if host.is_symlink():
        return str(host.readlink())
    if not real and comp in MERGED_USR and not host.exists() and (root / "usr" / comp).is_dir():
        return f"usr/{comp}"
    return None
