"""The net-virtio host peer (harness/machine/traffic.py): roles, limits, and how QEMU runs it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.machine import qemu, traffic

UNLIMITED = traffic.Limits()


@contextmanager
def peer(role: str, limits: traffic.Limits = UNLIMITED) -> Iterator[tuple[socket.socket, list[traffic.Tally]]]:
    """A peer serving one end of a socketpair in a thread; the test plays the guest on the other."""
    host, guest = socket.socketpair()
    done: list[traffic.Tally] = []

    def play() -> None:
        done.append(traffic.serve(host, role, limits))
        host.shutdown(socket.SHUT_RDWR)  # as main() does: the guest sees the end

    thread = threading.Thread(target=play)
    thread.start()
    try:
        yield guest, done
    finally:
        guest.close()
        thread.join(10)
        host.close()


def read_all(conn: socket.socket, limit: int) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_sink_counts_what_the_guest_sends_until_it_hangs_up() -> None:
    with peer("sink") as (guest, done):
        guest.sendall(b"x" * 300_000)
        guest.shutdown(socket.SHUT_WR)
        assert guest.recv(1) == b""  # the peer closes after EOF
    assert done[0].received == 300_000 and done[0].sent == 0 and done[0].end == "eof"


def test_source_sends_its_pattern_until_the_guest_hangs_up() -> None:
    with peer("source") as (guest, done):
        data = read_all(guest, 200_000)
        assert data[:256] == bytes(range(256))
    assert done[0].sent >= 200_000 and done[0].end in ("reset", "eof")


def test_echo_returns_every_byte() -> None:
    with peer("echo") as (guest, done):
        for i in range(50):
            msg = bytes([i]) * 64
            guest.sendall(msg)
            assert read_all(guest, 64) == msg
        guest.shutdown(socket.SHUT_WR)
        assert guest.recv(1) == b""
    assert done[0].received == done[0].sent == 50 * 64


def test_bytes_limit_ends_a_source_exactly_there() -> None:
    with peer("source", traffic.Limits(max_bytes=100_000)) as (guest, done):
        assert len(read_all(guest, 1 << 20)) == 100_000
    assert done[0].end == "bytes" and done[0].sent == 100_000


def test_time_limit_ends_a_silent_guest() -> None:
    start = time.monotonic()
    with peer("sink", traffic.Limits(max_seconds=0.3)) as (guest, done):
        assert guest.recv(1) == b""  # closed by the peer, not by us
    assert done[0].end == "time" and time.monotonic() - start < 5


def test_command_is_quoted_for_glib_and_commas_doubled_for_qemu(tmp_path: Path) -> None:
    log = tmp_path / "a,b c" / "peer.jsonl"
    cmd = traffic.command("sink", log, traffic.Limits(1000, 2.5), python="/usr/bin/python3")
    assert cmd.startswith("/usr/bin/python3 -I ") and " sink --max-bytes 1000 --max-seconds 2.5 " in cmd
    assert "'" + str(log).replace(",", ",,") + "'" in cmd
    with pytest.raises(ValueError, match="role"):
        traffic.command("flood", log)


def test_qemu_gets_a_restricted_network_with_one_forward_per_role(tmp_path: Path) -> None:
    peers = tuple((role, port, traffic.command(role, tmp_path / "p.jsonl")) for role, port in traffic.PORTS)
    args = qemu.nic_args((qemu.Nic("traffic", peers),), iommu_platform=True)
    netdev = args[args.index("-netdev") + 1]
    assert "restrict=on" in netdev and "hostfwd" not in netdev
    assert [f"guestfwd=tcp:{qemu.TRAFFIC_PEER}:{port}-cmd:" in netdev for _, port in traffic.PORTS] == [True] * 3
    assert "iommu_platform=on" in args[args.index("-device") + 1]
    assert qemu.traffic_env().split() == [f"mac={qemu.TRAFFIC_MAC}", f"addr={qemu.TRAFFIC_GUEST}",
                                          f"peer={qemu.TRAFFIC_PEER}", "sink=5001", "source=5002", "echo=5003"]


def run_peer(role: str, log: Path, *extra: str) -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """The peer as QEMU runs it: its own process, the connection on fds 0, 1 and 2."""
    host, guest = socket.socketpair()
    argv = [sys.executable, "-I", traffic.__file__, role, "--log", str(log), *extra]
    fd = host.fileno()
    proc = subprocess.Popen(argv, stdin=fd, stdout=fd, stderr=fd, close_fds=True)
    host.close()
    return guest, proc


def test_peer_process_echoes_and_logs_one_line(tmp_path: Path) -> None:
    guest, proc = run_peer("echo", tmp_path / "peer.jsonl")
    with guest:
        guest.sendall(b"ping" * 16)
        assert read_all(guest, 64) == b"ping" * 16
        guest.shutdown(socket.SHUT_WR)
        assert guest.recv(1) == b""
    assert proc.wait(10) == 0
    entry = json.loads((tmp_path / "peer.jsonl").read_text())
    assert entry["role"] == "echo" and entry["received"] == entry["sent"] == 64 and entry["end"] == "eof"


def test_peer_process_never_writes_errors_to_the_guest(tmp_path: Path) -> None:
    guest, proc = run_peer("flood", tmp_path / "peer.jsonl")  # argparse refuses the role
    with guest:
        guest.settimeout(10)
        assert guest.recv(4096) == b""  # no usage text: stderr is not the guest's
    assert proc.wait(10) == 2 and not (tmp_path / "peer.jsonl").exists()
