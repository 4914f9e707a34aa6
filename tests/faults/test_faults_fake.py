"""Results-disk faults, with a fake guest (no QEMU): a full disk mid-run."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from harness import results
from harness.cli import main
from harness.results import load_record
from tests.fakes.guest import fake_boot
from tests.fakes.runs import guest_factory, workload

DD_OK = b"metric dd.requests 4000\n"


def test_fake_disk_full_gives_one_line_exit_3_and_keeps_finished_cells(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: full\ndefaults: {workloads: [idle]}\n"
                   "matrix: {kernel: [trixie-arm64, trixie-x86_64]}\n")
    boot = fake_boot(guest_factory(workload("dd-direct", DD_OK)))
    monkeypatch.setattr("harness.run.cli.boot_cell", lambda cell, path, *a, **k: boot(cell, path))
    real_write = results.write_metrics
    calls = []

    def write_metrics(path: Path, metrics: list) -> None:  # type: ignore[type-arg]
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path / "metrics.json"))
        real_write(path, metrics)

    monkeypatch.setattr(results, "write_metrics", write_metrics)
    rc = main(["run", "-q", str(cfg), "-o", str(tmp_path / "out"), "--jobs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3
    assert any("No space left on device" in line for line in err), err
    first = load_record(calls[0])
    assert first.status == "pass"  # finished before the disk filled: intact and readable
    assert not (calls[1] / "cell.json").exists()  # the failed one does not look finished
