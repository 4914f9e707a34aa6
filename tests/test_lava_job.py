"""`kharness lava job`: every kind of job it writes is one LAVA's own schema accepts.

The schema is the real one: Debian's lava-common (lava_common.schemas.validate,
strict), run in Debian's /usr/bin/python3 where it is installed
(tests/lava_local.py). Kernels are toy images (tests/fakes/kernels.py): a
job needs the image's facts (arch, page size), not its code; nothing boots.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.lava import devicetypes
from tests import lava_local
from tests.fakes import kernels

CONFIG = """
name: lava-jobs
kernels:
  toy-arm64: {image: Image, arch: arm64}
  toy-x86: {image: bzImage, arch: x86_64}
defaults: {workloads: [idle]}
include:
  - {kernel: toy-arm64}
  - {kernel: toy-arm64, swiotlb: force, workloads: [idle, dd-direct, fio-nvme]}
  - {kernel: toy-arm64, dma_coherent: false, workloads: [dd-direct]}
  - {kernel: toy-arm64, iommu: smmuv3, iommu_platform: true, workloads: [fio-virtio-blk]}
  - {kernel: toy-x86, swiotlb: force, workloads: [dd-direct]}
  - {kernel: toy-arm64, repeat: 2, cmdline: [loglevel=8]}
expectations:
  - {name: minalign, metric: slab.minalign, op: "==", value: 8}
