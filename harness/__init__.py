"""kharness: boot kernels under QEMU, drive DMA stress, measure slab and swiotlb."""

__version__ = "0.1.0"
