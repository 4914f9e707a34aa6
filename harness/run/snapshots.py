"""Snapshots on the host's side: run the guest script, keep its raw files, parse.

harness.collect.snapshot only parses (text in, values out); this module does
the I/O around it for one repetition:

    snap = take(guest, rep_dir / "raw", "after-dd-direct")
        # runs kharness-snapshot.sh, writes raw/after-dd-direct/<section>, parses

The section names come from the guest, which is untrusted: save_raw checks
each again so that nothing is ever written outside the raw directory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from harness import atomic
from harness.collect import snapshot
from harness.errors import GuestError
from harness.initramfs.runlayer import GUEST_SCRIPTS
from harness.machine.guest import Guest
from harness.machine.ssh import CommandResult, Step, sourced

SCRIPT = f"{GUEST_SCRIPTS}/kharness-snapshot.sh"
TIMEOUT = 60.0
_TAG = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")


STEP = Step(sourced(SCRIPT), TIMEOUT, limit=snapshot.MAX_TOTAL)  # in a Guest.run_steps() batch


def take(guest: Guest, raw_dir: Path, tag: str) -> snapshot.Snapshot:
    """One snapshot: the guest script's output saved under raw_dir/<tag>/, then parsed.

    GuestError if the script fails or times out (the guest is then in doubt);
    a source that does not parse is a problem in the Snapshot, not an error.
    """
    return record(guest.run(STEP.command, timeout=STEP.timeout, limit=STEP.limit), raw_dir, tag)


def record(res: CommandResult, raw_dir: Path, tag: str) -> snapshot.Snapshot:
    """take() for a result already in hand (STEP's, from a batch)."""
    if res.lost is not None:
        raise res.lost
    if res.timed_out or res.exit_status != 0:
        raise GuestError(f"snapshot '{tag}' failed (exit {res.exit_status})", "see raw/ and console.log")
    sections = snapshot.split(res.stdout)
    save_raw(sections, raw_dir, tag)
    return snapshot.parse(sections)


def save_raw(sections: Mapping[str, str], raw_dir: Path, tag: str) -> list[Path]:
    """Write each section to raw_dir/<tag>/<name> atomically; the paths written.

    `tag` is the host's (e.g. "before-dd-direct"); names come from split(),
    and are checked again here: nothing is ever written outside raw_dir.
    """
    if not _TAG.fullmatch(tag) or ".." in tag:
        raise ValueError(f"raw tag {tag!r}: use [a-z0-9_.-], starting with a letter or digit")
    root = raw_dir.resolve()
    written: list[Path] = []
    for name, text in sections.items():
        if snapshot.safe_name(name) != name:
            raise ValueError(f"section name {name!r} is not safe; take names from split()")
        path = (root / tag / name).resolve()
        if not path.is_relative_to(root):
            raise ValueError(f"section {name!r} would be written outside {root}")
        atomic.write_text(path, text)
        written.append(path)
    return written

