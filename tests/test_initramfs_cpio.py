"""The newc writer: byte-for-byte determinism, and a format the kernel and GNU cpio read."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.initramfs import cpio, runlayer


def _members() -> list[cpio.Member]:
    return [
        cpio.file("usr/bin/tool", b"#!/bin/sh\necho hi\n", mode=0o755),
        cpio.symlink("bin", "usr/bin"),
        cpio.file("etc/secret", b"s3cret", mode=0o600),
        cpio.directory("tmp", 0o1777),
        cpio.file("init", b"x" * 5, mode=0o755),  # odd size: data padding
    ]


def test_same_members_give_same_bytes_in_any_order(tmp_path: Path) -> None:
    a = cpio.write(_members(), tmp_path / "a.cpio").read_bytes()
    b = cpio.write(list(reversed(_members())), tmp_path / "b.cpio").read_bytes()
    assert a == b


def test_header_fields_are_fixed_and_directories_come_first(tmp_path: Path) -> None:
    entries = cpio.read(cpio.write(_members(), tmp_path / "a.cpio").read_bytes())
    names = [e.name for e in entries]
    assert names == ["bin", "etc", "etc/secret", "init", "tmp", "usr", "usr/bin", "usr/bin/tool"]
    assert [e.ino for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.mtime == 0 and e.uid == 0 and e.gid == 0 for e in entries)
    by_name = {e.name: e for e in entries}
    assert stat.S_IMODE(by_name["etc/secret"].mode) == 0o600
    assert stat.S_IMODE(by_name["tmp"].mode) == 0o1777
    assert by_name["usr"].kind == "dir" and by_name["usr"].nlink == 2
    assert by_name["bin"].kind == "symlink" and by_name["bin"].data == b"usr/bin"
    assert by_name["init"].data == b"xxxxx"


def test_archive_is_aligned_and_ends_with_trailer(tmp_path: Path) -> None:
    blob = cpio.write(_members(), tmp_path / "a.cpio").read_bytes()
    assert blob.startswith(b"070701")
    assert len(blob) % 4 == 0
    assert b"TRAILER!!!\0" in blob[-128:]


@pytest.mark.skipif(shutil.which("cpio") is None, reason="host has no cpio (apt-get install cpio)")
def test_gnu_cpio_lists_and_extracts_it(tmp_path: Path) -> None:
    archive = cpio.write(_members(), tmp_path / "a.cpio")
    listing = subprocess.run(["cpio", "-t", "--quiet"], stdin=archive.open("rb"),
                             capture_output=True, text=True, check=True).stdout.split()
    assert listing == [e.name for e in cpio.read(archive.read_bytes())]
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet"], stdin=archive.open("rb"), cwd=out, check=True)
    assert (out / "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.readlink(out / "bin") == "usr/bin"
    assert stat.S_IMODE((out / "etc/secret").stat().st_mode) == 0o600


def test_gzip_is_deterministic_and_carries_no_host_details(tmp_path: Path) -> None:
    a = cpio.write(_members(), tmp_path / "a.cpio.gz", compress=True).read_bytes()
    b = cpio.write(_members(), tmp_path / "b.cpio.gz", compress=True).read_bytes()
    assert a == b
    assert a[4:8] == b"\0\0\0\0"  # MTIME
    assert a[3] & 0x08 == 0  # no FNAME
    assert gzip.decompress(a) == cpio.write(_members(), tmp_path / "c.cpio").read_bytes()


def test_from_tree_keeps_permissions_and_symlinks(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "root/.ssh").mkdir(parents=True)
    (tree / "root/.ssh/authorized_keys").write_text("k\n")
    os.chmod(tree / "root/.ssh/authorized_keys", 0o600)
    os.chmod(tree / "root", 0o700)
    os.symlink("/nowhere", tree / "link")
    by_path = {m.path: m for m in cpio.from_tree(tree)}
    assert by_path["root"].mode == 0o700
    assert by_path["root/.ssh/authorized_keys"].mode == 0o600
    assert by_path["link"].target == "/nowhere"


def test_from_tree_refuses_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="not a file"):
        cpio.from_tree(tmp_path)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/../../b", "", "/"])
def test_paths_that_could_leave_the_root_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match="bad archive path"):
        cpio.file(bad, b"")


def test_a_path_given_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="given twice"):
        cpio.write([cpio.file("a", b"1"), cpio.file("a", b"2")], tmp_path / "x.cpio")


def test_leading_slash_is_dropped() -> None:
    assert cpio.file("/etc/passwd", b"").path == "etc/passwd"


def test_concatenated_layers_read_back_in_order(tmp_path: Path) -> None:
    gz = cpio.write([cpio.file("a", b"1")], tmp_path / "1.cpio.gz", compress=True)
    raw = cpio.write([cpio.file("a", b"2"), cpio.file("b", b"3")], tmp_path / "2.cpio")
    initrd = runlayer.assemble([gz, raw, gz], tmp_path / "initrd")
    assert [(e.name, e.data) for e in cpio.read(initrd.read_bytes())] == [
        ("a", b"1"), ("a", b"2"), ("b", b"3"), ("a", b"1"),
    ]


def test_assemble_pads_every_layer_to_four_bytes(tmp_path: Path) -> None:
    gz = cpio.write([cpio.file("a", b"1")], tmp_path / "1.cpio.gz", compress=True)
    raw = cpio.write([cpio.file("b", b"2")], tmp_path / "2.cpio")
    initrd = runlayer.assemble([gz, raw], tmp_path / "initrd").read_bytes()
    start = gz.stat().st_size + (-gz.stat().st_size % 4)
    assert initrd[start:start + 6] == b"070701"
    assert len(initrd) % 4 == 0


def test_assemble_needs_a_layer(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        runlayer.assemble([], tmp_path / "initrd")
