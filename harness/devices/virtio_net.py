"""virtio-net on PCI: the SSH NIC of every guest, and the traffic NIC of net workloads."""

from harness.devices import VIRTIO_PCI, DeviceKind, Driver

KIND = DeviceKind(
    name="virtio-net",
    role="nic",
    description="virtio network card (PCI); the guest finds it by its MAC",
    # romfile= : no iPXE option ROM, nothing boots from the network.
    qemu="virtio-net-pci,netdev={netdev},mac={mac},romfile=",
    drivers=(VIRTIO_PCI, Driver("virtio_net", ("VIRTIO_NET",), ("virtio_net",), "virtio-net-pci")),
    find="mac",
    virtio=True,
    build_needs=("NET", "INET", "UNIX", "NETDEVICES", "NET_CORE", "PCI", "PCI_MSI", "VIRTIO_MENU", "VIRTIO"),
    every_build=True,
)
