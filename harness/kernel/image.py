"""What a kernel image file is, read from its own headers, and the form QEMU boots.

A file name says little (Debian calls every image `vmlinuz`, whether it is a
bzImage, a plain arm64 Image or an EFI zboot), so everything here comes from
the bytes. Layouts, from the kernel's documentation and sources:

- arm64 Image (Documentation/arch/arm64/booting.rst): 64-byte header,
  flags at 0x18 (bit 0 big-endian, bits 1-2 page size), magic "ARM\\x64" at 0x38.
- x86 boot protocol (Documentation/arch/x86/boot.rst): setup_sects at 0x1f1,
  "HdrS" at 0x202, protocol version at 0x206, kernel_version pointer at 0x20e
  (plus 0x200), loadflags at 0x211, xloadflags at 0x236, payload_offset at
  0x248 (from the start of the protected-mode code, protocol 2.08+).
- EFI zboot (drivers/firmware/efi/libstub/zboot-header.S): "MZ", "zimg" at 4,
  payload offset and size at 8 and 12, NUL-terminated compression name at
  24; the PE header (offset at 0x3c) names the machine.
- a whole arm64 Image compressed into one file (Image.gz, Image.zst, ...).

QEMU 7.2's -kernel takes a bzImage as is, and an arm64 Image plain or
gzip'd; it does not understand zboot (that came in QEMU 8.1) nor other
compressors, so those are unpacked by `bootable`. A bzImage is unpacked too
when the vmlinux inside has a PVH entry point (CONFIG_PVH, an ELF note
XEN_ELFNOTE_PHYS32_ENTRY): QEMU then starts that ELF directly, and the guest
no longer decompresses itself, which under TCG took 2 s of a 6.5 s boot of
Debian's zstd 6.12 kernel (0.6 s of the lz4 6.1's). The layout: the payload's
last 4 bytes are the decompressed size, for every compressor
(arch/x86/boot/compressed/mkpiggy.c reads them there); a bzImage without the
note, or whose payload does not unpack, is booted as it is.

An image comes from anywhere, so what is read from it is checked before use:
the release (the x86 kernel_version string or the `Linux version` banner)
must be a `uname -r` of RELEASE_RE before it names a file (`Image-<release>`)
or a modules directory, and unpacking is a bounded stream (MAX_IMAGE_BYTES
decompressed, held a chunk at a time), so a small bomb costs neither memory
nor disk.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness import arches, atomic
from harness.errors import InfraError, UsageError
from harness.kernel import compression
from harness.model import Arch

log = logging.getLogger(__name__)

HEAD_BYTES = 4096  # covers every header field read here
# A larger file, or a larger decompressed Image, is a disk image, a vmlinux
# or a bomb, not a kernel image (allyesconfig arm64 Images are ~250 MiB).
MAX_IMAGE_BYTES = 512 << 20
# `uname -r`: at most 64 characters (__NEW_UTS_LEN), one path component.
RELEASE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+~-]{0,63}")

ARM64_MAGIC = b"ARM\x64"
ARM64_MAGIC_AT = 0x38
ARM64_PAGE_SIZES = {1: 4096, 2: 16384, 3: 65536}  # Image header flags bits 1-2
X86_MAGIC = b"HdrS"
X86_MAGIC_AT = 0x202
X86_XLF_KERNEL_64 = 0x1  # xloadflags: the kernel has a 64-bit entry point
ZBOOT_TYPE = b"zimg"
# Compression names as Makefile.zboot writes them into the zboot header.
ZBOOT_COMPRESSION = {
    "gzip": "gzip", "lz4": "lz4", "lzma": "lzma", "lzo": "lzo", "bzip2": "bzip2",
    "xzkern": "xz", "xz": "xz", "zstd22": "zstd", "zstd": "zstd",
}
QEMU_TAKES_AS_IS = frozenset({"Image", "gzip-Image", "bzImage", "zImage"})
BANNER = re.compile(rb"Linux version (\S{1,200}) \([^\n\x00]{0,400}")
BANNER_SPAN = 1024  # bytes a banner match can cover: kept between chunks
# The ELF note that gives a PVH entry point (include/xen/interface/elfnote.h).
PVH_NOTE = (b"Xen\x00", 18)  # XEN_ELFNOTE_PHYS32_ENTRY
ELF_MACHINE_X86_64 = 62  # e_machine EM_X86_64: the vmlinux inside a bzImage
MAX_NOTES_BYTES = 1 << 20  # a PT_NOTE segment larger than this is not a kernel's


@dataclass(frozen=True)
class ImageInfo:
    """Facts about one kernel image file, as its headers state them."""

    path: Path
    arch: Arch
    format: str  # Image, gzip-Image, <compression>-Image, zboot, bzImage, zImage
    compression: str  # of the kernel as shipped: none, gzip, zstd, xz, lzma, lz4, bzip2, lzo
    release: str  # `uname -r`
    size: int  # bytes of the file
    banner: str = ""  # the "Linux version ..." line (x86: built from kernel_version)
    page_size: int | None = None  # arm64: from the Image header; x86: always 4096
    boot_protocol: str | None = None  # x86 only, e.g. "2.15"

    @property
    def qemu_boots_as_is(self) -> bool:
        """Whether QEMU 7.2's -kernel takes this file without our unpacking it."""
        return self.format in QEMU_TAKES_AS_IS


