"""Console scanning: one hit per kernel incident, named by its cause."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from harness.collect import console
from harness.machine.guest import scan_console

DATA = Path(__file__).parent / "data" / "collect"


def stamp(i: int, text: str) -> str:
    return f"[{i // 1000:5d}.{i % 1000:06d}] {text}"


def test_arm64_oops_and_its_panic_are_one_fatal_hit() -> None:
    (hit,) = console.scan((DATA / "console-panic.log").read_bytes())
    assert hit.line == 27 and hit.last_line == 90
    assert hit.signature == "unable-to-handle"
    assert hit.signatures == ("unable-to-handle", "internal-error", "panic")
    assert hit.fatal
    assert hit.title.startswith("Unable to handle kernel NULL pointer dereference")
    lines = hit.excerpt.split("\n")
    assert len(lines) == console.EXCERPT
    assert lines[console.BEFORE].endswith(hit.title)  # the excerpt starts 5 lines before
    assert "\r" not in hit.excerpt
    assert hit.summary == ("Unable to handle kernel NULL pointer dereference at virtual address "
                           "0000000000000008 (then: internal-error, panic)")


def test_warning_with_cut_here_then_swiotlb_full_are_two_hits() -> None:
    first, second = console.scan((DATA / "console-warning.log").read_bytes())
    assert first.signature == "dma-api-eexist"  # the cause, not the "cut here" line
    assert first.signatures == ("cut-here", "dma-api-eexist", "warning")
    assert not first.fatal
    assert second.signature == "swiotlb-full" and second.signatures == ("swiotlb-full",)
    assert second.line == 55 and second.last_line == 57  # three rate-limited lines, one hit


def test_an_oom_killing_spree_is_one_hit_naming_its_first_victim() -> None:
    # Debian 6.12 arm64 with every free page taken as huge pages: three reports
    # 58 lines apart, each ending in a kill (dropbear twice, then the shell).
    (hit,) = console.scan((DATA / "console-oom.log").read_bytes())
    assert hit.signature == "oom-kill" and hit.signatures == ("oom-kill",)
    assert hit.title.startswith("Out of memory: Killed process 154 (dropbear)")
    assert hit.last_line - hit.line == 115
    assert not hit.fatal


def test_oom_victims_are_named_in_order_and_only_as_names() -> None:
    assert console.oom_victims((DATA / "console-oom.log").read_bytes()) == ["dropbear", "dropbear", "sh"]
    hostile = ("Out of memory: Killed process 7 (../../etc/x y) total-vm:1kB\n"
               "Out of memory: Killed process 8 (<b>&) total-vm:1kB\n"
               "Out of memory: Kill process 9 (kworker/u8:2) score 1 or sacrifice child\n"
               "Out of memory: Killed process 10 (\x1b[31m) total-vm:1kB\n")
    assert console.oom_victims(hostile) == ["../../etc/xy", "b", "kworker/u8:2", "31m"]
    assert console.oom_victims(b"\xff\xfe no kill here\n") == []


def test_clean_boot_has_no_hits() -> None:
    # panic=-1 on the command line, "DMA-API: preallocated", rcu: boot lines,
    # ANSI colour from userspace and bytes that are not UTF-8 are no faults.
    assert console.scan((DATA / "console-clean.log").read_bytes()) == []


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)", "panic"),
        ("BUG: KASAN: slab-out-of-bounds in virtblk_probe+0x1f4/0x8c0", "kasan"),
        ("BUG: KFENCE: use-after-free read in test_func+0x10/0x20", "kfence"),
        ("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [fio:201]", "soft-lockup"),
        ("kernel BUG at mm/slub.c:4321!", "kernel-bug"),
        ("Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1]",
         "gpf"),
        ("Internal error: Oops - BUG: 00000000f2000800 [#1] SMP", "internal-error"),
        ("Oops: 0002 [#1] PREEMPT SMP NOPTI", "oops"),
        ("BUG: kernel NULL pointer dereference, address: 0000000000000008", "bug"),
        ("BUG: sleeping function called from invalid context at mm/slub.c:1", "bug"),
        ("WARNING: CPU: 1 PID: 77 at mm/slab_common.c:1000 kmalloc_fix_flags+0x40/0x60", "warning"),
        ("WARNING: possible circular locking dependency detected", "lockdep"),
        ("------------[ cut here ]------------", "cut-here"),
        ("UBSAN: shift-out-of-bounds in drivers/virtio/virtio_ring.c:100:5", "ubsan"),
        ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "rcu-stall"),
        ("rcu: INFO: rcu_sched self-detected stall on CPU", "rcu-stall"),
        ("INFO: task kworker/0:1:23 blocked for more than 120 seconds.", "hung-task"),
        ("nvme 0000:00:04.0: swiotlb buffer is full (sz: 4096 bytes), total 512 (slots)",
         "swiotlb-full"),
        ("DMA-API: nvme 0000:00:04.0: cacheline tracking EEXIST, overlapping mappings aren't "
         "supported", "dma-api-eexist"),
        ("\x1b[1;31mKernel panic - not syncing: Attempted to kill init!\x1b[0m", "panic"),
        ("rcu: \tRCU CPU stall warnings timeout set to 30 (rcu_cpu_stall_timeout).", None),
        ("Kernel command line: console=ttyS0 panic=-1", None),
        ("DMA-API: preallocated 65536 debug entries", None),
        ("Out of memory: Killed process 154 (dropbear) total-vm:4544kB, anon-rss:132kB", "oom-kill"),
        ("Memory cgroup out of memory: Killed process 201 (fio) total-vm:90000kB", "oom-kill"),
        ("Out of memory: Kill process 201 (fio) score 901 or sacrifice child", "oom-kill"),
        ("sh invoked oom-killer: gfp_mask=0x2dc2(GFP_KERNEL|__GFP_HIGHMEM), order=0", None),
        ("echo Oops", None),
        ("software IO TLB: mapped [mem 0x7b000000-0x7f000000] (64MB)", None),
    ],
)
def test_signature_of_one_line(line: str, name: str | None) -> None:
    assert console.signature(console.clean(stamp(1, line))) == name


def test_x86_null_dereference_oops_panic_is_one_hit() -> None:
    report = [
        "BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "#PF: supervisor read access in kernel mode",
        "Oops: 0000 [#1] PREEMPT SMP NOPTI",
        "RIP: 0010:virtblk_probe+0x1f4/0x8c0 [virtio_blk]",
        "Call Trace:",
        *[f" ? func{i}+0x10/0x20" for i in range(25)],
        "---[ end trace 0000000000000000 ]---",
        "Kernel panic - not syncing: Fatal exception",
        "Kernel Offset: 0x1000000 from 0xffffffff81000000",
        "---[ end Kernel panic - not syncing: Fatal exception ]---",
    ]
    (hit,) = console.scan("\n".join(stamp(i, t) for i, t in enumerate(report)))
    assert (hit.signature, hit.signatures) == ("bug", ("bug", "oops", "panic"))


def test_two_warnings_with_their_end_trace_are_two_hits() -> None:
    one = ["------------[ cut here ]------------", "WARNING: CPU: 0 PID: 1 at a.c:1 f+0x1/0x2",
           "Call trace:", " f+0x1/0x2", "---[ end trace 0000000000000000 ]---"]
    hits = console.scan("\n".join(one + one))
    assert [h.line for h in hits] == [1, 6]
    assert all(h.signature == "warning" for h in hits)


def test_reports_without_end_marker_group_by_distance() -> None:
    lockup = "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [fio:201]"
    lines = [lockup] + [" trace"] * 30 + [lockup] + ["quiet"] * (console.GAP + 1)
    lines.append("INFO: task fio:201 blocked for more than 120 seconds.")
    first, second = console.scan("\n".join(lines))
    assert (first.line, first.last_line, first.signature) == (1, 32, "soft-lockup")
    assert (second.signature, second.line) == ("hung-task", len(lines))


def test_cut_here_opens_a_new_hit_even_close_to_another_report() -> None:
    lines = ["INFO: task fio:201 blocked for more than 120 seconds.", " trace"]
    lines += ["------------[ cut here ]------------", "WARNING: CPU: 0 PID: 1 at a.c:1 f"]
    first, second = console.scan("\n".join(lines))
    assert (first.signature, second.signature, second.line) == ("hung-task", "warning", 3)


def test_a_panic_long_after_an_ended_report_is_its_own_hit() -> None:
    lines = ["WARNING: CPU: 0 PID: 1 at a.c:1 f", "---[ end trace 0 ]---"]
    lines += ["ok"] * (console.PANIC_AFTER_END + 1) + ["Kernel panic - not syncing: boom"]
    first, second = console.scan("\n".join(lines))
    assert not first.fatal and second.fatal and second.signature == "panic"


def test_cut_here_alone_is_still_a_hit() -> None:
    (hit,) = console.scan("------------[ cut here ]------------\nnothing else")
    assert (hit.signature, hit.title) == ("cut-here", "")


def test_hits_are_bounded() -> None:
    text = "\n".join(["WARNING: CPU: 0 PID: 1 at a.c:1 f", "---[ end trace 0 ]---"] * 1000)
    assert len(console.scan(text)) == console.MAX_HITS


def test_hostile_console_is_scanned_in_bounded_time_and_space() -> None:
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(1 << 20))
    huge = b"Kernel panic - not syncing: " + b"\x1b[" * (4 << 20) + b"\n"
    start = time.monotonic()
    console.scan(junk)
    (hit,) = console.scan(huge)
    assert time.monotonic() - start < 20
    assert max(len(line) for line in hit.excerpt.split("\n")) <= console.MAX_LINE


def test_clean_strips_escapes_and_controls() -> None:
    raw = "\x1b[0;32mok\x1b[0m \x1b]0;title\x07done\r\x00\x7f"
    assert console.clean(raw) == "ok done"


def test_scan_file_reads_head_and_tail_of_a_log_over_the_limit(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"WARNING: CPU: 0 PID: 1 at a.c:1 f\n" + b"x" * 100 + b"\n" * 5000
                    + b"Kernel panic - not syncing: end\n")
    hits = scan_console(log, limit=2048)
    assert [h.signature for h in hits] == ["warning", "panic"]
