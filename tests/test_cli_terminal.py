"""Colour, width and box tables: NO_COLOR, --color, COLUMNS; box drawing only on a terminal."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.formats import terminal
from harness.run import summary
from tests.fakes import kernels as fake
from tests.fakes import synth

BOX = set("┏┓┗┛┃━│─┡┩╇┳┻┼╋┠┨┯┷")
ANSI = "\x1b["


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("mode, tty, env, color", [
    ("auto", True, {}, True),
    ("auto", False, {}, False),
    ("auto", True, {"NO_COLOR": "1"}, False),
    ("auto", True, {"NO_COLOR": ""}, True),  # no-color.org: set and not empty
    ("auto", True, {"TERM": "dumb"}, False),
    ("always", False, {"NO_COLOR": "1"}, True),  # the explicit flag beats the variable
    ("never", True, {}, False),
])
def test_colour_policy(mode: str, tty: bool, env: dict[str, str], color: bool) -> None:
    stream = Tty() if tty else io.StringIO()
    term = terminal.of(stream, mode, environ=env)
    assert (term.tty, term.color) == (tty, color)


@pytest.mark.parametrize("tty, env, width", [
    (False, {}, 123), (False, {"COLUMNS": "90"}, 90), (True, {"COLUMNS": "100"}, 100),
    (False, {"COLUMNS": "wide"}, 123), (False, {"COLUMNS": "5"}, terminal.MIN_WIDTH),
])
def test_width_policy(tty: bool, env: dict[str, str], width: int) -> None:
    stream = Tty() if tty else io.StringIO()
    assert terminal.of(stream, environ=env, pipe_width=123).width == width


def test_tables_have_boxes_on_a_terminal_only() -> None:
    for tty, boxed in ((True, True), (False, False)):
        term = terminal.Terminal(tty=tty, color=False, width=60)
        table = term.table(title="t")
        table.add_column("a")
        table.add_row("x")
        out = io.StringIO()
        term.print(out, table)
        assert bool(BOX & set(out.getvalue())) is boxed
        if not tty:
            assert all(line == line.rstrip() for line in out.getvalue().splitlines())


def _image(tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    boot.mkdir(parents=True)
    image = boot / "vmlinuz-6.12.0-t"
    image.write_bytes(fake.zboot(fake.arm64_image("6.12.0-t"), "gzip"))
    (boot / "config-6.12.0-t").write_text("CONFIG_VIRTIO_NET=m\nCONFIG_BLK_DEV_NVME=y\n")
    return image


def test_kernel_info_piped_is_plain_text(tmp_path: Path) -> None:
    """`kharness kernel info X | cat`: the driver table without box drawing or colour."""
    env = {"PATH": "/usr/bin:/bin", "KHARNESS_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "harness", "kernel", "info", str(_image(tmp_path))],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent, check=True)
    assert not BOX & set(out.stdout) and ANSI not in out.stdout
    rows = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines()
            if line.split()[:1] in (["virtio_net"], ["nvme"])}
    assert rows == {"virtio_net": "module", "nvme": "builtin"}


def test_kernel_info_on_a_terminal_has_boxes_and_colour_follows_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main(["kernel", "info", str(_image(tmp_path)), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert BOX & set(out) and ANSI not in out
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli.main(["kernel", "info", str(_image(tmp_path / "again"))]) == 0
    assert ANSI not in capsys.readouterr().out


def _run_dir(tmp_path: Path) -> Path:
    cells = synth.bench_cells(cells=2, metrics=3, reps=2)
    return synth.write_run(tmp_path / "run", cells)


def test_summary_piped_is_plain_and_on_a_terminal_boxed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = _run_dir(tmp_path)
    assert cli.main(["show", str(run)]) == 0
    plain = capsys.readouterr().out
    assert not BOX & set(plain) and ANSI not in plain
    assert plain.splitlines()[0] == f"kharness: {run}"  # the title left, not centred in blanks
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main(["show", str(run)]) == 0
    boxed = capsys.readouterr().out
    assert BOX & set(boxed) and ANSI in boxed  # status in colour on a terminal
    assert cli.main(["--color", "never", "show", str(run)]) == 0
    assert ANSI not in capsys.readouterr().out


def test_columns_sets_the_width_of_piped_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = synth.bench_cells(cells=2, metrics=6, reps=3)
    a = synth.write_run(tmp_path / "a", base)
    b = synth.write_run(tmp_path / "b", synth.planted(base, "swiotlb.bounces", factor=2.0), seed=1)
    cli.main(["compare", str(a), str(b)])
    wide = capsys.readouterr().out
    assert max(map(len, wide.splitlines())) > 100
    monkeypatch.setenv("COLUMNS", "100")
    cli.main(["compare", str(a), str(b)])
    narrow = capsys.readouterr().out
    assert max(map(len, narrow.splitlines())) <= 100
    assert not BOX & set(narrow)


def test_summary_rows_are_plain_values(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    from harness import results
    from harness.run import runner

    loaded = results.load_run(run)
    finished, _ = runner.records_of(loaded, loaded.run)
    rows = summary.rows(run, finished)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"pass"}
    assert set(rows[0]) >= {"cell_id", "slug", "rep", "status", "minalign", "slab_kmalloc_bytes", "bounces"}
