"""Guest userland: initramfs layers built from Debian packages."""
