"""Good configs: what they expand to, and the cell-id contract.

tests/data/configs/good/*.yaml each say `# cells: N`; configs/*.yaml are the
project's own configs and must always load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from harness.config.load import Config, load
from harness.errors import ConfigError
from harness.model import Timeouts, WorkloadRun

ROOT = Path(__file__).resolve().parent.parent
GOOD = Path(__file__).parent / "data" / "configs" / "good"
CORPUS = sorted(GOOD.glob("*.yaml"))
PROJECT = [ROOT / "configs" / "quick.yaml", ROOT / "configs" / "minalign.yaml"]
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}-[0-9a-f]{8}$")
AXIS_KEYS = {
    "kernel",
    "arch",
    "memory",
    "cpus",
    "swiotlb",
    "dma_coherent",
    "iommu_platform",
    "iommu",
    "slub_debug",
    "cmdline",
    "workloads",
}


def declared_count(path: Path) -> int:
    m = re.search(r"^# cells: (\d+)$", path.read_text(), re.M)
    assert m, f"{path.name} needs a '# cells: N' line"
    return int(m.group(1))


def ids(config: Config) -> list[str]:
    return [c.id for c in config.cells]


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_good_config_expands_to_declared_cells(path: Path) -> None:
    config = load(path)
    assert len(config.cells) == declared_count(path)
    assert len(set(ids(config))) == len(config.cells)
    for cell in config.cells:
        assert ID_RE.match(cell.id), cell.id
        assert cell.id.startswith(cell.slug + "-")
        assert {k for k, _ in cell.axes} == AXIS_KEYS
        assert [k for k, _ in cell.axes] == sorted(k for k, _ in cell.axes)
        assert dict(cell.axes)["arch"] == cell.kernel.arch == cell.arch
    json.dumps(config.to_json())  # run.json must be able to hold it


@pytest.mark.parametrize("path", [*CORPUS, *PROJECT], ids=lambda p: p.stem)
def test_ids_are_stable_across_loads_and_folders(path: Path, tmp_path: Path) -> None:
    """Same cell, same id: in another load, and in a copy of the folder elsewhere."""
    copy = tmp_path / "elsewhere"
    shutil.copytree(path.parent, copy)
    assert ids(load(path)) == ids(load(path)) == ids(load(copy / path.name))


def test_quick_is_the_main_job() -> None:
    config = load(ROOT / "configs" / "quick.yaml")
    assert config.name == "quick"
    assert [c.kernel.name for c in config.cells] == [
        "bookworm-arm64",
        "trixie-arm64",
        "bookworm-x86_64",
        "trixie-x86_64",
    ]
    judged = {
        c.kernel.name: [(e.metric, e.value, e.workload) for e in c.expectations]
        for c in config.cells
    }
    assert judged == {
        "bookworm-arm64": [("slab.minalign", 128, "idle")],
        "trixie-arm64": [("slab.minalign", 8, "idle")],
        "bookworm-x86_64": [("slab.minalign", 8, "idle")],
        "trixie-x86_64": [("slab.minalign", 8, "idle")],
    }
    for cell in config.cells:
        assert [w.name for w in cell.workloads] == ["idle", "dd-direct"]
        assert (cell.swiotlb, cell.repeat, cell.dma_coherent) == ("default", 1, True)


def test_quick_ids_are_a_contract() -> None:
    """Result directories of earlier runs are compared by these ids: they must not drift."""
    assert ids(load(ROOT / "configs" / "quick.yaml")) == [
        "bookworm-arm64-ea9a68f6",
        "trixie-arm64-ce1f5ea6",
        "bookworm-x86_64-594faba7",
        "trixie-x86_64-47ffd215",
    ]
    identity = (
        '{"kernel":{"debian":{"arch":"arm64","package":"linux-image-cloud-arm64","suite":"trixie"},'
        '"name":"trixie-arm64"},"workloads":[{"name":"idle","params":{}},{"name":"dd-direct","params":{}}]}'
    )
    assert hashlib.sha256(identity.encode()).hexdigest()[:8] == "ce1f5ea6"


def test_minalign_drops_noncoherent_x86() -> None:
    config = load(ROOT / "configs" / "minalign.yaml")
    assert len(config.cells) == 10
    assert not [c for c in config.cells if c.arch == "x86_64" and not c.dma_coherent]
    assert all(c.repeat == 3 and c.iommu_platform for c in config.cells)
    bounce = [
        c.kernel.name + ":" + c.swiotlb
        for c in config.cells
        if any(e.name == "bounces-noncoherent-after-series" for e in c.expectations)
    ]
    assert bounce == ["trixie-arm64:default"]


def test_matrix_order_first_axis_slowest(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            "matrix: {kernel: [trixie-arm64, bookworm-arm64], swiotlb: [force, noforce]}\n",
        )
    )
    assert [(c.kernel.name, c.swiotlb) for c in config.cells] == [
        ("trixie-arm64", "force"),
        ("trixie-arm64", "noforce"),
        ("bookworm-arm64", "force"),
        ("bookworm-arm64", "noforce"),
    ]


def test_include_replaces_a_matrix_cell_in_place() -> None:
    config = load(GOOD / "include-exclude.yaml")
    cells = [(c.kernel.name, c.dma_coherent, c.swiotlb, c.repeat) for c in config.cells]
    assert cells == [
        ("bookworm-arm64", True, "default", 1),
        ("bookworm-arm64", False, "default", 1),
        ("trixie-arm64", True, "default", 1),
        ("trixie-arm64", False, "default", 5),  # replaced by include[1], same place
        ("trixie-x86_64", True, "default", 1),
        ("trixie-x86_64", True, "force", 1),  # include[0]: new, after the matrix
    ]


def test_include_brings_back_an_excluded_cell(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
matrix: {kernel: [trixie-arm64], swiotlb: [default, force]}
exclude: [{swiotlb: force}]
include: [{kernel: trixie-arm64, swiotlb: force, repeat: 2}]
""",
        )
    )
    assert [(c.swiotlb, c.repeat) for c in config.cells] == [("default", 1), ("force", 2)]


