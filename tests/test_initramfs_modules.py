"""Modules layer: dependency order, builtins, names, decompression, the load list."""

from __future__ import annotations

import gzip
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InfraError, UsageError
from harness.initramfs import cpio, modules

RELEASE = "6.12.0-test"

# name -> (path under kernel/, modinfo depends)
TREE = {
    "virtio_net": ("drivers/net/virtio_net.ko.xz", "net_failover"),
    "net_failover": ("drivers/net/net_failover.ko.xz", "failover"),
    "failover": ("net/core/failover.ko.xz", ""),
    "virtio_blk": ("drivers/block/virtio_blk.ko.gz", ""),
    "sd_mod": ("drivers/scsi/sd_mod.ko", "scsi_mod,scsi_common"),
    "scsi_mod": ("drivers/scsi/scsi_mod.ko", "scsi_common"),
    "scsi_common": ("drivers/scsi/scsi_common.ko", ""),
    "virtio-rng": ("drivers/char/hw_random/virtio-rng.ko.xz", ""),
}
BUILTIN = "kernel/drivers/nvme/host/nvme.ko\nkernel/drivers/virtio/virtio_pci.ko\n"


def _ko(name: str, depends: str, work: Path) -> bytes:
    """A small relocatable ELF with a .modinfo section, as modpost writes one."""
    src = work / f"{name}.c"
    info = f"depends={depends}\\0name={name.replace('-', '_')}\\0"
    src.write_text(f'__attribute__((section(".modinfo"), used)) static const char i[] = "{info}";\n')
    obj = work / f"{name}.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(src)], check=True)
    return obj.read_bytes()


def _compress(data: bytes, path: str) -> bytes:
    if path.endswith(".xz"):
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    if path.endswith(".gz"):
        return gzip.compress(data, mtime=0)
    return data


def _tree(root: Path, with_dep: bool) -> Path:
    mdir = root / "lib/modules" / RELEASE
    work = root / "work"
    work.mkdir(parents=True)
    for name, (path, deps) in TREE.items():
        f = mdir / "kernel" / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(_compress(_ko(name, deps, work), path))
    (mdir / "modules.builtin").write_text(BUILTIN)
    if with_dep:
        lines = [
            f"kernel/{path}: " + " ".join(f"kernel/{TREE[d][0]}" for d in _all_deps(name))
            for name, (path, _) in TREE.items()
        ]
        (mdir / "modules.dep").write_text("\n".join(lines) + "\n")
    return mdir


def _all_deps(name: str) -> list[str]:
    """Transitive, as depmod writes modules.dep."""
    out: list[str] = []
    for d in filter(None, TREE[name][1].split(",")):
        out += [d, *(x for x in _all_deps(d) if x not in out)]
    return list(dict.fromkeys(out))


@pytest.fixture(params=["modules.dep", "modinfo"])
def mdir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("needs the host's gcc to build small ELF objects")
    return _tree(tmp_path, with_dep=request.param == "modules.dep")


def _names(p: modules.Plan) -> list[str]:
    return [m.name for m in p.order]


def test_dependencies_come_first(mdir: Path) -> None:
    p = modules.plan(mdir, ["virtio_net", "sd_mod"])
    names = _names(p)
    assert names.index("failover") < names.index("net_failover") < names.index("virtio_net")
    assert names.index("scsi_common") < names.index("scsi_mod") < names.index("sd_mod")
    assert len(names) == len(set(names)) == 6


def test_builtins_are_skipped_and_reported(mdir: Path) -> None:
    p = modules.plan(mdir, ["nvme", "virtio-pci", "virtio_blk"])
    assert p.builtin == ("nvme", "virtio_pci")
    assert _names(p) == ["virtio_blk"]


def test_dash_and_underscore_are_the_same_name(mdir: Path) -> None:
    assert _names(modules.plan(mdir, ["virtio_rng"])) == ["virtio_rng"]
    assert _names(modules.plan(mdir, ["virtio-net"])) == _names(modules.plan(mdir, ["virtio_net"]))


def test_unknown_module_names_module_and_release(mdir: Path) -> None:
    with pytest.raises(UsageError, match=rf"module usb_storage .* kernel {RELEASE}"):
        modules.plan(mdir, ["usb-storage"])


def test_guest_paths_are_decompressed_under_usr_lib_modules(mdir: Path) -> None:
    p = modules.plan(mdir, ["virtio_blk", "failover"])
    assert {m.guest_path for m in p.order} == {
        f"/usr/lib/modules/{RELEASE}/kernel/drivers/block/virtio_blk.ko",
        f"/usr/lib/modules/{RELEASE}/kernel/net/core/failover.ko",
    }


