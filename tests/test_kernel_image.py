"""identify() and bootable() on synthetic headers, real header samples and non-kernels."""

from __future__ import annotations

import random
import shutil
import struct
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel import compression
from harness.kernel.image import bootable, identify
from tests.fakes import kernels as fake

DATA = Path(__file__).parent / "data" / "kernel"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- arm64 -----------------------------------------------------------------


def test_fake_arm64_image_is_identified(tmp_path: Path) -> None:
    path = _write(tmp_path, "Image", fake.arm64_image("6.12.9-test", page_size=16384))
    info = identify(path)
    assert (info.arch, info.format, info.compression) == ("arm64", "Image", "none")
    assert info.release == "6.12.9-test"
    assert info.page_size == 16384
    assert info.banner.startswith("Linux version 6.12.9-test (fake@kharness)")
    assert info.size == path.stat().st_size
    assert info.qemu_boots_as_is


def test_fake_arm64_big_endian_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "Image", fake.arm64_image(big_endian=True))
    with pytest.raises(UsageError, match="big-endian"):
        identify(path)


def test_fake_arm64_without_banner_is_refused(tmp_path: Path) -> None:
    data = fake.arm64_image().replace(b"Linux version", b"Linux vers1on")
    with pytest.raises(UsageError, match="no 'Linux version' banner"):
        identify(_write(tmp_path, "Image", data))


def test_real_arm64_header_sample() -> None:
    """First 4 KiB of Debian's 6.12 cloud arm64 vmlinuz plus its banner, cut out."""
    info = identify(DATA / "Image-6.12.107-cloud-arm64.sample")
    assert (info.arch, info.format, info.compression) == ("arm64", "Image", "none")
    assert info.release == "6.12.107+deb13-cloud-arm64"
    assert info.page_size == 4096
    assert "Debian 6.12.107-1" in info.banner


def test_fake_gzip_image_is_kept_as_is_for_qemu(tmp_path: Path) -> None:
    path = _write(tmp_path, "Image.gz", fake.compress(fake.arm64_image("6.1.0-gz"), "gzip"))
    info = identify(path)
    assert (info.arch, info.format, info.compression, info.release) == (
        "arm64", "gzip-Image", "gzip", "6.1.0-gz")
    assert bootable(path, tmp_path / "out", info) == path  # QEMU gunzips arm64 Images itself
    assert not (tmp_path / "out").exists()


def test_fake_xz_image_is_unpacked_for_qemu(tmp_path: Path) -> None:
    raw = fake.arm64_image("6.1.0-xz")
    path = _write(tmp_path, "Image.xz", fake.compress(raw, "xz"))
    info = identify(path)
    assert (info.format, info.compression) == ("xz-Image", "xz")
    out = bootable(path, tmp_path / "out")
    assert out == tmp_path / "out" / "Image-6.1.0-xz"
    assert out.read_bytes() == raw


def test_fake_gzip_of_something_else_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.gz", fake.compress(b"hello world\n" * 100, "gzip"))
    with pytest.raises(UsageError, match="gzip-compressed but holds no arm64 Image"):
        identify(path)


# --- EFI zboot -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gzip", "xz", "lzma", "zstd"])
def test_fake_zboot_is_unwrapped(tmp_path: Path, kind: str) -> None:
    if kind == "zstd" and shutil.which("zstd") is None:
        pytest.skip("zstd command not installed")
    raw = fake.arm64_image(f"6.12.0-zboot-{kind}")
    path = _write(tmp_path, "vmlinuz.efi", fake.zboot(raw, kind))
    info = identify(path)
    assert (info.arch, info.format, info.compression) == ("arm64", "zboot", kind)
    assert info.release == f"6.12.0-zboot-{kind}"
    assert not info.qemu_boots_as_is  # QEMU 7.2 predates zboot support
    out = bootable(path, tmp_path / "boot", info)
    assert out.name == f"Image-6.12.0-zboot-{kind}"
    assert out.read_bytes() == raw
    assert identify(out).format == "Image"


def test_fake_zboot_for_another_machine_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "vmlinuz.efi", fake.zboot(fake.arm64_image(), machine=0x5064))
    with pytest.raises(UsageError, match="PE machine 0x5064, not arm64"):
        identify(path)


def test_fake_zboot_truncated_payload_is_refused(tmp_path: Path) -> None:
    data = fake.zboot(fake.arm64_image(), "xz")
    with pytest.raises(UsageError, match="truncated"):
        identify(_write(tmp_path, "vmlinuz.efi", data[:-200]))


def test_fake_zboot_unknown_compression_is_refused(tmp_path: Path) -> None:
    data = bytearray(fake.zboot(fake.arm64_image(), "gzip"))
    data[24:29] = b"brot\x00"
    with pytest.raises(UsageError, match="unknown compression 'brot'"):
        identify(_write(tmp_path, "vmlinuz.efi", bytes(data)))


# --- x86 -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zstd", "gzip", "xz", "lz4", "lzma", "bzip2", "none"])
def test_fake_bzimage_compression_from_payload(tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path, "bzImage", fake.bzimage("6.12.0-x", compression=kind))
    info = identify(path)
    assert (info.arch, info.format, info.compression, info.release) == (
        "x86_64", "bzImage", kind, "6.12.0-x")
    assert info.boot_protocol == "2.15"
    assert bootable(path, tmp_path / "out", info) == path  # QEMU boots a bzImage as is



