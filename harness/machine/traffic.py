"""The host side of net-virtio's traffic: one bounded peer per guest connection.

QEMU's user-mode network spawns this file for every TCP connection the
guest opens to a `guestfwd=` address (`cmd:`), with the connection on its
stdin, stdout and stderr. So nothing on the host listens at all, and the
traffic NIC's network can be `restrict=on`: the guest reaches these peers
and nothing else. Each peer has one role, fixed by the port the guest dialled:

    sink    read and discard what the guest sends (guest TX, TO_DEVICE)
    source  send a pattern until the guest hangs up (guest RX, FROM_DEVICE:
            the direction that can bounce)
    echo    send back what arrives (fio's pingpong: small packets both ways)

Every peer stops at --max-bytes moved or --max-seconds elapsed, whichever is
first, whatever the guest does. It is run by path with `python -I`, so it
imports nothing but the standard library. It never writes to stderr (that
is the guest's socket); one JSON line per connection goes to --log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The port on the peer address the guest dials for each role (qemu.TRAFFIC_PEER).
PORTS = (("sink", 5001), ("source", 5002), ("echo", 5003))
ROLES = tuple(role for role, _ in PORTS)
CHUNK = 64 * 1024
PATTERN = bytes(range(256)) * (CHUNK // 256)
# Defaults for one connection: far above what a workload moves under TCG
# (tens of MB/s), low enough that a runaway guest cannot keep a peer busy.
MAX_BYTES = 1 << 30
MAX_SECONDS = 120.0
IO_TIMEOUT = 10.0  # a peer whose guest went quiet for this long gives up


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_BYTES
    max_seconds: float = MAX_SECONDS


@dataclass
class Tally:
    role: str
    received: int = 0
    sent: int = 0
    seconds: float = 0.0
    end: str = "eof"  # eof | bytes | time | idle | reset

    def moved(self) -> int:
        return self.received + self.sent


def serve(conn: socket.socket, role: str, limits: Limits) -> Tally:
    """Play `role` on `conn` until the guest hangs up or a limit is reached."""
    tally = Tally(role)
    start = time.monotonic()
    deadline = start + limits.max_seconds
    step = {"sink": _sink, "source": _source, "echo": _echo}[role]
    try:
        while tally.end == "eof":
            left = deadline - time.monotonic()
            if left <= 0:
                tally.end = "time"
                break
            if tally.moved() >= limits.max_bytes:
                tally.end = "bytes"
                break
            conn.settimeout(min(left, IO_TIMEOUT))
            if not step(conn, tally, limits.max_bytes - tally.moved()):
                break
    except TimeoutError:
        tally.end = "time" if time.monotonic() >= deadline else "idle"
    except (ConnectionError, BrokenPipeError):
        tally.end = "reset"
    tally.seconds = round(time.monotonic() - start, 3)
    return tally


def _sink(conn: socket.socket, tally: Tally, budget: int) -> bool:
    data = conn.recv(min(CHUNK, budget))
    tally.received += len(data)
    return bool(data)


def _source(conn: socket.socket, tally: Tally, budget: int) -> bool:
    tally.sent += conn.send(PATTERN[: min(CHUNK, budget)])
    return True


def _echo(conn: socket.socket, tally: Tally, budget: int) -> bool:
    data = conn.recv(min(CHUNK, budget))
    if not data:
        return False
    tally.received += len(data)
    conn.sendall(data)
    tally.sent += len(data)
    return True


def command(role: str, log: Path, limits: Limits = Limits(), python: str = sys.executable) -> str:
    """The `cmd:` text of a guestfwd rule that runs a peer of `role`.

    libslirp splits it with g_shell_parse_argv (no shell runs), so each word
    is quoted; QEMU's option parser needs every ',' doubled.
    """
    if role not in ROLES:
        raise ValueError(f"unknown traffic role {role!r}")
    argv = [python, "-I", str(Path(__file__).resolve()), role, "--max-bytes", str(limits.max_bytes),
            "--max-seconds", str(limits.max_seconds), "--log", str(log)]
    return " ".join(shlex.quote(a) for a in argv).replace(",", ",,")


def _log(path: Path, tally: Tally) -> None:
    line = json.dumps({"role": tally.role, "received": tally.received, "sent": tally.sent,
                       "seconds": tally.seconds, "end": tally.end}) + "\n"
    # One short O_APPEND write per connection: concurrent peers do not interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    # fd 2 is the guest's connection: nothing of ours may reach it, usage errors included.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    p = argparse.ArgumentParser(description="a bounded traffic peer on stdin/stdout (QEMU guestfwd cmd:)")
    p.add_argument("role", choices=ROLES)
    p.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    p.add_argument("--log", type=Path)
    args = p.parse_args(argv)
    limits = Limits(max(0, args.max_bytes), max(0.0, args.max_seconds))
    with socket.socket(fileno=os.dup(0)) as conn:
        tally = serve(conn, args.role, limits)
        with contextlib.suppress(OSError):  # the guest may be gone already
            conn.shutdown(socket.SHUT_RDWR)
    if args.log is not None:
        try:
            _log(args.log, tally)
        except OSError:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
