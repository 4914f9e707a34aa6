"""`kharness kernel fetch|info` on synthetic kernels (resolve replaced where it would fetch)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel import cli
from harness.model import Kernel, KernelSource
from tests.fakes import kernels as fake


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="kharness kernel")
    cli.add_arguments(parser)
    return cli.main(parser.parse_args(list(argv)))


def test_info_of_a_fake_image_with_config_beside_it(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    image = boot / "vmlinuz-6.12.0-t"
    image.write_bytes(fake.zboot(fake.arm64_image("6.12.0-t"), "gzip"))
    (boot / "config-6.12.0-t").write_text("CONFIG_VIRTIO_NET=m\nCONFIG_BLK_DEV_NVME=y\n")
    assert _run("info", str(image)) == 0
    out = capsys.readouterr().out
    assert "arm64" in out and "6.12.0-t" in out
    assert "zboot (unpacked for QEMU)" in out and "gzip" in out
    assert "config-6.12.0-t" in out
    assert "virtio_net" in out and "module" in out and "builtin" in out


def test_info_json_of_a_fake_bzimage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "bzImage"
    image.write_bytes(fake.bzimage("6.1.0-t", "lz4"))
    assert _run("info", "--json", str(image)) == 0
    value = json.loads(capsys.readouterr().out)
    assert (value["arch"], value["release"], value["compression"]) == ("x86_64", "6.1.0-t", "lz4")
    assert value["drivers"]["virtio_net"] == "unknown"  # no config, no modules: no guessing


def test_info_of_a_text_file_is_a_usage_error(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    with pytest.raises(UsageError, match="not a kernel image"):
        _run("info", str(notes))


def test_info_of_an_unknown_name() -> None:
    with pytest.raises(UsageError, match="neither a file nor a default kernel name"):
        _run("info", "sid-riscv64")


@pytest.mark.parametrize(("argv", "message"), [
    (["fetch", "sid-arm64"], "no default kernel named 'sid-arm64'"),
    (["fetch", "--suite", "trixie"], "needs both --suite and --arch"),
    (["fetch", "--package", "linux-image-arm64"], "needs both --suite and --arch"),
    (["fetch", "trixie-arm64", "--suite", "trixie", "--arch", "arm64"], "not both"),
])
def test_fetch_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _run(*argv)


def _fake_resolve(seen: list[KernelSource]) -> object:
    def resolve(src: KernelSource, refresh: bool = False, progress: object = None) -> Kernel:
        seen.append(src)
        return Kernel(
            name=src.name, arch=src.arch, image=Path("/k/Image"), original_image=Path("/k/Image"),
            release="6.12.0-t", compression="none", image_sha256="f" * 64,
            modules_dir=Path("/k/lib/modules/6.12.0-t"),
            origin={"version": "6.12.0-1", "image_package": "linux-image-6.12.0-t",
                    "deb_sha256": "d" * 64},
        )
    return resolve


def test_fetch_defaults_prints_each(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[KernelSource] = []
    monkeypatch.setattr(cli, "resolve", _fake_resolve(seen))
    assert _run("fetch") == 0
    assert [s.name for s in seen] == ["bookworm-arm64", "trixie-arm64", "bookworm-x86_64",
                                      "trixie-x86_64"]
    out = capsys.readouterr().out
    assert out.count("version  6.12.0-1 (linux-image-6.12.0-t)") == 4
    assert f"deb      sha256:{'d' * 64}" in out and "4 kernels in" in out


def test_fetch_by_suite_and_arch_json(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[KernelSource] = []
    monkeypatch.setattr(cli, "resolve", _fake_resolve(seen))
    assert _run("fetch", "--suite", "bookworm-backports", "--arch", "x86_64", "--json") == 0
    [src] = seen
    assert src.debian is not None
    assert (src.debian.suite, src.debian.package, src.debian.arch) == (
        "bookworm-backports", "linux-image-cloud-amd64", "x86_64")
    [row] = json.loads(capsys.readouterr().out)
    assert row["name"] == "bookworm-backports-x86_64" and row["version"] == "6.12.0-1"


def test_fetch_default_from_another_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[KernelSource] = []
    monkeypatch.setattr(cli, "resolve", _fake_resolve(seen))
    assert _run("fetch", "trixie-x86_64", "--mirror", "http://mirror.local/debian") == 0
    [src] = seen
    assert src.debian is not None and src.debian.mirror == "http://mirror.local/debian"
    assert src.debian.suite == "trixie" and src.name == "trixie-x86_64"
