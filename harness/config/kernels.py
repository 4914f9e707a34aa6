"""The `kernels:` section: extra named kernels, local builds or Debian packages.

A config may name the DEFAULT_KERNELS without declaring them. Local paths
are relative to the config file's folder (so a config travels with its
build tree) and must exist now: finding out after an hour of other cells is
too late.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from harness.config.settings import arch, safe_name
from harness.document import Node, mapping, named, string
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.model import DEFAULT_MIRROR, DebianSource, KernelSource

LOCAL_KEYS = ("image", "modules", "config", "arch")
DEBIAN_KEYS = ("suite", "package", "arch", "mirror")
SUITE_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9.+-]{1,99}")  # Debian policy 5.6.1
MIRROR_SCHEMES = ("http", "https", "file")
EXAMPLE = "my-build: {image: ../build/arch/arm64/boot/Image, arch: arm64}"


def parse_kernels(node: Node | None, base_dir: Path) -> dict[str, KernelSource]:
    """DEFAULT_KERNELS plus the declared ones, by name."""
    table = dict(DEFAULT_KERNELS)
    for name, spec in (named(node, EXAMPLE) if node is not None else {}).items():
        name_node = Node(name, spec.line, spec.path, spec.file)
        safe_name(name_node, "kernel name")
        if name in DEFAULT_KERNELS:
            raise spec.error(
                f"{name!r} is a built-in kernel",
                "use it without declaring it, or pick another name",
            )
        table[name] = _kernel(name, spec, base_dir)
    return table


def _kernel(name: str, node: Node, base_dir: Path) -> KernelSource:
    keys = mapping(node, (*LOCAL_KEYS, "debian"), example=EXAMPLE)
    if "debian" in keys:
        extra = sorted(set(keys) - {"debian"})
        if extra:
            raise keys[extra[0]].error(
                f"a Debian kernel takes only debian:, not {extra[0]}",
                "declare a local build as a kernel of its own",
            )
        deb = _debian(keys["debian"])
        return KernelSource(name=name, arch=deb.arch, debian=deb)
    keys = mapping(node, LOCAL_KEYS, ("image", "arch"), EXAMPLE)
    return KernelSource(
        name=name,
        arch=arch(keys["arch"]),
        image=_path(keys["image"], base_dir, "file"),
        modules=_path(keys["modules"], base_dir, "any") if "modules" in keys else None,
        config=_path(keys["config"], base_dir, "file") if "config" in keys else None,
    )


def _debian(node: Node) -> DebianSource:
    example = "{suite: sid, package: linux-image-cloud-arm64, arch: arm64}"
    keys = mapping(node, DEBIAN_KEYS, ("suite", "package", "arch"), example)
    suite = string(keys["suite"], "trixie")
    if not SUITE_RE.fullmatch(suite):
        raise keys["suite"].error(
            f"suite {suite!r} is not a Debian suite name", "e.g. bookworm, trixie, sid"
        )
    package = string(keys["package"], "linux-image-cloud-arm64")
    if not PACKAGE_RE.fullmatch(package):
        raise keys["package"].error(
            f"package {package!r} is not a Debian package name", "e.g. linux-image-cloud-arm64"
        )
    mirror = _mirror(keys["mirror"]) if "mirror" in keys else DEFAULT_MIRROR
    return DebianSource(suite=suite, package=package, arch=arch(keys["arch"]), mirror=mirror)


def _mirror(node: Node) -> str:
    url = string(node, DEFAULT_MIRROR)
    parts = urlsplit(url) if url.isprintable() and " " not in url else None
    if (
        parts is None
        or parts.scheme not in MIRROR_SCHEMES
        or not (parts.netloc or parts.scheme == "file")
    ):
        raise node.error(f"mirror {url!r} is not a mirror URL", f"e.g. {DEFAULT_MIRROR}")
    return url


def _path(node: Node, base_dir: Path, kind: str) -> Path:
    """An existing path, relative to the config's folder; `kind` file or any."""
    text = string(node, "../build/arch/arm64/boot/Image")
    if not text or not text.isprintable():
        raise node.error(
            f"path {text!r} is not a usable path", "give a path relative to the config file"
        )
    path = (base_dir / Path(text).expanduser()).resolve()
    if not path.exists():
        raise node.error(
            f"{path} does not exist",
            "build it first, or fix the path (relative to the config file)",
        )
    if kind == "file" and not path.is_file():
        raise node.error(
            f"{path} is not a file",
            f"{node.path.rsplit('.', 1)[-1]}: names a file, e.g. arch/arm64/boot/Image",
        )
    return path
