"""The slab sampler around one workload: start it in the guest, stop it, keep the series.

The interval is the workload's `sample_interval` parameter when it has one
(seconds; 0 turns sampling off), else DEFAULT_INTERVAL. Sampling is
best effort: a sampler that cannot start or stop costs the workload its
series, never its result, and the reason is kept among the rep's problems.
"""

from __future__ import annotations

from pathlib import Path

from harness import atomic
from harness.collect import sampler
from harness.errors import GuestError
from harness.initramfs.runlayer import GUEST_SCRIPTS
from harness.machine.guest import Guest
from harness.machine.ssh import CommandResult, Step, sourced
from harness.model import Metric

SCRIPT = f"{GUEST_SCRIPTS}/kharness-sample.sh"
DEFAULT_INTERVAL = 1.0
MIN_INTERVAL = 0.05
OUTPUT_LIMIT = 16 << 20
TIMEOUT = 30.0


def interval(params: dict[str, object]) -> float:
    """Seconds between samples from the workload's parameters; 0 means off."""
    try:
        value = float(params.get("sample_interval", DEFAULT_INTERVAL))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL
    return 0.0 if value <= 0 else max(MIN_INTERVAL, min(value, 3600.0))


def start_step(every: float) -> Step:
    """The command that starts sampling every `every` seconds (for a Guest.run_steps() batch)."""
    return Step(sourced(SCRIPT, "start", f"{every:g}"), TIMEOUT)


STOP_STEP = Step(sourced(SCRIPT, "stop"), TIMEOUT, limit=OUTPUT_LIMIT)


def start(guest: Guest, every: float) -> str | None:
    """Start sampling every `every` seconds; None if started, else why not."""
    st = start_step(every)
    try:
        res = guest.run(st.command, timeout=st.timeout)
    except GuestError as exc:
        return f"sampler did not start: {exc}"
    return started(res)


def started(res: CommandResult | None) -> str | None:
    """start()'s answer from the start step's result: None if sampling, else why not."""
    if res is None or res.lost is not None:
        return f"sampler did not start: {res.lost if res is not None else 'the batch ended before it'}"
    if res.exit_status != 0:
        return f"sampler did not start: exit {res.exit_status}"
    return None


def stop(guest: Guest, raw: Path, workload: str, every: float,
         pagesize: int | None) -> tuple[list[Metric], list[str]]:
    """Stop the sampler; save raw/samples-<workload>.txt and series-<workload>.json; its metrics."""
    try:
        res = guest.run(STOP_STEP.command, timeout=STOP_STEP.timeout, limit=STOP_STEP.limit)
    except GuestError as exc:
        return [], [f"sampler did not stop: {exc}"]
    return stopped(res, raw, workload, every, pagesize)


def stopped(res: CommandResult, raw: Path, workload: str, every: float,
            pagesize: int | None) -> tuple[list[Metric], list[str]]:
    """stop() for the stop step's result in hand (from a batch)."""
    if res.lost is not None:
        return [], [f"sampler did not stop: {res.lost}"]
    if res.exit_status != 0:
        return [], [f"sampler did not stop: exit {res.exit_status}"]
    data = res.stdout
    atomic.write_bytes(raw / f"samples-{workload}.txt", data)
    series = sampler.parse(data, pagesize)
    atomic.write_json(raw / f"series-{workload}.json", sampler.to_json(series, every))
    return sampler.metrics(series, workload), [f"sampler: {p}" for p in series.problems]
