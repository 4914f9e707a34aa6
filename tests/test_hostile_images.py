"""Hostile kernel images, initramfs archives and modules: nothing escapes, nothing explodes.

Images come from anywhere. The release read from one names files
(`Image-<release>`, `lib/modules/<release>`), so it must be a release; and a
few MB of compressed data can expand to gigabytes, so every unpacking is a
bounded stream: one UsageError (or CpioError) past the bound, memory held a
chunk at a time.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import os
import shutil
import struct
import subprocess
import tracemalloc
import zlib
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from harness.initramfs import cpio, modules
from harness.kernel import compression, image
from harness.kernel.image import bootable, identify
from tests.fakes import kernels as fake

HOSTILE_RELEASES = ["../../../escaped", "/etc/passwd", "a/b", "..", "-rf", "x" * 65, "6.1\x1b[31m",
                    "[bold]6.1[/]", "6.1<script>"]


def zeros_gzip(size: int) -> bytes:
    """gzip of `size` zero bytes, made a chunk at a time (a bomb: ~1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    out = [packer.compress(block) for _ in range(size >> 20)]
    return b"".join(out) + packer.flush()


@pytest.mark.parametrize("release", HOSTILE_RELEASES)
def test_a_zboot_release_that_is_no_release_never_names_a_file(tmp_path: Path, release: str) -> None:
    """The issue's case: a crafted zboot image made the unpacking write outside the cache."""
    raw = bytearray(fake.arm64_image("6.12.0-placeholder"))
    at = raw.index(b"Linux version ") + len(b"Linux version ")
    end = raw.index(b" (", at)
    raw[at:end] = release.encode()
    path = tmp_path / "cache" / "vmlinuz.efi"
    path.parent.mkdir()
    path.write_bytes(fake.zboot(bytes(raw), "gzip"))
    before = set(tmp_path.rglob("*"))
    with pytest.raises(UsageError, match=r"is not a kernel release|no 'Linux version' banner"):
        identify(path)
    forged = image.ImageInfo(path, "arm64", "zboot", "gzip", release, 1)  # as if identify had let it through
    with pytest.raises(UsageError, match="is not a kernel release"):
        bootable(path, tmp_path / "cache" / "boot", forged)
    assert set(tmp_path.rglob("*")) == before
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("release", HOSTILE_RELEASES)
def test_an_x86_kernel_version_that_is_no_release_is_refused(tmp_path: Path, release: str) -> None:
    path = tmp_path / "bzImage"
    path.write_bytes(fake.bzimage(release))
    with pytest.raises(UsageError, match=r"is not a kernel release|truncated|without a kernel_version"):
        identify(path)


@pytest.mark.parametrize("release", ["6.12.107-cloud-arm64", "6.13.0-rc1+", "5.10.0_custom~1", "6" * 64])
def test_real_looking_releases_are_taken(tmp_path: Path, release: str) -> None:
    path = tmp_path / "Image.gz"
    path.write_bytes(fake.compress(fake.arm64_image(release), "gzip"))
    assert identify(path).release == release


def test_a_gzip_bomb_is_refused_at_the_bound_in_bounded_memory(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case: 9 MB of gzip made `kernel info` use 4 GB. Here 64 MiB of zeros with
    the bound at 16 MiB; the cost is a chunk of memory, never the whole."""
    monkeypatch.setattr(image, "MAX_IMAGE_BYTES", 16 << 20)
    header = fake.arm64_image("6.12.0-bomb")[:4096]
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = packer.compress(header) + b"".join(packer.compress(bytes(1 << 20)) for _ in range(64)) + packer.flush()
    path = tmp_path / "Image.gz"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match="decompresses to more than 16 MiB"):
            identify(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(data) + 8 * compression.CHUNK, peak


def test_kernel_info_of_a_bomb_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(image, "MAX_IMAGE_BYTES", 8 << 20)
    path = tmp_path / "vmlinuz"
    path.write_bytes(zeros_gzip(32 << 20))
    assert main(["kernel", "info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "decompresses to more than 8 MiB" in err and "\n" not in err


@pytest.mark.parametrize("kind", ["gzip", "xz", "bzip2", "zstd", "lz4"])
def test_every_decompressor_stops_at_the_bound(kind: str) -> None:
    raw = bytes(24 << 20)
    if kind in ("zstd", "lz4"):
        if shutil.which(kind) is None:
            pytest.skip(f"{kind} command not installed")
        argv = ["zstd", "-c", "-q"] if kind == "zstd" else ["lz4", "-l", "-c"]
        data = subprocess.run(argv, input=raw, capture_output=True, check=True).stdout
    else:
        data = {"gzip": gzip.compress, "xz": lzma.compress,
                "bzip2": __import__("bz2").compress}[kind](raw)
    with pytest.raises(UsageError, match="decompresses to more than 4 MiB"):
        compression.decompress(data, kind, "bomb", 4 << 20)
    assert len(compression.decompress(data, kind, "fine", 32 << 20)) == len(raw)


@pytest.mark.parametrize("kind", ["gzip", "xz", "bzip2", "lzma"])
def test_truncated_and_corrupt_streams_are_usage_errors(kind: str) -> None:
    packed = fake.compress(b"x" * 100_000, kind) if kind != "bzip2" else __import__("bz2").compress(b"x" * 100_000)
    # (lzma-alone's header with zeros after it is a valid empty stream)
    cuts = [packed[: len(packed) // 2], packed[:2]] + ([] if kind == "lzma" else [packed[:4] + bytes(64)])
    for data in cuts:
        with pytest.raises(UsageError, match="corrupt"):
            compression.decompress(data, kind, "img")


# --- initramfs archives -------------------------------------------------------------------


def _archive(tmp_path: Path, compress: bool = False) -> bytes:
    out = cpio.write([cpio.file("etc/a", b"hello"), cpio.symlink("bin/sh", "busybox")], tmp_path / "a.cpio",
                     compress=compress)
    return out.read_bytes()


@pytest.mark.parametrize("field", [6, 11])  # filesize and namesize, as signed or padded hex
@pytest.mark.parametrize("text", [b"-0000001", b"+0000001", b" 0000001", b"0000_001", b"zzzzzzzz", b"FFFFFFFF"])
def test_a_cpio_header_field_that_is_not_8_hex_digits_or_too_big_is_refused(tmp_path: Path, field: int,
                                                                             text: bytes) -> None:
    """int(x, 16) takes signs, spaces and underscores: a negative size made the reader loop forever."""
    blob = bytearray(_archive(tmp_path))
    at = 6 + 8 * field
    blob[at:at + 8] = text
    with pytest.raises(cpio.CpioError):
        cpio.read(bytes(blob))


def test_a_cpio_cut_anywhere_is_a_cpio_error(tmp_path: Path) -> None:
    blob = _archive(tmp_path)
    for end in range(1, len(blob), 7):
        with contextlib.suppress(cpio.CpioError):  # a cut at an entry's end is an archive
            cpio.read(blob[:end])


def test_a_gzip_layer_is_decompressed_within_the_bound(tmp_path: Path) -> None:
    plain, packed = _archive(tmp_path), _archive(tmp_path, compress=True)
    assert [e.name for e in cpio.read(packed + plain)] == [e.name for e in cpio.read(plain)] * 2
    with pytest.raises(cpio.CpioError, match="decompresses to more than"):
        cpio.read(zeros_gzip(8 << 20), limit=1 << 20)


def test_a_gzip_member_inside_a_gzip_member_is_refused(tmp_path: Path) -> None:
    nested = gzip.compress(_archive(tmp_path, compress=True), mtime=0)
    with pytest.raises(cpio.CpioError, match="compressed member inside a compressed one"):
        cpio.read(nested)


def test_rootfs_ls_of_junk_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = bytearray(_archive(tmp_path))
    blob[6 + 8 * 6:6 + 8 * 7] = b"-0000001"
    (tmp_path / "bad.cpio").write_bytes(bytes(blob))
    assert main(["rootfs", "ls", str(tmp_path / "bad.cpio")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not 8 hex digits" in err and "\n" not in err


def test_a_non_utf8_member_name_is_listed(tmp_path: Path) -> None:
    blob = _archive(tmp_path)
    blob = blob.replace(b"etc/a\x00", b"etc/\xff\x00", 1)
    assert "etc/\\xff" in [e.name for e in cpio.read(blob)]


# --- modules ---------------------------------------------------------------------------


def test_a_module_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modules, "MAX_MODULE_BYTES", 1 << 20)
    ko = tmp_path / "bomb.ko.xz"
    ko.write_bytes(lzma.compress(bytes(8 << 20)))
    with pytest.raises(UsageError, match="decompresses to more than 1 MiB"):
        modules.decompress(ko)
    gz = tmp_path / "bomb.ko.gz"
    gz.write_bytes(gzip.compress(bytes(8 << 20)))
    with pytest.raises(UsageError, match="decompresses to more than 1 MiB"):
        modules.decompress(gz)


def test_a_zstd_module_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zstandard = pytest.importorskip("zstandard")
    monkeypatch.setattr(modules, "MAX_MODULE_BYTES", 1 << 20)
    ko = tmp_path / "bomb.ko.zst"
    ko.write_bytes(zstandard.ZstdCompressor().compress(bytes(8 << 20)))
    with pytest.raises(UsageError, match="decompresses to more than 1 MiB"):
        modules.decompress(ko)
    ko.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(64))
    with pytest.raises(UsageError, match="corrupt zstd"):
        modules.decompress(ko)


@pytest.mark.parametrize("blob", [b"", b"\x7fELF" + bytes(60), b"\x7fELF\x02\x01\x01" + os.urandom(200),
                                  b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack("<HHI", 1, 183, 1) + bytes(200)])
def test_a_ko_that_is_no_elf_object_is_a_usage_error(blob: bytes) -> None:
    with contextlib.suppress(UsageError):  # an empty .modinfo is no error either
        modules.modinfo(blob)


def test_a_banner_with_terminal_escapes_is_shown_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = bytearray(fake.arm64_image("6.12.0-esc"))
    at = raw.index(b"(fake@kharness)")
    raw[at:at + 15] = b"(\x1b]0;pwned\x07\x1b[2J)"
    path = tmp_path / "Image"
    path.write_bytes(bytes(raw))
    assert "\x1b" not in identify(path).banner
    assert main(["kernel", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;pwned" in out