def test_layer_has_plain_modules_and_the_load_list(mdir: Path, tmp_path: Path) -> None:
    layer = modules.build_modules_layer(mdir, ["virtio_net", "virtio_blk"], root=tmp_path / "c")
    entries = {e.name: e for e in cpio.read(layer.path.read_bytes())}
    text = entries["etc/kharness/modules"].data.decode()
    assert text.startswith("# kharness: ")
    # sourced as /init sources it: every module early (no early ones named), in order
    loaded = subprocess.run(["sh", "-c", 'early() { echo "early $1"; }; late() { echo "late $1"; }; . "$0"',
                             _write(tmp_path / "list", text)], capture_output=True, text=True, check=True)
    pairs = [line.split(" ", 1) for line in loaded.stdout.splitlines()]
    assert [(kind, path.rsplit("/", 1)[-1]) for kind, path in pairs] == [
        ("early", "virtio_blk.ko"), ("early", "failover.ko"), ("early", "net_failover.ko"), ("early", "virtio_net.ko"),
    ]
    for _, path in pairs:
        assert entries[path.lstrip("/")].data.startswith(b"\x7fELF")


def test_a_module_path_the_list_cannot_hold_is_refused(mdir: Path, tmp_path: Path) -> None:
    """The list is sourced by init: a path with a space (or a quote, a $) would be code or two words."""
    odd = tmp_path / "6.12.0 x"
    shutil.copytree(mdir, odd)
    with pytest.raises(UsageError, match="has a character the guest's init cannot take"):
        modules.build_modules_layer(odd, ["virtio_blk"], root=tmp_path / "c")


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_layer_is_cached_and_deterministic(mdir: Path, tmp_path: Path) -> None:
    a = modules.build_modules_layer(mdir, ["virtio_net"], root=tmp_path / "c1")
    b = modules.build_modules_layer(mdir, ["virtio-net", "nvme"], root=tmp_path / "c2")
    again = modules.build_modules_layer(mdir, ["virtio_net"], root=tmp_path / "c1")
    assert a.path.read_bytes() == b.path.read_bytes()
    assert again.path == a.path
    assert a.path.parent.name == b.path.parent.name  # same key: builtins do not change it


def test_a_dependency_loop_is_reported(tmp_path: Path) -> None:
    mdir = tmp_path / RELEASE
    (mdir / "kernel").mkdir(parents=True)
    for n in ("a", "b"):
        (mdir / f"kernel/{n}.ko").write_bytes(b"")
    (mdir / "modules.dep").write_text("kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n")
    with pytest.raises(UsageError, match="loop: a -> b -> a"):
        modules.plan(mdir, ["a"])


def test_not_a_modules_dir(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no kernel/ directory"):
        modules.plan(tmp_path, ["x"])


def test_zstd_without_zstandard_says_how_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ko = tmp_path / "x.ko.zst"
    ko.write_bytes(b"\x28\xb5\x2f\xfd")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import fails
    with pytest.raises(InfraError, match="zstandard"):
        modules.decompress(ko)


def test_device_kinds_have_module_lists() -> None:
    from harness import devices

    assert all(kind.modules for kind in devices.kinds().values() if kind.role != "iommu")
    assert set(devices.get("virtio-net").modules) == {"virtio_pci", "virtio_net"}


def test_early_modules_load_before_ready_and_the_rest_after(tmp_path: Path) -> None:
    """The SSH NIC's driver (and what it needs) before init's READY line; the rest after it."""
    mdir = _tree(tmp_path, with_dep=True)
    p = modules.plan(mdir, ["virtio_blk", "virtio_net"], early=["virtio_net"])
    assert [m.name for m in p.order[:p.ready_at]] == ["failover", "net_failover", "virtio_net"]
    assert [m.name for m in p.order[p.ready_at:]] == ["virtio_blk"]
    layer = modules.build_modules_layer(mdir, ["virtio_blk", "virtio_net"], root=tmp_path / "c",
                                        early=["virtio_net"])
    entries = {e.name: e for e in cpio.read(layer.path.read_bytes())}
    lines = entries[modules.LIST_PATH].data.decode().splitlines()[1:]
    listing = [f"{kind} {path.rsplit('/', 1)[-1]}" for kind, path in (line.split(" ", 1) for line in lines)]
    assert listing == ["early failover.ko", "early net_failover.ko", "early virtio_net.ko", "late virtio_blk.ko"]
    # where READY falls is part of the cache key
    assert modules.build_modules_layer(mdir, ["virtio_blk", "virtio_net"], root=tmp_path / "c").path != layer.path
