"""The per-kernel modules layer: wanted modules, their dependencies, a load order.

The guest has no modprobe and no depmod data to rely on: the host resolves
dependencies, decompresses the modules (the guest's busybox insmod may not
read .ko.xz) and writes `/etc/kharness/modules`, the list the guest's init
sources and loads in order with insmod.

Dependencies come from `modules.dep` when the tree has one. Debian's kernel
packages do not ship it (their postinst runs depmod), so otherwise they are
read from each module's own `.modinfo` `depends=` field, which is what
modpost wrote from the same symbol information depmod would use. Soft
dependencies are not followed: name those modules explicitly.

Modules go to /usr/lib/modules/<release>/..., not /lib/modules: the base
layer's /lib may be a merged-/usr symlink, and a later cpio archive with a
directory named `lib` would make the kernel replace that symlink with an
empty directory (init/initramfs.c clean_path), breaking the dynamic loader.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from harness import cache
from harness.atomic import write_json
from harness.errors import InfraError, UsageError
from harness.initramfs import cpio
from harness.kernel import compression

LAYOUT = 3  # bump when the layer's layout changes, so old cache entries are not reused
GUEST_MODULES = "usr/lib/modules"
# The load list, a shell file the guest's init sources: "early PATH" for each
# module to load before READY (what SSH needs), then "late PATH" for each to
# load after it, while the host connects. Sourced, because busybox's `read`
# takes a file a byte at a time: reading a list of paths line by line cost
# about 30 ms under TCG, sourcing it 2 ms.
LIST_PATH = "etc/kharness/modules"
LIST_HEADER = "# kharness: modules in load order; sourced by /init (early: before READY, late: after)\n"
# What a guest path may hold: it is a word in that file.
_GUEST_PATH = re.compile(r"/[A-Za-z0-9._+/-]+")
LAYER_NAME = "modules.cpio"


_SUFFIXES = (".ko.xz", ".ko.zst", ".ko.gz", ".ko")
DepsOf = Callable[[str], list[str]]  # module name -> names it needs loaded first


@dataclass(frozen=True)
class ModuleFile:
    """One module to load: its name, where it is in the tree, where it goes in the guest."""

    name: str
    source: Path  # possibly compressed, in the kernel's modules tree
    guest_path: str  # decompressed, absolute in the guest


@dataclass(frozen=True)
class Plan:
    """The load order (dependencies first) and the wanted modules that are built in.

    The first `ready_at` of `order` load before init says READY: the early
    modules and what they need (all of them when no early ones were named).
    """

    release: str
    order: tuple[ModuleFile, ...]
    builtin: tuple[str, ...]
    ready_at: int = 0


@dataclass(frozen=True)
class ModulesLayer:
    path: Path  # the cpio archive
    plan: Plan


def normalize(name: str) -> str:
    """Module names treat - and _ alike; the kernel uses _."""
    return name.strip().replace("-", "_")


def module_name(path: str) -> str:
    """`kernel/drivers/net/virtio_net.ko.xz` -> `virtio_net`."""
    base = path.rsplit("/", 1)[-1]
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            return normalize(base[: -len(suffix)])
    raise UsageError(f"{path} is not a kernel module", "modules end in .ko[.xz|.zst|.gz]")


def plan(modules_dir: Path, wanted: Iterable[str], early: Iterable[str] = ()) -> Plan:
    """Resolve wanted modules into a load order; UsageError for unknown ones.

    `early` (wanted too) load first, in the order given, with what they
    need: the SSH NIC's driver, and an IOMMU's before any device behind it.
    """
    release = modules_dir.name
    index = _index(modules_dir)
    builtin = _builtin(modules_dir)
    deps = _deps_reader(modules_dir, index)
    order: list[str] = []
    skipped: list[str] = []
    first = list(dict.fromkeys(normalize(e) for e in early))
    rest = sorted({normalize(w) for w in wanted} - set(first))
    ready_at = 0
    for i, name in enumerate((*first, *rest)):
        if name in builtin:
            skipped.append(name)
        elif name in index:
            _visit(name, deps, order, ())
        else:
            raise UsageError(
                f"module {name} is neither built into nor shipped with kernel {release}",
                f"check the name, or use a kernel that has it ({modules_dir})",
            )
        if i < len(first):
            ready_at = len(order)
    files = tuple(
        ModuleFile(n, modules_dir / index[n], f"/{GUEST_MODULES}/{release}/{_plain(index[n])}")
        for n in order
    )
    return Plan(release=release, order=files, builtin=tuple(sorted(skipped)),
                ready_at=ready_at if first else len(order))


def _visit(name: str, deps: DepsOf, order: list[str], stack: tuple[str, ...]) -> None:
    """Depth-first, dependencies before dependents, each module once."""
    if name in order:
        return
    if name in stack:
        loop = " -> ".join((*stack, name))
        raise UsageError(f"module dependency loop: {loop}", "fix the modules tree")
    for dep in sorted(deps(name)):
        _visit(dep, deps, order, (*stack, name))
    order.append(name)


def _index(modules_dir: Path) -> dict[str, str]:
    """Module name -> path relative to the modules dir, for every module shipped."""
    if not (modules_dir / "kernel").is_dir():
        raise UsageError(f"{modules_dir} has no kernel/ directory", "give lib/modules/<release>")
    # Every boot plans its modules layer: strings, not a Path per file (a
    # Debian tree has about 4000 modules; Paths made this 50 ms a boot).
    index: dict[str, str] = {}
    top = os.fspath(modules_dir)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        prefix = os.path.relpath(dirpath, top).replace(os.sep, "/") + "/"
        prefix = "" if prefix == "./" else prefix
        for f in sorted(filenames):
            if f.endswith(_SUFFIXES):
                index.setdefault(module_name(f), prefix + f)
    return index


def _builtin(modules_dir: Path) -> set[str]:
    path = modules_dir / "modules.builtin"
    if not path.is_file():
        return set()
    return {module_name(line) for line in path.read_text().split() if line}


def _deps_reader(modules_dir: Path, index: dict[str, str]) -> DepsOf:
    """A function giving a module's direct (or transitive) hard dependencies."""
    dep_file = modules_dir / "modules.dep"
    if dep_file.is_file():
        table = _parse_modules_dep(dep_file.read_text())
        return lambda name: table.get(name, [])

    def from_modinfo(name: str) -> list[str]:
        info = modinfo(decompress(modules_dir / index[name]))
        return [normalize(d) for d in info.get("depends", "").split(",") if d]

    return from_modinfo


