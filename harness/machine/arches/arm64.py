"""arm64 guests: QEMU's `virt` board.

`virt` marks its PCIe host bridge dma-coherent in the device tree it
generates; the non-coherent experiment boots a modified copy (-dtb).
"""

from harness.machine.arches import ArchPreset

PRESET = ArchPreset(
    name="arm64",
    qemu="qemu-system-aarch64",
    host_machine="aarch64",
    machine="virt",
    # cortex-a72 under TCG: "max" emulates pointer authentication in software,
    # which makes boots several times slower for no benefit here.
    cpu_tcg="cortex-a72",
    cpu_kvm="host",
    console="ttyAMA0",
    cmdline=("console=ttyAMA0",),
    debian_package="qemu-system-arm",
)
