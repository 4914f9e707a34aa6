"""KernelSource -> Kernel: find, fetch, unpack and check a kernel, cached by content.

Two sources, one result:
- Debian: resolve the package (debian.py), then one cache entry per .deb
  sha256 holding the image, the bootable form, config, modules and a
  kernel.json of what was found. A warm resolution reads two small JSON
  files and touches no network.
- Local: the user's image is used in place and hashed; one cache entry per
  image sha256 holds what was read from it and, where QEMU needs it, the
  unpacked Image. A modules tarball is unpacked into an entry of its own.

Every check that would otherwise surface as a confusing boot failure is made
here and reported as the user's mistake: wrong arch, modules of another
build, missing files.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import lzma
import shutil
import tarfile
import time
import zlib
from pathlib import Path
from typing import Any

from harness import atomic, cache
from harness.errors import UsageError
from harness.kernel import debian, source
from harness.kernel.apt import PackageGone
from harness.kernel.debian import Progress, Resolution, log_progress
from harness.kernel.image import ImageInfo, bootable, entry_of, identify
from harness.model import DebianSource, Kernel, KernelSource

# Bump when what an entry holds changes, so old entries are not misread.
ENTRY_FORMAT = 3  # 3: a bzImage with a PVH entry point is kept unpacked (image.bootable); "entry"
META = "kernel.json"


def resolve(src: KernelSource, refresh: bool = False, progress: Progress = log_progress) -> Kernel:
    """The kernel `src` names, on disk and checked; `refresh` re-asks the Debian mirror.

    A source kernel is built if the cache does not have it (harness/kernel/source.py);
    a run builds its source kernels before its first boot, so here it is a cache hit.
    """
    if sum(x is not None for x in (src.image, src.debian, src.source)) != 1:
        raise UsageError(f"kernel {src.name} needs exactly one of image:, debian: or tree:",
                         "give a local image path, a Debian suite/package, or a source tree")
    if src.debian is not None:
        return _resolve_debian(src, src.debian, refresh, progress)
    if src.source is not None:
        return resolve_built(src, source.build(src))
    assert src.image is not None
    return _resolve_local(src, src.image)


def resolve_built(src: KernelSource, built: source.SourceBuild) -> Kernel:
    """A source kernel's build as a bootable Kernel; its origin is the build's facts."""
    local = dataclasses.replace(src, image=built.image, config=built.config, modules=None, source=None)
    kernel = _resolve_local(local, built.image)
    return dataclasses.replace(kernel, origin=dict(built.facts))


def _resolve_debian(src: KernelSource, deb: DebianSource, refresh: bool,
                    progress: Progress) -> Kernel:
    if deb.arch != src.arch:
        raise UsageError(f"kernel {src.name} is {src.arch} but its Debian package is {deb.arch}",
                         "make arch: and debian.arch agree")
    res = debian.resolve_package(deb, refresh, progress)
    try:
        entry = _deb_entry(res, progress)
    except PackageGone:  # a cached resolution named a version the mirror dropped since
        progress(f"{res.image_package} {res.version} has left {res.mirror}; resolving again")
        res = debian.resolve_package(deb, True, progress)
        entry = _deb_entry(res, progress)
    meta = _load_meta(entry)
    _check_arch(src, meta["arch"], entry / meta["original_image"])
    origin = {
        "suite": res.suite, "package": res.package, "image_package": res.image_package,
        "version": res.version, "url": res.url, "deb_sha256": res.sha256,
        "mirror": res.mirror,
        "resolved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(res.resolved_at)),
    }
    return _kernel(src, entry, meta, origin)


def _deb_entry(res: Resolution, progress: Progress) -> Path:
    def build(tmp: Path) -> None:
        deb = debian.fetch_deb(res, progress)
        progress(f"unpacking {deb.name}")
        files = debian.unpack(deb, tmp)
        info = identify(files.image)
        if info.release != files.release:
            raise UsageError(f"{deb.name}: image says {info.release}, file name {files.release}",
                             "report this package; it is inconsistent")
        _write_meta(tmp, info, cache.sha256_file(files.image), files.config, files.modules_dir)

    return cache.entry("kernels", cache.key_of("deb", res.sha256, ENTRY_FORMAT), build)


def _resolve_local(src: KernelSource, given: Path) -> Kernel:
    image = _local_file(given, "image")
    sha = cache.sha256_file(image)

    def build(tmp: Path) -> None:
        _write_meta(tmp, identify(image), sha, None, None)

    entry = cache.entry("kernels", cache.key_of("image", sha, ENTRY_FORMAT), build)
    meta = _load_meta(entry)
    _check_arch(src, meta["arch"], image)
    config = _local_file(src.config, "config") if src.config else None
    config = config or config_beside(image, meta["release"])
    modules = _local_modules(src.modules, meta["release"], image) if src.modules else None
    origin = {"path": str(image)}
    if config:
        origin["config"] = str(config)
    if src.modules:
        origin["modules"] = str(src.modules)
    return _kernel(src, entry, meta, origin, original=image, config=config, modules_dir=modules)


def config_beside(image: Path, release: str) -> Path | None:
    """The .config a kernel build tree or a Debian-style /boot keeps next to the image.

    A developer points image: at <tree>/arch/<arch>/boot/Image; the tree's
    .config then says exactly which drivers are built in, so it is used
    unless config: names another.
    """
    candidates = [image.parent / f"config-{release}"]
    parents = image.parents
    if len(parents) > 3 and parents[0].name == "boot" and parents[2].name == "arch":
        candidates.append(parents[3] / ".config")
    return next((c for c in candidates if c.is_file()), None)


def _write_meta(entry: Path, info: ImageInfo, sha256: str, config: Path | None,
                modules_dir: Path | None) -> None:
    """kernel.json: what the entry holds, paths relative to it (it is renamed into place).

    A path is null when the file is not in the entry: a local image that QEMU
    boots as is, or a local config and modules tree, which stay where they are.
    """
    boot = bootable(info.path, entry / "boot", info)

    def rel(path: Path | None) -> str | None:
        return str(path.relative_to(entry)) if path and path.is_relative_to(entry) else None

    meta = {
        "format": ENTRY_FORMAT, "arch": info.arch, "release": info.release,
        "compression": info.compression, "image_format": info.format, "banner": info.banner,
        "image_sha256": sha256, "image": rel(boot), "original_image": rel(info.path),
        "config": rel(config), "modules_dir": rel(modules_dir), "page_size": info.page_size,
        "entry": entry_of(info, boot),
    }
    atomic.write_json(entry / META, meta)


def _load_meta(entry: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((entry / META).read_text())
    return meta


def _kernel(src: KernelSource, entry: Path, meta: dict[str, Any], origin: dict[str, str], *,
            original: Path | None = None, config: Path | None = None,
            modules_dir: Path | None = None) -> Kernel:
    """The Kernel value: entry paths from kernel.json, the rest (local files) as given."""

    def path(key: str, given: Path | None) -> Path | None:
        return entry / meta[key] if meta.get(key) else given

    original = path("original_image", original)
    assert original is not None
    # Entries written before page_size was recorded: read it from the header once more.
    page_size = meta["page_size"] if "page_size" in meta else identify(original).page_size
    return Kernel(
        name=src.name, arch=meta["arch"], image=path("image", original) or original,
        original_image=original, release=meta["release"], compression=meta["compression"],
        image_sha256=meta["image_sha256"], modules_dir=path("modules_dir", modules_dir),
        config=path("config", config), origin=origin, page_size=page_size,
        entry=meta.get("entry", "as shipped"),
    )


def _check_arch(src: KernelSource, found: str, image: Path) -> None:
    if found != src.arch:
        raise UsageError(f"image {image} is {found} but kernel {src.name} says {src.arch}",
                         "fix arch: or the path")


def _local_file(path: Path, what: str) -> Path:
    path = path.expanduser().absolute()
    if not path.is_file():
        raise UsageError(f"kernel {what} {path} does not exist", f"check {what}:")
    return path


def _local_modules(path: Path, release: str, image: Path) -> Path:
    """The lib/modules/<release> dir of a tree or tarball; another build's is refused."""
    path = path.expanduser().absolute()
    if path.is_file():
        path = _unpacked_tarball(path)
    elif not path.is_dir():
        raise UsageError(f"modules {path} do not exist", "check modules:")
    found = release_dirs(path)
    if not found:
        raise UsageError(f"{path} holds no lib/modules/<release> tree",
                         "pass the INSTALL_MOD_PATH, its lib/modules/<release>, or a tarball")
    for candidate in found:
        if candidate.name == release:
            return candidate
    others = ", ".join(sorted(c.name for c in found))
    raise UsageError(f"modules in {path} are for {others} but image {image} is {release}",
                     "pass the modules of the same build")


