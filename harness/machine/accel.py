"""Choosing the accelerator: KVM only where a probe proves it works, else TCG.

On the machines this project runs on, /dev/kvm exists and opens, yet a Linux
guest under KVM hangs in early boot (nested virtualisation without the
features it needs). So existence is no proof: the probe boots the cell's own
kernel under KVM and waits for its first console line. The verdict is kept
per host boot (keyed by /proc/sys/kernel/random/boot_id) in the cache, so
later runs on the same host do not pay for the probe again.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness import atomic
from harness.arches import ArchPreset
from harness.cache import cache_root

log = logging.getLogger(__name__)
PROBE_SECONDS = 8.0


@dataclass(frozen=True)
class AccelChoice:
    name: str  # "kvm" | "tcg"
    reason: str


def choose(preset: ArchPreset, kernel_image: Path, wanted: str = "auto") -> AccelChoice:
    """Pick the accelerator for a guest of `preset`'s arch.

    `wanted` is "auto", "kvm" or "tcg" (KHARNESS_ACCEL overrides "auto").
    """
    wanted = os.environ.get("KHARNESS_ACCEL", wanted) if wanted == "auto" else wanted
    if wanted == "tcg":
        return AccelChoice("tcg", "asked for")
    if platform.machine() != preset.host_machine:
        return AccelChoice("tcg", f"host is {platform.machine()}, guest is {preset.name}")
    if not _kvm_opens():
        return AccelChoice("tcg", "/dev/kvm missing or not accessible")
    verdict = _cached_verdict(preset)
    if verdict is None:
        verdict = probe(preset, kernel_image)
        _store_verdict(preset, verdict)
        if not verdict:  # said once per host boot; cell.json keeps the reason every time
            log.warning("/dev/kvm exists but a guest hangs under KVM; using TCG (slower)")
    if verdict:
        return AccelChoice("kvm", "probe booted a kernel under KVM")
    return AccelChoice("tcg", "/dev/kvm exists but a probe boot under KVM failed")


def _kvm_opens() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def probe(preset: ArchPreset, kernel_image: Path, seconds: float = PROBE_SECONDS) -> bool:
    """Boot `kernel_image` under KVM with no root; True if it prints its banner."""
    with tempfile.TemporaryDirectory(prefix="kharness-kvm-") as tmp:
        console = Path(tmp) / "console.log"
        argv = [
            preset.qemu, "-accel", "kvm", "-M", preset.machine, "-cpu", preset.cpu_kvm,
            "-m", "256", "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", f"file:{console}", "-kernel", str(kernel_image),
            "-append", " ".join((*preset.cmdline, "panic=-1")),
        ]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        except OSError:
            return False
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if console.exists() and b"Linux version" in console.read_bytes()[:65536]:
                    return True
                if proc.poll() is not None:
                    return False
                time.sleep(0.1)
            return False
        finally:
            proc.kill()
            proc.wait()


def _verdict_file() -> Path:
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = "unknown"
    return cache_root() / "accel" / f"{boot_id}.json"


def _cached_verdict(preset: ArchPreset) -> bool | None:
    try:
        data = json.loads(_verdict_file().read_text())
    except (OSError, ValueError):
        return None
    value = data.get(preset.qemu) if isinstance(data, dict) else None
    return value if isinstance(value, bool) else None


def _store_verdict(preset: ArchPreset, verdict: bool) -> None:
    path = _verdict_file()
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[preset.qemu] = verdict
    atomic.write_json(path, data)
