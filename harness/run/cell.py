"""One repetition of one cell: boot, collect around each workload, judge, record.

The kernel's faults and ours are kept apart (style.md habit 4): a panic, an
oops, a workload that fails or hangs is "fail"; a missing QEMU, a download
that failed or an SSH server that went away without a kernel message is
"error". Whatever happens, the repetition's files are written and cell.json
comes last.
"""

from __future__ import annotations

import logging
import math
import re
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness import atomic, devices, results
from harness.collect import catalogue, derived
from harness.collect import console as console_scan
from harness.collect import snapshot as snap
from harness.errors import GuestError, KernelFault, KharnessError
from harness.initramfs.runlayer import GUEST_SCRIPTS
from harness.machine.guest import BootFn, Guest, scan_console
from harness.machine.qemu import console_tail, traffic_env
from harness.machine.ssh import CommandResult, Step, sourced
from harness.model import Cell, Metric, Status, TestResult, worst
from harness.results import RepRecord
from harness.run import expect, sampling, snapshots
from harness.workloads import Workload

log = logging.getLogger(__name__)

RAW_OUTPUT_LIMIT = 8 * 1024 * 1024
SETUP_TIMEOUT = 90.0  # init's late modules (a USB disk's enumeration) come within it
DMESG_STEP = Step("dmesg", 30.0, limit=RAW_OUTPUT_LIMIT)
OOM_SCAN_BYTES = 4 * 1024 * 1024  # of the console a workload's batch wrote, searched for OOM kills


Progress = Callable[[str], None]


class RepInterrupted(Exception):
    """The run is stopping (Ctrl-C, SIGTERM) and this repetition was cut off.

    Nothing is recorded for it (no cell.json), so `kharness run --resume`
    runs it again; the runner notes the interruption in run.json and JUnit.
    """


@dataclass
class _Rep:
    """Mutable state of a repetition while it runs."""

    cell: Cell
    rep: int
    path: Path
    tests: list[TestResult] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    kernel: dict[str, object] = field(default_factory=dict)
    qemu: dict[str, object] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # collector parse problems, kept in raw/
    phase: str = "boot"  # what the repetition is doing: names the testcase of a failure there


def _qemu_details(details: dict[str, object]) -> dict[str, object]:
    qemu = details.get("qemu")
    return dict(qemu) if isinstance(qemu, dict) else {}


def run_repetition(cell: Cell, rep: int, run_dir: Path, workloads: dict[str, Workload],
                   boot: BootFn, progress: Progress = lambda s: None,
                   stopping: Callable[[], bool] = lambda: False) -> RepRecord:
    if stopping():
        raise RepInterrupted(f"{cell.slug}#{rep}")
    path = results.rep_dir(run_dir, cell.id, rep)
    (path / "raw").mkdir(parents=True, exist_ok=True)
    state = _Rep(cell, rep, path)
    started = time.monotonic()
    try:
        _boot_and_run(state, workloads, boot, progress)
    except KernelFault as exc:  # the machine layer saw the kernel fail (its console says so)
        state.qemu = state.qemu or _qemu_details(exc.details)
        state.tests.append(TestResult(state.phase, "fail", exc.summary, exc.excerpt))
    except KharnessError as exc:  # ours: artefacts, QEMU, SSH, a guest lost without a kernel message
        state.qemu = state.qemu or _qemu_details(exc.details)
        state.tests.append(TestResult(state.phase, "error", str(exc), getattr(exc, "console_tail", "")))
    except Exception as exc:  # a harness bug must not end the run: record it, go on
        log.exception("internal error in %s#%d", cell.slug, rep)
        state.tests.append(TestResult("harness", "error", f"internal error: {exc!r}"))
    if stopping():  # its guest was stopped under it: what it saw says nothing about the kernel
        raise RepInterrupted(f"{cell.slug}#{rep}")
    _scan_console(state)
    _judge(state)
    state.timings["total"] = round(time.monotonic() - started, 3)
    if state.problems:
        atomic.write_text(path / "raw" / "problems.txt", "\n".join(state.problems) + "\n")
    record = RepRecord(
        cell_id=cell.id, slug=cell.slug, axes=dict(cell.axes), rep=rep, status=_status(state.tests),
        reason=_reason(state.tests), kernel=state.kernel, qemu=state.qemu, timings=state.timings,
        tests=state.tests,
    )
    results.write_metrics(path, state.metrics)
    results.write_record(path, record)
    return record


