"""The per-boot layer (keys, guest scripts) and the assembled initrd.

This layer is small and changes every run (fresh keys), so it is not cached:
the caller writes it into the run's own directory. It is deterministic all
the same: the same keys and scripts give the same bytes.

Directories here must match the base layer's modes and types: the kernel
applies a later archive's directory mode to an existing directory, and
replaces an existing symlink by a directory of the same name.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.atomic import atomic_open
from harness.errors import UsageError
from harness.initramfs import cpio

AUTHORIZED_KEYS = "root/.ssh/authorized_keys"
HOST_KEY = "etc/dropbear/dropbear_ed25519_host_key"
SCRIPTS_DIR = "kharness/scripts"
GUEST_SCRIPTS = f"/{SCRIPTS_DIR}"  # where the guest finds them (init.sh names the trace script there too)


def run_members(
    authorized_keys: Sequence[str],
    host_key: Path,
    scripts: Iterable[Path] = (),
    extra: Iterable[tuple[str, bytes]] = (),
) -> list[cpio.Member]:
    """Members of the per-boot layer.

    `authorized_keys`: OpenSSH public key lines the host logs in with;
    `host_key`: the dropbear host key file (keys.generate_guest_host_key);
    `scripts`: host files copied to /kharness/scripts/<name> (executable);
    `extra`: (guest path, content) pairs, for anything else a boot needs.
    """
    if not authorized_keys:
        raise UsageError("no authorized key for the guest", "pass the client key's public line")
    members = [
        cpio.directory("root", 0o700),
        cpio.directory("root/.ssh", 0o700),
        cpio.file(AUTHORIZED_KEYS, "".join(f"{k.strip()}\n" for k in authorized_keys).encode(),
                  mode=0o600),
        cpio.directory("etc/dropbear", 0o700),
        cpio.file(HOST_KEY, host_key.read_bytes(), mode=0o600),
        *_script_members(scripts),
    ]
    members.extend(cpio.file(path, data) for path, data in extra)
    return members


def _script_members(scripts: Iterable[Path]) -> list[cpio.Member]:
    members: dict[str, cpio.Member] = {}
    for script in scripts:
        path = f"{SCRIPTS_DIR}/{script.name}"
        if path in members:
            raise UsageError(f"two guest scripts named {script.name}", "rename one of them")
        members[path] = cpio.file(path, script.read_bytes(), mode=0o755)
    return list(members.values())


def build_run_layer(
    out: Path,
    authorized_keys: Sequence[str],
    host_key: Path,
    scripts: Iterable[Path] = (),
    extra: Iterable[tuple[str, bytes]] = (),
) -> Path:
    """Write the per-boot layer to `out` (uncompressed newc)."""
    return cpio.write(run_members(authorized_keys, host_key, scripts, extra), out)


def assemble(layers: Sequence[Path], out: Path) -> Path:
    """Concatenate layer archives into one initrd, later layers winning.

    The kernel unpacks concatenated archives, compressed or not, but looks
    for an uncompressed header only at 4-byte aligned offsets from the start
    (init/initramfs.c), so each layer is padded to a multiple of 4.
    """
    if not layers:
        raise UsageError("no initramfs layers to assemble", "give at least the base layer")
    with atomic_open(out, "wb") as f:
        for layer in layers:
            with layer.open("rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
            f.write(b"\0" * ((4 - f.tell() % 4) % 4))
    return out
