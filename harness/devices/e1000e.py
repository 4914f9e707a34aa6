"""Intel 82574 (e1000e) on PCI: a NIC that always uses the DMA API; not in Debian's cloud kernels."""

from harness.devices import DeviceKind, Driver

KIND = DeviceKind(
    name="e1000e",
    role="nic",
    description="Intel 82574 network card (PCI); the guest finds it by its MAC",
    qemu="e1000e,netdev={netdev},mac={mac},romfile=",
    drivers=(Driver("e1000e", ("E1000E",), ("e1000e",), "e1000e"),),
    find="mac",
    build_needs=("NET", "INET", "NETDEVICES", "NET_CORE", "ETHERNET", "NET_VENDOR_INTEL", "PCI"),
)
