"""FAKE: synthetic kernel files, just enough header for `identify`, for unit tests.

Real kernels are tens of megabytes and come from the network; these are a
few kilobytes, built from the same layouts image.py reads (see its
docstring), so every format and every refusal can be exercised offline.
Nothing here boots.
"""

from __future__ import annotations

import lzma
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from harness.arches import preset
from harness.kernel.image import ARM64_MAGIC, ZBOOT_TYPE

PE_MACHINE_ARM64 = preset("arm64").pe_machine

# Leading bytes written where a bzImage payload starts, per compressor.
_PAYLOAD_MAGIC = {
    "gzip": b"\x1f\x8b\x08\x00", "xz": b"\xfd7zXZ\x00", "zstd": b"\x28\xb5\x2f\xfd",
    "lz4": b"\x02\x21\x4c\x18", "bzip2": b"BZh9", "lzma": b"\x5d\x00\x00\x80",
    "none": b"\x7fELF",
}
_ZBOOT_NAME = {"gzip": "gzip", "xz": "xzkern", "zstd": "zstd22", "lzma": "lzma"}
_LINUX_PE_MAGIC = b"\xcd\x23\x82\x81"


def banner(release: str) -> bytes:
    return f"Linux version {release} (fake@kharness) (gcc 14) #1 SMP\n".encode()


def arm64_image(release: str = "6.12.0-fake-arm64", page_size: int = 4096,
                big_endian: bool = False, size: int = 16384) -> bytes:
    """A little arm64 Image: header, zeros, and the linux_banner string."""
    page_bits = {4096: 1, 16384: 2, 65536: 3}[page_size]
    flags = (page_bits << 1) | int(big_endian)
    header = struct.pack("<4s4sQQQQQQ4sI", b"MZ@\xfa", b"\x00" * 4, 0, size, flags, 0, 0, 0,
                         ARM64_MAGIC, 0x40)
    body = bytearray(size)
    body[:len(header)] = header
    text = banner(release) + b"\x00"
    body[size // 2:size // 2 + len(text)] = text
    return bytes(body)


def bzimage(release: str = "6.12.0-fake-amd64", compression: str = "zstd",
            protocol: int = 0x20F, x86_64: bool = True) -> bytes:
    """An x86 boot-protocol header with a kernel_version string and a payload magic."""
    setup_sects = 3
    data = bytearray(0x2000)
    data[0x1F1] = setup_sects
    data[0x1FE:0x200] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, protocol)
    version = f"{release} (fake@kharness) #1 SMP PREEMPT_DYNAMIC".encode() + b"\x00"
    struct.pack_into("<H", data, 0x20E, 0x400 - 0x200)  # string at 0x400
    data[0x400:0x400 + len(version)] = version
    data[0x211] = 0x01  # LOADED_HIGH: a bzImage
    data[0x236] = 0x01 if x86_64 else 0x00  # XLF_KERNEL_64
    payload_offset = 0x100
    struct.pack_into("<II", data, 0x248, payload_offset, 0x100)
    start = (setup_sects + 1) * 512 + payload_offset
    magic = _PAYLOAD_MAGIC[compression]
    data[start:start + len(magic)] = magic
    return bytes(data)



def vmlinux(pvh: bool = True, size: int = 8192) -> bytes:
    """A little x86_64 ELF with one PT_NOTE segment: a GNU build-id note, then (pvh) the
    Xen note XEN_ELFNOTE_PHYS32_ENTRY that gives a PVH entry point (CONFIG_PVH)."""
    def pad(b: bytes) -> bytes:
        return b + b"\x00" * (-len(b) % 4)

    def note(name: bytes, kind: int, desc: bytes) -> bytes:
        return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)

    notes = note(b"GNU\x00", 3, b"\x11" * 20)
    if pvh:
        notes += note(b"Xen\x00", 18, struct.pack("<I", 0x1000000))
    notes_at = 0x200
    header = struct.pack("<4sBBBB8xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 2, 62, 1, 0x1000000, 64, 0,
                         0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 4, notes_at, 0, 0, len(notes), len(notes), 4)  # PT_NOTE
    body = bytearray(size)
    body[:len(header) + len(phdr)] = header + phdr
    body[notes_at:notes_at + len(notes)] = notes
    return bytes(body)


