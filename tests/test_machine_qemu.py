"""QemuMachine with the real QEMU binary, no kernel booted: what it keeps when QEMU fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.machine.qemu import MachineSpec, QemuMachine


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="./setup.sh installs QEMU")
def test_qemu_that_dies_leaves_its_own_log_beside_the_console(tmp_path: Path) -> None:
    kernel = tmp_path / "k"
    kernel.write_bytes(b"")
    spec = MachineSpec(arch="x86_64", kernel=kernel, initrd=kernel, cmdline=(),
                       extra_args=("-kharness-no-such-option",))
    console = tmp_path / "rep" / "console.log"
    with pytest.raises(InfraError, match=r"QEMU failed to start: .*kharness-no-such-option"):
        QemuMachine(spec, console).start()
    log = console.with_name("qemu.log")
    assert "kharness-no-such-option" in log.read_text()


def test_closing_twice_is_harmless(tmp_path: Path) -> None:
    spec = MachineSpec(arch="x86_64", kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline=())
    machine = QemuMachine(spec, tmp_path / "console.log")
    machine.close()
    machine.close()
    assert not (tmp_path / "qemu.log").exists()  # QEMU never ran: nothing to keep
