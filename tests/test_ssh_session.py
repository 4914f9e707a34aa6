"""GuestShell against an SSH server in this process (paramiko's server side, no guest).

What every boot relies on: the host key is pinned (another key is refused at
once, never retried), commands give their output and exit status, and the
connection's socket has Nagle's algorithm off (with it, each channel opened
right after another waited for the peer's delayed ACK, about 40 ms). The
shell server runs commands with this host's `sh` and refuses, as dropbear
does, a command over 9000 bytes: a longer one must still run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import paramiko
import pytest
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_SUCCEEDED

from harness.errors import GuestError
from harness.initramfs import keys
from harness.machine.ssh import MAX_EXEC_BYTES, GuestShell, Step, sourced


class _Server(paramiko.ServerInterface):
    def __init__(self, client_line: str) -> None:
        self.allowed = client_line.split()[1]
        self.commands: list[bytes] = []
        self.shells: list[subprocess.Popen[bytes]] = []

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
    """Runs each command with `sh -c` as dropbear does, streaming: what the client sends
    goes to its stdin as it comes, its output back as it comes (run_steps' shell lives
    for many batches); refuses long commands as dropbear does."""

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands.append(command)
        if len(command) > DROPBEAR_MAX_CMD_LEN:
            return False
        proc = subprocess.Popen(["sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None

        def feed(stdin: IO[bytes]) -> None:
            with contextlib.suppress(OSError):
                while chunk := channel.recv(65536):
                    stdin.write(chunk)
                    stdin.flush()
            with contextlib.suppress(OSError):
                stdin.close()

        def pump(stream: IO[bytes], send: Callable[[bytes], object]) -> None:
            with contextlib.suppress(OSError, EOFError):
                while chunk := os.read(stream.fileno(), 65536):
                    send(chunk)

        def answer() -> None:
            err = threading.Thread(target=pump, args=(stderr, channel.sendall_stderr))
            err.start()
            pump(stdout, channel.sendall)
            err.join()
            status = proc.wait()
            with contextlib.suppress(OSError, EOFError):
                if status < 0:  # killed: dropbear sends the signal's name (paramiko reads none) and closes
                    channel.close()
                else:
                    channel.send_exit_status(status)

        threading.Thread(target=feed, args=(stdin,), daemon=True).start()
        threading.Thread(target=answer, daemon=True).start()
        self.shells.append(proc)
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
            except (paramiko.SSHException, EOFError, OSError):
                continue  # the client hung up (a host key it refused; a reset): serve the next one

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


def test_a_sourced_script_in_a_batch_gets_its_arguments_and_environment(
        shell_server: tuple[Server, list[bytes]], tmp_path: Path) -> None:
    """A guest script sourced into its step's subshell (how the guest scripts run, one exec
    fewer each): its arguments, the step's environment exported to what it runs, and its
    exit ending only its own step; the next step sees none of it."""
    script = tmp_path / "it's a script.sh"
    script.write_text('echo "$#:$1:$2"; sh -c \'echo "env=$KH_A"\'; x=leaked; exit 5\n')
    steps = [Step(sourced(str(script), "one two", "$(false)"), 10, {"KH_A": "a b'c"}),
             Step('echo "after ${x:-clean} ${KH_A:-unset}"', 10)]
    with GuestShell(*shell_server[0][:3]) as shell:
        shell.connect(10)
        first, second = shell.run_steps(steps)
    assert (first.exit_status, first.stdout) == (5, b"2:one two:$(false)\nenv=a b'c\n")
    assert (second.exit_status, second.stdout) == (0, b"after clean unset\n")


def test_batches_go_to_one_shell_and_a_lost_or_late_one_is_replaced(
        shell_server: tuple[Server, list[bytes]]) -> None:
    """run_steps' batches share one guest shell (one channel, one exec, instead of one per
    batch: 50-100 ms each under TCG). A batch cut off by its deadline, or whose shell died
    under it, leaves the next batch a new shell; what a step's leftover process writes
    after its batch is not the next batch's output."""
    (port, host_line, client_key, _), received = shell_server
    with GuestShell(port, host_line, client_key) as shell:
        shell.connect(10)
        first = shell.run_steps([Step("echo one", 10), Step("echo two >&2", 10)])
        late = shell.run_steps([Step("(sleep 0.3; echo late) &", 10)])
        time.sleep(0.6)
        after = shell.run_steps([Step("echo three", 10)])
        assert received == [b"exec sh -s"]
        cut = shell.run_steps([Step("echo slow; sleep 30", 0.5), Step("echo never", 10)])
        again = shell.run_steps([Step("echo four", 10)])
        died = shell.run_steps([Step("kill -9 $$", 10), Step("echo never", 10)])
        last = shell.run_steps([Step("echo five", 10)])
    assert [(r.exit_status, r.stdout, r.stderr) for r in first] == [(0, b"one\n", b""), (0, b"", b"two\n")]
    assert [(r.exit_status, r.stdout) for r in late + after] == [(0, b""), (0, b"three\n")]
    assert [r.dropped_before for r in first + late + after] == [0, 0, 0, len(b"late\n")]  # counted, for cell.py
    assert [(r.exit_status, r.timed_out, r.stdout) for r in cut] == [(-1, True, b"slow\n")]
    assert [(r.exit_status, r.stdout) for r in again] == [(0, b"four\n")]
    assert [(r.exit_status, r.timed_out) for r in died] == [(-1, False)]  # the shell went away under it
    assert [(r.exit_status, r.stdout) for r in last] == [(0, b"five\n")]
    assert received == [b"exec sh -s"] * 3
