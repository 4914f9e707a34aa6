"""A non-coherent arm64 `virt` machine: QEMU's device tree minus PCIe's dma-coherent.

QEMU's `virt` board marks its PCIe host bridge `dma-coherent`, so no PCI
device ever takes the non-coherent DMA path, where arm64 6.5+ bounces small
unaligned kmalloc buffers through swiotlb. To get that path, the board's own
tree is dumped with the cell's machine options (`-M virt,dumpdtb=F` and the
same CPU, RAM and devices), `dma-coherent` is removed from the `pcie@` node,
and the guest boots with `-dtb`. QEMU does not model caches, so data stays
correct: only the kernel's choice of DMA path changes.

The edit is done on the flattened tree itself (no dtc needed): the property
is overwritten with FDT_NOP tokens, which every FDT reader skips, so no
offset in the blob moves. The result is cached by the inputs (QEMU version
and the dump's arguments); cell.json records the sha256 of both trees.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from harness import cache
from harness.arches import preset, presets
from harness.atomic import write_bytes, write_json
from harness.errors import CommandError, InfraError, UsageError
from harness.machine.qemu import MachineSpec, dumpdtb_argv

LAYOUT = 1  # bump when what the cache entry holds changes
MAGIC = 0xD00DFEED
HEADER = struct.Struct(">10I")  # magic .. size_dt_struct (version 17 header)
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9
MAX_BLOB = 16 << 20
MAX_DEPTH = 64
BRIDGE_PREFIX = "pcie@"
COHERENT = "dma-coherent"


class FdtError(ValueError):
    """The blob is not a flattened device tree this module can edit."""


@dataclass(frozen=True)
class Tree:
    """A device tree ready to boot, and what it came from."""

    path: Path  # the edited tree (-dtb)
    dumped_sha256: str  # of the tree QEMU dumped (packed)
    sha256: str  # of the edited tree
    removed: tuple[str, ...]  # properties removed, as /node/property paths

    def facts(self) -> dict[str, object]:
        return {"path": str(self.path), "dumped_sha256": self.dumped_sha256, "sha256": self.sha256,
                "removed": list(self.removed)}


@dataclass(frozen=True)
class _Header:
    totalsize: int
    off_struct: int
    off_strings: int
    off_rsvmap: int
    version: int
    size_strings: int
    size_struct: int


def _header(blob: bytes) -> _Header:
    if len(blob) < HEADER.size:
        raise FdtError(f"{len(blob)} bytes: too short for an FDT header")
    magic, total, off_struct, off_strings, off_rsv, version, _last, _cpu, size_strings, size_struct = (
        HEADER.unpack_from(blob))
    if magic != MAGIC:
        raise FdtError(f"magic {magic:#x}, not {MAGIC:#x}")
    if version < 17:
        raise FdtError(f"FDT version {version}: 17 or later needed (sizes in the header)")
    h = _Header(total, off_struct, off_strings, off_rsv, version, size_strings, size_struct)
    for off, size in ((off_struct, size_struct), (off_strings, size_strings), (off_rsv, 16)):
        if off < HEADER.size or off + size > min(total, len(blob)):
            raise FdtError(f"block at {off}+{size} outside the blob of {min(total, len(blob))} bytes")
    return h


def _cstring(blob: bytes, start: int, end: int) -> tuple[str, int]:
    """The NUL-terminated string at `start` and the offset just past its NUL."""
    nul = blob.find(b"\0", start, end)
    if nul < 0:
        raise FdtError(f"unterminated string at {start}")
    return blob[start:nul].decode("ascii", errors="replace"), nul + 1


def _align(n: int) -> int:
    return (n + 3) & ~3


def properties(blob: bytes) -> list[tuple[str, str, int, int]]:
    """Every property as (node path, name, offset of its FDT_PROP token, record length)."""
    h = _header(blob)
    pos, end = h.off_struct, h.off_struct + h.size_struct
    strings_end = h.off_strings + h.size_strings
    path: list[str] = []
    found: list[tuple[str, str, int, int]] = []
    while pos + 4 <= end:
        (token,) = struct.unpack_from(">I", blob, pos)
        if token == FDT_BEGIN_NODE:
            name, nxt = _cstring(blob, pos + 4, end)
            path.append(name)
            if len(path) > MAX_DEPTH:
                raise FdtError(f"nodes nested deeper than {MAX_DEPTH}")
            pos = _align(nxt)
        elif token == FDT_END_NODE:
            if not path:
                raise FdtError(f"FDT_END_NODE without a node at {pos}")
            path.pop()
            pos += 4
        elif token == FDT_PROP:
            if pos + 12 > end:
                raise FdtError(f"property at {pos} cut off")
            length, nameoff = struct.unpack_from(">II", blob, pos + 4)
            size = 12 + _align(length)
            if pos + size > end or h.off_strings + nameoff >= strings_end:
                raise FdtError(f"property at {pos} runs past its block")
            name, _ = _cstring(blob, h.off_strings + nameoff, strings_end)
            found.append(("/" + "/".join(path[1:]), name, pos, size))
            pos += size
        elif token == FDT_NOP:
            pos += 4
        elif token == FDT_END:
            return found
        else:
            raise FdtError(f"unknown token {token:#x} at {pos}")
    raise FdtError("no FDT_END token")


def packed(blob: bytes) -> bytes:
    """The blob cut to its last block: QEMU dumps 1 MiB, most of it free space.

    QEMU grows a -dtb it loads before adding /chosen, so no free space is needed.
    """
    h = _header(blob)
    rsv_end = h.off_rsvmap
    while rsv_end + 16 <= h.totalsize:  # the reserve map ends with an all-zero entry
        rsv_end += 16
        if blob[rsv_end - 16:rsv_end] == bytes(16):
            break
    size = max(rsv_end, h.off_struct + h.size_struct, h.off_strings + h.size_strings)
    out = bytearray(blob[:size])
    struct.pack_into(">I", out, 4, size)
    return bytes(out)


def without_coherent_pcie(blob: bytes) -> tuple[bytes, tuple[str, ...]]:
    """`blob` with `dma-coherent` NOPed out of every pcie@ node; FdtError if there is none."""
    out = bytearray(blob)
    removed: list[str] = []
    for node, name, offset, size in properties(blob):
        if name == COHERENT and node.rsplit("/", 1)[-1].startswith(BRIDGE_PREFIX):
            out[offset:offset + size] = struct.pack(">I", FDT_NOP) * (size // 4)
            removed.append(f"{node}/{name}")
    if not removed:
        raise FdtError(f"no {BRIDGE_PREFIX}* node with {COHERENT}: PCIe would not change")
    return bytes(out), tuple(removed)


def qemu_version(qemu: str) -> str:
    """The first line of `qemu --version`: part of the cache key (the board may change)."""
    argv = [qemu, "--version"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InfraError(f"{qemu} --version failed: {exc}", "install QEMU (./setup.sh)") from exc
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr)
    return (proc.stdout.splitlines() or ["unknown"])[0].strip()


def _key_spec(spec: MachineSpec) -> MachineSpec:
    """What shapes the tree: the boot's own files and forwarding peers do not."""
    nics = tuple(replace(n, peers=()) for n in spec.nics)
    return replace(spec, kernel=Path("-"), initrd=Path("-"), cmdline=(), dtb=None, nics=nics)


