"""The broken-config corpus: every file in tests/data/configs/bad/ must be refused.

Each file says what the one-line error must contain with `# expect: ...`
lines. The test goes through the real command line (`kharness expand`), so it
also checks the exit code (2), that stdout stays empty and that the message
is one line naming file:line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import cli
from harness.errors import EXIT_USAGE

BAD = Path(__file__).parent / "data" / "configs" / "bad"
CORPUS = sorted(BAD.glob("*.yaml"))


@pytest.fixture
def expand_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the parser with `expand` alone, so other layers' CLIs cannot break this test."""
    monkeypatch.setattr(cli, "COMMANDS", {"expand": cli.COMMANDS["expand"]})


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().splitlines()
    return [
        ln.split(b"# expect:", 1)[1].strip().decode() for ln in lines if ln.startswith(b"# expect:")
    ]


def refuse(path: Path | str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run `kharness expand path`; assert exit 2 and one line; return the line."""
    rc = cli.main(["expand", str(path)])
    out, err = capsys.readouterr()
    assert rc == EXIT_USAGE, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kharness: error: ")
    assert "; " in lines[0], "a message names the problem and, after '; ', the fix"
    return lines[0]


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 25


@pytest.mark.usefixtures("expand_only")
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_bad_config_is_refused_at_its_line(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wanted = expectations(path)
    assert wanted, f"{path.name} needs a '# expect: ...' line"
    line = refuse(path, capsys)
    assert re.match(rf"kharness: error: {re.escape(str(path))}:\d+(: |$)", line), line
    for text in wanted:
        assert text in line
    assert line.count("; ") == 1, "one problem, then one fix"


@pytest.mark.usefixtures("expand_only")
def test_huge_file_is_refused_without_reading_it_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: huge\n" + "# padding\n" * 200_000)
    assert "larger than 1024 KiB" in refuse(path, capsys)


@pytest.mark.usefixtures("expand_only")
def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not found" in refuse(tmp_path / "nope.yaml", capsys)


@pytest.mark.usefixtures("expand_only")
def test_config_path_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "is a directory" in refuse(tmp_path, capsys)


@pytest.mark.usefixtures("expand_only")
def test_unsafe_file_name_needs_a_name_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "My Config.yaml"
    path.write_text("matrix: {kernel: [trixie-arm64]}\n")
    assert "is not a safe run name; add name:" in refuse(path, capsys)
