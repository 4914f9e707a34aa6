"""The house rules that keep knowledge in one place (README "Architecture").

- the layers in pyproject.toml's import-linter contract are the README's table;
- nothing outside harness/arches/ decides anything by an arch's name;
- a device kind is one file: a toy kind added as one module reaches the
  workload declarations, the QEMU argv, the modules layer, source builds,
  `kernel info` and the guest launcher's environment;
- an arch is one file: a toy arch added as one module is known to configs,
  QEMU's argv and the userland's loader paths.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import arches, devices

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "harness"


def contract_layers() -> list[str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = doc["tool"]["importlinter"]["contracts"]
    return [str(layer) for layer in contract["layers"]]


def readme_layers() -> list[str]:
    """The rows of the README's layer table, top first: its first column, as written."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Layers", 1)[1].split("\n#", 1)[0]
    return [m.group(1).replace("\\|", "|") for line in section.splitlines()
            if (m := re.match(r"\| `(.+?)` \|", line))]


def test_readme_layer_table_is_the_enforced_contract() -> None:
    def norm(layer: str) -> list[str]:
        return sorted(p.strip().removeprefix("harness.") for p in re.split(r"[|:,]", layer))

    assert [norm(layer) for layer in readme_layers()] == [norm(layer) for layer in contract_layers()]


def test_every_package_is_in_a_layer() -> None:
    named = {p.strip() for layer in contract_layers() for p in re.split(r"[|:]", layer)}
    tops = {f"harness.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    tops |= {f"harness.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    assert tops <= named, f"not in any layer: {sorted(tops - named)}"


def _arch_words() -> set[str]:
    words: set[str] = set()
    for p in arches.presets().values():
        words |= {p.name, p.debian, p.triplet, p.host_machine, *p.aliases}
    return words


def _decisions(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """String constants an `==`/`in` comparison or a dict literal key tests against."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                elts = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                for e in elts:
                    if isinstance(e, ast.Constant) and isinstance(e.value, str):
                        yield node.lineno, e.value
        elif isinstance(node, ast.Dict):
            for k in node.keys:
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    yield k.lineno, k.value


def test_no_code_outside_the_arch_files_decides_by_an_arch_name() -> None:
    words = _arch_words()
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "arches"):
            continue
        for line, value in _decisions(ast.parse(path.read_text())):
            if value in words:
                found.append(f"{path.relative_to(ROOT)}:{line}: {value!r}")
    assert not found, "per-arch knowledge outside harness/arches/:\n" + "\n".join(found)


TOY_KIND = '''
from harness.devices import DeviceKind, Driver

KIND = DeviceKind(
    name="toy-disk",
    role="disk",
    description="a toy disk, for the one-file test",
    qemu="toy-blk-pci,drive={drive},serial={id}",
    drivers=(Driver("toy_blk", ("TOY_BLK",), ("toy_core", "toy_blk"), "toy-blk-pci"),),
    find="usb",
    controller="toy-hub,id=toyhub",
    virtio=True,
    build_needs=("TOY_BUS",),
)
'''


@pytest.fixture
def toy_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    kinds = tmp_path / "kinds"
    kinds.mkdir()
    (kinds / "toy_disk.py").write_text(TOY_KIND)
    monkeypatch.setattr(devices, "__path__", [*devices.__path__, str(kinds)])
    yield tmp_path
    sys.modules.pop("harness.devices.toy_disk", None)


def test_a_device_kind_is_one_file(toy_kind: Path) -> None:
    from harness.kernel import build, kconfig
    from harness.machine.qemu import Disk, device_args
    from harness.run import boot, cell
    from harness.workloads import load

    wl_dir = toy_kind / "workloads"
    wl_dir.mkdir()
    (wl_dir / "toy.yaml").write_text("devices: [{kind: toy-disk, id: toy}]\n")
    (wl_dir / "toy.sh").write_text("#!/bin/sh\n")
    wl = load("toy", (wl_dir,))
    assert [d.kind for d in wl.devices] == ["toy-disk"]

    scratch = toy_kind / "scratch"
    scratch.mkdir()
    argv = device_args(boot.disks_for([wl]), scratch, iommu_platform=True)
    assert argv[argv.index("toy-hub,id=toyhub") + 2].startswith("toy-blk-pci,drive=drv-toy,serial=toy")
    assert argv[-1].endswith(devices.ACCESS_PLATFORM)
    assert boot.disks_for([wl]) == (Disk("toy", "toy-disk"),)

    assert boot.modules_for([wl])[-2:] == ["toy_core", "toy_blk"]
    req = build.BuildRequest(Path("/t"), Path("/o"), "x86_64", "defconfig", devices=("toy-disk",))
    assert {"TOY_BUS", "TOY_BLK"} <= set(build.options(req))
    assert "TOY_BLK" not in build.options(build.BuildRequest(Path("/t"), Path("/o"), "x86_64", "defconfig"))
    config = toy_kind / ".config"
    config.write_text("CONFIG_TOY_BLK=m\n")
    assert kconfig.driver_status(config=config)["toy_blk"] == "module"
    assert cell._device_env(wl) == {"KH_SERIAL_TOY": "toy", "KH_FIND_TOY": "usb", "KH_DISKS": "1"}


def test_an_unknown_device_kind_names_the_known_ones() -> None:
    from harness.errors import UsageError

    with pytest.raises(UsageError, match=r"unknown device kind 'floppy'; known: .*nvme"):
        devices.get("floppy")


TOY_ARCH = '''
from harness.arches import ArchBuild, ArchPreset

PRESET = ArchPreset(
    name="toy64", debian="toyel", aliases=("toy",), elf_machine="EM_TOY", triplet="toy64-linux-gnu",
    kernel_format="ToyImage", pe_machine=0x1234, page_sizes=(4096,), qemu="qemu-system-toy64",
    qemu_package="qemu-system-toy", host_machine="toy64", machine="toyboard", cpu_tcg="toycpu",
    cpu_kvm="host", console="ttyTOY0", cmdline=("console=ttyTOY0",),
    build=ArchBuild("toy", "toy", "Image", "arch/toy/boot/Image", "toy64-linux-gnu-", "gcc-toy64-linux-gnu", ()),
)
'''


def test_an_arch_is_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.config.settings import arch
    from harness.document import parse
    from harness.initramfs.elf import default_dirs
    from harness.machine.qemu import MachineSpec, build_argv

    (tmp_path / "toy64.py").write_text(TOY_ARCH)
    monkeypatch.setattr(arches, "__path__", [*arches.__path__, str(tmp_path)])
    arches.presets.cache_clear()
    try:
        assert "toy64" in arches.names() and arches.canonical("TOY") == "toy64"
        assert arch(parse(b"toy64\n", "c.yaml")) == "toy64"
        spec = MachineSpec(arch="toy64", kernel=Path("/k"), initrd=Path("/i"), cmdline=())
        argv = build_argv(spec, arches.preset("toy64"), tmp_path / "c", tmp_path / "q", 2222, tmp_path)
        assert argv[:5] == ["qemu-system-toy64", "-accel", "tcg", "-M", "toyboard"]
        assert "console=ttyTOY0" in argv[argv.index("-append") + 1]
        assert default_dirs("EM_TOY")[:2] == ("/lib/toy64-linux-gnu", "/usr/lib/toy64-linux-gnu")
    finally:
        sys.modules.pop("harness.arches.toy64", None)
        arches.presets.cache_clear()