def identify(path: Path) -> ImageInfo:
    """Read what `path` is; a file that is no kernel image raises UsageError naming it."""
    head = _read(path, HEAD_BYTES)
    if not head:
        raise UsageError(f"{path} is empty, not a kernel image", "check the path")
    try:
        if head[X86_MAGIC_AT:X86_MAGIC_AT + 4] == X86_MAGIC:
            return _x86(path, _read(path))
        fmt, kind, payload = _unwrap(path, head)
        header, release, banner = _scan(path, fmt, compression.stream(payload, kind, str(path), MAX_IMAGE_BYTES))
        return _arm64(path, header, fmt, kind, path.stat().st_size, release, banner)
    except (struct.error, IndexError) as exc:  # a header field beyond the end of the file
        raise UsageError(f"{path}: kernel header is truncated", "check the file") from exc


def bootable(path: Path, dest_dir: Path, info: ImageInfo | None = None) -> Path:
    """The file to give QEMU's -kernel: `path` itself when QEMU takes it as it is, else a
    raw Image, or for a bzImage with a PVH entry point its vmlinux.

    Decompressing costs time and disk, so it is done for what QEMU 7.2 cannot
    load (EFI zboot, arm64 Images in non-gzip wrappers), and for a bzImage whose
    guest-side decompression QEMU can spare (`_pvh_vmlinux`). The file is written
    atomically as `dest_dir/Image-<release>` or `dest_dir/vmlinux-<release>`,
    streamed and bounded.
    """
    info = info or identify(path)
    if info.format == "bzImage":
        return _pvh_vmlinux(path, dest_dir, info) or path
    if info.qemu_boots_as_is:
        return path
    release = _release(path, info.release, "banner")
    _, kind, payload = _unwrap(path, _read(path, HEAD_BYTES))
    out = dest_dir / f"Image-{release}"
    with atomic.atomic_open(out, "wb") as f:
        for chunk in compression.stream(payload, kind, str(path), MAX_IMAGE_BYTES):
            f.write(chunk)
    return out


def entry_of(info: ImageInfo, boot: Path) -> str:
    """How QEMU starts the kernel `bootable` gave `boot` for (Kernel.entry)."""
    if boot == info.path:
        return "as shipped"
    return "pvh" if info.format == "bzImage" else "unpacked"


class _NoPvh(Exception):
    """The bzImage's payload is no vmlinux with a PVH entry point (the bzImage is booted as is)."""


def _pvh_vmlinux(path: Path, dest_dir: Path, info: ImageInfo) -> Path | None:
    """The vmlinux inside bzImage `path`, written as `dest_dir/vmlinux-<release>`, when it
    has a PVH entry point; None (and nothing written) when it has not or does not unpack.

    The payload is the image's to say: it is decompressed as a bounded stream, its size
    must be the one its last 4 bytes give, and the note is looked for within bounds.
    """
    data = _read(path)
    protocol = struct.unpack_from("<H", data, 0x206)[0]
    if protocol < 0x208:
        return None
    start, length = _x86_payload_span(data)
    payload = data[start:start + length]
    if length < 64 or len(payload) != length:
        return None
    kind = "none" if payload[:4] == b"\x7fELF" else compression.sniff(payload[:16])
    if kind is None:
        return None
    size = struct.unpack_from("<I", payload, length - 4)[0]
    # gzip's own trailer ends in the size; the other compressors have it appended, and an
    # uncompressed payload may (the ELF itself does not need it)
    keep_word = kind == "gzip" or (kind == "none" and size != length - 4)
    body = payload if keep_word else payload[:-4]
    out = dest_dir / f"vmlinux-{_release(path, info.release, 'kernel_version string')}"
    try:
        with atomic.atomic_open(out, "w+b") as f:
            written = 0
            for chunk in compression.stream(body, kind, str(path), MAX_IMAGE_BYTES):
                f.write(chunk)
                written += len(chunk)
            if kind != "none" and written & 0xFFFFFFFF != size:
                raise _NoPvh(f"unpacked {written} bytes, the payload says {size}")
            f.flush()
            if not has_pvh_note(f, written):
                raise _NoPvh("no PVH entry point (CONFIG_PVH is off)")
    except (_NoPvh, UsageError, InfraError, struct.error) as exc:
        log.info("%s: booted as a bzImage (%s)", path, exc)
        return None
    return out


