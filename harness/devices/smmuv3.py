"""Arm SMMUv3 on QEMU's virt board (`-M virt,iommu=smmuv3`): stage-1, coherent, translates PCIe only.

Debian's arm64 kernels build ARM_SMMU_V3 in. The SMMU model offers 4K, 16K
and 64K granules; a kernel uses its own page size's when offered.
"""

from harness.devices import DeviceKind, Driver

KIND = DeviceKind(
    name="smmuv3",
    role="iommu",
    description="Arm SMMUv3 of the virt board, in front of PCIe (not virtio-mmio)",
    qemu="",  # not a -device: a machine option
    machine_option="iommu=smmuv3",
    machines=("virt",),
    translates=("pci",),
    drivers=(Driver("arm_smmu_v3", ("ARM_SMMU_V3",), ("arm_smmu_v3",), "virt,iommu=smmuv3"),),
    build_needs=("IOMMU_SUPPORT", "IOMMU_DMA"),
)
