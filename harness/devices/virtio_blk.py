"""virtio-blk on PCI: a scratch disk; bounces only with ACCESS_PLATFORM (iommu_platform: true)."""

from harness.devices import VIRTIO_PCI, DeviceKind, Driver

KIND = DeviceKind(
    name="virtio-blk",
    role="disk",
    description="virtio block device (PCI), found by its serial",
    qemu="virtio-blk-pci,drive={drive},serial={id}",
    drivers=(VIRTIO_PCI, Driver("virtio_blk", ("VIRTIO_BLK",), ("virtio_blk",), "virtio-blk-pci")),
    virtio=True,
    build_needs=("BLOCK", "BLK_DEV", "PCI", "VIRTIO_MENU", "VIRTIO"),
    every_build=True,
)
