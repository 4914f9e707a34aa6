"""usb-storage behind QEMU's xHCI: a SCSI disk over USB (Debian's generic flavours; the cloud ones have no USB)."""

from harness.devices import DeviceKind, Driver

KIND = DeviceKind(
    name="usb-storage",
    role="disk",
    description="USB mass storage on an xHCI controller, found by the USB device's serial",
    qemu="usb-storage,bus=xhci.0,drive={drive},serial={id}",
    controller="qemu-xhci,id=xhci",
    drivers=(
        # xhci-pci is a separate module since 4.x; it needs the xhci core too.
        Driver("xhci_pci", ("USB_XHCI_HCD", "USB_XHCI_PCI"), ("xhci_hcd", "xhci_pci"), "qemu-xhci"),
        # usb-storage presents a SCSI disk, so the sd driver is needed to see it.
        Driver("usb_storage", ("USB_STORAGE", "BLK_DEV_SD"), ("usb_storage", "sd_mod"), "usb-storage"),
    ),
    find="usb",
    build_needs=("BLOCK", "PCI", "USB_SUPPORT", "USB", "SCSI"),
)
