"""Kernels every config can name without declaring them: Debian's cloud kernels, and more.

bookworm ships 6.1 (before arm64's kmalloc minalign series), trixie 6.12
(after it). The meta packages are followed to the exact image package at
resolution time, and that version is recorded with the results. Besides the
cloud flavours (no USB at all): trixie's generic flavours (xHCI and
usb-storage) and arm64's 16 KiB-page flavour.
"""

from __future__ import annotations

from harness.model import DebianSource, KernelSource

DEFAULT_KERNELS: dict[str, KernelSource] = {
    "bookworm-arm64": KernelSource(
        name="bookworm-arm64", arch="arm64",
        debian=DebianSource(suite="bookworm", package="linux-image-cloud-arm64", arch="arm64"),
    ),
    "trixie-arm64": KernelSource(
        name="trixie-arm64", arch="arm64",
        debian=DebianSource(suite="trixie", package="linux-image-cloud-arm64", arch="arm64"),
    ),
    "bookworm-x86_64": KernelSource(
        name="bookworm-x86_64", arch="x86_64",
        debian=DebianSource(suite="bookworm", package="linux-image-cloud-amd64", arch="x86_64"),
    ),
    "trixie-x86_64": KernelSource(
        name="trixie-x86_64", arch="x86_64",
        debian=DebianSource(suite="trixie", package="linux-image-cloud-amd64", arch="x86_64"),
    ),
    "trixie-arm64-generic": KernelSource(
        name="trixie-arm64-generic", arch="arm64",
        debian=DebianSource(suite="trixie", package="linux-image-arm64", arch="arm64"),
    ),
    "trixie-x86_64-generic": KernelSource(
        name="trixie-x86_64-generic", arch="x86_64",
        debian=DebianSource(suite="trixie", package="linux-image-amd64", arch="x86_64"),
    ),
    # 16 KiB pages: CONFIG_ARM64_16K_PAGES; SMMUv3 then uses its 16K granule.
    "trixie-arm64-16k": KernelSource(
        name="trixie-arm64-16k", arch="arm64",
        debian=DebianSource(suite="trixie", package="linux-image-arm64-16k", arch="arm64"),
    ),
}

# What `kharness kernel fetch` fetches when no kernel is named: the cloud
# flavours the reference experiments use; the others are fetched when a run
# (or `kernel fetch NAME`) first needs them.
CLOUD_KERNELS: tuple[str, ...] = ("bookworm-arm64", "trixie-arm64", "bookworm-x86_64", "trixie-x86_64")
