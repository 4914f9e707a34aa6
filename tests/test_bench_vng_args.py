"""bench/vng_bench.py's pure parts: vng's command line, where vng is found, why it failed."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from harness import arches

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def vb(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # the bench imports bench/stamp.py as `stamp`
    return importlib.import_module("vng_bench")


def test_native_boot_is_tcg_9p_with_the_given_busybox_and_kharness_guest_size(vb: ModuleType) -> None:
    argv = vb.vng_argv(Path("/v/vng"), Path("/k/vmlinuz"), vb.host_arch(), None, Path("/t/busybox"))
    assert argv[:3] == ["/v/vng", "--run", "/k/vmlinuz"]
    assert {"--disable-kvm", "--force-9p"} <= set(argv)
    assert argv[argv.index("--busybox") + 1] == "/t/busybox"
    assert argv[argv.index("--memory") + 1] == str(vb.MachineSpec(arch="x86_64", kernel=Path(), initrd=Path(),
                                                                  cmdline=()).memory_mib)
    assert "--arch" not in argv and "--root" not in argv and "--verbose" not in argv
    assert argv[-2:] == ["--exec", "true"]


def test_foreign_arch_names_its_arch_and_root(vb: ModuleType) -> None:
    foreign = next(a for a in arches.names() if a != vb.host_arch())
    argv = vb.vng_argv(Path("vng"), Path("Image"), foreign, Path("/r"), None, verbose=True)
    assert argv[argv.index("--arch") + 1] == foreign
    assert argv[argv.index("--root") + 1] == "/r"
    assert "--busybox" not in argv and "--verbose" in argv
    assert argv[-2:] == ["--exec", "true"]


def test_host_root_only_for_the_host_arch(vb: ModuleType) -> None:
    foreign = next(a for a in arches.names() if a != vb.host_arch())
    assert vb.vng_roots(vb.host_arch()) == ("host", "minimal")
    assert vb.vng_roots(foreign) == ("minimal",)


def test_failure_line_prefers_the_telling_one(vb: ModuleType) -> None:
    out = "[    6.1] virtme initramfs: mounting hostfs...\nFailed to mount real root\n[   7.0] reboot: Power down\n"
    assert vb.vng_failure(out) == "Failed to mount real root"
    assert vb.vng_failure("a\nlast words\n\n") == "last words"
    assert vb.vng_failure("") == "no output"


def test_printk_at(vb: ModuleType) -> None:
    console = "SeaBIOS\n[    4.930113] Run /init as init process\n[   42.4] reboot: Power down\n"
    assert vb.printk_at(console, "Run /init") == pytest.approx(4.930113)
    assert vb.printk_at(console, "Power down") == pytest.approx(42.4)
    assert vb.printk_at(console, "SeaBIOS") is None  # no timestamp: not a printk line
    assert vb.printk_at(console, "absent") is None


def test_find_vng_on_path_then_beside_the_interpreter(vb: ModuleType, tmp_path: Path) -> None:
    on_path, venv = tmp_path / "path", tmp_path / "venv" / "bin"
    for d in (on_path, venv):
        d.mkdir(parents=True)
        (d / "vng").write_text("#!/bin/sh\n")
        (d / "vng").chmod(0o755)
    assert vb.find_vng(str(on_path), venv / "python") == on_path / "vng"
    assert vb.find_vng(str(tmp_path / "nothing"), venv / "python") == venv / "vng"
    assert vb.find_vng(str(tmp_path / "nothing"), tmp_path / "python") is None
