"""Intel VT-d (`-device intel-iommu`) on q35; Debian's default is off, so the guest gets intel_iommu=on.

Under TCG no split irqchip is needed (no interrupt remapping is asked for).
"""

from harness.devices import DeviceKind, Driver

KIND = DeviceKind(
    name="intel-iommu",
    role="iommu",
    description="Intel VT-d of the q35 machine, in front of PCIe",
    qemu="intel-iommu",
    cmdline=("intel_iommu=on",),
    machines=("q35",),
    translates=("pci",),
    # INTEL_IOMMU is a bool option: built in or absent, never a module.
    drivers=(Driver("intel_iommu", ("INTEL_IOMMU",), (), "intel-iommu"),),
    build_needs=("IOMMU_SUPPORT", "IOMMU_DMA"),
)