def has_pvh_note(f: IO[bytes], size: int) -> bool:
    """Whether the x86_64 ELF in `f` (`size` bytes) has the PVH entry note in a PT_NOTE
    segment, where QEMU looks for it (hw/i386/x86.c, load_elfboot). Bounds-checked: the
    file is the image's, not ours."""
    f.seek(0)
    head = f.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return False  # not ELF64 little-endian
    if struct.unpack_from("<H", head, 0x12)[0] != ELF_MACHINE_X86_64:
        return False
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    if phentsize < 56 or phnum > 64 or phoff + phentsize * phnum > size:
        return False
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _, p_offset = struct.unpack_from("<IIQ", table, i * phentsize)
        p_filesz, = struct.unpack_from("<Q", table, i * phentsize + 32)
        if p_type != 4 or p_filesz > MAX_NOTES_BYTES or p_offset + p_filesz > size:  # PT_NOTE
            continue
        f.seek(p_offset)
        if PVH_NOTE in _notes(f.read(p_filesz)):
            return True
    return False


def _notes(segment: bytes) -> Iterator[tuple[bytes, int]]:
    """(name, type) of each note in a PT_NOTE segment: namesz, descsz, type, then the name
    and the description, each padded to 4 bytes."""
    pos = 0
    while pos + 12 <= len(segment):
        namesz, descsz, kind = struct.unpack_from("<III", segment, pos)
        name_at = pos + 12
        pos = name_at + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
        if pos > len(segment):
            return
        yield segment[name_at:name_at + namesz], kind


def _unwrap(path: Path, head: bytes) -> tuple[str, str, bytes]:
    """(format, compression, the bytes holding the arm64 Image) of a file that is not an x86 image."""
    if head[ARM64_MAGIC_AT:ARM64_MAGIC_AT + 4] == ARM64_MAGIC:
        return "Image", "none", _read(path)
    if head[:2] == b"MZ" and head[4:8] == ZBOOT_TYPE:
        kind, payload = _zboot_payload(path, _read(path))
        return "zboot", kind, payload
    if head[:4] == b"\x7fELF":
        raise UsageError(
            f"{path} is an ELF file (a vmlinux?), not a bootable kernel image",
            "pass arch/arm64/boot/Image or arch/x86/boot/bzImage",
        )
    wrapper = compression.sniff(head)
    if wrapper is None:
        raise UsageError(
            f"{path} is not a kernel image (no arm64 Image, x86 bzImage or EFI zboot header)",
            "pass the Image, bzImage or vmlinuz file",
        )
    return f"{wrapper}-Image", wrapper, _read(path)


def _zboot_payload(path: Path, data: bytes) -> tuple[str, bytes]:
    """The compression and the compressed Image inside an EFI zboot file."""
    offset, size = struct.unpack_from("<II", data, 8)
    name = _cstring(data, 24, 32)
    kind = ZBOOT_COMPRESSION.get(name, "")
    if not kind:
        raise UsageError(f"{path}: EFI zboot with unknown compression {name!r}", "check the file")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe:pe + 4] != b"PE\x00\x00":
        raise UsageError(f"{path}: EFI zboot without a PE header", "check the file is complete")
    machine = struct.unpack_from("<H", data, pe + 4)[0]
    image_arch = arches.by_kernel_format("Image")
    if machine != image_arch.pe_machine:
        raise UsageError(
            f"{path} is an EFI zboot image for PE machine {machine:#x}, not {image_arch.name}",
            f"kharness boots {' and '.join(arches.names())} kernels",
        )
    payload = data[offset:offset + size]
    if len(payload) != size:
        raise UsageError(f"{path}: EFI zboot payload is truncated", "check the file is complete")
    return kind, payload