def test_exclude_that_drops_nothing_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path, "matrix: {kernel: [trixie-arm64]}\nexclude: [{kernel: bookworm-arm64}]\n"
    )
    with caplog.at_level(logging.WARNING):
        assert len(load(path).cells) == 1
    assert f"{path}:2: exclude[0]: exclude entry matches no cell" in caplog.text


def test_include_only_merges_timeouts_per_field() -> None:
    config = load(GOOD / "include-only.yaml")
    assert [c.timeouts for c in config.cells] == [
        Timeouts(300, 600, 3600),
        Timeouts(300, 600, 1800),
    ]
    assert [c.memory_mib for c in config.cells] == [1024, 2048]


def test_every_setting_reaches_the_cell() -> None:
    cell = load(GOOD / "settings.yaml").cells[-1]
    assert (cell.memory_mib, cell.cpus, cell.swiotlb, cell.iommu_platform) == (
        2048,
        4,
        "32768",
        True,
    )
    assert cell.slub_debug == ""  # slub_debug: true -> plain "slub_debug"
    assert cell.cmdline == ("loglevel=8", "console=ttyAMA0,115200")
    assert cell.workloads == (
        WorkloadRun("idle"),
        WorkloadRun("dd-direct", (("block_size", 512), ("count", 500))),
        WorkloadRun("sleepy"),
    )
    assert cell.timeouts == Timeouts(240.5, 60, 900)
    assert cell.repeat == 2
    assert cell.kernel_cmdline() == [
        "swiotlb=32768",
        "slub_debug",
        "loglevel=8",
        "console=ttyAMA0,115200",
    ]
    assert [e.name for e in cell.expectations] == ["swiotlb.slots >= 32768", "few bounces with dd"]


def test_local_kernel_paths_are_relative_to_the_config() -> None:
    config = load(GOOD / "local-kernel.yaml")
    kernel = config.cells[0].kernel
    assert kernel.image == GOOD / "build" / "Image"
    assert kernel.modules == GOOD / "build" / "mods"
    assert kernel.config == GOOD / "build" / "config"
    assert kernel.debian is None
    assert [k.name for k in config.kernels] == ["my-build", "trixie-arm64"]


def test_local_kernel_id_ignores_its_path(tmp_path: Path) -> None:
    """A baseline and a patched build at different paths, under one name: same cells."""
    for build in ("base", "patched"):
        (tmp_path / build).mkdir()
        (tmp_path / build / "Image").write_text(build)
    text = "kernels: {k: {image: %s/Image, arch: arm64}}\nmatrix: {kernel: [k]}\n"
    assert ids(load(write(tmp_path, text % "base", "a.yaml"))) == ids(
        load(write(tmp_path, text % "patched", "b.yaml"))
    )


