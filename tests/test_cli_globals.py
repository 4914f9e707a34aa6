"""The command line's manners: global options after the command too, one-line usage errors,
shell completion and a man page, all from the one parser."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "configs" / "quick.yaml"


def parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser(argv).parse_args(list(argv))


def test_global_options_before_the_command() -> None:
    args = parse("-vv", "--color", "never", "-q", "expand", str(QUICK))
    assert (args.verbose, args.color, args.quiet) == (2, "never", True)


def test_global_options_after_the_command() -> None:
    args = parse("compare", "-v", "A", "B", "--color", "always")
    assert (args.verbose, args.color, args.quiet) == (1, "always", False)
    assert args.dirs == [Path("A"), Path("B")]


def test_verbose_before_and_after_add_up_and_after_wins_for_color() -> None:
    args = parse("-v", "--color", "never", "expand", "-v", str(QUICK), "--color", "always")
    assert (args.verbose, args.color) == (2, "always")


def test_defaults_when_none_is_given() -> None:
    args = parse("expand", str(QUICK))
    assert (args.verbose, args.quiet, args.color) == (0, False, "auto")
    assert not any(k.startswith(("_top_", "_sub_")) for k in vars(args))


def test_nested_subcommands_take_them_too() -> None:
    args = parse("kernel", "info", "trixie-arm64", "--color", "never", "-v")
    assert (args.kernel_command, args.color, args.verbose) == ("info", "never", 1)
    args = parse("slab", "whatif", "f", "--minalign", "64", "-q")
    assert args.quiet


def test_a_command_keeps_its_own_quiet_and_sees_the_global_one() -> None:
    assert parse("run", str(QUICK), "-q").quiet  # run's own -q
    assert parse("-q", "run", str(QUICK)).quiet  # the global one, given before
    assert not parse("run", str(QUICK)).quiet
    assert parse("merge", "a", "-o", "m", "--quiet").quiet


def test_expand_with_options_after_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["expand", str(QUICK), "-v", "--color", "never"]) == 0
    assert capsys.readouterr().out.startswith("quick: 4 cells, 4 boots")


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: COMMAND"),
    (["nope"], "invalid choice: 'nope'"),
    (["--color", "sometimes", "expand", "x"], "argument --color: invalid choice: 'sometimes'"),
    (["expand", "x", "--color", "sometimes"], "argument --color: invalid choice: 'sometimes'"),
    (["compare", "-v"], "the following arguments are required: DIR"),
    (["show"], "the following arguments are required: RUN"),
    (["workloads", "--format", "yaml"], "argument --format: invalid choice: 'yaml'"),
    (["expand", "x", "--bogus"], "unrecognized arguments: --bogus"),
    (["completion", "fish"], "argument SHELL: invalid choice: 'fish'"),
    (["slab", "whatif", "f", "--minalign", "64", "--rep", "x"], "'x' is not a repetition number"),
])
def test_bad_arguments_are_one_line_with_the_fix_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and "; see kharness" in err and "--help" in err


def test_help_lists_every_command_and_the_global_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in [*cli.COMMANDS, *cli.SELF_COMMANDS]:
        assert name in out
    assert "--color WHEN" in out


def test_a_command_added_to_the_table_is_in_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table is all there is to adding a command (kharness ab will be one line)."""
    monkeypatch.setitem(cli.COMMANDS, "toy", ("harness.run.show", "a toy"))
    args = parse("toy", "somewhere", "-v")
    assert args.command == "toy" and args.run_dir == Path("somewhere") and args.verbose == 1


# --- completion ------------------------------------------------------------------


@pytest.mark.parametrize("shell", cli.SHELLS)
def test_completion_scripts_name_every_command(capsys: pytest.CaptureFixture[str], shell: str) -> None:
    assert cli.main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for name in ("compare", "expand", "workloads", "show", "ci-matrix"):
        assert name in script


def _complete(script: Path, *words: str) -> list[str]:
    """What bash offers after `words` (the last one being typed), from the script."""
    line = " ".join(words)
    program = (f"source {script}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
               f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}; "
               "_shtab_kharness; printf '%s\\n' \"${COMPREPLY[@]}\"")
    out = subprocess.run(["bash", "-c", program], check=True, capture_output=True, text=True).stdout
    return out.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_options_and_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["completion", "bash"]) == 0
    script = tmp_path / "kharness.bash"
    script.write_text(capsys.readouterr().out)
    assert _complete(script, "kharness", "com") == ["compare", "completion"]
    assert "--format" in _complete(script, "kharness", "compare", "--for")
    assert _complete(script, "kharness", "compare", "--format", "") == ["text", "mail", "markdown", "json",
                                                                        "html", "junit"]
    assert _complete(script, "kharness", "kernel", "") == ["fetch", "info"]
    assert "--color" in _complete(script, "kharness", "show", "--co")  # global options after the command


# --- man page --------------------------------------------------------------------


def test_man_page_has_every_command_option_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["man"]) == 0
    page = capsys.readouterr().out
    assert page.startswith(".TH KHARNESS \"1\"")
    for name in cli.COMMANDS:
        assert f"'kharness {name}'".replace("-", r"\-") in page, name
    for section in (".SH SYNOPSIS", ".SH EXIT STATUS", ".SH ENVIRONMENT"):
        assert section in page
    assert "NO_COLOR" in page and r"\-\-format" in page and "kharness slab whatif" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="no groff (apt-get install groff-base)")
def test_man_page_renders_without_warnings(tmp_path: Path) -> None:
    page = tmp_path / "kharness.1"
    assert cli.main(["man", "-o", str(page)]) == 0
    out = subprocess.run(["groff", "-man", "-Tutf8", "-ww"], input=page.read_bytes(), capture_output=True,
                         check=True)
    assert out.stderr == b""
    text = re.sub(".\b", "", out.stdout.decode())  # no overstrike bold
    assert "EXIT STATUS" in text and "kharness compare" in text


def test_python_m_harness_is_the_same_command(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "expand", str(QUICK), "--color", "never"],
                         check=False, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("quick: 4 cells")


def test_a_run_starts_without_the_imports_it_never_uses() -> None:
    """pyelftools (only read when a layer is built) and paramiko's invoke (only for
    OpenSSH config files) cost about 0.1 s of every run's start; the run's own
    modules are all there, and paramiko with them."""
    probe = (
        "import sys\n"
        "from harness import cli\n"
        f"cli.main(['expand', {str(QUICK)!r}])\n"
        "import harness.run.cli, harness.run.boot, harness.run.parallel, harness.machine.ssh\n"
        "print('paramiko' in sys.modules, 'elftools' in sys.modules, sys.modules.get('invoke'))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "True False None"
