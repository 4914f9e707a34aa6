"""SSH keys made by the host: dropbear's format, OpenSSH lines, permissions."""

from __future__ import annotations

import base64
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import paramiko
import pytest

from harness.errors import UsageError
from harness.initramfs import keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_host_key_is_dropbear_ed25519(tmp_path: Path) -> None:
    hk = keys.generate_guest_host_key(tmp_path / "k")
    blob = hk.path.read_bytes()
    assert blob[:4] == struct.pack(">I", 11) and blob[4:15] == b"ssh-ed25519"
    assert blob[15:19] == struct.pack(">I", 64) and len(blob) == 19 + 64
    public = blob[19 + 32:]
    wire = base64.b64decode(hk.public_line.split()[1])
    assert wire.endswith(public)


def test_host_key_reads_back(tmp_path: Path) -> None:
    hk = keys.generate_guest_host_key(tmp_path)
    assert keys.load_host_key(hk.path) == hk
    assert (tmp_path / (keys.HOST_KEY_NAME + ".pub")).read_text() == hk.public_line + "\n"


def test_a_tampered_host_key_is_refused(tmp_path: Path) -> None:
    hk = keys.generate_guest_host_key(tmp_path)
    blob = bytearray(hk.path.read_bytes())
    blob[-1] ^= 1
    hk.path.write_bytes(bytes(blob))
    with pytest.raises(UsageError, match="does not match"):
        keys.load_host_key(hk.path)
    hk.path.write_bytes(b"\0\0\0\x07ssh-rsa")
    with pytest.raises(UsageError, match="not a dropbear"):
        keys.load_host_key(hk.path)


@pytest.mark.skipif(shutil.which("dropbearkey") is None,
                    reason="host has no dropbearkey (apt-get install dropbear-bin); "
                           "the boot test checks the key in a real guest anyway")
def test_host_dropbearkey_reads_our_key(tmp_path: Path) -> None:
    hk = keys.generate_guest_host_key(tmp_path)
    out = subprocess.run(["dropbearkey", "-y", "-f", str(hk.path)],
                         capture_output=True, text=True, check=True).stdout
    assert hk.public_line.split()[1] in out


def test_client_key_loads_in_paramiko(tmp_path: Path) -> None:
    ck = keys.generate_client_key(tmp_path)
    key = paramiko.Ed25519Key.from_private_key_file(str(ck.private_path))
    assert ck.public_line.startswith(f"ssh-ed25519 {key.get_base64()}")


def test_private_files_are_0600_in_a_0700_directory(tmp_path: Path) -> None:
    d = tmp_path / "keys"
    hk = keys.generate_guest_host_key(d)
    ck = keys.generate_client_key(d)
    assert _mode(d) == 0o700
    assert _mode(hk.path) == 0o600
    assert _mode(ck.private_path) == 0o600


def test_every_key_is_new(tmp_path: Path) -> None:
    a = keys.generate_guest_host_key(tmp_path / "a")
    b = keys.generate_guest_host_key(tmp_path / "b")
    assert a.public_line != b.public_line
