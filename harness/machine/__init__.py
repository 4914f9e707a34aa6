"""QEMU guests and how the host talks to them."""
