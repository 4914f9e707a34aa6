"""arm64 guests: QEMU's `virt` board.

`virt` marks its PCIe host bridge dma-coherent in the device tree it
generates; the non-coherent experiment boots a modified copy (-dtb), which
is why this arch supports `dma_coherent: false`.
"""

from harness.arches import ArchBuild, ArchPreset

PRESET = ArchPreset(
    name="arm64",
    debian="arm64",
    aliases=("aarch64", "arm"),
    elf_machine="EM_AARCH64",
    triplet="aarch64-linux-gnu",
    # Documentation/arch/arm64/booting.rst: the 64-byte Image header (also
    # inside an EFI zboot image or a compressed Image.gz/.zst/...).
    kernel_format="Image",
    pe_machine=0xAA64,
    page_sizes=(4096, 16384, 65536),
    qemu="qemu-system-aarch64",
    qemu_package="qemu-system-arm",
    host_machine="aarch64",
    machine="virt",
    # cortex-a72 under TCG: "max" emulates pointer authentication in software,
    # which makes boots several times slower for no benefit here.
    cpu_tcg="cortex-a72",
    cpu_kvm="host",
    console="ttyAMA0",
    cmdline=("console=ttyAMA0",),
    build=ArchBuild(
        make_arch="arm64", src_arch="arm64",
        # QEMU 7.2 boots a plain arm64 Image, not the EFI zboot image.
        target="Image", image="arch/arm64/boot/Image",
        cross_compile="aarch64-linux-gnu-", cross_package="gcc-aarch64-linux-gnu",
        options=("SERIAL_AMBA_PL011", "SERIAL_AMBA_PL011_CONSOLE", "PCI_HOST_GENERIC"),
    ),
    noncoherent_dma=True,
    # Cortex-A72 has no 16K translation granule (a 16K kernel prints nothing
    # and hangs); the A76 has, and is as cheap to emulate.
    cpu_tcg_by_page_size=((16384, "cortex-a76"),),
)