def _boot_and_run(state: _Rep, workloads: dict[str, Workload], boot: BootFn, progress: Progress) -> None:
    """Boot, then one batch per workload (Guest.run_steps). Each batch's snapshot is
    parsed while the next batch runs: the guest never waits for the host's parsing.

    The pool is left last: QEMU is closed first, so a batch still running
    when a snapshot turns out bad (the repetition ends) ends with it.
    """
    progress("boot")
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{state.cell.slug}") as pool, \
            boot(state.cell, state.path) as booted:
        state.kernel = booted.kernel
        state.qemu = booted.guest.describe()
        state.timings["boot"] = round(booted.boot_seconds, 3)
        state.timings["prepare"] = round(time.monotonic() - t0 - booted.boot_seconds, 3)
        state.tests.append(TestResult("boot", "pass", seconds=round(time.monotonic() - t0, 3)))
        guest = booted.guest
        state.phase = "setup"
        # one round trip: setup, then the boot snapshot (Guest.run_steps)
        setup_res, *rest = guest.run_steps([_setup_step(state, workloads), snapshots.STEP])
        traced = _guest_setup(state, setup_res)
        # the snapshot not parsed yet: its tag, its result (None: taken on its own), its workload
        unparsed: tuple[str, CommandResult | None, Workload | None] | None = ("boot", rest[0] if rest else None, None)
        before: snap.Snapshot | None = None
        deadline = time.monotonic() + state.cell.timeouts.cell
        dmesg: CommandResult | None = None
        last_batch = "setup"  # whose leftover output a batch's first result may count
        for i, wl_run in enumerate(state.cell.workloads):
            if time.monotonic() > deadline:
                state.tests.append(TestResult(f"workload:{wl_run.name}", "skipped", "cell timeout reached"))
                continue
            if unparsed is not None and unparsed[1] is None:  # the guest is needed for it: first, alone
                before = _parse(guest, state, before, unparsed, traced)
                unparsed = None
            progress(f"workload {wl_run.name}")
            wl = workloads[wl_run.name]
            params = dict(wl_run.params)
            # the last workload's batch also reads dmesg, which saves its own round trip
            steps, every = _workload_steps(state, wl, params, with_dmesg=i + 1 == len(state.cell.workloads))
            console_at = _console_size(guest)
            running = pool.submit(guest.run_steps, steps)
            if unparsed is not None:
                before = _parse(guest, state, before, unparsed, traced)
                unparsed = None
            state.phase = f"workload:{wl.name}"
            batch = running.result()
            if batch and batch[0].dropped_before:
                state.problems.append(f"{last_batch}: the guest wrote {batch[0].dropped_before} bytes after "
                                      "the batch had ended (a process left running?); they were dropped")
            last_batch = wl.name
            ok, snap_res, dmesg = _judged(guest, state, wl, every, batch,
                                          before.pagesize if before is not None else None, console_at)
            if not guest.alive():
                break
            if ok is not None:  # (None: the guest is up but the workload could not run: no figures)
                unparsed = (f"after-{wl.name}", snap_res, wl)
        if unparsed is not None:
            _parse(guest, state, before, unparsed, traced)
        _save_dmesg(guest, state, dmesg)
        t_stop = time.monotonic()
    state.timings["shutdown"] = round(time.monotonic() - t_stop, 3)


def _parse(guest: Guest, state: _Rep, before: snap.Snapshot | None,
           unparsed: tuple[str, CommandResult | None, Workload | None], traced: snap.Sections) -> snap.Snapshot:
    """The snapshot `unparsed` names, parsed and recorded with its figures: the boot's
    (and what arming the histograms cost), or a workload's deltas from `before`."""
    tag, res, wl = unparsed
    snapshot = _snapshot(guest, state, tag, res)
    if wl is None:  # (the boot's comes first: `before` is there for every workload's)
        state.metrics += snap.metrics(None, snapshot, "boot")
        state.metrics += _trace_cost(traced, snapshot)
    else:
        state.metrics += snap.metrics(before, snapshot, wl.name)
        state.metrics += derived.per_io(state.metrics, wl.name)
    return snapshot


