"""`kharness kernel fetch|info`: get kernels into the cache and say what an image is.

fetch is how a CI job warms its cache before running (and how a person sees
which exact Debian kernel a default name means today); info answers "will
this image boot, and does it drive the devices my workloads need?".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rich.text import Text

from harness import arches, devices
from harness.errors import EXIT_OK, UsageError
from harness.formats import terminal
from harness.kernel import kconfig
from harness.kernel.debian import Progress
from harness.kernel.defaults import CLOUD_KERNELS, DEFAULT_KERNELS
from harness.kernel.image import ImageInfo, identify
from harness.kernel.resolve import config_beside, resolve
from harness.model import DEFAULT_MIRROR, DebianSource, Kernel, KernelSource


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kernel_command", metavar="ACTION", required=True)
    names = ", ".join(DEFAULT_KERNELS)
    fetch = sub.add_parser(
        "fetch", help="fetch kernels into the cache and print what they are",
        description="Fetch default kernels by name (all four when none is named) or one "
        "Debian package given by --suite/--arch [--package].",
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"one of: {names}")
    fetch.add_argument("--suite", help="Debian suite, e.g. bookworm, trixie, bookworm-backports")
    fetch.add_argument("--arch", choices=arches.names(), help="kernel architecture")
    fetch.add_argument("--package", help="Debian package (default linux-image-cloud-<arch>)")
    fetch.add_argument("--mirror", default=DEFAULT_MIRROR,
                       help="Debian mirror URL (also for default kernels named)")
    fetch.add_argument("--refresh", action="store_true",
                       help="ask the mirror again even if a recent resolution is cached")
    fetch.add_argument("--json", action="store_true", help="print JSON instead of text")
    fetch.add_argument("-j", "--jobs", type=int, default=2, help="kernels fetched at once")
    fetch.set_defaults(_kernel_main=_fetch)

    info = sub.add_parser(
        "info", help="show what a kernel image is and which guest drivers it has",
        description="Show arch, release, format and compression of an image file or a "
        "default kernel, and whether it drives the devices workloads use.",
    )
    info.add_argument("target", metavar="PATH|NAME", help=f"an image file, or one of: {names}")
    info.add_argument("--config", type=Path, help="the kernel's .config (for the driver table)")
    info.add_argument("--modules", type=Path, help="its lib/modules/<release> tree")
    info.add_argument("--refresh", action="store_true", help="re-resolve a default kernel")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(_kernel_main=_info)


def main(args: argparse.Namespace) -> int:
    rc: int = args._kernel_main(args)
    return rc


def _fetch(args: argparse.Namespace) -> int:
    sources = _fetch_sources(args)
    total = time.monotonic()

    def one(src: KernelSource) -> dict[str, Any]:
        start = time.monotonic()
        kernel = resolve(src, args.refresh, _progress(src.name))
        return _fetch_row(kernel, time.monotonic() - start)

    # Kernels are independent and their steps alternate between network
    # (index, .deb) and CPU (lz4 index, xz data, depmod): on 2 cores the four
    # defaults took 19-21 s one by one, 17-19 s two at a time, 19-22 s all at once.
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(one, sources))
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        _print_fetched(row)
    if len(rows) > 1:
        print(f"{len(rows)} kernels in {time.monotonic() - total:.2f} s")
    return EXIT_OK


def _fetch_sources(args: argparse.Namespace) -> list[KernelSource]:
    if args.suite or args.package or args.arch:
        if args.names:
            raise UsageError("give kernel names or --suite/--arch, not both", "pick one")
        if not (args.suite and args.arch):
            raise UsageError("a Debian package needs both --suite and --arch",
                             "add the missing one")
        package = args.package or f"linux-image-cloud-{arches.preset(args.arch).debian}"
        name = f"{args.suite}-{args.arch}" if not args.package else f"{args.suite}-{package}"
        deb = DebianSource(suite=args.suite, package=package, arch=args.arch, mirror=args.mirror)
        return [KernelSource(name=name, arch=args.arch, debian=deb)]
    return [_default(name, args.mirror) for name in args.names or CLOUD_KERNELS]


def _default(name: str, mirror: str = DEFAULT_MIRROR) -> KernelSource:
    """A default kernel by name, fetched from `mirror` (a local mirror, a snapshot)."""
    try:
        src = DEFAULT_KERNELS[name]
    except KeyError:
        raise UsageError(f"no default kernel named {name!r}",
                         f"use one of {', '.join(DEFAULT_KERNELS)}") from None
    if src.debian is None or mirror == src.debian.mirror:
        return src
    return replace(src, debian=replace(src.debian, mirror=mirror))


def _fetch_row(kernel: Kernel, seconds: float) -> dict[str, Any]:
    origin = kernel.origin
    return {
        "name": kernel.name, "arch": kernel.arch, "release": kernel.release,
        "version": origin.get("version", ""), "package": origin.get("image_package", ""),
        "deb_sha256": origin.get("deb_sha256", ""), "url": origin.get("url", ""),
        "image_sha256": kernel.image_sha256, "compression": kernel.compression,
        "image": str(kernel.image), "original_image": str(kernel.original_image),
        "modules_dir": str(kernel.modules_dir or ""), "config": str(kernel.config or ""),
        "seconds": round(seconds, 3),
    }


def _print_fetched(row: dict[str, Any]) -> None:
    lines = [
        row["name"],
        f"  version  {row['version']} ({row['package']})" if row["version"] else "",
        f"  release  {row['release']}",
        f"  arch     {row['arch']}",
        f"  deb      sha256:{row['deb_sha256']}" if row["deb_sha256"] else "",
        f"  image    sha256:{row['image_sha256']}",
        f"  path     {row['image']}",
        f"  modules  {row['modules_dir']}" if row["modules_dir"] else "",
        f"  time     {row['seconds']:.2f} s",
    ]
    print("\n".join(line for line in lines if line))


def _info(args: argparse.Namespace) -> int:
    path = Path(args.target).expanduser()
    kernel: Kernel | None = None
    if path.exists():
        info = identify(path)
        config = args.config or config_beside(path, info.release)
        beside = path.parent.parent / "lib/modules" / info.release  # /boot -> /lib/modules
        modules = args.modules or (beside if beside.is_dir() else None)
    elif args.target in DEFAULT_KERNELS:
        kernel = resolve(DEFAULT_KERNELS[args.target], args.refresh, _progress(args.target))
        info = identify(kernel.original_image)
        config, modules = args.config or kernel.config, args.modules or kernel.modules_dir
    else:
        raise UsageError(f"{args.target} is neither a file nor a default kernel name",
                         f"give a path or one of {', '.join(DEFAULT_KERNELS)}")
    drivers = kconfig.driver_status(config=config, modules_dir=modules)
    if args.json:
        value = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()}
        value.update(config=str(config or ""), modules_dir=str(modules or ""), drivers=drivers)
        if kernel is not None:
            value["origin"] = kernel.origin
            value["boot_image"] = str(kernel.image)  # what QEMU's -kernel gets
        print(json.dumps(value, indent=2))
    else:
        _print_info(info, config, modules, drivers, kernel, getattr(args, "color", "auto"))
    return EXIT_OK


def _print_info(info: ImageInfo, config: Path | None, modules: Path | None,
                drivers: dict[str, kconfig.State], kernel: Kernel | None, color: str = "auto") -> None:
    facts = [
        ("file", str(info.path)),
        ("arch", info.arch),
        ("release", info.release),
        ("format", info.format + ("" if info.qemu_boots_as_is else " (unpacked for QEMU)")),
        ("compression", info.compression),
        ("size", f"{info.size / 1e6:.1f} MB ({info.size} bytes)"),
        ("page size", f"{info.page_size // 1024} KiB" if info.page_size else "unknown"),
        ("boot protocol", info.boot_protocol or ""),
        ("boots as", "its vmlinux, through the PVH entry (the guest decompresses nothing)"
         if kernel is not None and kernel.entry == "pvh" else ""),
        ("banner", info.banner),
        ("version", kernel.origin.get("version", "") if kernel else ""),
        ("config", str(config) if config else "none"),
        ("modules", str(modules) if modules else "none"),
    ]
    for key, value in facts:
        if value:
            print(f"{key:<14}{value}")
    source = "config" if config else "modules tree" if modules else "nothing (give --config)"
    # Box drawing on a terminal only: `kernel info X | cat` or grep get plain columns.
    term = terminal.of(sys.stdout, color, pipe_width=120)
    table = term.table(title=Text(f"guest drivers (from {source})"), title_justify="left")
    for column in ("driver", "state", "QEMU device"):
        table.add_column(column)
    for name, state in drivers.items():
        table.add_row(Text(name), Text(state), Text(devices.drivers()[name].device))
    term.print(sys.stdout, table)


def _progress(name: str) -> Progress:
    def say(message: str) -> None:
        print(f"kernel {name}: {message}", file=sys.stderr, flush=True)

    return say
