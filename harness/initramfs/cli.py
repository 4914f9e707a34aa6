"""`kharness rootfs`: build the guest's base layer ahead of a run, or look into an initrd.

Building ahead is what a CI job does in its setup step, so the run itself
needs no network; `ls` answers "what is actually in this initrd?".
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path

from harness import arches
from harness.errors import UsageError
from harness.initramfs import base, cpio
from harness.model import DEFAULT_MIRROR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rootfs_command", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build (or find in the cache) the base layer for an arch")
    build.add_argument("--arch", choices=arches.names(), required=True, help="guest architecture")
    build.add_argument("--suite", default=base.DEFAULT_SUITE,
                       help=f"Debian suite of the userland (default {base.DEFAULT_SUITE})")
    build.add_argument("--mirror", default=DEFAULT_MIRROR,
                       help="Debian mirror; a snapshot.debian.org URL pins the versions")
    build.add_argument("--gzip", action="store_true",
                       help="gzip the layer (smaller file, no faster boot under TCG)")
    ls = sub.add_parser("ls", help="list the members of an initrd or layer (cpio, gzip or not)")
    ls.add_argument("archive", type=Path)


def main(args: argparse.Namespace) -> int:
    if args.rootfs_command == "ls":
        return _ls(args.archive)
    return _build(args)


def _build(args: argparse.Namespace) -> int:
    spec = base.BaseSpec(arch=args.arch, suite=args.suite, mirror=args.mirror, compress=args.gzip)
    start = time.monotonic()
    layer = base.build_base(spec)
    m = layer.manifest
    print(f"base layer   {layer.path}")
    print(f"arch         {m['arch']} (Debian {m['debian_arch']}), suite {m['suite']}")
    print(f"size         {m['layer_bytes'] / 1e6:.1f} MB, {m['files']} files")
    print(f"time         {time.monotonic() - start:.1f} s "
          f"(built in {m['build_seconds']} s when it was made)")
    wanted = {pkg for pkg, _ in spec.programs}
    print("packages     " + ", ".join(
        f"{p['package']} {p['version']}" for p in m["packages"] if p["package"] in wanted))
    print(f"             (+{len(m['packages']) - len(wanted)} dependencies: see "
          f"{layer.entry / 'manifest.json'})")
    return 0


def _ls(archive: Path) -> int:
    try:
        entries = cpio.read(archive.read_bytes())
    except (OSError, ValueError, zlib.error) as exc:
        raise UsageError(f"cannot read {archive}: {exc}", "give a newc cpio archive") from exc
    for e in entries:
        extra = f" -> {e.data.decode(errors='replace')}" if e.kind == "symlink" else ""
        print(f"{e.mode:07o} {len(e.data):>10} {e.name}{extra}")
    return 0
