"""The `kernels:` section: extra named kernels: local builds, Debian packages, source trees.

A config may name the DEFAULT_KERNELS without declaring them. Local paths
are relative to the config file's folder (so a config travels with its
build tree) and must exist now: finding out after an hour of other cells is
too late. For a source tree that means the tree is a git tree and the ref
exists (both cheap questions to git); whether the patches apply is known
only when they are applied, before the first boot.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.config.settings import arch, safe_name
from harness.document import Node, items, mapping, named, string
from harness.errors import UsageError
from harness.kernel import git
from harness.kernel.build import MAKE_TARGET_RE
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.model import DEFAULT_MIRROR, DebianSource, KernelSource, SourceTree

LOCAL_KEYS = ("image", "modules", "config", "arch")
DEBIAN_KEYS = ("suite", "package", "arch", "mirror")
SOURCE_KEYS = ("tree", "ref", "patches", "range", "mbox", "kconfig", "fragments", "arch")
SERIES_KEYS = ("patches", "range", "mbox")
SOURCE_EXAMPLE = "{tree: ../linux, ref: v6.12, patches: [fix.patch], kconfig: defconfig, arch: arm64}"
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
    keys = mapping(node, tuple(dict.fromkeys((*LOCAL_KEYS, "debian", *SOURCE_KEYS))), example=EXAMPLE)
    if "tree" in keys:
        return _source(name, node, base_dir)
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


def _source(name: str, node: Node, base_dir: Path) -> KernelSource:
    """A kernel to build: a git tree, a ref, at most one kind of series, a kconfig, fragments."""
    keys = mapping(node, SOURCE_KEYS, ("tree", "arch"), SOURCE_EXAMPLE)
    series = [k for k in SERIES_KEYS if k in keys]
    if len(series) > 1:
        raise keys[series[1]].error(f"give one of patches:, range: or mbox:, not {series[0]} and {series[1]}",
                                    "put the whole series in one of them")
    tree_node = keys["tree"]
    tree = _path(tree_node, base_dir, "dir", "../linux")
    try:
        repo = git.open_repo(tree)
    except UsageError as exc:
        raise tree_node.error(exc.problem, exc.fix) from None
    patches = tuple(_path(n, base_dir, "file", "0001-fix.patch") for n in items(keys["patches"], "[0001-fix.patch]")) \
        if "patches" in keys else ()
    if "patches" in keys and not patches:
        raise keys["patches"].error("patches: is empty", "list the patch files, or leave patches: out")
    rng = string(keys["range"], "v6.12..my-fix") if "range" in keys else None
    ref_node = keys.get("ref")
    ref = string(ref_node, "v6.12") if ref_node is not None else (rng.partition("..")[0] if rng else "HEAD")
    _known_ref(repo, ref, ref_node or tree_node)
    if rng is not None:
        start, sep, end = rng.partition("..")
        if not (sep and start and end):
            raise keys["range"].error(f"range {rng!r} is not A..B", "e.g. range: v6.12..my-fix")
        for text in (start, end):
            _known_ref(repo, text, keys["range"])
    return KernelSource(
        name=name,
        arch=arch(keys["arch"]),
        source=SourceTree(
            tree=tree, ref=ref, patches=patches, range=rng,
            mbox=_path(keys["mbox"], base_dir, "file", "series.mbox") if "mbox" in keys else None,
            kconfig=_kconfig(keys["kconfig"], base_dir) if "kconfig" in keys else "defconfig",
            fragments=tuple(_path(n, base_dir, "file", "debug.config")
                            for n in items(keys["fragments"], "[debug.config]"))
            if "fragments" in keys else (),
        ),
    )


def _known_ref(repo: git.Repo, ref: str, node: Node) -> None:
    try:
        git.commit_of(repo, ref)
    except UsageError as exc:
        raise node.error(exc.problem, exc.fix) from None


def _kconfig(node: Node, base_dir: Path) -> str:
    """A .config file (relative to the config file) if one is there, else a make target."""
    text = string(node, "defconfig")
    path = (base_dir / Path(text).expanduser()).resolve()
    if text and text.isprintable() and path.is_file():
        return str(path)
    if MAKE_TARGET_RE.fullmatch(text) and "/" not in text:
        return text
    raise node.error(f"kconfig {text!r} is neither a file nor a make target",
                     "give a .config file (relative to the config file) or a target such as defconfig or tinyconfig")


def kernel_doc(kernel: KernelSource) -> dict[str, Any]:
    """A declared kernel as its `kernels:` entry, paths absolute: what parse_kernels reads back."""
    if kernel.source is not None:
        return source_doc(kernel)
    if kernel.debian is not None:
        deb = kernel.debian
        return {"debian": {"suite": deb.suite, "package": deb.package, "arch": deb.arch, "mirror": deb.mirror}}
    doc: dict[str, Any] = {"image": str(kernel.image), "arch": kernel.arch}
    if kernel.modules is not None:
        doc["modules"] = str(kernel.modules)
    if kernel.config is not None:
        doc["config"] = str(kernel.config)
    return doc


def source_doc(kernel: KernelSource) -> dict[str, Any]:
    """A source kernel as a `kernels:` entry (absolute paths)."""
    spec = kernel.source
    assert spec is not None
    doc: dict[str, Any] = {"tree": str(spec.tree), "ref": spec.ref}
    if spec.patches:
        doc["patches"] = [str(p) for p in spec.patches]
    if spec.range:
        doc["range"] = spec.range
    if spec.mbox:
        doc["mbox"] = str(spec.mbox)
    doc["kconfig"] = spec.kconfig
    if spec.fragments:
        doc["fragments"] = [str(f) for f in spec.fragments]
    doc["arch"] = kernel.arch
    return doc


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


def _path(node: Node, base_dir: Path, kind: str, example: str = "../build/arch/arm64/boot/Image") -> Path:
    """An existing path, relative to the config's folder; `kind` file, dir or any."""
    text = string(node, example)
    if not text or not text.isprintable():
        raise node.error(
            f"path {text!r} is not a usable path", "give a path relative to the config file"
        )
    path = (base_dir / Path(text).expanduser()).resolve()
    if not path.exists():
        raise node.error(
            f"{path} does not exist",
            "build it first, or fix the path (relative to the config file)"
            if example.endswith("Image") else "fix the path (relative to the config file)",
        )
    key = node.path.rsplit(".", 1)[-1].split("[")[0]
    if kind == "file" and not path.is_file():
        raise node.error(f"{path} is not a file", f"{key}: names a file, e.g. {example}")
    if kind == "dir" and not path.is_dir():
        raise node.error(f"{path} is not a directory", f"{key}: names a directory, e.g. {example}")
    return path
