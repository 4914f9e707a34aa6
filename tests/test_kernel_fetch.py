"""The four default kernels, fetched for real from the Debian archive (marked boot).

They use the developer's own kharness cache, so only the first run downloads
(about 110 MB of .debs and 80 MB of package indexes).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from typing import Any

import pytest

from harness.errors import InfraError, UsageError
from harness.kernel import cli as kernel_cli
from harness.kernel import image, kconfig
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.kernel.image import identify
from harness.kernel.resolve import resolve
from harness.model import DebianSource, Kernel, KernelSource

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("kernels")]

# What Debian builds today: arm64 ships a plain Image (no EFI zboot), amd64 a
# bzImage whose payload compression changed between 6.1 and 6.12.
EXPECTED = {
    "bookworm-arm64": ("arm64", "Image", "none", "6.1."),
    "trixie-arm64": ("arm64", "Image", "none", "6.12."),
    "bookworm-x86_64": ("x86_64", "bzImage", "lz4", "6.1."),
    "trixie-x86_64": ("x86_64", "bzImage", "zstd", "6.12."),
}


@pytest.fixture(scope="session")
def default_kernels() -> dict[str, Kernel]:
    return {name: resolve(src) for name, src in DEFAULT_KERNELS.items()}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_default_kernel_facts(default_kernels: dict[str, Kernel], name: str) -> None:
    kernel = default_kernels[name]
    arch, fmt, kind, prefix = EXPECTED[name]
    info = identify(kernel.original_image)
    assert (kernel.arch, info.format, kernel.compression) == (arch, fmt, kind)
    assert kernel.release.startswith(prefix)
    if arch == "arm64":
        assert kernel.image == kernel.original_image  # QEMU 7.2 boots them as shipped
    else:  # Debian builds CONFIG_PVH in: QEMU starts the vmlinux, the guest unpacks nothing
        assert kernel.image.name == f"vmlinux-{kernel.release}"
        with kernel.image.open("rb") as f:
            assert image.has_pvh_note(f, kernel.image.stat().st_size)
    version = kernel.origin["version"]
    assert f"Debian {version}" in info.banner  # the release is the package's build
    assert kernel.origin["image_package"] == f"linux-image-{kernel.release}"
    assert kernel.origin["url"].startswith("http://deb.debian.org/debian/pool/main/l/linux-signed-")
    assert len(kernel.origin["deb_sha256"]) == 64


@pytest.mark.parametrize("name", list(EXPECTED))
def test_default_kernel_modules(default_kernels: dict[str, Kernel], name: str) -> None:
    kernel = default_kernels[name]
    assert kernel.modules_dir is not None and kernel.modules_dir.name == kernel.release
    assert (kernel.modules_dir / "modules.dep").is_file()  # made by depmod at unpacking
    suffix = ".ko.xz" if kernel.release.startswith("6.12.") else ".ko"
    assert next(kernel.modules_dir.rglob(f"virtio_blk{suffix}"))


@pytest.mark.parametrize("name", list(EXPECTED))
def test_default_kernel_drivers(default_kernels: dict[str, Kernel], name: str) -> None:
    kernel = default_kernels[name]
    states = kconfig.driver_status(kernel)
    assert states["nvme"] == "builtin"  # domain.md: Debian cloud kernels build NVMe in
    assert states["virtio_blk"] == states["virtio_net"] == "module"
    assert states["virtio_pci"] == ("builtin" if kernel.release.startswith("6.12.") else "module")
    # The cloud flavour has no USB and no e1000e at all.
    assert states["xhci_pci"] == states["usb_storage"] == states["e1000e"] == "missing"
    assert kconfig.driver_status(modules_dir=kernel.modules_dir) == states


def test_trixie_arm64_has_the_minalign_series(default_kernels: dict[str, Kernel]) -> None:
    config = kconfig.read_config(default_kernels["trixie-arm64"].config)  # type: ignore[arg-type]
    assert config["DMA_BOUNCE_UNALIGNED_KMALLOC"] == "y"
    assert config["HIST_TRIGGERS"] == config["DEBUG_FS"] == "y"


def test_wrong_arch_is_refused(default_kernels: dict[str, Kernel]) -> None:
    image = default_kernels["trixie-arm64"].original_image
    expected = f"image {image} is arm64 but kernel liar says x86_64; fix arch: or the path"
    with pytest.raises(UsageError, match=re.escape(expected)):
        resolve(KernelSource(name="liar", arch="x86_64", image=image))


def test_warm_resolution_is_fast_and_offline(default_kernels: dict[str, Kernel],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def no_apt(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a warm resolution ran a command")

    monkeypatch.setattr(subprocess, "run", no_apt)  # neither apt nor dpkg-deb nor depmod
    again = {name: resolve(src) for name, src in DEFAULT_KERNELS.items()}
    assert again == default_kernels  # how fast: bench/fetch_bench.py


def test_unknown_suite_is_a_usage_error() -> None:
    src = DebianSource(suite="trixxie", package="linux-image-cloud-arm64", arch="arm64")
    with pytest.raises(UsageError, match=r"suite trixxie not found on http://deb\.debian\.org"):
        resolve(KernelSource(name="typo", arch="arm64", debian=src))


def test_unknown_package_is_a_usage_error(default_kernels: dict[str, Kernel]) -> None:
    src = DebianSource(suite="trixie", package="linux-image-cloud-arm65", arch="arm64")
    with pytest.raises(UsageError, match="package linux-image-cloud-arm65 not found in trixie"):
        resolve(KernelSource(name="typo", arch="arm64", debian=src))


def test_unreachable_mirror_is_an_infra_error() -> None:
    src = DebianSource(suite="trixie", package="linux-image-cloud-arm64", arch="arm64",
                       mirror="http://127.0.0.1:9/debian")
    with pytest.raises(InfraError, match=r"cannot reach the mirror http://127\.0\.0\.1:9/debian"):
        resolve(KernelSource(name="offline", arch="arm64", debian=src), refresh=True)


@pytest.mark.parametrize("name", ["trixie-x86_64", "trixie-arm64"])
def test_info_says_what_qemu_boots(default_kernels: dict[str, Kernel], name: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="kharness kernel")
    kernel_cli.add_arguments(parser)
    assert kernel_cli.main(parser.parse_args(["info", name, "--json"])) == 0
    assert json.loads(capsys.readouterr().out)["boot_image"] == str(default_kernels[name].image)
    assert kernel_cli.main(parser.parse_args(["info", name])) == 0
    boots_as = [line for line in capsys.readouterr().out.splitlines() if line.startswith("boots as")]
    assert boots_as == (["boots as      its vmlinux, through the PVH entry (the guest decompresses nothing)"]
                        if name.endswith("x86_64") else [])
