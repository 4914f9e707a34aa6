"""Driver availability from a .config or a modules tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel import kconfig
from harness.model import Kernel
from tests.fakes import kernels as fake

DATA = Path(__file__).parent / "data" / "kernel"

# What Debian's 6.12 cloud arm64 kernel has (from its config, excerpt in tests/data).
DEBIAN_6_12_ARM64 = {
    "virtio_pci": "builtin", "virtio_mmio": "module", "virtio_net": "module",
    "virtio_blk": "module", "nvme": "builtin", "xhci_pci": "missing",
    "usb_storage": "missing", "e1000e": "missing",
}


def test_parse_config_values() -> None:
    text = 'CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="x y"\nCONFIG_E=0x10\n# junk\n'
    assert kconfig.parse_config(text) == {"A": "y", "B": "m", "C": "n", "D": '"x y"', "E": "0x10"}


def test_real_debian_config_excerpt() -> None:
    states = kconfig.driver_status(config=DATA / "config-6.12.107-cloud-arm64.excerpt")
    assert states == DEBIAN_6_12_ARM64


def test_real_modules_builtin_with_fake_ko_files(tmp_path: Path) -> None:
    """Debian's real modules.builtin plus empty .ko.xz files where Debian ships modules."""
    tree = tmp_path / "6.12.107+deb13-cloud-arm64"
    for name in ("virtio_net", "virtio_blk", "virtio_mmio"):
        path = tree / "kernel/drivers/x" / f"{name}.ko.xz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    shutil.copy(DATA / "modules.builtin-6.12.107-cloud-arm64", tree / "modules.builtin")
    assert kconfig.driver_status(modules_dir=tree) == DEBIAN_6_12_ARM64


def test_every_part_of_a_driver_is_needed() -> None:
    config = {"USB_XHCI_HCD": "y", "USB_XHCI_PCI": "m", "USB_STORAGE": "y"}
    assert kconfig.symbol_state(config, "USB_XHCI_PCI") == "module"
    assert kconfig.symbol_state(config, "BLK_DEV_SD") == "missing"


def test_synthetic_config_weakest_part_decides(tmp_path: Path) -> None:
    config = tmp_path / ".config"
    config.write_text("CONFIG_USB_XHCI_HCD=y\nCONFIG_USB_XHCI_PCI=m\nCONFIG_USB_STORAGE=y\n")
    states = kconfig.driver_status(config=config, drivers=["xhci_pci", "usb_storage"])
    assert states == {"xhci_pci": "module", "usb_storage": "missing"}  # no BLK_DEV_SD


def test_fake_modules_tree(tmp_path: Path) -> None:
    tree = fake.modules_tree(tmp_path, "6.1.0-t", {
        "drivers/net/virtio_net": "module", "drivers/nvme/host/nvme": "builtin",
        "drivers/usb/host/xhci-hcd": "module", "drivers/usb/host/xhci-pci": "module",
    })
    states = kconfig.driver_status(modules_dir=tree, drivers=["virtio_net", "nvme", "xhci_pci",
                                                              "virtio_blk"])
    assert states == {"virtio_net": "module", "nvme": "builtin", "xhci_pci": "module",
                      "virtio_blk": "missing"}


def test_config_wins_over_modules_tree(tmp_path: Path) -> None:
    config = tmp_path / ".config"
    config.write_text("CONFIG_VIRTIO_NET=y\n")
    tree = fake.modules_tree(tmp_path, "r", {"drivers/net/virtio_net": "module"})
    kernel = Kernel(name="k", arch="arm64", image=tmp_path, original_image=tmp_path, release="r",
                    compression="none", image_sha256="0", modules_dir=tree, config=config)
    assert kconfig.driver_status(kernel, ["virtio_net"]) == {"virtio_net": "builtin"}


def test_without_evidence_the_answer_is_unknown() -> None:
    assert set(kconfig.driver_status().values()) == {"unknown"}


def test_unknown_driver_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown guest driver 'virtio_gpu'"):
        kconfig.driver_status(drivers=["virtio_gpu"])


def test_module_names_are_normalised() -> None:
    assert kconfig.module_name("kernel/drivers/usb/host/xhci-pci.ko.zst") == "xhci_pci"
    assert kconfig.module_name("kernel/drivers/block/virtio_blk.ko") == "virtio_blk"
