"""kharness-snapshot.sh's zone and alloc_traces sections, run on the host over a fake guest.

The guest's awk is busybox's (no math library); the script runs here with
busybox awk when busybox is installed, and with the host's awk, over a
KH_SYSROOT made of real captures, and its output goes through the same
split/parse/metrics as a real run's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.collect import catalogue, slabinfo, snapshot
from harness.collect.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "collect"
TRACES = DATA / "alloc_traces-6.12-arm64-u"
SCRIPT = ROOT / "guest_scripts" / "kharness-snapshot.sh"
AWKS = ["host"] + (["busybox"] if shutil.which("busybox") else [])


def put(root: Path, rel: str, data: str | bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def guest(root: Path, *, store_user: bool = True) -> Path:
    put(root, "proc/self/smaps", "KernelPageSize:        4 kB\n")
    put(root, "proc/uptime", "20.10 35.70\n")
    put(root, "proc/slabinfo", (DATA / "slabinfo-6.12-arm64-u").read_bytes())
    put(root, "proc/meminfo", (DATA / "meminfo-6.12-arm64").read_bytes())
    put(root, "proc/vmstat", (DATA / "vmstat-6.12-arm64-smmuv3-boot").read_bytes())
    put(root, "proc/zoneinfo", (DATA / "zoneinfo-6.12-arm64-1g").read_bytes())
    put(root, "proc/buddyinfo", (DATA / "buddyinfo-6.12-arm64-1g").read_bytes())
    for name in ("unusable_index", "extfrag_index"):
        put(root, f"sys/kernel/debug/extfrag/{name}", (DATA / f"extfrag-{name}-6.12-arm64-1g").read_bytes())
    for cache in ("kmalloc-8", "kmalloc-cg-8", "dma-kmalloc-8", "dentry"):
        put(root, f"sys/kernel/slab/{cache}/store_user", "1\n" if store_user and "kmalloc" in cache else "0\n")
    if store_user:
        for p in TRACES.iterdir():
            put(root, f"sys/kernel/debug/slab/{p.name}/alloc_traces", p.read_bytes())
        put(root, "sys/kernel/debug/slab/dentry/alloc_traces", "      5 d_alloc+0x1/0x2 age=1 pid=1\n")
        put(root, "sys/kernel/debug/slab/kmalloc-8 x/alloc_traces", "      5 x+0x1/0x2 age=1 pid=1\n")
    return root


def run(root: Path, awk: str, tmp: Path) -> snapshot.Sections:
    path = "/usr/bin:/bin"
    if awk == "busybox":
        bin_dir = tmp / "bin"
        bin_dir.mkdir(exist_ok=True)
        (bin_dir / "awk").unlink(missing_ok=True)
        (bin_dir / "awk").symlink_to(shutil.which("busybox") or "busybox")
        path = f"{bin_dir}:{path}"
    out = subprocess.run(["sh", str(SCRIPT)], env={"KH_SYSROOT": str(root), "PATH": path},
                         capture_output=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return snapshot.split(out.stdout)


@pytest.mark.parametrize("awk", AWKS)
def test_zone_and_trace_sections(awk: str, tmp_path: Path) -> None:
    sections = run(guest(tmp_path / "g"), awk, tmp_path)
    assert sections.problems == ()
    names = list(sections)
    mine = [n for n in names if n.startswith(("zone", "buddy", "extfrag", "slab_debug", "alloc_traces",
                                               "after_traces"))]
    traced = [f"alloc_traces/{p.name}" for p in sorted(TRACES.iterdir())]  # the shell's glob order
    assert mine == ["zoneinfo", "buddyinfo", "extfrag/unusable_index", "extfrag/extfrag_index", "slab_debug",
                    *traced, "after_traces/slabinfo", "after_traces/vmstat"]
    assert names[-1] == "end"  # nothing after the end mark
    assert names.index("slabinfo") < names.index("zoneinfo")  # slabinfo is read before anything of ours
    assert sections["slab_debug"] == f"store_user=3\nalloc_traces={len(traced)}\n"  # dentry, "kmalloc-8 x" not
    assert sections["alloc_traces/kmalloc-8"].rstrip("\n") == (TRACES / "kmalloc-8").read_text().rstrip("\n")
    snap = snapshot.parse(sections)
    assert [p for p in snap.problems if not p.startswith("hist/swiotlb_bounced")] == []
    assert snap.store_user == 3 and snap.traces is not None and len(snap.traces) == len(traced)
    assert snap.zoneinfo is not None and snap.buddyinfo is not None and snap.extfrag_index is not None
    assert snap.slab_after_traces is not None and snap.vmstat_after_traces is not None


@pytest.mark.parametrize("awk", AWKS)
def test_metrics_of_a_u_snapshot(awk: str, tmp_path: Path) -> None:
    snap = snapshot.parse(run(guest(tmp_path / "g"), awk, tmp_path))
    m = {x.name: x.value for x in snapshot.metrics(None, snap, "boot")}
    assert m["slab.store_user_caches"] == 3
    assert m["slab.callers.8.objects"] == 1775 and m["slab.callers.8.kharness_objects"] == 402
    assert m["slab.callers.8.top.kstrdup_const.objects"] == 692
    assert m["slab.callers.96.top.eventfs_create_dir.objects"] == 1560
    assert sum(1 for k in m if k.startswith("slab.callers.8.top.")) == snapshot.TOP_CALLERS
    assert m["slab.alloc_traces.cost_bytes"] == 0 and m["slab.alloc_traces.cost_pgalloc"] == 0  # files do not move
    assert m["zone.dma.start"] == 1 << 30 and m["zone.dma32.present"] == 0
    assert m["buddy.dma.order-10"] == 233 and m["extfrag.dma.index.order-10"] == -1
    assert m["slab.dma-kmalloc-8.objects"] == 0 and m["slab.gfp_dma_to_pages.extra_bytes"] == 0
    for name in m:
        assert catalogue.spec(name) is not None, name


@pytest.mark.parametrize("awk", AWKS)
def test_without_u_there_are_no_traces(awk: str, tmp_path: Path) -> None:
    sections = run(guest(tmp_path / "g", store_user=False), awk, tmp_path)
    assert sections["slab_debug"] == "store_user=0\nalloc_traces=0\n"
    assert not [n for n in sections if n.startswith(("alloc_traces", "after_traces"))]
    snap = snapshot.parse(sections)
    m = {x.name: x.value for x in snapshot.metrics(None, snap, "boot")}
    assert m["slab.store_user_caches"] == 0
    assert not [k for k in m if k.startswith(("slab.callers.", "slab.alloc_traces."))]


@pytest.mark.parametrize("awk", AWKS)
def test_a_long_file_is_cut_at_a_line(awk: str, tmp_path: Path) -> None:
    root = guest(tmp_path / "g")
    big = (TRACES / "kmalloc-8").read_bytes() * 7  # 1.3 MB, over the 1 MiB a file may send
    put(root, "sys/kernel/debug/slab/kmalloc-8/alloc_traces", big)
    sections = run(root, awk, tmp_path)
    text = sections["alloc_traces/kmalloc-8"]
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    assert last.startswith("kharness: cut at ")
    cut = int(last.split()[3])
    assert cut <= 1 << 20 and text.startswith(big[:cut].decode()) and big[cut - 1:cut] == b"\n"
    snap = snapshot.parse(sections)
    assert snap.traces is not None and snap.traces["kmalloc-8"].cut_at == cut
    assert any("alloc_traces/kmalloc-8: cut by the guest" in p for p in snap.problems)
    assert sections["alloc_traces/kmalloc-96"]  # the files after it still come


def u_snapshot(slab_text: str, after_traces: str, vmstat_text: str) -> Snapshot:
    parts = {"pagesize": "4096\n", "slabinfo": slab_text, "vmstat": vmstat_text, "end": "ok\n",
             "alloc_traces/kmalloc-8": (TRACES / "kmalloc-cg-8").read_text(),
             "after_traces/slabinfo": after_traces, "after_traces/vmstat": vmstat_text}
    return snapshot.parse(snapshot.Sections(parts))


def test_what_reading_traces_leaves_is_no_workloads() -> None:
    """The cost is reported at the snapshot and the next workload's deltas start after it."""
    base = (DATA / "slabinfo-6.12-arm64-u").read_text()
    row = next(line for line in base.splitlines() if line.startswith("kmalloc-cg-4k "))
    fields = row.split()  # ... : slabdata active_slabs num_slabs sharedavail; 8 pages a slab
    assert fields[5] == "8"
    grown_row = " ".join([*fields[:-3], str(int(fields[-3]) + 2), str(int(fields[-2]) + 2), fields[-1]])
    grown = base.replace(row, grown_row)
    assert slabinfo.parse(grown) != slabinfo.parse(base)
    vm = (DATA / "vmstat-6.12-arm64-smmuv3-boot").read_text()
    before = u_snapshot(base, grown, vm)
    first = {m.name: m.value for m in snapshot.metrics(None, before, "boot")}
    assert first["slab.alloc_traces.cost_bytes"] == 2 * 8 * 4096
    after = u_snapshot(grown, grown, vm)  # the workload itself changed nothing
    second = {m.name: m.value for m in snapshot.metrics(before, after, "idle")}
    assert second["slab.kmalloc.bytes.delta"] == 0  # the 64 KiB the reading left is not the workload's


