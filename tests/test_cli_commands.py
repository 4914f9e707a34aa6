"""The commands the issue asked for: show, workloads, expand --shard, slab whatif on result
directories (untrusted: no symlink followed, bounded reads), compare --format mail."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import cli, workloads
from harness.compare import mail
from harness.compare.cli import compare_dirs
from harness.compare.load import Selection
from harness.compare.rules import Rules
from harness.config.load import load
from harness.run import shard
from tests.fakes import synth

ROOT = Path(__file__).resolve().parent.parent
QUICK = ROOT / "configs" / "quick.yaml"
MINALIGN = ROOT / "configs" / "minalign.yaml"
REAL = Path(__file__).parent / "data" / "real"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    rc, _, err = run(capsys, *argv)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and "; " in err, err
    return err


# --- kharness show -----------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    cells = [synth.SynthCell(axes=(("kernel", "trixie-arm64"),), metrics=(
                 synth.SynthMetric("slab.minalign", 8.0, 0.0), synth.SynthMetric("slab.kmalloc.bytes", 3_000_000.0)),
                 reps=2),
             synth.SynthCell(axes=(("kernel", "bookworm-arm64"),), metrics=(), reps=2, statuses=("pass", "fail"),
                             unfinished=())]
    return synth.write_run(tmp_path / "run", cells)


def test_show_prints_the_summary_again(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "show", str(run_dir))
    assert rc == 1  # the run's verdict: a kernel failure
    rows = [line.split() for line in out.splitlines()]
    assert ["trixie-arm64", "0", "pass", "0.0", "8"] in [r[:5] for r in rows]
    assert ["bookworm-arm64", "1", "fail", "0.0", "-", "-", "0", "synthetic"] in rows
    assert "3 pass 1 fail" in out and f"results: {run_dir}" in out


def test_show_json(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "show", str(run_dir), "--format", "json")
    doc = json.loads(out)
    assert rc == 1 and doc["exit_code"] == 1
    assert doc["counts"] == {"pass": 3, "fail": 1}
    first = doc["repetitions"][0]
    assert (first["slug"], first["rep"], first["status"], first["minalign"]) == ("trixie-arm64", 0, "pass", 8.0)


def test_show_lists_unfinished_repetitions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cells = [synth.SynthCell(axes=(("kernel", "trixie-arm64"),), metrics=(), reps=3, unfinished=(2,))]
    d = synth.write_run(tmp_path / "cut", cells)
    rc, out, _ = run(capsys, "show", str(d), "--format", "json")
    doc = json.loads(out)
    assert rc == 3 and doc["counts"] == {"pass": 2, "interrupted": 1}
    assert "kharness run --resume" in doc["repetitions"][2]["reason"] or doc["repetitions"][2]["reason"]


def test_show_of_something_else_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not a directory" in one_line_error(capsys, "show", str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    assert "run.json" in one_line_error(capsys, "show", str(tmp_path / "empty"))


# --- kharness workloads --------------------------------------------------------------


def test_workloads_lists_every_builtin_with_devices_params_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "workloads")
    assert rc == 0
    for name in workloads.available():
        assert f"\n{name}: " in f"\n{out}"
    block = out.split("\n\n")[[b.split(":")[0] for b in out.split("\n\n")].index("dd-direct")]
    assert "devices   virtio-blk (id scratch, 64 MiB)" in block
    assert "count=2000" in block and "dd.requests [requests, counter]" in block


def test_workloads_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "workloads", "fio-nvme", "idle", "--format", "json")
    doc = json.loads(out)
    assert rc == 0 and [w["name"] for w in doc["workloads"]] == ["fio-nvme", "idle"]
    fio = doc["workloads"][0]
    assert fio["devices"] == [{"kind": "nvme", "id": "nvme", "size_mib": 64}]
    assert fio["programs"] == ["fio"] and fio["params"]["runtime"] == 2
    assert "fio.*.iops" in [m["name"] for m in fio["fio_metrics"]]
    assert doc["workloads"][1]["fio_metrics"] == []


def test_workloads_from_a_folder_of_ones_own(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.yaml").write_text("description: mine\nparams: {n: 3}\nmetrics: {my.count: {unit: x}}\n")
    (tmp_path / "mine.sh").write_text("echo metric my.count 1\n")
    rc, out, _ = run(capsys, "workloads", "--dir", str(tmp_path), "mine")
    assert rc == 0 and out.startswith("mine: mine") and "n=3" in out and "my.count [x, gauge]" in out


def test_workloads_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "unknown workload 'nope'" in one_line_error(capsys, "workloads", "nope")
    assert "not a folder" in one_line_error(capsys, "workloads", "--dir", str(tmp_path / "no"))
    (tmp_path / "bad.yaml").write_text("devices: 3\n")
    (tmp_path / "bad.sh").write_text("true\n")
    assert "bad.yaml:1" in one_line_error(capsys, "workloads", "--dir", str(tmp_path), "bad")


# --- kharness expand --shard -----------------------------------------------------------


def test_expand_shards_are_what_run_would_boot(capsys: pytest.CaptureFixture[str]) -> None:
    config = load(MINALIGN)
    seen: list[str] = []
    for k in (1, 2, 3):
        rc, out, _ = run(capsys, "expand", str(MINALIGN), "--shard", f"{k}/3", "--format", "json")
        doc = json.loads(out)
        ids = [c["id"] for c in doc["cells"]]
        assert rc == 0 and doc["shard"] == f"{k}/3" and doc["config_count"] == len(config.cells)
        assert ids == [c.id for c in shard.select(config.cells, shard.Shard(k, 3))]
        seen += ids
    assert sorted(seen) == sorted(c.id for c in config.cells)


def test_expand_shard_table_says_which_shard(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "expand", str(QUICK), "--shard", "2/2")
    assert rc == 0 and out.startswith("quick: 2 cells, 2 boots (shard 2/2 of 4 cells)")


@pytest.mark.parametrize("spec, message", [("0/3", "K must be 1..3"), ("4/3", "K must be 1..3"),
                                           ("x", "is not K/N"), ("1/0", "N must be")])
def test_expand_bad_shard_is_one_line(capsys: pytest.CaptureFixture[str], spec: str, message: str) -> None:
    assert message in one_line_error(capsys, "expand", str(QUICK), "--shard", spec)


# --- kharness slab whatif on a result directory ---------------------------------------


def _result(tmp_path: Path, cells: tuple[str, ...] = ("trixie-arm64-ce1f5ea6",), reps: int = 2) -> Path:
    run_dir = tmp_path / "run"
    for cell in cells:
        for rep in range(reps):
            boot = run_dir / "cells" / cell / str(rep) / "raw" / "boot"
            boot.mkdir(parents=True)
            (boot / "slabinfo").write_bytes((REAL / "trixie-arm64" / "slabinfo").read_bytes())
            (boot / "pagesize").write_text("KernelPageSize:        4 kB\n")
    (run_dir / "run.json").write_text("{}")
    return run_dir


def _whatif(capsys: pytest.CaptureFixture[str], target: Path, *extra: str) -> dict[str, object]:
    rc, out, err = run(capsys, "slab", "whatif", str(target), "--minalign", "64", "--format", "json", *extra)
    assert rc == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_whatif_of_a_file_and_of_each_kind_of_directory_agree(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _result(tmp_path)
    by_file = _whatif(capsys, REAL / "trixie-arm64" / "slabinfo")
    cell = run_dir / "cells" / "trixie-arm64-ce1f5ea6"
    for target in (run_dir, cell, cell / "1"):
        doc = _whatif(capsys, target)
        assert doc["extra_bytes"] == by_file["extra_bytes"] and doc["pagesize_source"] == "the run's raw/boot/pagesize"
    assert _whatif(capsys, run_dir)["slabinfo"] == str(cell / "0" / "raw" / "boot" / "slabinfo")
    assert _whatif(capsys, run_dir, "--rep", "1")["slabinfo"] == str(cell / "1" / "raw" / "boot" / "slabinfo")


def test_whatif_table_names_the_slabinfo_it_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _result(tmp_path)
    rc, out, _ = run(capsys, "slab", "whatif", str(run_dir), "--minalign", "128")
    assert rc == 0 and out.startswith(f"slabinfo: {run_dir}/cells/trixie-arm64-ce1f5ea6/0/raw/boot/slabinfo")


def test_whatif_of_a_run_with_several_cells_needs_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _result(tmp_path, ("trixie-arm64-ce1f5ea6", "bookworm-arm64-ea9a68f6"))
    err = one_line_error(capsys, "slab", "whatif", str(run_dir), "--minalign", "64")
    assert "2 cells" in err and "--cell" in err and "bookworm-arm64-ea9a68f6" in err
    assert _whatif(capsys, run_dir, "--cell", "trixie-arm64")["extra_bytes"]  # by slug
    assert _whatif(capsys, run_dir, "--cell", "bookworm-arm64-ea9a68f6")["extra_bytes"]  # by id
    assert "no cell named 'sid'" in one_line_error(capsys, "slab", "whatif", str(run_dir), "--minalign", "64",
                                                   "--cell", "sid")
    assert "no repetition 7" in one_line_error(capsys, "slab", "whatif", str(run_dir), "--minalign", "64",
                                               "--cell", "trixie-arm64", "--rep", "7")


def test_whatif_follows_no_symlink_in_a_result_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret"
    secret.write_text("not for the report\n")
    run_dir = _result(tmp_path)
    boot = run_dir / "cells" / "trixie-arm64-ce1f5ea6" / "0" / "raw" / "boot"
    (boot / "slabinfo").unlink()
    (boot / "slabinfo").symlink_to(secret)
    err = one_line_error(capsys, "slab", "whatif", str(boot.parent.parent), "--minalign", "64")
    assert "symlink" in err and "not followed" in err and "not for the report" not in err
    raw = boot.parent
    elsewhere = tmp_path / "elsewhere"
    raw.rename(elsewhere)
    raw.symlink_to(elsewhere, target_is_directory=True)
    assert "symlink" in one_line_error(capsys, "slab", "whatif", str(raw.parent), "--minalign", "64")


def test_whatif_skips_symlinked_repetitions_and_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _result(tmp_path, reps=1)
    cell = run_dir / "cells" / "trixie-arm64-ce1f5ea6"
    (cell / "0").rename(tmp_path / "moved")
    (cell / "0").symlink_to(tmp_path / "moved", target_is_directory=True)
    assert "no repetition with a boot slabinfo" in one_line_error(capsys, "slab", "whatif", str(run_dir),
                                                                 "--minalign", "64")


def test_whatif_reads_a_bounded_amount_and_no_fifo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _result(tmp_path, reps=1)
    boot = run_dir / "cells" / "trixie-arm64-ce1f5ea6" / "0" / "raw" / "boot"
    (boot / "slabinfo").unlink()
    os.mkfifo(boot / "slabinfo")  # nobody writes it: a read would hang
    assert "not a regular file" in one_line_error(capsys, "slab", "whatif", str(run_dir), "--minalign", "64")
    (boot / "slabinfo").unlink()
    with (boot / "slabinfo").open("wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of zeros
    assert "more than the" in one_line_error(capsys, "slab", "whatif", str(run_dir), "--minalign", "64")


def test_whatif_of_a_directory_that_is_no_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "neither a slabinfo file nor a result" in one_line_error(capsys, "slab", "whatif", str(tmp_path),
                                                                   "--minalign", "64")
    f = REAL / "trixie-arm64" / "slabinfo"
    assert "need a result directory" in one_line_error(capsys, "slab", "whatif", str(f), "--minalign", "64",
                                                       "--cell", "x")


# --- kharness compare --format mail ----------------------------------------------------


@pytest.fixture
def minalign_pair(tmp_path: Path) -> tuple[Path, Path]:
    base, new = synth.minalign_example()
    return synth.write_run(tmp_path / "61", base), synth.write_run(tmp_path / "612", new, seed=1)


def test_mail_format_is_at_most_72_columns(minalign_pair: tuple[Path, Path],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    a, b = minalign_pair
    rc, out, _ = run(capsys, "compare", str(a), str(b), "--ignore-axis", "kernel", "--format", "mail", "--all")
    assert rc == 1
    assert max(len(line) for line in out.splitlines()) <= 72
    assert "regressed    fio-small:swiotlb.bounces" in out
    assert "\x1b[" not in out and not set("┏┃│─") & set(out)


def test_render_mail_keeps_any_width_whatever_the_names(tmp_path: Path) -> None:
    cells = [synth.SynthCell(axes=(("kernel", "x" * 60),), metrics=(
        synth.SynthMetric("swiotlb.bounces.dev-" + "y" * 70, 10.0, better="lower", workload="fio-" + "z" * 40),),
        reps=3)]
    more = [synth.SynthCell(axes=cells[0].axes, metrics=(
        synth.SynthMetric(cells[0].metrics[0].name, 40.0, better="lower", workload=cells[0].metrics[0].workload),),
        reps=3)]
    a, b = synth.write_run(tmp_path / "a", cells), synth.write_run(tmp_path / "b", more, seed=1)
    comparisons = compare_dirs(a, [b], Selection(), Rules())
    for width in (40, 60, 72):
        text = mail.render_mail(comparisons, width=width, show_all=True)
        lines = text.splitlines()
        assert max(map(len, lines)) <= width
        assert all(c.isprintable() for line in lines for c in line)
        assert "regressed" in text
    with pytest.raises(ValueError, match="at least"):
        mail.render_mail(comparisons, width=30)


def test_wrap_breaks_long_words_and_cleans_what_is_not_one_column() -> None:
    lines = mail.wrap("a " + "b" * 100 + " \x07c \x1b[31mred \u200bzero \u4e2dwide", 30, "  ")
    assert max(map(len, lines)) <= 30 and lines[0].startswith("  a")
    assert " ".join(lines).split()[-4:] == ["?c", "?[31mred", "?zero", "?wide"]
