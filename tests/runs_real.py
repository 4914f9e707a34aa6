"""What the real-boot test files share: a config run with `kharness run`, as a user runs it.

Nothing is faked here: every call boots real kernels under QEMU.
"""

from __future__ import annotations

from pathlib import Path

from harness.cli import main
from harness.results import RunResult, load_run


def run_config(tmp: Path, config: str | Path, *, must_pass: bool = True) -> RunResult:
    """`kharness run -q` of a config (its YAML text, or a file) into tmp/out; the result directory, loaded.

    With `must_pass` a run that does not exit 0 fails the caller, naming each repetition that did not pass,
    and so does a repetition whose setup step had a problem (raw/problems.txt: a disk not found before the
    boot snapshot, init's status missing), which passes but leaves the boot's figures in doubt.
    """
    if isinstance(config, str):
        (tmp / "c.yaml").write_text(config)
        config = tmp / "c.yaml"
    rc = main(["run", "-q", str(config), "-o", str(tmp / "out")])
    result = load_run(tmp / "out")
    if must_pass:
        assert rc == 0, [(r.record.slug, r.record.reason) for r in result.reps if r.record.status != "pass"]
        setup = [(r.record.slug, line) for r in result.reps if (r.path / "raw" / "problems.txt").is_file()
                 for line in (r.path / "raw" / "problems.txt").read_text().splitlines() if line.startswith("setup:")]
        assert not setup, setup
    return result


def figures(run: RunResult, slug: str) -> dict[str, float]:
    """The repetition of cell `slug` (one only): its metrics as workload:name -> value."""
    (rep,) = [r for r in run.reps if r.record.slug == slug]
    return {m.key: m.value for m in rep.metrics}