@pytest.mark.parametrize("awk", AWKS)
def test_slab_debug_on_some_caches_only_is_still_found(awk: str, tmp_path: Path) -> None:
    """slab_debug=U,kmalloc-64 leaves kmalloc-8 alone: the command line says to look at every cache."""
    root = guest(tmp_path / "g")
    put(root, "sys/kernel/slab/kmalloc-8/store_user", "0\n")
    # no slab_debug word and kmalloc-8 not storing users: no kernel has U elsewhere then; not walked
    assert run(root, awk, tmp_path)["slab_debug"].startswith("store_user=0\n")
    put(root, "proc/cmdline", "console=ttyAMA0 slab_debug=U,kmalloc-64\n")
    put(root, "sys/kernel/slab/kmalloc-cg-8/store_user", "0\n")
    put(root, "sys/kernel/slab/dma-kmalloc-8/store_user", "0\n")
    put(root, "sys/kernel/slab/kmalloc-64/store_user", "1\n")
    assert run(root, awk, tmp_path)["slab_debug"].startswith("store_user=1\n")


@pytest.mark.parametrize("awk", AWKS)
def test_files_come_whole_and_zone_files_are_cut_at_a_line(awk: str, tmp_path: Path) -> None:
    """Each file is read as one record: its bytes come whole (a \\001 in one too, a last line
    without its newline gets one), and a zone file over 256 KiB is cut at its last whole line."""
    root = guest(tmp_path / "root", store_user=False)
    line = "Node 0, zone   Normal " + "1 " * 40 + "\n"
    big = line * (262144 // len(line) + 50)
    put(root, "proc/buddyinfo", big)
    put(root, "proc/uptime", "20.10 35.70")  # no newline
    put(root, "proc/meminfo", "MemTotal: 1 kB\n\x01odd: 2 kB\n")
    sections = run(root, awk, tmp_path)
    kept = sections["buddyinfo"]
    assert big.startswith(kept) and kept.endswith("\n")
    assert len(kept) <= 262144 < len(kept) + len(line)
    assert sections["uptime"] == "20.10 35.70\n"
    assert sections["meminfo"] == "MemTotal: 1 kB\n\x01odd: 2 kB\n"
