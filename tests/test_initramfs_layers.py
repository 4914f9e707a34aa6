"""Per-boot layer, base skeleton and the init script, without booting."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.initramfs import base, cpio, elf, keys, runlayer

RunInputs = tuple[keys.HostKey, keys.ClientKey, list[Path]]


@pytest.fixture
def run_inputs(tmp_path: Path) -> RunInputs:
    hk = keys.generate_guest_host_key(tmp_path / "keys")
    ck = keys.generate_client_key(tmp_path / "keys")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "idle.sh").write_text("#!/bin/sh\nsleep 1\n")
    (scripts / "dd.sh").write_text("#!/bin/sh\ndd\n")
    return hk, ck, sorted(scripts.iterdir())


def test_run_layer_is_deterministic(tmp_path: Path, run_inputs: RunInputs) -> None:
    hk, ck, scripts = run_inputs
    a = runlayer.build_run_layer(tmp_path / "a.cpio", [ck.public_line], hk.path, scripts)
    b = runlayer.build_run_layer(tmp_path / "b.cpio", [ck.public_line], hk.path, scripts[::-1])
    assert a.read_bytes() == b.read_bytes()


def test_run_layer_modes_match_what_dropbear_and_the_base_expect(
    tmp_path: Path, run_inputs: RunInputs
) -> None:
    hk, ck, scripts = run_inputs
    layer = runlayer.build_run_layer(tmp_path / "r.cpio", [ck.public_line], hk.path, scripts,
                                     extra=[("etc/kharness/run.json", b"{}")])
    modes = {e.name: (e.kind, stat.S_IMODE(e.mode)) for e in cpio.read(layer.read_bytes())}
    assert modes["root"] == ("dir", 0o700)
    assert modes["root/.ssh"] == ("dir", 0o700)
    assert modes["root/.ssh/authorized_keys"] == ("file", 0o600)
    assert modes["etc/dropbear"] == ("dir", 0o700)
    assert modes["etc/dropbear/dropbear_ed25519_host_key"] == ("file", 0o600)
    assert modes["kharness/scripts/idle.sh"] == ("file", 0o755)
    assert modes["etc/kharness/run.json"] == ("file", 0o644)
    data = {e.name: e.data for e in cpio.read(layer.read_bytes())}
    assert data["root/.ssh/authorized_keys"] == (ck.public_line + "\n").encode()
    assert data["etc/dropbear/dropbear_ed25519_host_key"] == hk.path.read_bytes()


def test_run_layer_needs_a_key_and_unique_script_names(tmp_path: Path, run_inputs: RunInputs) -> None:
    hk, ck, scripts = run_inputs
    with pytest.raises(UsageError, match="no authorized key"):
        runlayer.run_members([], hk.path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "idle.sh").write_text("x")
    with pytest.raises(UsageError, match=r"two guest scripts named idle\.sh"):
        runlayer.run_members([ck.public_line], hk.path, [*scripts, other / "idle.sh"])


def _fake_tree(root: Path, merged: bool) -> list[elf.Node]:
    bindir = root / ("usr/bin" if merged else "bin")
    bindir.mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    (bindir / "busybox").write_bytes(b"#!fake\n")
    return elf.closure(root, ["/bin/busybox"])


@pytest.mark.parametrize("merged", [True, False])
def test_skeleton_matches_the_tree_layout(tmp_path: Path, merged: bool) -> None:
    nodes = _fake_tree(tmp_path, merged)
    members = {m.path: m for m in [*base._node_members(nodes), *base.skeleton(tmp_path, nodes)]}
    assert members["init"].mode == 0o755 and members["init"].data == base.init_script()
    assert members["etc/passwd"].data == b"root:x:0:0:root:/root:/bin/sh\n"
    assert members["root"].mode == 0o700
    if merged:  # trixie: /bin is the merged-/usr link, sh sits beside busybox in /usr/bin
        assert members["bin"].kind == "symlink" and members["bin"].target == "usr/bin"
        assert members["usr/bin/sh"].target == "busybox"
    else:  # bookworm's extract: a real /bin
        assert members["bin"].kind == "dir"
        assert members["bin/sh"].target == "busybox"
    cpio.write(members.values(), tmp_path / "base.cpio")  # no duplicates, no conflicts


def test_skeleton_needs_busybox(tmp_path: Path) -> None:
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/fio").write_text("x")
    with pytest.raises(UsageError, match="busybox"):
        base.skeleton(tmp_path, elf.closure(tmp_path, ["/usr/bin/fio"]))


def test_base_key_depends_on_what_goes_in() -> None:
    a = base.BaseSpec(arch="arm64")
    assert a.key() == base.BaseSpec(arch="arm64").key()
    assert a.key() != base.BaseSpec(arch="x86_64").key()
    assert a.key() != base.BaseSpec(arch="arm64", suite="trixie").key()
    assert a.key() != base.BaseSpec(arch="arm64", programs=base.PROGRAMS[:2]).key()


def test_deb_names_give_versions_with_epochs() -> None:
    import io

    rec = base._deb_record("var/cache/apt/archives/busybox-static_1%3a1.35.0-4_arm64.deb",
                           io.BytesIO(b"x"))
    assert (rec["package"], rec["version"], rec["arch"]) == ("busybox-static", "1:1.35.0-4", "arm64")


def test_init_script_is_valid_sh_and_prints_the_markers() -> None:
    script = base.init_script().decode()
    for marker in ("KHARNESS-READY release=", "KHARNESS-SELFTEST ok release=",
                   "KHARNESS-INIT-ERROR: ", "/etc/kharness/modules", "kharness.selftest",
                   "dropbear_ed25519_host_key", f"{runlayer.GUEST_SCRIPTS}/kharness-trace.sh"):
        assert marker in script  # (the run layer puts the scripts where init and the host look)
    sh = shutil.which("dash") or shutil.which("sh")
    assert sh is not None
    subprocess.run([sh, "-n"], input=script, text=True, check=True)


def test_applet_links_are_read_from_the_busybox_binary(tmp_path: Path) -> None:
    """The applet table is found in the binary, as `busybox --list` prints it; links go beside busybox."""
    host = shutil.which("busybox")
    if host is None:
        pytest.skip("no busybox on the host to compare with (setup.sh --test installs it)")
    listed = subprocess.run([host, "--list"], capture_output=True, text=True, check=True).stdout.split()
    binary = Path(host).read_bytes()
    assert base.busybox_applets(binary) == sorted(listed, key=str.encode)
    # a file that is not busybox, or a table that is not sorted, gives no links (init then installs them)
    assert base.busybox_applets(b"\x7fELF" + b"\0" * 64) == []
    assert base.busybox_applets(b"\0[\0[[\0zcat\0ash\0" + b"\0" * 8) == []
    nodes = _fake_tree(tmp_path, merged=True)
    (tmp_path / "usr/bin/busybox").write_bytes(binary)
    members = {m.path: m for m in base.skeleton(tmp_path, nodes)}
    assert members["usr/bin/mount"].target == "busybox" and members["usr/bin/sh"].target == "busybox"
    assert "usr/bin/busybox" not in members  # the binary is a node of its own, never a link to itself
