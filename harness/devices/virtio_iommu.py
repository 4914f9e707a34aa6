"""virtio-iommu on PCI: QEMU writes the topology (DT iommu-map on arm64, ACPI VIOT on x86_64).

Debian builds VIRTIO_IOMMU as a module: it is loaded before the modules of
the devices behind it, whose probes wait (deferred) until it is there.
Cannot be combined with the virt board's SMMUv3.
"""

from harness.devices import VIRTIO_PCI, DeviceKind, Driver

KIND = DeviceKind(
    name="virtio-iommu",
    role="iommu",
    description="paravirtual IOMMU (virtio-iommu-pci) in front of PCI",
    qemu="virtio-iommu-pci",
    machines=("virt", "q35"),
    translates=("pci",),
    drivers=(VIRTIO_PCI, Driver("virtio_iommu", ("VIRTIO_IOMMU",), ("virtio_iommu",), "virtio-iommu-pci")),
    # x86_64 finds it through ACPI VIOT (ACPI, ACPI_VIOT), arm64 through the device tree.
    build_needs=("IOMMU_SUPPORT", "IOMMU_DMA", "VIRTIO_MENU", "VIRTIO", "PCI"),
)
