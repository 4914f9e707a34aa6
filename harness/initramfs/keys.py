"""SSH keys for one run, all made by the host.

The guest's SSH host key is generated here and put into the guest, so the
host knows the exact public key to expect and never has to accept whatever
key a guest presents (design.md). The guest runs dropbear, which reads its
own key format, not OpenSSH's:

    string "ssh-ed25519"
    string (32-byte private seed || 32-byte public key)

(dropbear's ed25519.c, buf_put_ed25519_priv_key; `dropbearkey -y -f` reads
it back). The host logs in with an ed25519 client key in OpenSSH's private
format, which paramiko loads. Private key files are 0600, their directory 0700.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.atomic import write_bytes, write_text
from harness.errors import UsageError

KEY_TYPE = b"ssh-ed25519"
HOST_KEY_NAME = "dropbear_ed25519_host_key"
CLIENT_KEY_NAME = "id_ed25519"


@dataclass(frozen=True)
class HostKey:
    """The guest's host key in dropbear format, and its OpenSSH public line for pinning."""

    path: Path
    public_line: str


@dataclass(frozen=True)
class ClientKey:
    """The host's login key (OpenSSH private format) and the line for authorized_keys."""

    private_path: Path
    public_line: str


def generate_guest_host_key(directory: Path) -> HostKey:
    """Write a fresh dropbear ed25519 host key (and .pub) into `directory`."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    public = key.public_key().public_bytes_raw()
    _private_dir(directory)
    path = directory / HOST_KEY_NAME
    write_bytes(path, _string(KEY_TYPE) + _string(seed + public), perm=0o600)
    line = public_line(public, "kharness-guest")
    write_text(path.with_name(HOST_KEY_NAME + ".pub"), line + "\n")
    return HostKey(path=path, public_line=line)


def generate_client_key(directory: Path) -> ClientKey:
    """Write a fresh ed25519 client key in OpenSSH format (and .pub) into `directory`."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _private_dir(directory)
    path = directory / CLIENT_KEY_NAME
    write_bytes(path, pem, perm=0o600)
    line = public_line(key.public_key().public_bytes_raw(), "kharness-host")
    write_text(path.with_name(CLIENT_KEY_NAME + ".pub"), line + "\n")
    return ClientKey(private_path=path, public_line=line)


def load_host_key(path: Path) -> HostKey:
    """Read a dropbear ed25519 host key back; UsageError if it is not one."""
    blob = path.read_bytes()
    try:
        kind, rest = _take_string(blob)
        pair, rest = _take_string(rest)
    except (struct.error, ValueError) as exc:
        raise UsageError(f"{path}: not a dropbear key", "generate one with kharness") from exc
    if kind != KEY_TYPE or len(pair) != 64 or rest:
        raise UsageError(f"{path}: not a dropbear ed25519 key", "generate one with kharness")
    seed, public = pair[:32], pair[32:]
    derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    if derived != public:
        raise UsageError(f"{path}: public half does not match the seed", "regenerate the key")
    return HostKey(path=path, public_line=public_line(public, "kharness-guest"))


def public_line(public: bytes, comment: str = "") -> str:
    """An OpenSSH public key line: `ssh-ed25519 <base64> [comment]`."""
    blob = base64.b64encode(_string(KEY_TYPE) + _string(public)).decode()
    return f"ssh-ed25519 {blob} {comment}".rstrip()


def _string(data: bytes) -> bytes:
    """SSH wire format: uint32 length, then the bytes."""
    return struct.pack(">I", len(data)) + data


def _take_string(blob: bytes) -> tuple[bytes, bytes]:
    (n,) = struct.unpack(">I", blob[:4])
    if len(blob) < 4 + n:
        raise ValueError("truncated")
    return blob[4:4 + n], blob[4 + n:]


def _private_dir(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
