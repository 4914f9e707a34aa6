"""run.json's tools: kharness's version and each QEMU's, asked of the binaries on PATH (fakes here: shell scripts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import __version__
from harness.run import runner


def test_each_qemu_says_its_version_and_a_missing_one_is_left_out(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "qemu-system-aarch64"
    fake.write_text("#!/bin/sh\necho 'QEMU emulator version 9.1.2 (Debian 1:9.1.2+ds-1)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # no qemu-system-x86_64 there
    assert runner._tools() == {"kharness": __version__, "qemu-system-aarch64": "9.1.2"}