"""
BOARDS = ("juno-r2", "rk3399-rock-pi-4b", "bcm2711-rpi-4-b")


def kharness(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lava-config")
    (d / "Image").write_bytes(kernels.arm64_image())
    (d / "bzImage").write_bytes(kernels.bzimage())
    (d / "c.yaml").write_text(CONFIG)
    return d / "c.yaml"


def jobs_in(out: Path) -> dict[str, dict[str, Any]]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))}


def steps(job: dict[str, Any]) -> list[str]:
    test = next(a["test"] for a in job["actions"] if "test" in a)
    lines: list[str] = test["definitions"][0]["repository"]["run"]["steps"]
    return lines


def images(job: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = next(a["deploy"] for a in job["actions"] if "deploy" in a)["images"]
    return result


def test_every_qemu_job_validates_with_lavas_schema(config: Path, tmp_path: Path) -> None:
    r = kharness("lava", "job", config, "--device-type", "qemu", "--url", "https://lab.example/kh", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    jobs = jobs_in(tmp_path)
    assert len(jobs) == 7  # one per repetition: 5 cells once, one twice
    for name, job in jobs.items():
        assert lava_local.validate(job) == "", name


def test_qemu_job_carries_the_cells_machine(config: Path, tmp_path: Path) -> None:
    kharness("lava", "job", config, "--device-type", "qemu", "--url", "https://lab.example/kh", "-o", tmp_path)
    jobs = jobs_in(tmp_path)
    force = next(j for n, j in jobs.items() if n.startswith("toy-arm64.swiotlb-force"))
    kernel = images(force)["kernel"]
    assert kernel["url"].startswith("https://lab.example/kh/toy-arm64.swiotlb-force-")
    assert "swiotlb=force" in kernel["image_arg"] and "console=ttyAMA0" in kernel["image_arg"]
    assert force["context"]["memory"] == 1024 and "-smp 2" in force["context"]["extra_options"]
    assert force["context"]["cpu"] == "cortex-a72"
    # each scratch disk is an image attached as kharness attaches it (found by serial)
    disks = {k: v for k, v in images(force).items() if k.startswith("disk_")}
    assert set(disks) == {"disk_scratch", "disk_nvme"}
    scratch = disks["disk_scratch"]["image_arg"]
    assert "serial=scratch" in scratch and "{disk_scratch}" in scratch
    assert disks["disk_nvme"]["url"].endswith("/disk-nvme.img.gz")
    # the workloads run in order, each between snapshots, with their parameters
    parts = [s.split()[2] for s in steps(force) if "kharness-lava.sh" in s]
    assert parts[:2] == ["header", "trace-setup"]
    assert parts.index("snapshot-boot") < parts.index("workload-idle") < parts.index("snapshot-after-idle") \
        < parts.index("workload-dd-direct") < parts.index("workload-fio-nvme") < parts.index("dmesg")
    nc = next(j for n, j in jobs.items() if n.startswith("toy-arm64.nc"))
    assert images(nc)["dtb"]["image_arg"] == "-dtb {dtb}"
    smmu = next(j for n, j in jobs.items() if n.startswith("toy-arm64.iommu"))
    assert smmu["context"]["machine"] == "virt,iommu=smmuv3"
    assert "iommu_platform=on" in images(smmu)["disk_vblk"]["image_arg"]
    x86 = next(j for n, j in jobs.items() if n.startswith("toy-x86"))
    assert x86["context"]["arch"] == "x86_64" and x86["context"]["no_kvm"] is True
    assert "-cpu max,-cx16" in x86["context"]["extra_options"]


def test_the_header_names_the_repetition(config: Path, tmp_path: Path) -> None:
    kharness("lava", "job", config, "--device-type", "qemu", "--url", "https://lab.example/kh", "-o", tmp_path)
    jobs = jobs_in(tmp_path)
    for name, job in jobs.items():
        line = next(s for s in steps(job) if " header " in s)
        head = json.loads(base64.b64decode(line.split()[-1]))
        assert f"{head['cell_id']}.{head['rep']}.yaml" == name
        assert head["config"]["name"] == "lava-jobs"
        assert [e["name"] for e in head["expectations"]] == ["minalign"]


@pytest.mark.parametrize("board", BOARDS)
def test_board_jobs_validate_and_boot_the_ramdisk(config: Path, tmp_path: Path, board: str) -> None:
    r = kharness("lava", "job", config, "--cell", "toy-arm64", "--cell", "toy-arm64.loglevel-8",
                 "--device-type", board, "--kernel", "https://lab.example/{kernel}/Image",
                 "--ramdisk", "https://lab.example/{cell}/ramdisk.cpio.gz", "--dtb", "https://lab.example/board.dtb",
                 "--modules", "https://lab.example/modules.tar.xz", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    jobs = jobs_in(tmp_path)
    assert len(jobs) == 3
    for name, job in jobs.items():
        assert lava_local.validate(job) == "", name
        assert job["device_type"] == board
        deploy = job["actions"][0]["deploy"]
        assert deploy["to"] == "tftp" and deploy["ramdisk"]["compression"] == "gz"
        assert deploy["kernel"]["url"] == "https://lab.example/toy-arm64/Image"
        assert deploy["modules"]["compression"] == "xz"
        assert job["actions"][1]["boot"]["commands"] == "ramdisk"
        assert job["actions"][1]["boot"]["prompts"] == ["kharness-lava# "]
    loud = next(j for n, j in jobs.items() if "loglevel" in n)
    assert loud["context"]["extra_kernel_args"] == "loglevel=8"
    # the board's own facts come from tuxlava
    assert dict(devicetypes.get(board).context).items() <= loud["context"].items()


def test_a_board_disk_stands_in_for_a_scratch_disk(config: Path, tmp_path: Path) -> None:
    r = kharness("lava", "job", config, "--cell", "toy-arm64.swiotlb-force", "--device-type", "nfs-juno-r2",
                 "--url", "https://lab.example/kh", "--board-disk", "scratch=/dev/sda",
                 "--board-disk", "nvme=/dev/nvme0n1", "-o", tmp_path)
    assert r.returncode == 0, r.stderr
    (job,) = jobs_in(tmp_path).values()
    assert lava_local.validate(job) == ""
    dd = next(s for s in steps(job) if "workload-dd-direct" in s)
    assert "KH_DEV_SCRATCH=/dev/sda" in dd and "KH_SERIAL" not in dd


@pytest.mark.parametrize(("args", "says"), [
    (["--cell", "toy-arm64.nc", "--device-type", "juno-r2"], "dma_coherent: false"),
    (["--cell", "toy-arm64.iommu.smmuv3", "--device-type", "juno-r2"], "iommu: smmuv3"),
    (["--cell", "toy-x86.swiotlb-force", "--device-type", "rk3399-rock-pi-4b"], "arm64 board"),
    (["--cell", "toy-arm64.swiotlb-force", "--device-type", "juno-r2"], "--board-disk scratch=/dev/"),
    (["--device-type", "no-such-board"], "unknown LAVA device type 'no-such-board'"),
    (["--cell", "nope", "--device-type", "qemu"], "no cell 'nope'"),
    (["--device-type", "qemu", "--kernel", "https://x/{cel}/Image", "--ramdisk", "https://x/r"], "unknown placeholder"),
    (["--device-type", "qemu", "--ramdisk", "https://x/r"], "no kernel or ramdisk URL"),
    (["--device-type", "juno-r2", "--url", "https://x", "--board-disk", "scratch=sda"], "not ID=/dev/NAME"),
])
def test_what_a_device_cannot_do_is_one_line_and_exit_2(config: Path, tmp_path: Path, args: list[str],
                                                          says: str) -> None:
    r = kharness("lava", "job", config, *(["--url", "https://lab.example/kh"] if "--url" not in args
                                           and "--kernel" not in args and "--ramdisk" not in args else []),
                 *args, "-o", tmp_path / "jobs")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert not (tmp_path / "jobs").exists()  # nothing is written when a job is refused


def test_net_workloads_are_refused_everywhere(tmp_path: Path) -> None:
    r = kharness("lava", "job", "configs/minalign.yaml", "--device-type", "qemu", "--url", "https://x",
                 "-o", tmp_path / "j", cwd=Path(__file__).parent.parent)
    assert r.returncode == 2 and "traffic peers" in r.stderr


def test_tuxlava_knows_the_boards() -> None:
    boards = devicetypes.boards()
    assert {"juno-r2", "rk3399-rock-pi-4b"} <= set(boards)
    assert dict(boards["juno-r2"].context)["bootloader_prompt"] == "juno#"
    assert all(b.arch in ("arm64", "x86_64") and b.method == "u-boot" for b in boards.values())
    assert devicetypes.get("nfs-juno-r2") == boards["juno-r2"]