def _setup_step(state: _Rep, workloads: dict[str, Workload]) -> Step:
    """kharness-setup.sh: wait for init's late modules, the histograms armed, the disks there.

    The boot snapshot is taken once every disk the workloads use has
    appeared, so a device's probe (a USB disk enumerates seconds after init)
    belongs to the boot, never to the first workload.
    """
    env: dict[str, str] = {}
    for wl_run in state.cell.workloads:
        env.update(_device_env(workloads[wl_run.name]))
    env["KH_DISKS"] = "1" if any(k.startswith("KH_SERIAL_") for k in env) else "0"
    env["KH_SCRIPTS"] = GUEST_SCRIPTS  # (sourced, the script cannot tell its folder from $0)
    return Step(sourced(f"{GUEST_SCRIPTS}/kharness-setup.sh"), SETUP_TIMEOUT, env, snap.MAX_TOTAL)


def _guest_setup(state: _Rep, res: CommandResult) -> snap.Sections:
    """Judge the setup step's answer and keep its files; the sections (init's
    slabinfo around arming the histograms among them)."""
    state.timings["setup"] = res.seconds
    if res.lost is not None:
        raise res.lost
    sections = snap.split(res.stdout)
    state.problems += [f"setup: {p}" for p in sections.problems]
    init = sections.get("init", "").strip()
    if init.startswith("error") or init == "timeout" or res.timed_out:
        raise GuestError(f"guest init did not finish: {init[:200] or 'no answer'}",
                         "see console.log (KHARNESS-INIT-ERROR)")
    if not init.startswith("ok"):
        state.problems.append(f"setup: init's status is missing ({res.stderr.decode(errors='replace')[-200:]!r})")
    atomic.write_text(state.path / "raw" / "trace-setup.txt", sections.get("trace", ""))
    disks = sections.get("disks", "ok").strip()
    if disks != "ok":  # the workload that needs the disk fails and says so
        state.problems.append(f"setup: disks not found: {disks[-200:]}")
    for when in ("before", "after"):
        text = sections.get(f"slabinfo-{when}-trace")
        if text is not None:
            atomic.write_text(state.path / "raw" / f"trace-slabinfo-{when}", text)
    return sections


def _trace_cost(sections: snap.Sections, boot: snap.Snapshot) -> list[Metric]:
    """init's slabinfo around arming the histograms (raw/trace-slabinfo-*): their kmalloc cost."""
    before, after = sections.get("slabinfo-before-trace"), sections.get("slabinfo-after-trace")
    if before is None or after is None:
        return []  # init could not arm them: the host did, after boot, at no measured cost
    return snap.trace_cost(before, after, boot)


def _snapshot(guest: Guest, state: _Rep, tag: str, res: CommandResult | None = None) -> snap.Snapshot:
    """The snapshot `tag`: from its step's result in a batch, or (none: the batch
    ended before it) taken on its own."""
    state.phase = f"snapshot:{tag}"
    t0 = time.monotonic()
    if res is None:
        parsed = snapshots.take(guest, state.path / "raw", tag)
        state.timings[f"snapshot.{tag}"] = round(time.monotonic() - t0, 3)
    else:
        parsed = snapshots.record(res, state.path / "raw", tag)
        state.timings[f"snapshot.{tag}"] = res.seconds
    state.problems += [f"{tag}: {p}" for p in parsed.problems]
    return parsed


def _workload_steps(state: _Rep, wl: Workload, params: dict[str, object],
                    with_dmesg: bool) -> tuple[list[Step], float]:
    """One workload's batch: the slab sampler (sampling.py) started, the workload, the
    sampler stopped, the snapshot after it, and dmesg (`with_dmesg`); the sampler's interval
    (0: off)."""
    every = sampling.interval({**dict(wl.params), **params})
    steps = [sampling.start_step(every)] if every else []
    steps += [_workload_step(state, wl, params)]
    steps += [sampling.STOP_STEP] if every else []
    steps += [snapshots.STEP]
    steps += [DMESG_STEP] if with_dmesg else []
    return steps, every


def _judged(guest: Guest, state: _Rep, wl: Workload, every: float, batch: list[CommandResult],
            pagesize: int | None, console_at: int) -> tuple[bool | None, CommandResult | None, CommandResult | None]:
    """A _workload_steps batch's results judged: (the workload's outcome, as _run_workload
    says, the snapshot's result, dmesg's result; None for a step the batch did not reach)."""
    results = iter(batch)
    start = next(results, None) if every else None
    why = sampling.started(start) if every else None
    ok = _run_workload(guest, state, wl, next(results, None), console_at)
    stop = next(results, None) if every else None
    if start is not None and stop is not None:
        state.timings[f"sampler.{wl.name}"] = round(start.seconds + stop.seconds, 3)
    if why is not None:
        state.problems.append(why)
    elif every and guest.alive():
        raw = state.path / "raw"
        metrics, problems = (sampling.stopped(stop, raw, wl.name, every, pagesize) if stop is not None
                             else sampling.stop(guest, raw, wl.name, every, pagesize))
        state.metrics += metrics
        state.problems += problems
    return ok, next(results, None), next(results, None)


