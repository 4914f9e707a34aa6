"""`kharness expand`: the table for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness import cli

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "configs" / "quick.yaml"
GOOD = Path(__file__).parent / "data" / "configs" / "good"


@pytest.fixture(autouse=True)
def expand_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the parser with `expand` alone, so other layers' CLIs cannot break these tests."""
    monkeypatch.setattr(cli, "COMMANDS", {"expand": cli.COMMANDS["expand"]})


def expand(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["expand", *argv]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_plain_table_lists_ids_varied_axes_and_count(capsys: pytest.CaptureFixture[str]) -> None:
    out = expand(capsys, str(QUICK))
    lines = out.splitlines()
    assert lines[0] == "quick: 4 cells, 4 boots"
    assert lines[1].startswith("same in every cell: memory=1024 cpus=2 swiotlb=default")
    assert lines[3].split() == ["id", "kernel", "arch"]
    assert lines[4].split() == ["bookworm-arm64-ea9a68f6", "bookworm-arm64", "arm64"]
    assert "\x1b[" not in out  # no colours when not on a terminal


def test_table_shows_repeat_when_it_varies(capsys: pytest.CaptureFixture[str]) -> None:
    lines = expand(capsys, str(GOOD / "include-exclude.yaml")).splitlines()
    assert lines[0] == "include-exclude: 6 cells, 10 boots"
    assert lines[3].split() == ["id", "kernel", "arch", "swiotlb", "dma_coherent", "repeat"]


def test_json_has_every_axis(capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(expand(capsys, str(QUICK), "--format", "json"))
    assert data["count"] == len(data["cells"]) == 4
    cell = data["cells"][1]
    assert cell["id"] == "trixie-arm64-ce1f5ea6"
    assert cell["slug"] == "trixie-arm64"
    assert cell["axes"]["kernel"] == "trixie-arm64"
    assert cell["axes"]["workloads"] == "idle,dd-direct"
    assert cell["expectations"] == ["minalign-8-after-series"]


def test_terminal_gets_a_rich_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    out = expand(capsys, str(QUICK))
    assert "trixie-x86_64-47ffd215" in out
    assert "quick: 4 cells, 4 boots" in out


def test_rich_table_prints_values_not_markup(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "markup.yaml"
    path.write_text("matrix: {kernel: [trixie-arm64], cmdline: [[], ['[bold]x']]}\n")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert "[bold]x" in expand(capsys, str(path))