def bzimage_around(elf: bytes, kind: str, release: str = "6.12.0-fake-amd64",
                   size_word: int | None = None) -> bytes:
    """fake.bzimage() whose payload is `elf` compressed as the kernel build does it: the
    compressed stream, then (but for gzip, whose trailer has it) the size as 4 bytes."""
    packed = compress(elf, kind) if kind != "none" else elf
    if kind != "gzip":
        packed += struct.pack("<I", len(elf) if size_word is None else size_word)
    data = bytearray(bzimage(release, compression=kind))
    setup_sects = data[0x1F1]
    offset = struct.unpack_from("<I", data, 0x248)[0]
    start = (setup_sects + 1) * 512 + offset
    struct.pack_into("<II", data, 0x248, offset, len(packed))
    return bytes(data[:start]) + packed

def compress(raw: bytes, kind: str) -> bytes:
    """`raw` compressed as the kernel build would (zstd needs the zstd command)."""
    if kind == "gzip":
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        return packer.compress(raw) + packer.flush()
    if kind == "xz":
        return lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    if kind == "lzma":
        return lzma.compress(raw, format=lzma.FORMAT_ALONE)
    if kind == "zstd" and shutil.which("zstd"):
        return subprocess.run(["zstd", "-c", "-q"], input=raw, capture_output=True,
                              check=True).stdout
    raise ValueError(f"cannot make {kind} data here")


def zboot(raw: bytes, kind: str = "gzip", machine: int = PE_MACHINE_ARM64) -> bytes:
    """An EFI zboot wrapper around `raw`, laid out as zboot-header.S does it."""
    payload = compress(raw, kind)
    offset = 0x200
    header = bytearray(offset)
    header[0:4] = b"MZ\x00\x00"
    header[4:8] = ZBOOT_TYPE
    struct.pack_into("<II", header, 8, offset, len(payload))
    name = _ZBOOT_NAME[kind].encode() + b"\x00"
    header[24:24 + len(name)] = name
    header[0x38:0x3C] = _LINUX_PE_MAGIC
    struct.pack_into("<I", header, 0x3C, 0x40)
    header[0x40:0x44] = b"PE\x00\x00"
    struct.pack_into("<H", header, 0x44, machine)
    # Non-gzip payloads are followed by their size, which the header's size leaves out.
    trailer = b"" if kind == "gzip" else struct.pack("<I", len(raw))
    return bytes(header) + payload + trailer


def modules_tree(root: Path, release: str, modules: dict[str, str]) -> Path:
    """lib/modules/<release> under `root` with empty .ko files and a modules.builtin.

    `modules` maps a module path below kernel/ (e.g. 'drivers/net/virtio_net')
    to 'module' or 'builtin'.
    """
    tree = root / "lib/modules" / release
    builtin = []
    for name, state in modules.items():
        if state == "builtin":
            builtin.append(f"kernel/{name}.ko")
            continue
        path = tree / "kernel" / f"{name}.ko"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    tree.mkdir(parents=True, exist_ok=True)
    (tree / "modules.builtin").write_text("".join(f"{line}\n" for line in builtin))
    (tree / "modules.order").write_text("")
    return tree


def image_package(dest_dir: Path, release: str = "6.12.0-fake-arm64", version: str = "6.12.0-1",
                  image: bytes | None = None, merged_usr: bool = True,
                  with_image: bool = True) -> Path:
    """A .deb laid out like Debian's linux-image-<release>, built with dpkg-deb.

    Debian 13 ships modules under usr/lib/modules, Debian 12 under lib/modules
    (`merged_usr`); both carry device trees kharness does not want.
    """
    root = dest_dir / f"pkg-{release}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: linux-image-{release}\nVersion: {version}\nArchitecture: arm64\n"
        "Maintainer: kharness <fake@kharness>\nDescription: synthetic kernel package\n"
    )
    boot = root / "boot"
    boot.mkdir()
    if with_image:
        (boot / f"vmlinuz-{release}").write_bytes(image or arm64_image(release))
    (boot / f"config-{release}").write_text("CONFIG_VIRTIO_NET=m\nCONFIG_BLK_DEV_NVME=y\n")
    modules_tree(root / "usr" if merged_usr else root, release,
                 {"drivers/net/virtio_net": "module", "drivers/nvme/host/nvme": "builtin"})
    dtb = root / "usr/lib" / f"linux-image-{release}" / "arm/juno.dtb"
    dtb.parent.mkdir(parents=True)
    dtb.write_bytes(b"\xd0\x0d\xfe\xed")
    deb = dest_dir / f"linux-image-{release}_{version}_arm64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(root), str(deb)],
                   check=True, capture_output=True)
    shutil.rmtree(root)
    return deb
