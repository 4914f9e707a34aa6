"""The base layer: busybox, dropbear (and fio when asked) with their libraries for one guest arch.

Built from Debian packages with `mmdebstrap --variant=extract`, which only
downloads and unpacks (no maintainer scripts), so a foreign architecture
needs neither binfmt nor qemu-user. mmdebstrap writes a tarball in any mode
(root here and in CI, unshare for a normal user); the programs' directories
are unpacked from it with a path filter, and only the programs, their
shared-library closure (elf.py) and a small skeleton go into the archive.

The layer is cached by its inputs (arch, suite, mirror, program list, the
init script, this module's LAYOUT), not by re-resolving the archive each
time, so a warm build needs no network. The resolved package versions and
.deb hashes are recorded in the entry's manifest.json; to pin them across
machines and time, use a snapshot.debian.org mirror.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from harness import arches, cache
from harness.atomic import write_json
from harness.errors import CommandError, InfraError, UsageError
from harness.initramfs import cpio, elf
from harness.model import DEFAULT_MIRROR, Arch

LAYOUT = 4  # bump when what goes into the layer changes, so old entries are not reused
DEFAULT_SUITE = "bookworm"
LAYER_NAME = "base.cpio"
MMDEBSTRAP_TIMEOUT = 1800  # seconds; a stalled mirror must not hang a CI job forever

# (Debian package, guest programs it provides). Libraries come by themselves.
# busybox's applet links are made here, from the applet list in the binary
# (busybox_applets): `busybox --install -s` at boot cost tens of milliseconds
# of every TCG boot. init still runs it if the list could not be read.
CORE_PROGRAMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("busybox-static", ("/bin/busybox",)),
    ("dropbear-bin", ("/usr/sbin/dropbear",)),
)
# Programs a workload asks for by name (`programs:` in its declaration).
# Debian's fio links every ioengine's library (rbd, rados, gluster, rdma,
# pmem, nbd, ...): 82 of an 88 MB layer, about 1 s more to boot under TCG
# and 88 MB of guest RAM; so only cells whose workloads need fio carry it.
EXTRA_PROGRAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "fio": ("fio", ("/usr/bin/fio",)),
}
PROGRAMS = (*CORE_PROGRAMS, EXTRA_PROGRAMS["fio"])  # everything: the `rootfs build` default


def programs_for(names: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The core programs plus the named extras, in a stable order (one cache entry per set)."""
    wanted = set(names)
    unknown = wanted - set(EXTRA_PROGRAMS)
    if unknown:
        raise UsageError(f"unknown guest program(s) {', '.join(sorted(unknown))}",
                         f"a workload's programs: may name {', '.join(sorted(EXTRA_PROGRAMS))}")
    return (*CORE_PROGRAMS, *(EXTRA_PROGRAMS[n] for n in sorted(wanted)))


