"""The DMA workloads through the runner with a fake guest: fio's report, bounces per I/O,
the sampler around each workload, and the device environment each script gets.

The guest's answers are real captures: fio-virtio-blk's output and the bounce
histogram after it, from an arm64 6.12 non-coherent run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.collect import derived
from harness.config.load import load
from harness.machine.ssh import CommandResult
from harness.results import load_run
from harness.run import sampling
from harness.run.runner import RunOptions, RunOutcome, run
from harness.workloads import load as load_workload
from tests.fakes.guest import fake_boot, ok
from tests.fakes.runs import guest_factory, snapshot_text

REAL = Path(__file__).parent / "data" / "real"
NONCOHERENT = REAL / "trixie-arm64-noncoherent"
NET_OUTPUT = Path(__file__).parent / "data" / "workloads" / "net-virtio-6.12-arm64-noncoherent.txt"
CONFIG = """
name: fake-dma
defaults:
  iommu_platform: true
  workloads: [fio-virtio-blk, net-virtio]
matrix:
  kernel: [trixie-arm64]
  dma_coherent: [false]
expectations:
  - {name: bounces, metric: swiotlb.bounces, op: ">", value: 0, workload: fio-virtio-blk}
"""


def zeroed(hist: str) -> str:
    """The same triggers with nothing counted yet: the hist file before a workload."""
    hist = re.sub(r"^\{.*\n", "", hist, flags=re.MULTILINE)
    return re.sub(r"(Hits|Entries):\s+\d+", r"\1: 0", hist)


class Guest:
    """Answers for snapshots (hist growing per workload), the sampler and the workloads."""

    def __init__(self, fio_output: bytes) -> None:
        self.snapshots = 0
        self.fio_output = fio_output
        self.envs: dict[str, dict[str, str]] = {}

    def __call__(self, command: str, env: dict[str, str]) -> CommandResult | None:
        if "kharness-snapshot.sh" in command:
            self.snapshots += 1
            after = (NONCOHERENT / "hist-after-fio-virtio-blk").read_text()
            return ok(command, snapshot_text(hist=after if self.snapshots > 1 else zeroed(after),
                                             uptime=10.0 + self.snapshots))
        if command == sampling.STOP_STEP.command:
            slab = (REAL / "trixie-arm64" / "slabinfo").read_text().splitlines()
            mem = (REAL / "trixie-arm64" / "meminfo").read_text().splitlines()
            kept = [ln for ln in slab if ln.startswith(("slabinfo", "kmalloc"))] + mem[:1] + [
                ln for ln in mem if ln.startswith(("Slab:", "SUnreclaim:"))]
            text = "@@kharness-sample 12.00@@\n" + "\n".join(kept) + "\n@@kharness-sampler ticks=3 hz=100@@\n"
            return ok(command, text.encode())
        for name in ("fio-virtio-blk", "net-virtio"):
            if f"/{name}.sh" in command:
                self.envs[name] = env
                return ok(command, self.fio_output if name == "fio-virtio-blk" else NET_OUTPUT.read_bytes())
        return None


def run_fake(tmp_path: Path, guest: Guest) -> RunOutcome:
    (tmp_path / "c.yaml").write_text(CONFIG)
    make = guest_factory(guest)
    return run(load(tmp_path / "c.yaml"), RunOptions(output=tmp_path / "out"), fake_boot(make))


def test_fio_report_becomes_metrics_and_bounces_per_io(tmp_path: Path) -> None:
    outcome = run_fake(tmp_path, Guest((NONCOHERENT / "fio-virtio-blk.json").read_bytes()))
    assert outcome.records[0].status == "pass", outcome.records[0].reason
    m = {x.key: x.value for x in load_run(outcome.path).reps[0].metrics}
    ios = sum(v for k, v in m.items() if k.startswith("fio-virtio-blk:fio.") and k.endswith(".ios"))
    assert m["fio-virtio-blk:fio.randread.read.iops"] > 0 and ios > 1000
    assert m["fio-virtio-blk:swiotlb.bounces"] == 6062
    assert m["fio-virtio-blk:swiotlb.bounces_per_io"] == 6062 / ios
    assert m["fio-virtio-blk:swiotlb.bounced_bytes_per_io"] == (6061 + 20) / ios
    assert m["fio-virtio-blk:swiotlb.bounce_size.max"] == 20
    assert m["net-virtio:fio.small.write.iops"] > 0 and m["net-virtio:net.rx.packets"] == 12355


def test_sampler_runs_around_every_workload_and_keeps_its_series(tmp_path: Path) -> None:
    outcome = run_fake(tmp_path, Guest((NONCOHERENT / "fio-virtio-blk.json").read_bytes()))
    rep = load_run(outcome.path).reps[0]
    m = {x.key: x.value for x in rep.metrics}
    for name in ("fio-virtio-blk", "net-virtio"):
        assert m[f"{name}:sampler.samples"] == 1 and m[f"{name}:sampler.cpu_seconds"] == 0.03
        series = json.loads((rep.path / "raw" / f"series-{name}.json").read_text())
        assert series["uptime"] == [12.0] and series["slab.kmalloc.bytes"][0] == m[f"{name}:slab.kmalloc.bytes.max"]
    assert not (rep.path / "raw" / "problems.txt").exists()


def test_a_failed_fio_job_fails_the_workload(tmp_path: Path) -> None:
    doc = (NONCOHERENT / "fio-virtio-blk.json").read_text()
    broken = doc.replace('"error" : 0', '"error" : 5', 1)
    outcome = run_fake(tmp_path, Guest(broken.encode()))
    tests = {t.name: t for t in outcome.records[0].tests}
    assert tests["workload:fio-virtio-blk"].status == "fail"
    assert "fio job randread failed with error 5" in tests["workload:fio-virtio-blk"].message


def test_scripts_get_disks_by_serial_and_the_nic_by_its_plan(tmp_path: Path) -> None:
    guest = Guest((NONCOHERENT / "fio-virtio-blk.json").read_bytes())
    run_fake(tmp_path, guest)
    assert guest.envs["fio-virtio-blk"]["KH_SERIAL_VBLK"] == "vblk"
    net = guest.envs["net-virtio"]
    assert "KH_SERIAL_TRAFFIC" not in net and "mac=52:54:00:6b:68:01" in net["KH_NET_TRAFFIC"].split()
    assert net["KH_RUNTIME"] == "2" and net["KH_SAMPLE_INTERVAL"] == "1"


def test_fio_report_in_mixed_output_and_its_absence() -> None:
    metrics, problems = derived.fio_report(NET_OUTPUT.read_text(), "net-virtio")
    names = {m.name for m in metrics}
    assert {"fio.bulk-tx.write.bw", "fio.bulk-rx.read.bw", "fio.small.write.clat_p99_ns"} <= names
    assert problems == []
    assert derived.fio_report("metric dd.requests 10\n", "dd-direct") == ([], [])
    _, bad = derived.fio_report('{"fio version": "fio-3.33", "jobs": 7}', "x")
    assert bad and "no 'jobs' list" in bad[0]


def test_per_io_needs_bounce_counters_and_ios() -> None:
    from harness.collect import catalogue

    def ms(*pairs: tuple[str, float]) -> list:  # type: ignore[type-arg]
        return [catalogue.metric(n, v, "w") for n, v in pairs]

    assert derived.per_io(ms(("fio.a.read.ios", 10)), "w") == []  # no hist trigger: no figure
    only_bounces = derived.per_io(ms(("swiotlb.bounces", 0), ("swiotlb.bounced_bytes", 0)), "w")
    assert [(m.name, m.value) for m in only_bounces] == [("swiotlb.bounce_size.max", 0)]
    full = derived.per_io(ms(("swiotlb.bounces", 30), ("swiotlb.bounced_bytes", 60), ("swiotlb.bounces.size-1", 20),
                             ("swiotlb.bounces.size-4", 10), ("swiotlb.bounces.size-96", 0),
                             ("fio.a.read.ios", 10), ("fio.b.write.ios", 20)), "w")
    assert {m.name: m.value for m in full} == {"swiotlb.bounce_size.max": 4, "swiotlb.bounces_per_io": 1.0,
                                               "swiotlb.bounced_bytes_per_io": 2.0}


def test_declarations_load_with_their_devices() -> None:
    assert [(d.kind, d.id) for d in load_workload("fio-nvme").devices] == [("nvme", "nvme")]
    assert [(d.kind, d.id) for d in load_workload("fio-virtio-blk").devices] == [("virtio-blk", "vblk")]
    net = load_workload("net-virtio")
    assert [(d.kind, d.id) for d in net.devices] == [("virtio-net", "traffic")]
    assert net.metric_decl("net.rx.packets").kind == "counter"
    for name in ("fio-nvme", "fio-virtio-blk", "net-virtio"):
        assert dict(load_workload(name).params)["sample_interval"] == 1


def test_whatif_per_snapshot_only_above_the_kernels_minalign() -> None:
    from harness.collect import slabinfo, snapshot, whatif

    for kernel, expected in (("trixie-arm64", {16, 32, 64, 128}), ("bookworm-arm64", set())):
        snap = snapshot.parse(snapshot.split(snapshot_text(kernel)))
        m = {x.name: x.value for x in snapshot.metrics(None, snap, "boot")}
        found = {int(n.split("-")[1].split(".")[0]) for n in m if n.startswith("slab.whatif.")}
        assert found == expected, kernel
        assert snap.slab is not None
        for n in expected:
            w = whatif.compute(snap.slab, n, 4096)
            assert m[f"slab.whatif.minalign-{n}.extra_bytes"] == w.extra_bytes
            assert m[f"slab.whatif.minalign-{n}.extra_pages"] == w.extra_pages
        assert slabinfo.minalign(snap.slab) == (8 if expected else 128)


def test_noforce_slabinfo_falls_back_to_the_cache_line() -> None:
    """arm64 6.12 with swiotlb=noforce (real capture): minalign 64, no kmalloc-96, kmalloc-192 kept."""
    from harness.collect import slabinfo, whatif

    info = slabinfo.parse((REAL / "trixie-arm64-noforce" / "slabinfo").read_bytes())
    sizes = [c.size for c in slabinfo.size_classes(info)]
    assert slabinfo.minalign(info) == 64 and sizes[0] == 64
    assert 96 not in sizes and 192 in sizes
    assert whatif.compute(info, 128, 4096).extra_bytes > 0  # 64 and 192 would round up to 128 and 256