def noncoherent(spec: MachineSpec, root: Path | None = None) -> Tree:
    """The cached non-coherent tree for `spec`'s machine, dumped and edited on first use."""
    arch = preset(spec.arch)
    if not arch.noncoherent_dma:
        able = " or ".join(p.name for p in presets().values() if p.noncoherent_dma)
        raise UsageError(f"dma_coherent: false needs {able}, not {spec.arch}", "exclude it for this arch")
    base = _key_spec(spec)
    key = cache.key_of("dtb", LAYOUT, qemu_version(arch.qemu), base)
    entry = cache.entry("dtb", key, lambda tmp: _build(base, tmp), root=root)
    manifest = json.loads((entry / "manifest.json").read_text())
    return Tree(entry / "noncoherent.dtb", manifest["dumped_sha256"], manifest["sha256"],
                tuple(manifest["removed"]))


def _build(spec: MachineSpec, out: Path) -> None:
    dumped, argv = dump(spec)
    try:
        edited, removed = without_coherent_pcie(dumped)
    except FdtError as exc:
        raise InfraError(f"cannot make PCIe non-coherent: {exc}", "report the QEMU version") from exc
    write_bytes(out / "dumped.dtb", dumped)
    write_bytes(out / "noncoherent.dtb", edited)
    write_json(out / "manifest.json", {
        "dumped_sha256": hashlib.sha256(dumped).hexdigest(),
        "sha256": hashlib.sha256(edited).hexdigest(), "removed": list(removed),
        "argv": argv,  # its temporary paths are gone; kept to show the options
    })


def dump(spec: MachineSpec) -> tuple[bytes, list[str]]:
    """The device tree QEMU builds for `spec`, packed, and the argv that dumped it."""
    arch = preset(spec.arch)
    if shutil.which(arch.qemu) is None:
        raise InfraError(f"{arch.qemu} not found", f"install {arch.qemu_package} (./setup.sh does)")
    tmp = Path(tempfile.mkdtemp(prefix="kharness-dtb-"))
    try:
        out = tmp / "virt.dtb"
        argv = dumpdtb_argv(spec, arch, out, tmp)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise InfraError("QEMU did not dump the device tree within 120 s", "run the argv by hand") from exc
        if proc.returncode != 0 or not out.is_file():
            raise CommandError(argv, proc.returncode, proc.stderr + proc.stdout,
                               "this QEMU cannot dump its device tree (-M virt,dumpdtb=)")
        blob = out.read_bytes()[:MAX_BLOB]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    try:
        return packed(blob), argv
    except FdtError as exc:
        raise InfraError(f"QEMU's device tree does not parse: {exc}", "report the QEMU version") from exc
