"""The slab sampler: the guest script run on the host, its parser, its metrics.

The script reads /proc files under KH_SYSROOT, here real captures from an
arm64 6.12 guest (tests/data/real/trixie-arm64), so what it prints is what a
guest prints. It runs twice: under the host's dash and awk (no `read -t`: the
sampler is stopped by a kill), and under busybox sh with busybox's applets
first in PATH, as in the guest (the sampler ends when told and accounts for
itself). The real-guest run and its cost are in test_workloads_boot.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.collect import sampler
from harness.run import sampling
from harness.workloads import BUILTIN_DIR

SCRIPT = BUILTIN_DIR / "kharness-sample.sh"
REAL = Path(__file__).parent / "data" / "real" / "trixie-arm64"


@pytest.fixture
def sysroot(tmp_path: Path) -> Path:
    proc = tmp_path / "root" / "proc"
    proc.mkdir(parents=True)
    (proc / "uptime").write_text("123.45 200.00\n")
    (proc / "slabinfo").write_bytes((REAL / "slabinfo").read_bytes())
    (proc / "meminfo").write_bytes((REAL / "meminfo").read_bytes())
    return tmp_path / "root"


BUSYBOX = shutil.which("busybox")
APPLETS = ("sh", "awk", "sleep", "mkfifo", "mkdir", "cat", "rm", "kill")


@pytest.fixture(params=["dash", "busybox"])
def shell(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of one of the two shells the script runs under."""
    if request.param == "dash":
        return {"PATH": os.environ["PATH"]}
    if BUSYBOX is None:
        pytest.skip("busybox is not installed (setup.sh --test installs it)")
    bin_dir = tmp_path / "busybox-bin"
    bin_dir.mkdir()
    for applet in APPLETS:
        (bin_dir / applet).symlink_to(BUSYBOX)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def sample_script(sysroot: Path, tmp_path: Path, *args: str,
                  shell: dict[str, str] | None = None, **env: str) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "KH_SYSROOT": str(sysroot), "KH_SAMPLE_DIR": str(tmp_path / "state"),
            **(shell or {}), **env}
    return subprocess.run(["sh", str(SCRIPT), *args], capture_output=True, env=full, timeout=30, check=False)


