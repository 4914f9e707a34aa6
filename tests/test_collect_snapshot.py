"""The snapshot path: guest scripts -> split -> save_raw -> parse -> metrics.

The guest scripts run here on the host over a fake /proc and /sys (KH_SYSROOT),
under every POSIX shell found (busybox sh is what the guest has), so their
output is checked by the same split/parse the real runs use.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.collect import catalogue, snapshot, swiotlb
from harness.collect.snapshot import Sections, Snapshot
from harness.run.snapshots import save_raw

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "collect"
SNAPSHOT_SH = ROOT / "guest_scripts" / "kharness-snapshot.sh"
TRACE_SH = ROOT / "guest_scripts" / "kharness-trace.sh"
SHELLS = [["/bin/sh"]] + [[b, "sh"] for b in filter(None, [shutil.which("busybox")])]
SHELL_IDS = [" ".join(s) for s in SHELLS]

EVENT = "sys/kernel/tracing/events/swiotlb/swiotlb_bounced"


def put(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_guest(root: Path, *, stage: str = "after", has_swiotlb: bool = True,
               debugfs: bool = True, trace: bool = True) -> Path:
    """A /proc and /sys with the files the snapshot reads, as arm64 6.12 shows them."""
    put(root, "proc/self/smaps", "00400000-0040b000 r-xp 00000000 00:02 7   /bin/busybox\n"
        "Size:                 44 kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\n"
        "KernelPageSize:        4 kB\n")
    put(root, "proc/uptime", "12.50 20.01\n" if stage == "before" else "20.10 35.70\n")
    put(root, "proc/slabinfo", (DATA / "slabinfo-6.12-arm64").read_text())
    put(root, "proc/meminfo", (DATA / "meminfo-6.12-arm64").read_text())
    put(root, "proc/vmstat", (DATA / f"vmstat-6.12-arm64-{stage}").read_text())
    (root / "sys/kernel/debug").mkdir(parents=True)
    if debugfs:
        put(root, "sys/kernel/debug/dma_pools", "")
        (root / "sys/kernel/debug/swiotlb").mkdir()
    if debugfs and has_swiotlb:
        put(root, "sys/kernel/debug/swiotlb/io_tlb_nslabs", "512\n")
        put(root, "sys/kernel/debug/swiotlb/io_tlb_used", "3")  # no final newline
        put(root, "sys/kernel/debug/swiotlb/io_tlb_used_hiwater", "17\n")
        put(root, "sys/kernel/debug/swiotlb/Bad Name", "1\n")  # skipped by the script
    (root / EVENT).mkdir(parents=True)
    if trace:
        put(root, f"{EVENT}/hist", (DATA / f"hist-swiotlb_bounced-{stage}").read_text())
        put(root, f"{EVENT}/trigger", "")
    return root


def run(shell: list[str], script: Path, root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*shell, str(script)], env={"KH_SYSROOT": str(root), "PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=60, check=False)


def snap_of(shell: list[str], root: Path) -> tuple[Sections, Snapshot]:
    out = run(shell, SNAPSHOT_SH, root)
    assert out.returncode == 0, out.stderr
    sections = snapshot.split(out.stdout)
    return sections, snapshot.parse(sections)


# --- the guest scripts ---------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_snapshot_script_output_parses_completely(shell: list[str], tmp_path: Path) -> None:
    sections, snap = snap_of(shell, fake_guest(tmp_path))
    assert sections.problems == ()
    assert sorted(sections) == ["end", "hist/swiotlb_bounced", "iommu", "meminfo", "pagesize", "probe",
                                "slabinfo", "swiotlb/io_tlb_nslabs", "swiotlb/io_tlb_used",
                                "swiotlb/io_tlb_used_hiwater", "uptime", "vmstat"]
    assert sections["swiotlb/io_tlb_used"] == "3\n"
    assert snap.problems == () and snap.complete
    assert snap.pagesize == 4096 and snap.uptime == 20.10
    assert snap.swiotlb is not None and (snap.swiotlb.nslabs, snap.swiotlb.hiwater) == (512, 17)
    assert snap.bounces is not None and len(snap.bounces) == 2


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_snapshot_tells_no_swiotlb_from_no_debugfs(shell: list[str], tmp_path: Path) -> None:
    _, none = snap_of(shell, fake_guest(tmp_path / "a", has_swiotlb=False))
    assert none.swiotlb is not None and not none.swiotlb.present
    _, unknown = snap_of(shell, fake_guest(tmp_path / "b", debugfs=False))
    assert unknown.swiotlb is None
    assert "swiotlb: unknown (debugfs not mounted in the guest)" in unknown.problems


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_snapshot_keeps_the_page_size_for_the_next(shell: list[str], tmp_path: Path) -> None:
    """smaps is looked at once a boot (busybox reads it a byte at a time): the next snapshot reads /run."""
    root = fake_guest(tmp_path)
    (root / "run").mkdir(exist_ok=True)
    kept = root / "run" / "kharness-pagesize"
    assert snap_of(shell, root)[1].pagesize == 4096
    assert kept.read_text() == "KernelPageSize:        4 kB\n"
    put(root, "proc/self/smaps", "KernelPageSize:       64 kB\n")  # not looked at again
    assert snap_of(shell, root)[1].pagesize == 4096
    kept.write_text("no page size\n")  # a kept line that is not one: looked up again
    assert snap_of(shell, root)[1].pagesize == 65536


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_snapshot_without_bounce_histogram(shell: list[str], tmp_path: Path) -> None:
    _, snap = snap_of(shell, fake_guest(tmp_path, trace=False))
    assert snap.bounces is None
    assert any(p.startswith("hist/swiotlb_bounced: missing") for p in snap.problems)


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_trace_script_sets_both_triggers_once(shell: list[str], tmp_path: Path) -> None:
    root = fake_guest(tmp_path)
    for _ in range(2):  # a rerun must not add them twice
        out = run(shell, TRACE_SH, root)
        assert (out.returncode, out.stdout) == (0, "kharness-trace: ok\n")
    assert (root / EVENT / "trigger").read_text() == (
        "hist:keys=size:vals=hitcount:size=256\nhist:keys=dev_name:vals=hitcount:size=128\n"
    )


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_trace_script_at_boot_writes_without_looking(shell: list[str], tmp_path: Path) -> None:
    """init's run (KH_TRACE_BOOT=1): nothing can be set yet, so a line already in a
    (fake, plain) trigger file is not looked for: the write goes first. On a
    kernel a trigger that is set refuses the write, and then it is looked for
    (test_initramfs_boot runs it again on a booted guest)."""
    root = fake_guest(tmp_path)
    trigger = root / EVENT / "trigger"
    trigger.write_text("hist:keys=size:vals=hitcount:size=256\n")
    out = run(shell, TRACE_SH, root, KH_TRACE_BOOT="1")
    assert (out.returncode, out.stdout) == (0, "kharness-trace: ok\n")
    assert trigger.read_text().splitlines() == [
        "hist:keys=size:vals=hitcount:size=256", "hist:keys=size:vals=hitcount:size=256",
        "hist:keys=dev_name:vals=hitcount:size=128"]


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_trace_script_at_boot_fails_when_a_trigger_cannot_be_set(shell: list[str], tmp_path: Path) -> None:
    root = fake_guest(tmp_path)
    (root / EVENT / "trigger").unlink()
    (root / EVENT / "trigger").mkdir()  # neither written nor read
    out = run(shell, TRACE_SH, root, KH_TRACE_BOOT="1")
    assert out.returncode == 1 and out.stdout.startswith("kharness-trace: error: cannot set hist:keys=size")


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_trace_script_without_tracepoint_says_so(shell: list[str], tmp_path: Path) -> None:
    root = tmp_path
    (root / "sys/kernel/tracing/events").mkdir(parents=True)
    out = run(shell, TRACE_SH, root)
    assert out.returncode == 0
    assert out.stdout.startswith("kharness-trace: unavailable: no swiotlb:swiotlb_bounced")


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_trace_script_without_hist_triggers_says_so(shell: list[str], tmp_path: Path) -> None:
    root = fake_guest(tmp_path, trace=False)
    out = run(shell, TRACE_SH, root)
    assert (out.returncode, out.stdout) == (
        0, "kharness-trace: unavailable: no hist triggers (CONFIG_HIST_TRIGGERS is off)\n")


@pytest.mark.parametrize("shell", SHELLS, ids=SHELL_IDS)
def test_trace_script_fails_when_a_trigger_cannot_be_set(shell: list[str], tmp_path: Path) -> None:
    root = fake_guest(tmp_path)
    (root / EVENT / "trigger").unlink()
    (root / EVENT / "trigger").mkdir()  # writing to it fails, even as root
    out = run(shell, TRACE_SH, root)
    assert out.returncode == 1 and out.stdout.startswith("kharness-trace: error: cannot set")


# --- split -------------------------------------------------------------------------


def section(name: str, body: str) -> str:
    return f"@@kharness-section {name}@@\n{body}"


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("slabinfo", "slabinfo"),
        ("swiotlb/io_tlb_used", "swiotlb/io_tlb_used"),
        ("/etc/passwd", "etc/passwd"),
        ("A B\tC", "a_b_c"),
        (".hidden", "_hidden"),
        ("swiotlb/./x", "swiotlb/x"),
        ("a//b", "a/b"),
        ("x\x00y", "x_y"),
        ("../x", None),
        ("swiotlb/../../etc", None),
        ("...", None),
        ("/", None),
        ("a/b/c/d/e", None),
        ("x" * 200, None),
    ],
)
def test_safe_name(raw: str, safe: str | None) -> None:
    assert snapshot.safe_name(raw) == safe


def test_split_tolerates_junk_duplicates_and_bad_names() -> None:
    text = ("login banner\n" + section("vmstat", "pgpgin 1\n") + section("vmstat", "pgpgin 2\n")
            + section("../../etc/cron.d/x", "* * * * * root sh\n") + section("uptime", "1.0 2.0\r\n")
            + section("swiotlb", "1\n") + section("swiotlb/io_tlb_used", "1\n")
            + "@@kharness-section @@\n" + section("end", "ok\n"))
    s = snapshot.split(text)
    assert dict(s) == {"vmstat": "pgpgin 1\n", "uptime": "1.0 2.0\n", "swiotlb": "1\n",
                       "end": "ok\n"}
    assert s.problems == (
        "section vmstat repeated; the first kept",
        "section name '../../etc/cron.d/x' refused",
        "section swiotlb/io_tlb_used clashes with another as file and directory",
        "5 line(s) outside any kept section ignored",  # the empty name is junk too
    )


def test_split_bounds_sections_and_total() -> None:
    big = section("slabinfo", ("x" * 1000 + "\n") * 5000) + section("end", "ok\n")
    s = snapshot.split(big)
    assert len(s["slabinfo"]) <= snapshot.MAX_SECTION and "end" in s
    assert any("over" in p and "slabinfo" in p for p in s.problems)
    many = "".join(section(f"s{i}", "1\n") for i in range(snapshot.MAX_SECTIONS + 5))
    assert len(snapshot.split(many)) == snapshot.MAX_SECTIONS
    huge = snapshot.split(b"\xff" * (snapshot.MAX_TOTAL + 10))
    assert len(huge) == 0 and huge.problems[0].startswith("output of")


def test_split_of_binary_junk_reports_instead_of_raising() -> None:
    s = snapshot.split(bytes(range(256)) * 100)
    assert len(s) == 0 and s.problems


def test_parse_of_nothing_is_all_problems() -> None:
    snap = snapshot.parse(snapshot.split(""))
    assert not snap.complete and snap.slab is None and snap.swiotlb is None
    assert "slabinfo: section missing" in snap.problems
    assert snapshot.metrics(None, snap, "boot") == []


def test_parse_keeps_good_sources_when_one_is_broken() -> None:
    text = (section("slabinfo", "slabinfo - version: 2.1\ngarbage\n")
            + section("meminfo", (DATA / "meminfo-6.12-arm64").read_text())
            + section("pagesize", "KernelPageSize:       64 kB\n") + section("end", "ok\n"))
    snap = snapshot.parse(snapshot.split(text))
    assert snap.slab is None and snap.meminfo is not None and snap.pagesize == 65536
    assert "slabinfo line 2: not a cache row: 'garbage'" in snap.problems


@pytest.mark.parametrize("text", ["", "KernelPageSize: 3 kB", "KernelPageSize: x kB", "4096 4096",
                                  "KernelPageSize: 99999999 kB", "512"])
def test_pagesize_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="pagesize"):
        snapshot.pagesize(text)


# --- save_raw ------------------------------------------------------------------------


def test_save_raw_writes_every_section_under_its_tag(tmp_path: Path) -> None:
    sections = snapshot.split(section("slabinfo", "a\n") + section("swiotlb/io_tlb_used", "3\n"))
    written = save_raw(sections, tmp_path / "raw", "before-dd-direct")
    assert written == [tmp_path / "raw/before-dd-direct/slabinfo",
                       tmp_path / "raw/before-dd-direct/swiotlb/io_tlb_used"]
    assert (tmp_path / "raw/before-dd-direct/swiotlb/io_tlb_used").read_text() == "3\n"


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "A", "a/../../b"])
def test_save_raw_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not safe"):
        save_raw({name: "x"}, tmp_path / "raw", "before")
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("tag", ["", "..", "../up", "a/b", "-x", "Before"])
def test_save_raw_refuses_bad_tags(tmp_path: Path, tag: str) -> None:
    with pytest.raises(ValueError, match="raw tag"):
        save_raw({"slabinfo": "x"}, tmp_path / "raw", tag)


def test_save_raw_never_follows_a_link_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "raw/before").mkdir(parents=True)
    (tmp_path / "raw/before/swiotlb").symlink_to(outside)
    with pytest.raises(ValueError, match="outside"):
        save_raw({"swiotlb/io_tlb_used": "1"}, tmp_path / "raw", "before")
    assert list(outside.iterdir()) == []


# --- metrics -------------------------------------------------------------------------


@pytest.fixture
def before_after(tmp_path: Path) -> tuple[Snapshot, Snapshot]:
    _, before = snap_of(["/bin/sh"], fake_guest(tmp_path / "b", stage="before"))
    _, after = snap_of(["/bin/sh"], fake_guest(tmp_path / "a", stage="after"))
    return before, after


def test_metrics_over_a_workload(before_after: tuple[Snapshot, Snapshot]) -> None:
    before, after = before_after
    ms = {m.name: m for m in snapshot.metrics(before, after, "dd-direct")}
    values = {n: m.value for n, m in ms.items()}
    # Bounce histograms: after minus before (size 1: 2371 - 120; size 8: 40 - 0).
    assert values["swiotlb.bounces"] == 2411 - 120
    assert values["swiotlb.bounces.size-1"] == 2251 and values["swiotlb.bounces.size-8"] == 40
    assert values["swiotlb.bounced_bytes"] == 2251 * 1 + 40 * 8
    assert values["swiotlb.bounces.dev-0000_00_02_0"] == 2291
    # Slab gauges from after: kmalloc-8 + kmalloc-cg-8 objects, 14 + 2 one-page slabs.
    assert values["slab.kmalloc-8.objects"] == 6921 + 1024
    assert values["slab.kmalloc-8.bytes"] == 16 * 4096
    assert values["slab.minalign"] == 8 and values["slab.kmalloc.bytes.delta"] == 0
    assert values["meminfo.slab"] == 29860 * 1024
    assert values["meminfo.sunreclaim"] == 23760 * 1024
    assert (values["swiotlb.present"], values["swiotlb.slots"], values["swiotlb.used"],
            values["swiotlb.hiwater"]) == (1, 512, 3, 17)
    assert values["vmstat.pgpgin"] == 8000 and values["vmstat.pgalloc"] == 4211
    assert values["vmstat.allocstall"] == 0
    assert ms["swiotlb.bounces"].kind == "counter" and ms["swiotlb.bounces"].better == "lower"
    assert ms["slab.kmalloc-8.bytes"].unit == "bytes"
    assert all(m.workload == "dd-direct" for m in ms.values())


def test_metrics_sum_kmalloc_bytes_over_classes(before_after: tuple[Snapshot, Snapshot]) -> None:
    _, after = before_after
    ms = {m.name: m.value for m in snapshot.metrics(None, after, "boot")}
    per_class = [v for n, v in ms.items() if n.startswith("slab.kmalloc-") and n.endswith(".bytes")]
    assert len(per_class) == 13 and ms["slab.kmalloc.bytes"] == sum(per_class)
    assert not any(n.startswith(("swiotlb.bounces", "vmstat.")) for n in ms)  # no before


def test_the_same_snapshot_twice_gives_no_counters(
    before_after: tuple[Snapshot, Snapshot],
) -> None:
    """metrics(s, s): no snapshot after the workload; a 0 would be a claim, not a figure."""
    _, after = before_after
    names = {m.name for m in snapshot.metrics(after, after, "boot")}
    assert "slab.minalign" in names and "swiotlb.slots" in names
    assert not any(n.startswith(("swiotlb.bounce", "vmstat.", "slab.kmalloc.bytes.delta"))
                   for n in names)


@pytest.mark.parametrize(
    ("name", "ok"),
    [("dd.write.seconds", True), ("slab.kmalloc-8.bytes", True), ("fio.job_1.read.iops", True),
     ("", False), (".x", False), ("a b", False), ("a/../b", False), ("x" * 200, False)],
)
def test_safe_metric(name: str, ok: bool) -> None:
    assert bool(snapshot.SAFE_METRIC.match(name)) is ok


def test_no_counters_across_a_reboot(before_after: tuple[Snapshot, Snapshot]) -> None:
    before, after = before_after
    names = {m.name for m in snapshot.metrics(after, before, "w")}  # uptime went back
    assert "swiotlb.bounces" not in names and "vmstat.pgpgin" not in names
    assert "slab.minalign" in names


def test_no_bounce_counters_when_the_trigger_was_reset(
    before_after: tuple[Snapshot, Snapshot],
) -> None:
    before, after = before_after
    reset = Snapshot(**{**after.__dict__, "uptime": 99.0, "bounces": before.bounces})
    names = {m.name for m in snapshot.metrics(Snapshot(**{**after.__dict__, "uptime": 1.0}),
                                              reset, "w")}
    assert not any(n.startswith("swiotlb.bounce") for n in names)


def test_absent_swiotlb_reports_zeros() -> None:
    snap = Snapshot(swiotlb=swiotlb.Swiotlb(present=False))
    values = {m.name: m.value for m in snapshot.metrics(None, snap, "boot")}
    assert values == {"swiotlb.present": 0, "swiotlb.slots": 0, "swiotlb.used": 0,
                      "swiotlb.hiwater": 0}


def test_every_emitted_name_is_in_the_catalogue(before_after: tuple[Snapshot, Snapshot]) -> None:
    before, after = before_after
    for m in snapshot.metrics(before, after, "w"):
        spec = catalogue.spec(m.name)
        assert spec is not None and (m.unit, m.kind, m.better) == (spec.unit, spec.kind,
                                                                   spec.better)


def test_catalogue_refuses_unknown_names() -> None:
    with pytest.raises(KeyError):
        catalogue.metric("slab.kmalloc", 1, "boot")