def _workload_step(state: _Rep, wl: Workload, params: dict[str, object]) -> Step:
    env = {f"KH_{k.upper()}": str(v) for k, v in {**dict(wl.params), **params}.items()}
    env.update(_device_env(wl))
    timeout = min(state.cell.timeouts.workload, wl.timeout or state.cell.timeouts.workload)
    return Step(sourced(f"{GUEST_SCRIPTS}/kharness-run.sh", f"{GUEST_SCRIPTS}/{wl.script.name}"),
                timeout, env, RAW_OUTPUT_LIMIT)


def _lost_output(text: str, guest: Guest) -> str:
    """A lost workload's output and the console's last lines: why it was lost, when the console shows no fault."""
    return f"{text}\n--- console.log, last lines ---\n{console_tail(guest.console_log)}"


def _console_size(guest: Guest) -> int:
    try:
        return guest.console_log.stat().st_size
    except OSError:
        return 0


def _oom_victims(guest: Guest, since: int) -> list[str]:
    """What the OOM killer killed since the console was `since` bytes long (the batch's start)."""
    try:
        with guest.console_log.open("rb") as f:
            f.seek(since)
            return console_scan.oom_victims(f.read(OOM_SCAN_BYTES))
    except OSError:
        return []


def _run_workload(guest: Guest, state: _Rep, wl: Workload, res: CommandResult | None,
                  console_at: int) -> bool | None:
    """Judge one workload's result; returns True/False for pass/fail, None if the guest is gone.
    `console_at`: the console's size when its batch began (an OOM kill since then is named)."""
    name = f"workload:{wl.name}"
    timeout = min(state.cell.timeouts.workload, wl.timeout or state.cell.timeouts.workload)
    if res is None:  # the batch ended before it: the sampler's start was cut off
        state.tests.append(TestResult(name, "error", "the guest stopped answering before the workload"))
        return None
    if isinstance(res.lost, KernelFault):  # the guest was lost and the console says the kernel failed
        state.tests.append(TestResult(name, "fail", res.lost.summary, res.lost.excerpt))
        return None
    if res.lost is not None:
        state.tests.append(TestResult(name, "error", str(res.lost), _lost_output("", guest)))
        return None
    if not guest.alive() or (res.exit_status == -1 and not res.timed_out):
        # The channel closed without an exit status: QEMU or the SSH server went away.
        state.tests.append(TestResult(name, "error", "the guest went away during the workload",
                                      _lost_output(res.text[-4000:], guest), round(res.seconds, 3)))
        return None
    state.timings[f"workload.{wl.name}"] = round(res.seconds, 3)
    state.ran.append(wl.name)
    out = res.stdout + (b"\n--- stderr ---\n" + res.stderr if res.stderr else b"")
    if res.truncated:
        state.problems.append(f"{wl.name}: output cut at {RAW_OUTPUT_LIMIT} bytes")
    atomic.write_bytes(state.path / "raw" / f"workload-{wl.name}.txt", out)
    metrics, bad = workload_metrics(res.text, wl)
    fio_metrics, fio_bad = derived.fio_report(res.text, wl.name)
    state.metrics += metrics + fio_metrics
    bad += fio_bad
    text = res.text[-4000:]
    if res.timed_out:
        state.tests.append(TestResult(name, "fail", f"timed out after {timeout:.0f}s", text, res.seconds))
        return False
    if res.exit_status != 0:
        err = res.stderr.decode(errors="replace").strip()[-300:]
        why = f"exit status {res.exit_status}: {err}"
        victims = _oom_victims(guest, console_at) if res.exit_status == 128 + signal.SIGKILL else []
        if victims:  # SIGKILL, and the console says who sent it
            why = f"killed by the OOM killer (it killed {', '.join(victims[:5])}; see console:oom-kill): {why}"
        state.tests.append(TestResult(name, "fail", why, text, res.seconds))
        return False
    status: Status = "fail" if bad else "pass"
    state.tests.append(TestResult(name, status, "; ".join(bad)[:500], text, round(res.seconds, 3)))
    return True


