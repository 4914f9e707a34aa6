"""Shared helpers for runner tests that use the fake guest (no QEMU)."""

from __future__ import annotations

from pathlib import Path

from harness.machine.ssh import CommandResult
from tests.fakes.guest import FakeGuest, Responder, ok

REAL = Path(__file__).parent.parent / "data" / "real"


def snapshot_text(kernel: str = "trixie-arm64", hist: str | None = None, uptime: float = 10.0) -> bytes:
    """A kharness-snapshot.sh output assembled from real captured files."""
    d = REAL / kernel
    parts = [
        ("probe", "debugfs=yes\ntracefs=yes\nswiotlb_dir=yes\nbounce_event=yes\nhist=yes\n"),
        ("pagesize", "KernelPageSize:        4 kB\n"),
        ("uptime", f"{uptime:.2f} {uptime * 2:.2f}\n"),
        ("slabinfo", (d / "slabinfo").read_text()),
        ("meminfo", (d / "meminfo").read_text()),
        ("vmstat", (d / "vmstat").read_text()),
    ]
    if (d / "swiotlb").is_dir():
        parts += [(f"swiotlb/{f.name}", f.read_text()) for f in sorted((d / "swiotlb").iterdir())]
    if hist is not None:
        parts.append(("hist/swiotlb_bounced", hist))
    parts.append(("end", "ok\n"))
    return "".join(f"@@kharness-section {n}@@\n{t}\n" for n, t in parts).encode()


def snapshots(kernel: str = "trixie-arm64") -> Responder:
    """Answers kharness-snapshot.sh with the real capture, uptime growing each call."""
    calls = [0]

    def respond(command: str, env: dict[str, str]) -> CommandResult | None:
        if "kharness-snapshot.sh" not in command:
            return None
        calls[0] += 1
        return ok(command, snapshot_text(kernel, uptime=10.0 + calls[0]))

    return respond


def workload(name: str, stdout: bytes = b"", status: int = 0, timed_out: bool = False,
             error: Exception | None = None) -> Responder:
    def respond(command: str, env: dict[str, str]) -> CommandResult | None:
        if f"/{name}.sh" not in command:
            return None
        if error is not None:
            raise error
        return ok(command, stdout, status, timed_out=timed_out)

    return respond


def guest_factory(*responders: Responder, console: str | None = None):  # type: ignore[no-untyped-def]
    def make(console_log: Path) -> FakeGuest:
        g = FakeGuest(console_log, [*responders, snapshots()])
        if console is not None:
            g.console_text = console
        return g

    return make
