"""`kharness rootfs`: argument handling and `ls`; `build` runs in the boot tests."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.initramfs import cli, cpio


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kharness rootfs")
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_build_arguments_have_defaults() -> None:
    args = _parse(["build", "--arch", "arm64"])
    assert (args.arch, args.suite, args.gzip) == ("arm64", "bookworm", False)
    assert args.mirror.startswith("http")


def test_build_refuses_an_unknown_arch() -> None:
    with pytest.raises(SystemExit):
        _parse(["build", "--arch", "riscv64"])


def test_ls_lists_members(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = cpio.write([cpio.file("etc/passwd", b"root\n"), cpio.symlink("bin", "usr/bin")],
                         tmp_path / "a.cpio", compress=True)
    assert cli.main(_parse(["ls", str(archive)])) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith(" bin -> usr/bin")
    assert out[-1].split() == ["0100644", "5", "etc/passwd"]


def test_ls_of_something_else_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "x"
    bad.write_bytes(b"not a cpio archive")
    with pytest.raises(UsageError, match="cannot read"):
        cli.main(_parse(["ls", str(bad)]))