def _device_env(wl: Workload) -> dict[str, str]:
    # kharness-run.sh turns each disk's serial into KH_DEV_<ID>=/dev/... in the
    # guest, searching the way the device kind says (KH_FIND_<ID>); a NIC is
    # no disk: its script gets KH_NET_<ID> (MAC, address, peer ports).
    env: dict[str, str] = {}
    for d in wl.devices:
        kind = devices.get(d.kind)
        if kind.role == "disk":
            env[f"KH_SERIAL_{d.id.upper()}"] = d.id
            env[f"KH_FIND_{d.id.upper()}"] = kind.find
        elif kind.role == "nic":
            env[f"KH_NET_{d.id.upper()}"] = traffic_env()
    env["KH_DISKS"] = "1" if any(k.startswith("KH_SERIAL_") for k in env) else "0"
    return env


def workload_metrics(text: str, wl: Workload) -> tuple[list[Metric], list[str]]:
    """`metric <name> <value>` lines; malformed ones are reported (the workload fails), not trusted.

    The guest is the kernel under test: a value must be a plain finite decimal
    number within results.MAX_VALUE (no nan, inf, 1e999 or 1_000), a name of
    the metric grammar that no collector owns, and each name is taken once.
    """
    metrics: list[Metric] = []
    bad: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("metric "):
            continue
        parts = line.split()
        shown = repr(line[:80])
        if len(parts) != 3 or not snap.SAFE_METRIC.match(parts[1]):
            bad.append(f"malformed metric line: {shown}")
            continue
        name, value = parts[1], _guest_number(parts[2])
        if value is None:
            bad.append(f"metric {name}: {parts[2][:40]!r} is not a finite number: {shown}")
        elif catalogue.spec(name) is not None:
            bad.append(f"metric {name} is a collector's (harness/collect/catalogue.py), not the workload's")
        elif name in seen:
            bad.append(f"metric {name} given twice; the first kept")
        else:
            seen.add(name)
            d = wl.metric_decl(name)
            metrics.append(Metric(name, value, d.unit, d.kind, d.better, wl.name))
    return metrics, bad


_GUEST_NUMBER = re.compile(r"[-+]?(?:[0-9]{1,40}(?:\.[0-9]{0,40})?|\.[0-9]{1,40})(?:[eE][-+]?[0-9]{1,3})?")


def _guest_number(token: str) -> float | None:
    """A decimal number a guest printed, or None: only digits, a point and an exponent, finite, bounded."""
    if not _GUEST_NUMBER.fullmatch(token):
        return None
    value = float(token)
    return value if math.isfinite(value) and abs(value) <= results.MAX_VALUE else None


def _save_dmesg(guest: Guest, state: _Rep, res: CommandResult | None) -> None:
    """raw/dmesg.txt: from the last workload's batch (`res`), or read now if that did not
    get to it (best effort: console.log has the kernel's messages anyway)."""
    t0 = time.monotonic()
    if res is not None and res.lost is None and res.exit_status == 0:
        state.timings["dmesg"] = res.seconds
    elif guest.alive():
        try:
            res = guest.run(DMESG_STEP.command, timeout=DMESG_STEP.timeout)
        except (GuestError, KernelFault):
            return
        state.timings["dmesg"] = round(time.monotonic() - t0, 3)
    else:
        return
    atomic.write_bytes(state.path / "raw" / "dmesg.txt", res.stdout[:RAW_OUTPUT_LIMIT])


def _scan_console(state: _Rep) -> None:
    try:
        hits = scan_console(state.path / "console.log")
    except OSError:
        hits = []
    for hit in hits:
        state.tests.append(TestResult(f"console:{hit.signature}", "fail",
                                      f"console line {hit.line}: {hit.summary}", hit.excerpt))
    if not hits and any(t.name == "boot" and t.status == "pass" for t in state.tests):
        state.tests.append(TestResult("console:clean", "pass"))


def _judge(state: _Rep) -> None:
    for exp in state.cell.expectations:
        if expect.applies(exp, state.cell):
            state.tests += expect.judge(exp, state.metrics, state.ran)


def _status(tests: list[TestResult]) -> str:
    """A repetition with no testcase at all is not known to be good: error."""
    return worst(t.status for t in tests) or "error"


def _reason(tests: list[TestResult]) -> str:
    for t in tests:
        if t.status in ("error", "fail", "interrupted"):
            return f"{t.name}: {t.message}"[:300]
    return ""
