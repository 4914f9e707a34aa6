"""`kharness lava ramdisk|job|ingest`: cells on LAVA devices, and their jobs' logs back as results.

    kharness lava ramdisk CONFIG [--cell ID] [--device-type qemu] -o DIR   what to upload, per cell
    kharness lava job CONFIG [--cell ID] --device-type TYPE --url BASE -o DIR
    kharness lava ingest JOB_LOG... -o RUN                                  exit as `kharness run`
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path
from typing import Any

import yaml

from harness import atomic, cache, results
from harness.config.cli import locate
from harness.config.load import Config, load
from harness.document import did_you_mean
from harness.errors import EXIT_OK, UsageError
from harness.kernel.resolve import resolve
from harness.lava import devicetypes, ingest, job, ramdisk
from harness.machine import dtb
from harness.machine.qemu import MachineSpec
from harness.model import Cell, Kernel
from harness.run import runner, summary
from harness.run.boot import cell_workloads, disks_for, kernel_facts

RAMDISK = "ramdisk.cpio.gz"
KERNEL = "kernel"
DTB = "noncoherent.dtb"
DISK = "disk-{disk}.img.gz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lava_command", metavar="ACTION", required=True)
    rd = sub.add_parser("ramdisk", help="write each cell's ramdisk (and kernel) to upload for its LAVA jobs",
                        description="Per cell, DIR/<cell-id>/: ramdisk.cpio.gz (the guest userland with a shell on "
                        "the console, no SSH), kernel (the cell's image), and for --device-type qemu the blank "
                        "scratch disks (disk-<id>.img.gz) and a non-coherent cell's noncoherent.dtb.")
    _cells(rd)
    rd.add_argument("--device-type", default=devicetypes.QEMU, metavar="TYPE",
                    help="qemu (default: adds LAVA's overlay disk driver, scratch disks and trees) or a board")
    rd.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="where to write them")
    rd.set_defaults(_lava_main=_ramdisk)

    jb = sub.add_parser("job", help="write one LAVA job definition per cell repetition",
                        description="DIR/<cell-id>.<rep>.yaml per repetition: deploy the cell's kernel and "
                        "ramdisk, boot it with the cell's command line, run its workloads and snapshots on the "
                        "console. URLs may hold {cell}, {kernel}, {arch}.")
    _cells(jb)
    jb.add_argument("--device-type", required=True, metavar="TYPE",
                    help=f"qemu, or a board: {', '.join(devicetypes.boards())}")
    jb.add_argument("--url", metavar="BASE", help="where `kharness lava ramdisk -o DIR` was uploaded: "
                    "BASE/{cell}/kernel, BASE/{cell}/ramdisk.cpio.gz, ... (overridden by the options below)")
    jb.add_argument("--kernel", metavar="URL", help="the kernel image")
    jb.add_argument("--ramdisk", metavar="URL", help="the kharness ramdisk (gzip'd cpio)")
    jb.add_argument("--dtb", metavar="URL", help="the device tree (a board's; qemu: a non-coherent cell's)")
    jb.add_argument("--modules", metavar="URL", help="a modules tarball LAVA adds to the ramdisk (boards)")
    jb.add_argument("--disks", metavar="URL", help="qemu: blank scratch disk images, {disk} the disk's id")
    jb.add_argument("--board-disk", action="append", default=[], metavar="ID=DEV",
                    help="a board's disk for a workload's scratch disk ID (it is overwritten), e.g. scratch=/dev/sda")
    jb.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="where to write the jobs")
    jb.set_defaults(_lava_main=_job)

    ig = sub.add_parser("ingest", help="turn finished LAVA jobs' logs into a result directory",
                        description="Each log (lavacli jobs logs --raw ID > job-ID.yaml, or lava-run's) becomes "
                        "one repetition: cell.json, metrics.json, console.log, raw/, then junit.xml and "
                        "report.html, as `kharness run` writes them. Exit as kharness run.")
    ig.add_argument("logs", type=Path, nargs="+", metavar="JOB_LOG", help="LAVA job logs (YAML)")
    ig.add_argument("-o", "--output", type=Path, required=True, metavar="RUN", help="the result directory (new)")
    ig.add_argument("--workload-dir", type=Path, action="append", default=[], metavar="DIR",
                    help="a folder of workload declarations the config named (workload_dirs)")
    ig.add_argument("-q", "--quiet", action="store_true", help="no summary table")
    ig.set_defaults(_lava_main=_ingest)


def _cells(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, metavar="CONFIG", help="the YAML config (or a shipped one by name)")
    p.add_argument("--cell", action="append", default=[], metavar="ID",
                   help="a cell by id or slug (repeatable; default every cell; kharness expand CONFIG lists them)")


def main(args: argparse.Namespace) -> int:
    rc: int = args._lava_main(args)
    return rc


def select(config: Config, refs: list[str]) -> list[Cell]:
    """The cells named (by id, or by a slug only one cell has); every cell if none is."""
    if not refs:
        return list(config.cells)
    chosen: list[Cell] = []
    for ref in refs:
        found = [c for c in config.cells if c.id == ref] or [c for c in config.cells if c.slug == ref]
        if len(found) != 1:
            hint = did_you_mean(ref, [c.slug for c in config.cells])
            raise UsageError(f"{'no' if not found else len(found)} cell{'s' if found else ''} {ref!r} in "
                             f"{config.path.name}{hint}", "name a cell by id (kharness expand CONFIG lists them)")
        if found[0] not in chosen:
            chosen.append(found[0])
    return chosen


def board_image(kernel: Kernel) -> Path:
    """The image a LAVA job boots: a bzImage as shipped where kharness's own QEMU gets its
    PVH vmlinux (a board's bootloader, or another QEMU, takes the bzImage), else the image
    kharness boots (an Image unpacked where QEMU 7.2 needed it)."""
    return kernel.original_image if kernel.entry == "pvh" else kernel.image


def _ramdisk(args: argparse.Namespace) -> int:
    config = load(locate(args.config))
    dt = devicetypes.get(args.device_type)
    for cell in select(config, args.cell):
        where = args.output / cell.id
        where.mkdir(parents=True, exist_ok=True)
        made = ramdisk.build(cell, where / RAMDISK, overlay_disk=not dt.board, workload_dirs=config.workload_dirs)
        kernel = where / KERNEL
        shutil.copyfile(board_image(made.kernel), kernel)
        files: dict[str, Any] = {RAMDISK: made.sha256, KERNEL: cache.sha256_file(kernel)}
        if not dt.board:
            files |= _qemu_extras(cell, where, made.kernel.page_size)
        atomic.write_json(where / "artefacts.json", {
            "cell": cell.id, "slug": cell.slug, "device_type": dt.name, "kernel": kernel_facts(made.kernel),
            "modules": list(made.modules), "scripts": list(made.scripts), "sha256": files,
        })
        print(f"{cell.id}: {results.shown(where)} ({', '.join(files)})")
    return EXIT_OK


def _qemu_extras(cell: Cell, where: Path, page_size: int | None) -> dict[str, str]:
    """Blank scratch disks (gzip'd: LAVA inflates them) and a non-coherent cell's device tree."""
    files: dict[str, str] = {}
    workloads = cell_workloads(cell)
    for disk in disks_for(workloads):
        name = DISK.format(disk=disk.id)
        with atomic.atomic_open(where / name, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            block = bytes(1 << 20)
            for _ in range(disk.size_mib):
                gz.write(block)
        files[name] = cache.sha256_file(where / name)
    if not cell.dma_coherent:
        spec = MachineSpec(arch=cell.arch, kernel=job.NOWHERE, initrd=job.NOWHERE, cmdline=(),
                           memory_mib=cell.memory_mib, cpus=cell.cpus, disks=disks_for(workloads),
                           iommu_platform=cell.iommu_platform, iommu=cell.iommu, page_size=page_size)
        tree = dtb.noncoherent(spec)
        shutil.copyfile(tree.path, where / DTB)
        files[DTB] = tree.sha256
    return files


def artefacts(args: argparse.Namespace) -> job.Artefacts:
    base = args.url.rstrip("/") if args.url else None
    kernel = args.kernel or (f"{base}/{{cell}}/{KERNEL}" if base else None)
    rd = args.ramdisk or (f"{base}/{{cell}}/{RAMDISK}" if base else None)
    if kernel is None or rd is None:
        raise UsageError("no kernel or ramdisk URL", "give --url BASE (or --kernel URL and --ramdisk URL)")
    qemu = args.device_type == devicetypes.QEMU
    dtb_url = args.dtb or (f"{base}/{{cell}}/{DTB}" if base and qemu else None)
    disks = args.disks or (f"{base}/{{cell}}/{DISK}" if base and qemu else None)
    return job.Artefacts(kernel=kernel, ramdisk=rd, dtb=dtb_url, modules=args.modules, disks=disks)


def board_disks(given: list[str]) -> dict[str, str]:
    disks: dict[str, str] = {}
    for item in given:
        key, sep, dev = item.partition("=")
        if not sep or not key or not dev.startswith("/dev/") or any(c in dev for c in " '\"\\$`;") or ".." in dev:
            raise UsageError(f"--board-disk {item!r}: not ID=/dev/NAME", "e.g. --board-disk scratch=/dev/sda")
        disks[key] = dev
    return disks


def _job(args: argparse.Namespace) -> int:
    config = load(locate(args.config))
    dt = devicetypes.get(args.device_type)
    arts = artefacts(args)
    disks = board_disks(args.board_disk)
    cells = select(config, args.cell)
    rendered: list[tuple[Path, dict[str, Any]]] = []
    for cell in cells:  # every job is rendered (and refused) before any is written
        kernel = resolve(cell.kernel)
        workloads = cell_workloads(cell, config.workload_dirs)
        meta = {"name": config.name, "sha256": config.sha256}
        for rep in range(cell.repeat):
            doc = job.render(cell, rep, dt, workloads, arts, kernel_facts(kernel), meta, disks, kernel.page_size)
            rendered.append((args.output / f"{cell.id}.{rep}.yaml", doc))
    args.output.mkdir(parents=True, exist_ok=True)
    for path, doc in rendered:
        atomic.write_text(path, yaml.safe_dump(doc, sort_keys=False, width=1 << 16))
        print(results.shown(path))
    return EXIT_OK


def _ingest(args: argparse.Namespace) -> int:
    finished, unfinished = ingest.ingest(list(args.logs), args.output, tuple(args.workload_dir))
    if not args.quiet:
        summary.print_summary(args.output, finished + unfinished, color=getattr(args, "color", "auto"))
    return runner.exit_code_of(finished + unfinished)