def _parse_modules_dep(text: str) -> dict[str, list[str]]:
    """`kernel/a.ko.xz: kernel/b.ko.xz kernel/c.ko.xz` -> {"a": ["b", "c"]}."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        mod, _, rest = line.partition(":")
        table[module_name(mod.strip())] = [module_name(d) for d in rest.split()]
    return table


def modinfo(ko: bytes) -> dict[str, str]:
    """The `key=value` strings of a module's .modinfo section (last value wins)."""
    from elftools.common.exceptions import ELFError  # where used: see harness/initramfs/elf.py
    from elftools.elf.elffile import ELFFile

    try:
        section = ELFFile(BytesIO(ko)).get_section_by_name(".modinfo")
        data = b"" if section is None else section.data()
    except (ELFError, ValueError, struct.error) as exc:  # a file named .ko that is no module
        raise UsageError(f"a module is not an ELF object ({exc})", "check the modules tree") from exc
    fields = (s.decode(errors="replace") for s in data.split(b"\0") if b"=" in s)
    return dict(f.split("=", 1) for f in fields)


MAX_MODULE_BYTES = 128 << 20  # decompressed; the largest in-tree modules (amdgpu) are ~30 MiB


def decompress(path: Path) -> bytes:
    """A module's ELF bytes, whatever the compression Debian or the user chose.

    Bounded (MAX_MODULE_BYTES, compressed or not): a modules tree or tarball
    comes from anywhere, and a small .ko.xz can expand to gigabytes.
    """
    if path.stat().st_size > MAX_MODULE_BYTES:
        raise UsageError(f"{path}: more than {MAX_MODULE_BYTES >> 20} MiB, not a kernel module",
                         "check the modules tree")
    data = path.read_bytes()
    name = path.name
    if name.endswith(".xz"):
        return compression.decompress(data, "xz", str(path), MAX_MODULE_BYTES)
    if name.endswith(".gz"):
        return compression.decompress(data, "gzip", str(path), MAX_MODULE_BYTES)
    if name.endswith(".zst"):
        return _unzstd(data, path)
    return data


def _unzstd(data: bytes, path: Path) -> bytes:
    try:
        import zstandard  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise InfraError(f"{path} is zstd-compressed and zstandard is missing",
                         "pip install zstandard into the venv") from exc
    chunks: list[bytes] = []
    total = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
            while chunk := reader.read(compression.CHUNK):
                total += len(chunk)
                if total > MAX_MODULE_BYTES:
                    raise UsageError(f"{path}: decompresses to more than {MAX_MODULE_BYTES >> 20} MiB, "
                                     "not a kernel module", "check the modules tree")
                chunks.append(chunk)
    except zstandard.ZstdError as exc:
        raise UsageError(f"{path}: corrupt zstd data ({exc})", "check the file is complete") from exc
    return b"".join(chunks)


def _plain(rel: str) -> str:
    """The path of a module once decompressed."""
    for suffix in (".xz", ".zst", ".gz"):
        if rel.endswith(".ko" + suffix):
            return rel[: -len(suffix)]
    return rel


def layer_members(p: Plan) -> list[cpio.Member]:
    """The decompressed modules plus /etc/kharness/modules, in load order."""
    for m in p.order:
        if not _GUEST_PATH.fullmatch(m.guest_path):
            raise UsageError(f"module path {m.guest_path!r} has a character the guest's init cannot take",
                             "name the kernel release and modules with letters, digits and . _ + - only")
    members = [cpio.file(m.guest_path, decompress(m.source)) for m in p.order]
    listing = "".join(f"{'early' if i < p.ready_at else 'late'} {m.guest_path}\n" for i, m in enumerate(p.order))
    members.append(cpio.file(LIST_PATH, (LIST_HEADER + listing).encode()))
    return members


def build_modules_layer(
    modules_dir: Path, wanted: Iterable[str], root: Path | None = None, early: Iterable[str] = ()
) -> ModulesLayer:
    """The cached modules layer for this kernel tree and module set.

    Keyed by release and the content of the modules actually loaded (and
    where READY falls), so two module lists that resolve to the same files
    share one entry.
    """
    p = plan(modules_dir, wanted, early)
    hashes = [(m.name, cache.sha256_file(m.source)) for m in p.order]
    key = cache.key_of("modules", LAYOUT, p.release, hashes, p.ready_at)

    def build(tmp: Path) -> None:
        cpio.write(layer_members(p), tmp / LAYER_NAME)
        order = [{"name": m.name, "guest_path": m.guest_path, "sha256": h} for m, (_, h)
                 in zip(p.order, hashes, strict=True)]
        write_json(tmp / "manifest.json",
                   {"release": p.release, "builtin": list(p.builtin), "order": order,
                    "ready_at": p.ready_at})

    entry = cache.entry("initramfs-modules", key, build, root=root)
    return ModulesLayer(path=entry / LAYER_NAME, plan=p)