def test_debian_mirror_is_not_identity(tmp_path: Path) -> None:
    deb = (
        "kernels: {sid: {debian: {suite: sid, package: linux-image-cloud-arm64, arch: arm64%s}}}\n"
    )
    plain = load(write(tmp_path, deb % "" + "matrix: {kernel: [sid]}\n", "a.yaml"))
    mirrored = load(
        write(
            tmp_path,
            deb % ", mirror: http://mirror.local/debian" + "matrix: {kernel: [sid]}\n",
            "b.yaml",
        )
    )
    assert ids(plain) == ids(mirrored)
    assert mirrored.cells[0].kernel.debian is not None
    assert mirrored.cells[0].kernel.debian.mirror == "http://mirror.local/debian"


def test_id_does_not_depend_on_config_shape(tmp_path: Path) -> None:
    """The same cell reached through a bigger matrix or an include has one id."""
    wide = load(
        write(
            tmp_path,
            "matrix: {kernel: [trixie-arm64, bookworm-arm64], swiotlb: [default, force]}\n",
            "wide.yaml",
        )
    )
    single = load(
        write(tmp_path, "include: [{kernel: bookworm-arm64, swiotlb: force}]\n", "single.yaml")
    )
    assert single.cells[0].id in ids(wide)


def test_id_ignores_how_a_cell_is_run_but_not_what_it_is(tmp_path: Path) -> None:
    base = "matrix: {kernel: [trixie-arm64]}\n"

    def one(extra: str) -> str:
        return load(write(tmp_path, base + extra)).cells[0].id

    plain = one("")
    assert one("defaults: {repeat: 7, timeouts: {boot: 99}}\n") == plain
    assert one("expectations: [{metric: swiotlb.bounces, op: '==', value: 0}]\n") == plain
    assert one("defaults: {memory: 1024, swiotlb: default}\n") == plain  # the defaults, spelled out
    assert one("defaults: {memory: 1G}\n") == plain
    assert one("defaults: {swiotlb: force}\n") != plain
    assert one("defaults: {cmdline: [quiet]}\n") != plain
    assert one("defaults: {workloads: [{name: idle, params: {seconds: 5}}]}\n") != one(
        "defaults: {workloads: [idle]}\n"
    )


def test_expectation_fields(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
matrix: {kernel: [trixie-arm64, trixie-x86_64]}
defaults: {workloads: [idle]}
expectations:
  - {metric: swiotlb.present, op: "==", value: true, when: {arch: arm64}, workload: boot}
""",
        )
    )
    exp = config.expectations[0]
    assert (exp.name, exp.value, exp.workload, exp.when) == (
        "swiotlb.present == 1",
        1.0,
        "boot",
        (("arch", "arm64"),),
    )
    assert [len(c.expectations) for c in config.cells] == [1, 0]


def test_expectation_for_a_workload_no_cell_runs_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """matrix: {kernel: [trixie-arm64]}
defaults: {workloads: [idle]}
expectations:
  - {metric: swiotlb.bounces, op: "==", value: 0, workload: dd-direct}
""",
    )
    with pytest.raises(
        ConfigError, match=r"c\.yaml:4: expectations\[0\]: expectation .* applies to no cell"
    ):
        load(path)


def test_yaml_anchors_are_fine(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
matrix: {kernel: &k [trixie-arm64, bookworm-arm64]}
exclude: [{kernel: bookworm-arm64}]
include: [{kernel: bookworm-arm64, swiotlb: force}]
""",
        )
    )
    assert len(config.cells) == 2


def test_document_is_kept_as_written() -> None:
    config = load(GOOD / "include-only.yaml")
    assert config.document["include"][1] == {"swiotlb": "noforce", "memory": "2G"}
    record = config.to_json()
    assert record["sha256"] == hashlib.sha256((GOOD / "include-only.yaml").read_bytes()).hexdigest()
    assert record["kernels"]["trixie-arm64"]["debian"]["suite"] == "trixie"
    assert record["cells"] == ids(config)


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    assert (
        load(write(tmp_path, "matrix: {kernel: [trixie-arm64]}\n", "nightly-1.yaml")).name
        == "nightly-1"
    )


def test_user_workload_dirs_are_searched() -> None:
    config = load(GOOD / "settings.yaml")
    assert config.workload_dirs == (GOOD / "workloads",)
    assert "sleepy" in {w.name for c in config.cells for w in c.workloads}
