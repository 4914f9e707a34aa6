"""A /dev/kvm that exists but fails: TCG with a warning, and the reason kept."""

from __future__ import annotations

import logging
import platform
from pathlib import Path

import pytest

from harness.arches import ArchPreset, preset
from harness.machine import accel


def _host_preset() -> ArchPreset:
    return preset("arm64" if platform.machine() == "aarch64" else "x86_64")


def test_fake_kvm_that_fails_its_probe_falls_back_to_tcg_with_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path))
    monkeypatch.delenv("KHARNESS_ACCEL", raising=False)
    monkeypatch.setattr(accel, "_kvm_opens", lambda: True)
    probes: list[Path] = []

    def failing_probe(p: ArchPreset, k: Path) -> bool:
        probes.append(k)
        return False

    monkeypatch.setattr(accel, "probe", failing_probe)
    with caplog.at_level(logging.WARNING):
        choice = accel.choose(_host_preset(), tmp_path / "Image")
    assert choice.name == "tcg" and "probe" in choice.reason
    assert any("using TCG" in r.message for r in caplog.records)
    # The verdict is kept for this host boot: the second cell does not probe again.
    again = accel.choose(_host_preset(), tmp_path / "Image")
    assert again.name == "tcg" and len(probes) == 1


def test_fake_other_arch_guest_never_tries_kvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path))
    other = preset("x86_64" if platform.machine() == "aarch64" else "arm64")
    monkeypatch.setattr(accel, "probe", lambda p, k: pytest.fail("probed KVM for a foreign arch"))
    assert accel.choose(other, tmp_path / "Image").name == "tcg"


def test_tcg_asked_for_is_tcg(tmp_path: Path) -> None:
    assert accel.choose(_host_preset(), tmp_path / "Image", "tcg").reason == "asked for"