def running(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(") ")[2].split()[0] != "Z"


def test_script_samples_in_the_background_and_stops(sysroot: Path, tmp_path: Path,
                                                     shell: dict[str, str]) -> None:
    started = sample_script(sysroot, tmp_path, "start", "0.1", shell=shell)
    assert started.returncode == 0 and b"started" in started.stdout
    pid = int((tmp_path / "state" / "pid").read_text())
    time.sleep(0.8)
    stopped = sample_script(sysroot, tmp_path, "stop", shell=shell)
    assert stopped.returncode == 0, stopped.stderr
    series = sampler.parse(stopped.stdout, 4096)
    assert len(series.samples) >= 3 and series.problems == ()
    assert series.cpu_seconds is not None and series.cpu_seconds < 1
    first = series.samples[0]
    assert first.uptime == 123.45 and dict(first.classes)["8"] > 0
    assert first.slab is not None and first.sunreclaim is not None and first.sunreclaim <= first.slab
    assert not running(pid)  # nothing left to sample again, and nothing recorded as running
    assert {p.name for p in (tmp_path / "state").iterdir() if p.is_file() and p.stat().st_size} == set()
    assert sample_script(sysroot, tmp_path, "stop", shell=shell).returncode == 1


def test_script_starts_again_after_a_stop(sysroot: Path, tmp_path: Path, shell: dict[str, str]) -> None:
    for _ in range(2):
        assert sample_script(sysroot, tmp_path, "start", "0.05", shell=shell).returncode == 0
        time.sleep(0.3)
        stopped = sample_script(sysroot, tmp_path, "stop", shell=shell)
        series = sampler.parse(stopped.stdout, 4096)
        assert stopped.returncode == 0 and series.samples and series.cpu_seconds is not None


def test_script_stops_by_itself_after_max_samples(sysroot: Path, tmp_path: Path, shell: dict[str, str]) -> None:
    assert sample_script(sysroot, tmp_path, "start", "0.05", shell=shell, KH_SAMPLE_MAX="3").returncode == 0
    time.sleep(1.0)
    out = sample_script(sysroot, tmp_path, "stop", shell=shell).stdout
    assert out.count(b"@@kharness-sample ") == 3
    assert sampler.parse(out, 4096).cpu_seconds is not None


def test_script_counts_the_cpu_time_it_used(sysroot: Path, tmp_path: Path, shell: dict[str, str]) -> None:
    """A sampler kept busy (40,000 more slabinfo rows to read, not print, each time) reports CPU time."""
    slabinfo = sysroot / "proc" / "slabinfo"
    rows = "".join(f"other-{i} 1 1 8 1 1 : tunables 0 0 0 : slabdata 1 1 0\n" for i in range(40000))
    slabinfo.write_text(slabinfo.read_text() + rows)
    assert sample_script(sysroot, tmp_path, "start", "0.05", shell=shell).returncode == 0
    time.sleep(1.5)
    series = sampler.parse(sample_script(sysroot, tmp_path, "stop", shell=shell).stdout, 4096)
    assert series.samples and series.cpu_seconds is not None and series.cpu_seconds > 0


def test_script_refuses_unknown_commands(sysroot: Path, tmp_path: Path) -> None:
    assert sample_script(sysroot, tmp_path, "flood").returncode == 2


def guest_output(samples: int = 3, cost: bool = True) -> str:
    """The stop output as the script prints it, from the real captures."""
    slab = [line for line in (REAL / "slabinfo").read_text().splitlines()
            if line.startswith(("slabinfo", "kmalloc", "dma-kmalloc"))]
    mem = [line for line in (REAL / "meminfo").read_text().splitlines()
           if line.split(":")[0] in ("MemTotal", "Slab", "SUnreclaim")]
    body = "".join(f"@@kharness-sample {10 + i}.50@@\n" + "\n".join(slab + mem) + "\n" for i in range(samples))
    return body + ("@@kharness-sampler ticks=7 hz=100@@\n" if cost else "")


def test_parse_real_format_and_metrics() -> None:
    series = sampler.parse(guest_output(), 4096)
    assert [s.uptime for s in series.samples] == [10.5, 11.5, 12.5]
    assert series.cpu_seconds == 0.07
    m = {x.name: x for x in sampler.metrics(series, "fio-nvme")}
    assert m["sampler.samples"].value == 3 and m["sampler.cpu_seconds"].value == 0.07
    assert m["slab.kmalloc.bytes.max"].value == series.samples[0].kmalloc_bytes > 0
    assert m["slab.kmalloc.bytes.max"].unit == "bytes" and m["slab.kmalloc.bytes.max"].workload == "fio-nvme"
    assert m["meminfo.sunreclaim.max"].value == series.samples[0].sunreclaim


def test_parse_infers_the_page_size_when_unknown() -> None:
    assert sampler.parse(guest_output(1), None).samples[0].kmalloc_bytes == \
        sampler.parse(guest_output(1), 4096).samples[0].kmalloc_bytes


def test_the_sample_cut_by_stop_is_dropped_quietly() -> None:
    cut = "@@kharness-sample 13.00@@\nslabinfo - vers\n"
    text = guest_output(2).replace("@@kharness-sampler", cut + "@@kharness-sampler")
    series = sampler.parse(text, 4096)
    assert len(series.samples) == 2 and series.problems == ()
    alone = sampler.parse(cut + "@@kharness-sampler ticks=1 hz=100@@\n", 4096)
    assert alone.samples == () and "sample 0 at 13.00 s dropped" in alone.problems[0]  # no good one: say so


def test_a_broken_sample_in_the_middle_is_named() -> None:
    text = guest_output(3)
    broken = text.replace("@@kharness-sample 11.50@@\nslabinfo - version: 2.1", "@@kharness-sample 11.50@@\nnot slab")
    series = sampler.parse(broken, 4096)
    assert len(series.samples) == 2 and "sample 1 at 11.50 s dropped" in series.problems[0]


def test_no_cost_line_means_unknown_cost_not_zero() -> None:
    series = sampler.parse(guest_output(2, cost=False), 4096)
    assert series.cpu_seconds is None and "not stopped cleanly" in series.problems[0]
    assert "sampler.cpu_seconds" not in {m.name for m in sampler.metrics(series, "x")}


def test_hostile_output_is_bounded_and_never_raises() -> None:
    hostile = ("@@kharness-sample 1@@\n" * (sampler.MAX_SAMPLES + 10)
               + "@@kharness-sample 99999999999999999999@@\n@@kharness-sampler ticks=-1 hz=0@@\n" + "\xff" * 1000)
    series = sampler.parse(hostile.encode(), 4096)
    assert series.samples == () and series.cpu_seconds is None
    assert len(series.problems) <= sampler.MAX_PROBLEMS + 2
    assert sampler.metrics(series, "x")[0].name == "sampler.samples"


def test_series_json_for_plots() -> None:
    doc = sampler.to_json(sampler.parse(guest_output(2), 4096), 1.0)
    assert doc["interval"] == 1.0 and doc["uptime"] == [10.5, 11.5]
    assert list(doc["classes"])[:3] == ["8", "16", "32"] and list(doc["classes"])[-1] == "8k"
    assert len(doc["slab.kmalloc.bytes"]) == 2 and json.dumps(doc)


@pytest.mark.parametrize(("params", "expected"), [
    ({}, 1.0), ({"sample_interval": 0}, 0.0), ({"sample_interval": "0.5"}, 0.5),
    ({"sample_interval": 0.001}, sampling.MIN_INTERVAL), ({"sample_interval": "soon"}, 1.0),
])
def test_interval_from_params(params: dict[str, object], expected: float) -> None:
    assert sampling.interval(params) == expected


def test_real_guest_capture() -> None:
    """What busybox's sh and awk printed in an arm64 6.12 guest during fio-virtio-blk."""
    data = (Path(__file__).parent / "data" / "workloads" / "samples-fio-virtio-blk-6.12-arm64.txt").read_bytes()
    series = sampler.parse(data, 4096)
    assert [s.uptime for s in series.samples] == [7.32, 8.31] and series.problems == ()
    assert series.cpu_seconds == 0.05
    assert all(dict(s.classes)["8"] > 0 and 2 << 20 < s.kmalloc_bytes < 8 << 20 for s in series.samples)
