"""Debian kernel packages: which exact version a (suite, package, arch) means, and its files.

Resolution follows a meta package (linux-image-cloud-arm64) through its
Depends to the package that holds the image (linux-image-6.12.x+deb13-cloud-
arm64, the signed build that also carries the modules), and records the
exact version, URL and sha256 from the signed index: old versions leave the
archive, so results must say which one ran.

A resolution is reused for KHARNESS_RESOLVE_TTL seconds (default a day)
without touching the network, so a warm run resolves its kernels in
milliseconds; `refresh` asks the mirror again. When the TTL has run out and
the mirror cannot be reached, the last resolution is used with a warning, so
an offline machine keeps working with what it already has.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import arches, atomic, cache
from harness.errors import CommandError, InfraError, UsageError
from harness.kernel.apt import PackageGone, PrivateApt, parse_depends
from harness.model import DebianSource

Progress = Callable[[str], None]

DEFAULT_TTL = 86400.0
MAX_META_DEPTH = 4  # meta -> image is one step; a few more tolerate meta-of-meta packages
_log = logging.getLogger(__name__)


def log_progress(message: str) -> None:
    """The default progress sink: the log, for callers that print nothing."""
    _log.info("%s", message)


@dataclass(frozen=True)
class Resolution:
    """What a (mirror, suite, package, arch) named at `resolved_at` (epoch seconds)."""

    mirror: str
    suite: str
    package: str  # as asked for, usually a meta package
    arch: str  # Debian's name
    image_package: str  # the package holding the image and modules
    version: str
    url: str
    filename: str
    size: int
    sha256: str
    resolved_at: float

    @classmethod
    def from_json(cls, value: object) -> Resolution | None:
        """A stored resolution, or None when it is unreadable (then resolve again)."""
        try:
            return cls(**value) if isinstance(value, dict) else None
        except TypeError:
            return None


@dataclass(frozen=True)
class DebFiles:
    """The parts of an unpacked image package kharness uses."""

    release: str
    image: Path  # boot/vmlinuz-<release>
    config: Path | None  # boot/config-<release>
    modules_dir: Path | None  # lib/modules/<release> (moved there from usr/lib/modules)


def resolve_package(src: DebianSource, refresh: bool = False,
                    progress: Progress = log_progress) -> Resolution:
    """The exact package version `src` names now: cached within the TTL, else from apt."""
    ttl = resolve_ttl()
    apt = apt_for(src)
    path = _resolution_path(src)
    cached = _load(path)
    if cached and not refresh and _fresh(cached, ttl):
        return cached
    with apt.locked():
        cached = _load(path)  # another process may have resolved it while we waited
        if cached and not refresh and _fresh(cached, ttl):
            return cached
        try:
            res = _resolve_with_apt(apt, src, progress)
        except InfraError as exc:
            if cached is None or refresh:
                raise
            age = (time.time() - cached.resolved_at) / 3600
            progress(f"warning: {exc}; using the resolution from {age:.0f} h ago "
                     f"({cached.image_package} {cached.version})")
            return cached
        atomic.write_json(path, asdict(res))
    return res


def fetch_deb(res: Resolution, progress: Progress = log_progress) -> Path:
    """The .deb of `res`, downloaded once into a cache entry named by its sha256."""

    def build(tmp: Path) -> None:
        apt = PrivateApt.at(res.mirror, res.suite, res.arch)
        progress(f"downloading {res.url} ({res.size / 1e6:.1f} MB)")
        with apt.locked():
            if not apt.has_lists():
                apt.update()
            got = apt.download(res.image_package, res.version, tmp)
            apt.trim()
        digest = cache.sha256_file(got)
        if digest != res.sha256:
            raise InfraError(f"{got.name} has sha256 {digest}, the index says {res.sha256}",
                             "retry; if it persists the mirror is broken")
        if got.name != res.filename:
            got.rename(tmp / res.filename)

    return cache.entry("debs", res.sha256, build) / res.filename


def _deb_entry(sha256: str) -> Path:
    return cache.cache_root() / "debs" / sha256


def unpack(deb: Path, dest: Path) -> DebFiles:
    """Extract the image, config and modules of an image package into `dest`.

    Debian 12 ships modules in /lib/modules, Debian 13 (merged /usr) in
    /usr/lib/modules; both end up in `dest/lib/modules/<release>`. The rest
    (device trees, docs) is dropped. modules.dep is not in the package (its
    postinst runs depmod), so depmod is run here, as installing would.
    """
    raw = dest / ".deb-contents"
    _run(["dpkg-deb", "-x", str(deb), str(raw)])
    images = sorted((raw / "boot").glob("vmlinuz-*"))
    if not images:
        raise UsageError(f"{deb.name} holds no boot/vmlinuz-*",
                         "name a linux-image package (or its meta package)")
    release = images[0].name.removeprefix("vmlinuz-")
    boot = dest / "boot"
    boot.mkdir()
    image = Path(shutil.move(images[0], boot / images[0].name))
    config = _move_if_present(raw / "boot" / f"config-{release}", boot / f"config-{release}")
    modules = None
    for base in ("usr/lib/modules", "lib/modules"):
        modules = modules or _move_if_present(raw / base / release, dest / "lib/modules" / release)
    shutil.rmtree(raw)
    if modules is not None:
        run_depmod(dest, release)
    return DebFiles(release=release, image=image, config=config, modules_dir=modules)


def run_depmod(base: Path, release: str) -> bool:
    """Write modules.dep & co. for `base`/lib/modules/<release>; False if depmod is absent.

    depmod looks under <base>/lib/modules or <base>/usr/lib/modules depending
    on how kmod was built, so a scratch base offers both, pointing at ours.
    """
    depmod = shutil.which("depmod") or next(
        (p for p in ("/usr/sbin/depmod", "/sbin/depmod") if os.access(p, os.X_OK)), None)
    if depmod is None:
        _log.warning("depmod not found; no modules.dep for %s (apt-get install kmod)", release)
        return False
    scratch = base / ".depmod"
    for link in (scratch / "lib/modules", scratch / "usr/lib/modules"):
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to((base / "lib/modules").resolve())
    try:
        _run([depmod, "-a", "-b", str(scratch), release])
    finally:
        shutil.rmtree(scratch)
    return True


def apt_for(src: DebianSource) -> PrivateApt:
    return PrivateApt.at(src.mirror, src.suite, arches.preset(src.arch).debian)


def resolve_ttl() -> float:
    value = os.environ.get("KHARNESS_RESOLVE_TTL", "")
    if not value:
        return DEFAULT_TTL
    try:
        return float(value)
    except ValueError:
        raise UsageError(f"KHARNESS_RESOLVE_TTL={value!r} is not a number",
                         "set it to seconds, e.g. 86400") from None


def _resolve_with_apt(apt: PrivateApt, src: DebianSource, progress: Progress) -> Resolution:
    progress(f"updating the package index of {src.suite}/{apt.arch} from {src.mirror}")
    apt.update()
    image_package, version = _follow_meta(apt, src.package)
    deb = apt.deb_file(image_package, version)
    if _deb_entry(deb.sha256).is_dir():  # nothing to download: apt's cache is not needed
        apt.trim()
    progress(f"{src.package} in {src.suite} is {image_package} {version}")
    return Resolution(
        mirror=apt.mirror, suite=src.suite, package=src.package, arch=apt.arch,
        image_package=image_package, version=version, url=deb.url, filename=deb.filename,
        size=deb.size, sha256=deb.sha256, resolved_at=time.time(),
    )


def _follow_meta(apt: PrivateApt, package: str) -> tuple[str, str]:
    """(package, version) holding the image: follow linux-image-* Depends from `package`.

    A meta package depends on exactly one linux-image-<abi>-<flavour> (= version);
    an image package depends on kmod, initramfs-tools and the like, never on
    another linux-image-*, which is how the end of the chain is recognised.
    """
    name, version = package, None
    for _ in range(MAX_META_DEPTH):
        stanza = apt.show(name, version)
        target = image_dependency(stanza.get("Depends", ""))
        if target is None:
            return name, stanza["Version"]
        name, version = target
    raise UsageError(f"{package} does not lead to a kernel image package",
                     "name a linux-image-* package")


def image_dependency(depends: str) -> tuple[str, str | None] | None:
    """The first linux-image-* dependency and its exact version (if pinned with '=')."""
    for group in parse_depends(depends):
        for name, constraint in group:
            if name.startswith("linux-image-"):
                pinned = constraint is not None and constraint.startswith("=")
                return name, constraint[1:].strip() if constraint and pinned else None
    return None


def _resolution_path(src: DebianSource) -> Path:
    key = cache.key_of(src.mirror.rstrip("/"), src.suite, src.package, arches.preset(src.arch).debian)
    return cache.cache_root() / "resolutions" / f"{key}.json"


def _load(path: Path) -> Resolution | None:
    try:
        return Resolution.from_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _fresh(res: Resolution, ttl: float) -> bool:
    return 0 <= time.time() - res.resolved_at < ttl


def _move_if_present(src: Path, dest: Path) -> Path | None:
    if not src.exists():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.move(src, dest))


def _run(argv: list[str]) -> None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise InfraError(f"{argv[0]} not found", "apt-get install dpkg kmod") from exc
    if out.returncode != 0:
        raise CommandError(argv, out.returncode, out.stdout + out.stderr)


__all__ = ["DebFiles", "PackageGone", "Progress", "Resolution", "fetch_deb", "resolve_package",
           "unpack"]
