"""What a guest under test may not do: be reached from outside, be reached by
password, or pass itself off as another guest. One real guest, booted once."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from harness.errors import GuestError
from harness.initramfs import keys
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.kernel.resolve import resolve
from harness.machine import qemu
from harness.machine.guest import Access, QemuGuest
from harness.machine.qemu import MachineSpec
from harness.machine.ssh import GuestShell
from harness.run.boot import initrd_for

pytestmark = [pytest.mark.boot, pytest.mark.xdist_group("security")]


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[QemuGuest, Path]]:
    tmp = tmp_path_factory.mktemp("sec")
    kernel = resolve(DEFAULT_KERNELS["trixie-x86_64"])
    client = keys.generate_client_key(tmp / "keys")
    host = keys.generate_guest_host_key(tmp / "keys")
    initrd, _ = initrd_for(kernel, [], tmp, client, host)
    spec = MachineSpec(arch="x86_64", kernel=kernel.image, initrd=initrd, cmdline=(), accel="tcg")
    with QemuGuest(spec, Access(host.public_line, client.private_path), tmp / "console.log") as g:
        g.boot(180)
        yield g, tmp
        g.poweroff()


def _listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN owned by process `pid`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if str(target).startswith("socket:["):
            inodes.add(str(target)[8:-1])
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
                continue
            addr_hex, port_hex = f[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if family == socket.AF_INET:
                addr = socket.inet_ntop(family, raw[::-1])
            else:
                addr = socket.inet_ntop(family, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            found.append((addr, int(port_hex, 16)))
    return found


def test_ssh_forward_listens_on_loopback_only(guest: tuple[QemuGuest, Path]) -> None:
    g, _ = guest
    assert g.machine.pid is not None
    listeners = _listening_sockets(g.machine.pid)
    assert ("127.0.0.1", g.machine.ssh_port) in listeners
    assert all(addr == "127.0.0.1" for addr, _ in listeners), listeners


def test_guest_with_another_host_key_is_refused(guest: tuple[QemuGuest, Path]) -> None:
    g, tmp = guest
    other = keys.generate_guest_host_key(tmp / "other")
    shell = GuestShell(g.machine.ssh_port, other.public_line, g.access.client_key)
    with pytest.raises(GuestError, match="host key"):
        shell.connect(timeout=30)


def test_password_logins_are_off(guest: tuple[QemuGuest, Path]) -> None:
    g, _ = guest
    transport = paramiko.Transport(("127.0.0.1", g.machine.ssh_port))
    try:
        transport.start_client(timeout=30)
        with pytest.raises(paramiko.BadAuthenticationType) as info:
            transport.auth_password("root", "root")
        assert "password" not in info.value.allowed_types
        assert "publickey" in info.value.allowed_types
    finally:
        transport.close()


def test_private_keys_are_0600(guest: tuple[QemuGuest, Path]) -> None:
    _, tmp = guest
    for key in (tmp / "keys" / keys.CLIENT_KEY_NAME, tmp / "keys" / keys.HOST_KEY_NAME):
        assert key.stat().st_mode & 0o777 == 0o600


def test_ssh_port_clash_is_retried(tmp_path: Path, guest: tuple[QemuGuest, Path],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The first port offered is taken by someone else: QEMU fails, kharness picks another."""
    g, _ = guest
    taken = g.machine.ssh_port  # held by the running guest's QEMU
    ports = iter([taken])
    real = qemu.free_port
    monkeypatch.setattr(qemu, "free_port", lambda: next(ports, None) or real())
    spec = MachineSpec(arch="x86_64", kernel=g.machine.spec.kernel, initrd=g.machine.spec.initrd,
                       cmdline=(), accel="tcg")
    with qemu.QemuMachine(spec, tmp_path / "console.log") as m:
        assert m.running()
        assert m.ssh_port != taken