@pytest.mark.parametrize("kind", ["zstd", "gzip", "xz", "none"])
def test_fake_bzimage_with_a_pvh_entry_gets_its_vmlinux(tmp_path: Path, kind: str) -> None:
    """QEMU starts a vmlinux with a PVH entry point directly: the guest does not decompress
    itself (2 s of a 6.5 s TCG boot of Debian's zstd 6.12). The vmlinux is the payload."""
    elf = fake.vmlinux(pvh=True)
    path = _write(tmp_path, "bzImage", fake.bzimage_around(elf, kind, "6.12.0-x"))
    info = identify(path)
    assert (info.format, info.compression, info.release) == ("bzImage", kind, "6.12.0-x")
    out = bootable(path, tmp_path / "out", info)
    assert out == tmp_path / "out" / "vmlinux-6.12.0-x"
    assert out.read_bytes() == elf
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["vmlinux-6.12.0-x"]


@pytest.mark.parametrize(("what", "data"), [
    ("no PVH note (CONFIG_PVH off)", fake.bzimage_around(fake.vmlinux(pvh=False), "xz")),
    ("a size word that disagrees", fake.bzimage_around(fake.vmlinux(), "xz", size_word=12345)),
    ("a corrupt stream", fake.bzimage(compression="xz") + b"\x00" * 4096),
    ("notes beyond the file", fake.bzimage_around(fake.vmlinux()[:0x100], "xz")),
    ("a program header table beyond the file", fake.bzimage_around(
        fake.vmlinux()[:0x20] + struct.pack("<Q", 1 << 40) + fake.vmlinux()[0x28:], "xz")),
    ("an i386 ELF", fake.bzimage_around(fake.vmlinux()[:0x12] + b"\x03\x00" + fake.vmlinux()[0x14:], "xz")),
])
def test_fake_bzimage_without_a_usable_pvh_vmlinux_is_booted_as_is(tmp_path: Path, what: str,
                                                                  data: bytes) -> None:
    """What the image says is checked: anything but a whole vmlinux with the note leaves
    the bzImage to boot itself, with nothing left behind."""
    path = _write(tmp_path, "bzImage", data)
    assert bootable(path, tmp_path / "out") == path, what
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

def test_fake_old_protocol_bzimage_has_unknown_compression(tmp_path: Path) -> None:
    info = identify(_write(tmp_path, "bzImage", fake.bzimage(protocol=0x206)))
    assert (info.compression, info.boot_protocol) == ("unknown", "2.06")


def test_fake_32bit_bzimage_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "bzImage", fake.bzimage(x86_64=False))
    with pytest.raises(UsageError, match="32-bit x86 kernel"):
        identify(path)


def test_fake_bzimage_without_version_is_refused(tmp_path: Path) -> None:
    data = bytearray(fake.bzimage())
    struct.pack_into("<H", data, 0x20E, 0)
    with pytest.raises(UsageError, match="without a kernel_version"):
        identify(_write(tmp_path, "bzImage", bytes(data)))


@pytest.mark.parametrize(("sample", "release", "kind"), [
    ("bzImage-6.12.107-cloud-amd64.head", "6.12.107+deb13-cloud-amd64", "zstd"),
    ("bzImage-6.1.176-cloud-amd64.head", "6.1.0-50-cloud-amd64", "lz4"),
])
def test_real_bzimage_headers(sample: str, release: str, kind: str) -> None:
    """The first 24 KiB of Debian's cloud amd64 vmlinuz: setup header and payload start."""
    info = identify(DATA / sample)
    assert (info.arch, info.format, info.release, info.compression) == (
        "x86_64", "bzImage", release, kind)
    assert info.boot_protocol == "2.15"


# --- not kernels -----------------------------------------------------------


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty", b"", "is empty"),
    ("notes.txt", b"this is a text file, not a kernel\n" * 50, "is not a kernel image"),
    ("vmlinux", b"\x7fELF\x02\x01\x01" + bytes(200), "ELF file"),
    ("random.bin", bytes(range(256)) * 16, "is not a kernel image"),
    ("short-x86", bytes(0x202) + b"HdrS", "truncated"),
])
def test_non_kernels_are_refused_naming_the_file(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = _write(tmp_path, name, data)
    with pytest.raises(UsageError, match=message) as err:
        identify(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_refused(tmp_path: Path, seed: int) -> None:
    path = _write(tmp_path, "noise", random.Random(seed).randbytes(8192))
    with pytest.raises(UsageError, match="is not a kernel image"):
        identify(path)


def test_missing_file_and_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        identify(tmp_path / "nope")
    with pytest.raises(UsageError, match="is a directory"):
        identify(tmp_path)


def test_corrupt_xz_is_a_usage_error(tmp_path: Path) -> None:
    data = fake.compress(fake.arm64_image(), "xz")
    broken = data[:40] + bytes(len(data) - 80) + data[-40:]
    with pytest.raises(UsageError, match="corrupt xz data"):
        identify(_write(tmp_path, "Image.xz", broken))


def test_sniff_knows_the_kernel_compressors() -> None:
    assert compression.sniff(b"\x28\xb5\x2f\xfd....") == "zstd"
    assert compression.sniff(b"\x02\x21\x4c\x18") == "lz4"
    assert compression.sniff(b"plain text") is None


def test_fake_bzimage_whose_unpacker_is_missing_boots_as_is(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the zstd command (a host set up by hand), a zstd bzImage still boots: itself."""
    path = _write(tmp_path, "bzImage", fake.bzimage_around(fake.vmlinux(), "zstd"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert bootable(path, tmp_path / "out") == path
