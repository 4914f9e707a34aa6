"""GuestShell against an SSH server in this process (paramiko's server side, no guest).

What every boot relies on: the host key is pinned (another key is refused at
once, never retried), commands give their output and exit status, and the
connection's socket has Nagle's algorithm off (with it, each channel opened
right after another waited for the peer's delayed ACK, about 40 ms). The
shell server runs commands with this host's `sh` and refuses, as dropbear
does, a command over 9000 bytes: a longer one must still run.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED

from harness.errors import GuestError
from harness.initramfs import keys
from harness.machine.ssh import MAX_EXEC_BYTES, GuestShell, Step


class _Server(paramiko.ServerInterface):
    def __init__(self, client_line: str) -> None:
        self.allowed = client_line.split()[1]
        self.commands: list[bytes] = []

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = username == "root" and key.get_base64() == self.allowed
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands.append(command)

        def answer() -> None:
            channel.sendall(b"said: " + command)
            channel.sendall_stderr(b"to stderr")
            channel.send_exit_status(7)  # (the client closes the channel: closing it here could
            # beat the reply to the exec request, which the client reads as "Channel closed.")

        threading.Thread(target=answer, daemon=True).start()
        return True


DROPBEAR_MAX_CMD_LEN = 9000  # dropbear's sysoptions.h


class _ShellServer(_Server):
    """Runs each command with `sh -c`, its stdin what the client sent; refuses long ones as dropbear does."""

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands.append(command)
        if len(command) > DROPBEAR_MAX_CMD_LEN:
            return False

        def answer() -> None:
            stdin = b""
            while chunk := channel.recv(65536):
                stdin += chunk
            done = subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, check=False)
            channel.sendall(done.stdout)
            channel.sendall_stderr(done.stderr)
            channel.send_exit_status(done.returncode)

        threading.Thread(target=answer, daemon=True).start()
        return True


Server = tuple[int, str, Path, list[paramiko.Transport]]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A listening SSH server: (port, its host key's public line, the client's key, transports)."""
    yield from _serve(tmp_path, _Server)


@pytest.fixture
def shell_server(tmp_path: Path) -> Iterator[tuple[Server, list[bytes]]]:
    """The same with commands run by `sh`; also the commands as the server received them."""
    received: list[bytes] = []

    def make(client_line: str) -> _Server:
        srv = _ShellServer(client_line)
        srv.commands = received
        return srv

    for s in _serve(tmp_path, make):
        yield s, received


def _serve(tmp_path: Path, make: Callable[[str], _Server]) -> Iterator[Server]:
    host = keys.generate_client_key(tmp_path / "host")  # an ed25519 key in OpenSSH format
    client = keys.generate_client_key(tmp_path / "client")
    host_key = paramiko.Ed25519Key.from_private_key_file(str(host.private_path))
    listener = socket.create_server(("127.0.0.1", 0))
    transports: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            transports.append(t)
            t.add_server_key(host_key)
            try:
                t.start_server(server=make(client.public_line))
            except (paramiko.SSHException, EOFError):
                continue  # the client hung up (a host key it refused)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], host.public_line, client.private_path, transports
    listener.close()
    for t in transports:
        t.close()


def test_a_command_gives_its_output_and_exit_status(server: tuple[int, str, Path, list[paramiko.Transport]]) -> None:
    port, host_line, client_key, _ = server
    with GuestShell(port, host_line, client_key) as shell:
        shell.connect(10)
        res = shell.run("echo hi", timeout=10)
    assert (res.exit_status, res.stdout, res.stderr) == (7, b"said: echo hi", b"to stderr")


def test_the_socket_has_nagle_off(server: tuple[int, str, Path, list[paramiko.Transport]]) -> None:
    port, host_line, client_key, _ = server
    with GuestShell(port, host_line, client_key) as shell:
        shell.connect(10)
        assert shell._client is not None
        transport = shell._client.get_transport()
        assert transport is not None
        assert transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # type: ignore[union-attr]


def test_another_host_key_is_refused_at_once(server: tuple[int, str, Path, list[paramiko.Transport]],
                                             tmp_path: Path) -> None:
    port, _, client_key, transports = server
    stranger = keys.generate_client_key(tmp_path / "stranger").public_line
    with GuestShell(port, stranger, client_key) as shell, pytest.raises(GuestError, match="host key"):
        shell.connect(30)
    assert len(transports) == 1  # not retried


def test_a_command_over_the_servers_limit_still_runs(shell_server: tuple[Server, list[bytes]]) -> None:
    """Sent as `sh -s` with the command on stdin; what it runs reads /dev/null, not the script."""
    (port, host_line, client_key, _), received = shell_server
    long = "x=" + "a" * 18000 + "\necho ${#x}\ncat\necho end\nexit 3"
    with GuestShell(port, host_line, client_key) as shell:
        shell.connect(10)
        short = shell.run("echo short", timeout=10)
        res = shell.run(long, timeout=10)
    assert (short.exit_status, short.stdout) == (0, b"short\n")
    assert (res.exit_status, res.stdout) == (3, b"18000\nend\n")
    assert res.command == long  # the result names the command, not how it was sent
    assert received[0] == b"echo short" and all(len(c) <= MAX_EXEC_BYTES for c in received)


def test_a_batch_with_long_parameters_runs(shell_server: tuple[Server, list[bytes]]) -> None:
    (port, host_line, client_key, _), _ = shell_server
    value = "v" * 12000
    steps = [Step("sh -c 'echo ${#KH_LONG}'", 10, {"KH_LONG": value}), Step("echo two; exit 4", 10)]
    with GuestShell(port, host_line, client_key) as shell:
        shell.connect(10)
        first, second = shell.run_steps(steps)
    assert (first.exit_status, first.stdout) == (0, b"12000\n")
    assert (second.exit_status, second.stdout) == (4, b"two\n")


def test_a_long_command_with_stdin_is_refused_with_the_fix(shell_server: tuple[Server, list[bytes]]) -> None:
    (port, host_line, client_key, _), received = shell_server
    with GuestShell(port, host_line, client_key) as shell:
        shell.connect(10)
        with pytest.raises(GuestError, match="over the SSH limit") as info:
            shell.run("true " + "a" * MAX_EXEC_BYTES, timeout=10, stdin=b"data")
    assert info.value.fix == "shorten its parameters"
    assert received == []
