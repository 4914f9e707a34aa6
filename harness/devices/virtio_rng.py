"""virtio-rng: entropy at once, or the guest's SSH server waits seconds for crng init under TCG."""

from harness.devices import VIRTIO_PCI, DeviceKind, Driver

KIND = DeviceKind(
    name="virtio-rng",
    role="boot",
    description="virtio entropy source (PCI), in every guest",
    qemu="virtio-rng-pci",
    drivers=(VIRTIO_PCI, Driver("virtio_rng", ("HW_RANDOM", "HW_RANDOM_VIRTIO"), ("virtio_rng",), "virtio-rng-pci")),
    build_needs=("PCI", "VIRTIO_MENU", "VIRTIO"),
    every_build=True,
)
