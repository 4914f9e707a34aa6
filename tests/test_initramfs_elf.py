"""Shared-library closure: a synthetic tree built with the host's gcc, and the real one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import arches
from harness.errors import UsageError
from harness.initramfs import base, cpio, elf
from harness.model import Arch

TRIPLET = "x86_64-linux-gnu"
needs_gcc = pytest.mark.skipif(
    shutil.which("gcc") is None or os.uname().machine != "x86_64",
    reason="needs the host's gcc on x86_64 to build small ELF files",
)


def _cc(out: Path, src: str, *args: str) -> Path:
    c = out.with_suffix(".c")
    c.write_text(src)
    subprocess.run(["gcc", "-O0", "-nostdlib", "-fPIC", "-o", str(out), str(c), *args], check=True)
    c.unlink()
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trixie-like (merged-/usr, no top-level lib64) tree:

    usr/bin/prog      NEEDED liba.so.1, interp /lib64/ld-linux-x86-64.so.2
    liba.so.1 -> liba.so.1.0   NEEDED libb.so.1, RUNPATH $ORIGIN/private
    private/libb.so.1          found only through liba's RUNPATH
    usr/lib64/ld-linux-x86-64.so.2 -> /usr/lib/<triplet>/ld.so (absolute: inside the tree)
    """
    if shutil.which("gcc") is None or os.uname().machine != "x86_64":
        pytest.skip("needs the host's gcc on x86_64")
    root = tmp_path_factory.mktemp("tree")
    lib = root / "usr/lib" / TRIPLET
    (lib / "private").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/lib64").mkdir(parents=True)
    work = tmp_path_factory.mktemp("build")
    _cc(work / "libb.so.1", "int b(void) { return 2; }", "-shared", "-Wl,-soname,libb.so.1")
    shutil.copy(work / "libb.so.1", lib / "private/libb.so.1")
    _cc(lib / "liba.so.1.0", "int b(void); int a(void) { return b(); }", "-shared",
        "-Wl,-soname,liba.so.1", f"-L{work}", "-l:libb.so.1",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/private")
    os.symlink("liba.so.1.0", lib / "liba.so.1")
    shutil.copy(work / "libb.so.1", lib / "ld.so")  # any ELF will do as the interpreter
    os.symlink(f"/usr/lib/{TRIPLET}/ld.so", root / "usr/lib64/ld-linux-x86-64.so.2")
    _cc(root / "usr/bin/prog", "int a(void); void _start(void) { a(); for (;;); }",
        f"-L{lib}", "-l:liba.so.1", f"-Wl,-rpath-link,{lib / 'private'}",
        "-Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2")
    (root / "usr/bin/script").write_text("#!/bin/sh\n")
    return root


def test_closure_follows_interp_needed_runpath_and_symlinks(tree: Path) -> None:
    nodes = {n.path: n for n in elf.closure(tree, ["/usr/bin/prog"])}
    assert set(nodes) == {
        "lib64",  # merged-/usr links implied by the tree: the interpreter's path
        "lib",  # and the loader's first search directory, /lib/<triplet>
        "usr/bin/prog",
        "usr/lib64/ld-linux-x86-64.so.2",
        f"usr/lib/{TRIPLET}/ld.so",
        f"usr/lib/{TRIPLET}/liba.so.1",
        f"usr/lib/{TRIPLET}/liba.so.1.0",
        f"usr/lib/{TRIPLET}/private/libb.so.1",
    }
    assert nodes["lib64"].target == "usr/lib64"
    assert nodes[f"usr/lib/{TRIPLET}/liba.so.1"].target == "liba.so.1.0"
    assert nodes[f"usr/lib/{TRIPLET}/ld.so"].source == tree / f"usr/lib/{TRIPLET}/ld.so"


def test_closure_reads_the_elf_fields(tree: Path) -> None:
    info = elf.read_elf(tree / "usr/bin/prog")
    assert info is not None
    assert info.interp == "/lib64/ld-linux-x86-64.so.2"
    assert info.needed == ("liba.so.1",)
    lib = elf.read_elf(tree / f"usr/lib/{TRIPLET}/liba.so.1.0")
    assert lib is not None and lib.search == ("$ORIGIN/private",)


def test_a_script_has_no_dependencies(tree: Path) -> None:
    assert [n.path for n in elf.closure(tree, ["/usr/bin/script"])] == ["usr/bin/script"]


def test_a_missing_library_is_named_with_who_needs_it(tree: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tree, broken, symlinks=True)
    (broken / f"usr/lib/{TRIPLET}/private/libb.so.1").unlink()
    with pytest.raises(UsageError, match=r"library libb\.so\.1 needed by liba\.so\.1"):
        elf.closure(broken, ["/usr/bin/prog"])


def test_a_missing_program_is_an_error(tree: Path) -> None:
    with pytest.raises(UsageError, match="program /usr/bin/nope not found"):
        elf.closure(tree, ["/usr/bin/nope"])


def test_symlinks_never_leave_the_tree(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/real").write_text("x")
    os.symlink("../../../../../../usr/bin/real", tmp_path / "usr/bin/up")  # clamps at the root
    os.symlink("/etc/passwd", tmp_path / "usr/bin/host")  # the tree's /etc, which is absent
    assert elf.lookup(tmp_path, "/usr/bin/up") is not None
    assert elf.lookup(tmp_path, "/usr/bin/host") is None


def test_a_symlink_loop_ends(tmp_path: Path) -> None:
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    assert elf.lookup(tmp_path, "/a") is None


def test_bookworm_layout_keeps_real_top_level_dirs(tmp_path: Path) -> None:
    """A non-merged tree (real /lib) gets no implied symlink."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "lib/x").write_text("x")
    chain = elf.lookup(tmp_path, "/lib/x")
    assert chain is not None and [n.path for n in chain] == ["lib/x"]


@pytest.mark.boot
@pytest.mark.parametrize("arch", arches.names())
def test_real_base_layer_is_closed_under_its_own_libraries(arch: Arch, tmp_path: Path) -> None:
    """Unpack the real base layer and compute the closure again inside it.

    Every program and library must find what it needs in the archive alone:
    the guest has nothing else.
    """
    layer = base.build_base(base.BaseSpec(arch=arch))
    out = tmp_path / "guest"
    for e in cpio.read(layer.path.read_bytes()):
        path = out / e.name
        if e.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
        elif e.kind == "symlink":
            os.symlink(e.data.decode(), path)
        else:
            path.write_bytes(e.data)
    programs = [p for _, progs in base.PROGRAMS for p in progs]
    nodes = elf.closure(out, programs)
    paths = {n.path for n in nodes}
    assert any(p.endswith("/libc.so.6") for p in paths)
    assert (out / "init").is_file()
    packages = {p["package"]: p["version"] for p in layer.manifest["packages"]}
    assert {"busybox-static", "dropbear-bin", "fio"} <= set(packages)