# Only these parts of the extracted tree can hold programs and libraries.
_UNPACK = ("bin", "sbin", "lib", "lib64", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64")
_DEBS = "var/cache/apt/archives/"

PASSWD = "root:x:0:0:root:/root:/bin/sh\n"
GROUP = "root:x:0:\n"
SHELLS = "/bin/sh\n"
# init's `mount -a`: one exec for them all (under TCG an exec costs 10-20 ms);
# a kernel without one of them gets the others (busybox mount goes on).
FSTAB = "".join(f"{fs} {where} {fs} defaults 0 0\n" for fs, where in (
    ("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev"),
    ("debugfs", "/sys/kernel/debug"), ("tracefs", "/sys/kernel/tracing")))


@dataclass(frozen=True)
class BaseSpec:
    """What a base layer is built from; equal specs share one cache entry."""

    arch: Arch
    suite: str = DEFAULT_SUITE
    mirror: str = DEFAULT_MIRROR
    programs: tuple[tuple[str, tuple[str, ...]], ...] = PROGRAMS
    # gzip: 35 MB instead of 89 MB, but under TCG inflating costs more than
    # copying saves (unpack 1.2-1.5 s instead of 0.4-0.6 s, measured), so off.
    compress: bool = False

    @property
    def debian_arch(self) -> str:
        return arches.preset(self.arch).debian

    def key(self) -> str:
        init = hashlib.sha256(init_script()).hexdigest()
        return cache.key_of("base", LAYOUT, self.arch, self.suite, self.mirror,
                            self.programs, self.compress, init)


@dataclass(frozen=True)
class BaseLayer:
    path: Path  # the cpio archive (base.cpio or base.cpio.gz)
    entry: Path  # the cache entry directory, with manifest.json
    manifest: dict[str, Any] = field(hash=False, compare=False)


def init_script() -> bytes:
    """The guest's /init, shipped as package data beside this module."""
    return importlib.resources.files("harness.initramfs").joinpath("init.sh").read_bytes()


def build_base(spec: BaseSpec, root: Path | None = None) -> BaseLayer:
    """The cached base layer for `spec`, built on first use."""
    arches.preset(spec.arch)  # an unknown arch is refused before anything is fetched
    entry = cache.entry("initramfs-base", spec.key(), lambda tmp: _build(spec, tmp), root=root)
    manifest = _read_manifest(entry)
    return BaseLayer(path=entry / manifest["layer"], entry=entry, manifest=manifest)


def _read_manifest(entry: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((entry / "manifest.json").read_text())
    return value


def _build(spec: BaseSpec, out: Path) -> None:
    start = time.monotonic()
    work = out / "work"
    tarball = work / "debian.tar"
    mmdebstrap(spec, tarball)
    tree = work / "tree"
    debs = unpack(tarball, tree)
    nodes = elf.closure(tree, [p for _, progs in spec.programs for p in progs])
    members = [*_node_members(nodes), *skeleton(tree, nodes)]
    layer = out / (LAYER_NAME + (".gz" if spec.compress else ""))
    cpio.write(members, layer, compress=spec.compress)
    shutil.rmtree(work)
    write_json(out / "manifest.json", {
        "arch": spec.arch, "debian_arch": spec.debian_arch, "suite": spec.suite,
        "mirror": spec.mirror, "programs": [list(p) for p in spec.programs],
        "packages": debs, "layer": layer.name, "layer_bytes": layer.stat().st_size,
        "layer_sha256": cache.sha256_file(layer),
        "files": len(cpio.with_parents(members)),
        "build_seconds": round(time.monotonic() - start, 1),
    })


def mmdebstrap(spec: BaseSpec, tarball: Path) -> None:
    """Download and unpack the packages (no scripts run) into a tarball."""
    if shutil.which("mmdebstrap") is None:
        raise InfraError("mmdebstrap is not installed", "run ./setup.sh (or apt-get install it)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    argv = [
        "mmdebstrap", "--variant=extract", f"--mode={'root' if root else 'unshare'}",
        f"--architectures={spec.debian_arch}", "--include=" + ",".join(p for p, _ in spec.programs),
        "--aptopt=Acquire::Retries \"3\"",
        # Keep the .debs in the tarball: their names and hashes go into the manifest.
        "--skip=cleanup/apt/cache", "--format=tar", spec.suite, str(tarball), spec.mirror,
    ]
    fix = f"check suite {spec.suite!r}, the mirror and the network"
    if not root:
        fix += " (as non-root, mmdebstrap's unshare mode needs /etc/subuid entries)"
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                              timeout=MMDEBSTRAP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"mmdebstrap took over {MMDEBSTRAP_TIMEOUT} s", fix) from exc
    if proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stderr + proc.stdout, fix)


def unpack(tarball: Path, tree: Path) -> list[dict[str, str]]:
    """Unpack program and library directories into `tree`; return the .debs seen."""
    debs: list[dict[str, str]] = []
    tree.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if name.startswith(_DEBS) and name.endswith(".deb") and member.isfile():
                debs.append(_deb_record(name, tar.extractfile(member)))
            elif _wanted(name) and _kind_ok(member):
                tar.extract(member, tree, filter="tar")
    return sorted(debs, key=lambda d: d["package"])


