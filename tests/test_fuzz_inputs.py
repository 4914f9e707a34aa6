"""Property-based fuzzing of what users hand kharness: kernel images, initramfs archives, YAML.

Each reader gets random bytes and damaged real or synthetic files, and must
give a value or its documented error (UsageError for images and
decompression, CpioError for archives, ConfigError for YAML: each exit 2
with one line), within bounded time and memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import document
from harness.config import load as config_load
from harness.errors import ConfigError, UsageError
from harness.initramfs import cpio
from harness.kernel import compression, image
from tests.fakes import kernels as fake
from tests.test_fuzz_collect import FUZZ, bounded, inputs

# A decoder may hold its dictionary (compression.MAX_DECODER_MEMORY) and a chunk or two.
UNPACKING_PEAK = compression.MAX_DECODER_MEMORY + 8 * compression.CHUNK + (1 << 20)

IMAGES = [fake.arm64_image(size=8192), fake.compress(fake.arm64_image(size=8192), "gzip"),
          fake.compress(fake.arm64_image(size=8192), "xz"), fake.zboot(fake.arm64_image(size=8192), "gzip"),
          fake.zboot(fake.arm64_image(size=8192), "lzma"), fake.bzimage(),
          (Path(__file__).parent / "data" / "kernel" / "bzImage-6.12.107-cloud-amd64.head").read_bytes()[:8192]]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="kharness-fuzz-") as d:
        yield Path(d)


@FUZZ
@given(inputs(*IMAGES))
def test_identify_any_file(scratch: Path, data: bytes) -> None:
    path = scratch / "vmlinuz"
    path.write_bytes(data)
    try:
        info = bounded(image.identify, path, peak=UNPACKING_PEAK)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    assert image.RELEASE_RE.fullmatch(info.release)
    if not info.qemu_boots_as_is:
        out = bounded(image.bootable, path, scratch / "boot", info, peak=UNPACKING_PEAK)
        assert out.parent == scratch / "boot" and out.name == f"Image-{info.release}"


@FUZZ
@given(inputs(*IMAGES), st.sampled_from(["gzip", "xz", "lzma", "bzip2", "none"]))
def test_decompress_any_bytes(data: bytes, kind: str) -> None:
    try:
        out = bounded(compression.decompress, data, kind, "fuzz", 1 << 20, peak=UNPACKING_PEAK)
    except UsageError:
        return
    assert len(out) <= 1 << 20


def _archives() -> list[bytes]:
    with tempfile.TemporaryDirectory() as d:
        members = [cpio.file("etc/kharness/modules", b"/usr/lib/modules/x.ko\n"), cpio.symlink("bin/sh", "busybox"),
                   cpio.file("init", b"#!/bin/sh\n", 0o755)]
        plain = cpio.write(members, Path(d) / "a.cpio").read_bytes()
        packed = cpio.write(members, Path(d) / "b.cpio", compress=True).read_bytes()
    return [plain, packed, packed + plain]


@FUZZ
@given(inputs(*_archives()))
def test_cpio_listing_of_any_bytes(data: bytes) -> None:
    try:
        entries = bounded(cpio.read, data)
    except cpio.CpioError as exc:
        assert isinstance(exc, ValueError) and "\n" not in str(exc)
        return
    for e in entries:
        assert e.name.encode("utf-8") and len(e.name) <= 4 * cpio.MAX_NAME


CONFIGS = [p.read_bytes() for p in sorted((Path(__file__).parent / "data" / "configs" / "good").glob("*.yaml"))]
YAML_TOKENS = st.sampled_from(["&a ", "*a", "<<: ", "!!python/object ", "!!binary ", "- ", ": ", "{", "}", "[", "]",
                               "? ", "|", ">", "'", '"', "#", "\t", "\n", "~", "1e999", ".nan", "9" * 60,
                               "2020-13-45", "1:2:3", "\\ud800", "\x00", "\ufeff", "---\n", "...\n", "%YAML 1.1\n"])


@st.composite
def yaml_texts(draw: st.DrawFn) -> bytes:
    """Fragments of YAML syntax strung together: what trips a YAML reader is its own syntax."""
    parts = draw(st.lists(st.one_of(YAML_TOKENS, st.text(max_size=8)), max_size=40))
    return "".join(parts).encode("utf-8", errors="surrogatepass")


@FUZZ
@given(st.one_of(inputs(*CONFIGS), yaml_texts()))
def test_yaml_documents(data: bytes) -> None:
    try:
        node = bounded(document.parse, data, "f.yaml", document.Kind("config", "x", may_be_empty=True))
    except ConfigError as exc:
        assert str(exc).startswith("f.yaml:") and "\n" not in str(exc)
        return
    node.plain()


@FUZZ
@given(st.one_of(inputs(*CONFIGS), yaml_texts()))
def test_configs(scratch: Path, data: bytes) -> None:
    path = scratch / "c.yaml"
    path.write_bytes(data)
    try:
        cfg = bounded(config_load.load, path)
    except UsageError as exc:  # ConfigError, or a kernel or workload that is not there
        assert "\n" not in str(exc)
        return
    cfg.to_json()


def test_an_lzma_header_asking_for_4_gib_is_refused_without_allocating_it() -> None:
    """Found by fuzzing: 13 bytes of lzma-alone header made the decoder allocate its 4 GiB dictionary."""
    header = b"\x5d" + (0xFFFFFFFF).to_bytes(4, "little") + b"\xff" * 8
    with pytest.raises(UsageError, match="corrupt lzma data"):
        bounded(compression.decompress, header + bytes(64), "lzma", "bomb", peak=UNPACKING_PEAK)
