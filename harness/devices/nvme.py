"""Emulated NVMe: always uses the DMA API (Debian's cloud kernels build it in)."""

from harness.devices import DeviceKind, Driver

KIND = DeviceKind(
    name="nvme",
    role="disk",
    description="NVMe controller with one namespace (PCI), found by its serial",
    qemu="nvme,drive={drive},serial={id}",
    drivers=(Driver("nvme", ("BLK_DEV_NVME",), ("nvme",), "nvme"),),
    build_needs=("BLOCK", "PCI"),
    every_build=True,
)