def _wanted(name: str) -> bool:
    return any(name == top or name.startswith(top + "/") for top in _UNPACK)


def _kind_ok(member: tarfile.TarInfo) -> bool:
    """Directories, files and symlinks; hardlinks only to something also unpacked."""
    if member.islnk():
        return _wanted(member.linkname.removeprefix("./"))
    return member.isdir() or member.isfile() or member.issym()


def _deb_record(name: str, f: IO[bytes] | None) -> dict[str, str]:
    """`busybox-static_1%3a1.35.0-4_arm64.deb` -> package, version (epoch restored), sha256."""
    assert f is not None
    stem = PurePosixPath(name).name.removesuffix(".deb")
    package, version, arch = (urllib.parse.unquote(p) for p in stem.split("_"))
    digest = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
    return {"package": package, "version": version, "arch": arch, "sha256": digest.hexdigest()}


def _node_members(nodes: list[elf.Node]) -> list[cpio.Member]:
    members: list[cpio.Member] = []
    for n in nodes:
        if n.kind == "symlink":
            members.append(cpio.symlink(n.path, n.target))
        else:
            assert n.source is not None
            members.append(cpio.file(n.path, mode=n.source.stat().st_mode & 0o755, source=n.source))
    return members


def skeleton(tree: Path, nodes: list[elf.Node]) -> list[cpio.Member]:
    """/init, accounts for root, and the directories init and busybox expect."""
    have = {n.path for n in nodes}
    members = [
        cpio.file("init", init_script(), mode=0o755),
        cpio.file("etc/passwd", PASSWD.encode()),
        cpio.file("etc/group", GROUP.encode()),
        cpio.file("etc/shells", SHELLS.encode()),
        cpio.file("etc/fstab", FSTAB.encode()),
        cpio.directory("etc/kharness"),
        cpio.directory("etc/dropbear", 0o700),
        cpio.directory("root", 0o700),
        cpio.directory("tmp", 0o1777),
        *(cpio.directory(d) for d in ("proc", "sys", "dev", "run", "var", "usr/bin", "usr/sbin")
          if d not in have),
    ]
    for top in ("bin", "sbin"):
        if top not in have:
            merged = not (tree / top).exists() and (tree / "usr" / top).is_dir()
            members.append(cpio.symlink(top, f"usr/{top}") if merged else cpio.directory(top))
    busybox = [n.path for n in nodes if n.path.endswith("/busybox") and n.kind == "file"]
    if not busybox:
        raise UsageError("no busybox among the base programs", "keep busybox-static in PROGRAMS")
    bindir = PurePosixPath(busybox[0]).parent
    source = next(n.source for n in nodes if n.path == busybox[0])
    assert source is not None
    sh = f"{bindir}/sh"
    if sh not in have:  # the #! of /init
        members.append(cpio.symlink(sh, "busybox"))
    shipped = {PurePosixPath(p).name for p in have}  # a Debian program beats an applet
    members += [cpio.symlink(f"{bindir}/{name}", "busybox")
                for name in busybox_applets(source.read_bytes())
                if name not in shipped and name not in ("sh", "busybox")]
    members.append(cpio.symlink("var/run", "../run"))
    return members


_APPLET = re.compile(rb"[a-z0-9\[][a-z0-9._\[-]*")


def busybox_applets(binary: bytes) -> list[str]:
    """The applet names compiled into a busybox binary, or [] if none are found.

    busybox keeps them as one sorted, NUL-separated table that begins with
    "[" and "[[" (applet_names[] in libbb/appletlib.c); read from the file,
    since the guest's busybox may be another arch's. Anything else that looks
    like the table but is not sorted, or is short, is refused.
    """
    start = binary.find(b"\0[\0[[\0")
    if start < 0:
        return []
    names: list[bytes] = []
    for token in binary[start + 1: start + 1 + 65536].split(b"\0"):
        if not token:
            break
        if not _APPLET.fullmatch(token) or (names and token <= names[-1]) or len(token) > 32:
            return []
        names.append(token)
    return [n.decode() for n in names] if len(names) >= 50 else []