def _scan(path: Path, fmt: str, chunks: Iterator[bytes]) -> tuple[bytes, str, str]:
    """(64-byte Image header, release, banner) of a decompressing stream, held a chunk at a time.

    linux_banner (the string /proc/version prints) sits in .rodata, anywhere
    in the Image; the stream is read to its end, so a corrupt one is refused.
    """
    header = b""
    window = b""
    found: re.Match[bytes] | None = None
    for chunk in chunks:
        if len(header) < 64:
            header += chunk[:64 - len(header)]
        if found is None or len(window) - found.start() < BANNER_SPAN:
            window = (window[found.start():] if found else window[-BANNER_SPAN:]) + chunk
            found = BANNER.search(window)
    if header[ARM64_MAGIC_AT:ARM64_MAGIC_AT + 4] != ARM64_MAGIC:
        if fmt == "zboot":
            raise UsageError(f"{path}: EFI zboot payload is no arm64 Image", "check the file")
        raise UsageError(f"{path} is {fmt.removesuffix('-Image')}-compressed but holds no arm64 Image", "check it")
    if found is None:
        raise UsageError(f"{path}: no 'Linux version' banner in the image", "check the file")
    release = _release(path, found.group(1).decode(errors="replace"), "'Linux version' banner")
    return header, release, printable(found.group(0).decode(errors="replace"))


def printable(text: str) -> str:
    """Text from an image, as a terminal or a file may show it: control characters as \\xNN."""
    return text if text.isprintable() else "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _release(path: Path, text: str, where: str) -> str:
    """A release read from an image: it names files and directories, so only of RELEASE_RE."""
    if not RELEASE_RE.fullmatch(text):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise UsageError(f"{path}: the release {shown!r} in its {where} is not a kernel release",
                         "a release is what `uname -r` prints: letters, digits and ._+~- (64 at most)")
    return text


def _arm64(path: Path, header: bytes, fmt: str, kind: str, size: int, release: str, banner: str) -> ImageInfo:
    flags = struct.unpack_from("<Q", header, 0x18)[0]
    if flags & 1:
        raise UsageError(f"{path} is a big-endian arm64 kernel", "build a little-endian kernel")
    return ImageInfo(
        path=path, arch=arches.by_kernel_format("Image").name, format=fmt, compression=kind, release=release, size=size,
        banner=banner, page_size=ARM64_PAGE_SIZES.get((flags >> 1) & 3),
    )


def _x86(path: Path, data: bytes) -> ImageInfo:
    protocol = struct.unpack_from("<H", data, 0x206)[0]
    if protocol >= 0x20C and not data[0x236] & X86_XLF_KERNEL_64:
        raise UsageError(f"{path} is a 32-bit x86 kernel", "build an x86_64 kernel")
    pointer = struct.unpack_from("<H", data, 0x20E)[0]
    version = _cstring(data, 0x200 + pointer, 400) if pointer else ""
    if not version.split():
        raise UsageError(f"{path}: x86 image without a kernel_version string", "check the file")
    return ImageInfo(
        path=path, arch=arches.by_kernel_format("bzImage").name, format="bzImage" if data[0x211] & 1 else "zImage",
        compression=_x86_payload_compression(data, protocol),
        release=_release(path, version.split()[0], "kernel_version string"),
        size=len(data), banner=printable(f"Linux version {version}"), page_size=4096,
        boot_protocol=f"{protocol >> 8}.{protocol & 0xFF:02d}",
    )


def _x86_payload_compression(data: bytes, protocol: int) -> str:
    """The compressor of the bzImage payload (protocol 2.08+ says where it starts)."""
    if protocol < 0x208:
        return "unknown"
    start, _ = _x86_payload_span(data)
    head = data[start:start + 16]
    if head[:4] == b"\x7fELF":  # CONFIG_KERNEL_UNCOMPRESSED
        return "none"
    return compression.sniff(head) or "unknown"


def _x86_payload_span(data: bytes) -> tuple[int, int]:
    """(offset in the file, length) of a bzImage's payload (protocol 2.08+): payload_offset
    counts from the protected-mode code, which follows the setup sectors."""
    setup_sects = data[0x1F1] or 4  # 0 means 4, for very old boot loaders
    offset, length = struct.unpack_from("<II", data, 0x248)
    return (setup_sects + 1) * 512 + offset, length


def _cstring(data: bytes, offset: int, limit: int) -> str:
    chunk = data[offset:offset + limit]
    return chunk.split(b"\x00", 1)[0].decode("ascii", errors="replace")


def _read(path: Path, limit: int | None = None) -> bytes:
    """Up to `limit` bytes of `path` (all without one); bad paths are the user's fault."""
    try:
        with path.open("rb") as f:
            if limit is None and path.stat().st_size > MAX_IMAGE_BYTES:
                raise UsageError(f"{path} is too large to be a kernel image", "check the path")
            return f.read() if limit is None else f.read(limit)
    except FileNotFoundError as exc:
        raise UsageError(f"kernel image {path} does not exist", "check the path") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{path} is a directory, not a kernel image", "name the file") from exc
    except PermissionError as exc:
        raise UsageError(f"cannot read {path}", "check its permissions") from exc