def release_dirs(root: Path) -> list[Path]:
    """lib/modules/<release> dirs: `root` itself, or in its lib/modules, usr/lib/modules or top."""
    if _is_release_dir(root):
        return [root]
    found: list[Path] = []
    for parent in (root / "lib/modules", root / "usr/lib/modules", root):
        if parent.is_dir():
            found.extend(d for d in sorted(parent.iterdir()) if _is_release_dir(d))
    return found


def _is_release_dir(path: Path) -> bool:
    markers = ("modules.order", "modules.builtin", "modules.dep", "kernel")
    return path.is_dir() and any((path / m).exists() for m in markers)


def _unpacked_tarball(tarball: Path) -> Path:
    """A modules tarball unpacked into the cache, keyed by its sha256."""

    def build(tmp: Path) -> None:
        try:
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp / "x", filter=_safe_member)
        except _CORRUPT_TAR as exc:
            raise UsageError(f"cannot read modules tarball {tarball} ({exc})",
                             "use a .tar, .tar.gz, .tar.xz or .tar.bz2 of lib/modules") from exc
        found_dirs = release_dirs(tmp / "x")
        if not found_dirs:
            raise UsageError(f"modules tarball {tarball} holds no lib/modules/<release> tree",
                             "tar up INSTALL_MOD_PATH or its lib/modules/<release>")
        for found in found_dirs:
            dest = tmp / "lib/modules" / found.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(found, dest)
            if not (dest / "modules.dep").exists():
                debian.run_depmod(tmp, found.name)
        shutil.rmtree(tmp / "x")

    sha = cache.sha256_file(tarball)
    return cache.entry("modules", cache.key_of("tar", sha, ENTRY_FORMAT), build)


# What a damaged or foreign tarball raises while being read (not disk or permission errors).
_CORRUPT_TAR = (tarfile.TarError, EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error)


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's 'data' filter, but skip (not fail on) links out of the tree, like build/."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


__all__ = ["ENTRY_FORMAT", "config_beside", "release_dirs", "resolve"]
