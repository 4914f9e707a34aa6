"""The minalign what-if and `kharness slab whatif`, checked against hand calculation."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from harness.collect import cli, slabinfo, whatif
from harness.errors import UsageError

DATA = Path(__file__).parent / "data" / "collect"


def row(name: str, active: int, num: int, size: int, perslab: int, pages: int = 1) -> str:
    slabs = -(-num // perslab)
    return (f"{name:<17} {active:6d} {num:6d} {size:6d} {perslab:4d} {pages:4d} : tunables"
            f"    0    0    0 : slabdata {slabs:6d} {slabs:6d}      0")


SMALL = "\n".join([
    "slabinfo - version: 2.1",
    row("dentry", 5000, 5040, 192, 21),  # not kmalloc: ignored
    row("kmalloc-8", 1000, 1024, 8, 512),
    row("kmalloc-cg-8", 24, 512, 8, 512),
    row("kmalloc-16", 500, 512, 16, 256),
    row("kmalloc-64", 700, 704, 64, 64),
    row("kmalloc-96", 300, 336, 96, 42),
    row("kmalloc-192", 100, 105, 192, 21),
    row("kmalloc-256", 50, 64, 256, 32, 2),
]) + "\n"


@pytest.mark.parametrize(
    ("size", "minalign", "expected"),
    [
        (8, 8, 8), (8, 64, 64), (16, 64, 64), (32, 64, 64), (64, 64, 64),
        (96, 32, 96), (96, 64, 128), (96, 128, 128),
        (192, 64, 192), (192, 128, 256), (8, 128, 128), (256, 128, 256),
        (8192, 128, 8192), (16384, 128, 16384),
    ],
)
def test_round_up_class_follows_slab_common(size: int, minalign: int, expected: int) -> None:
    assert whatif.round_up_class(size, minalign) == expected


def test_whatif_64_by_hand() -> None:
    w = whatif.compute(slabinfo.parse(SMALL), 64, 4096)
    # 8: (1000 + 24) x (64 - 8); 16: 500 x (64 - 16); 96 -> 128: 300 x 32; the rest stay.
    by_hand = 1024 * 56 + 500 * 48 + 300 * 32
    assert w.extra_bytes == by_hand == 90944
    assert w.extra_pages == 23  # 90944 / 4096 = 22.2, rounded up
    assert {r.label: r.rounds_to for r in w.rows} == {
        "8": 64, "16": 64, "64": 64, "96": 128, "192": 192, "256": 256}
    assert w.taken_at == 8


def test_whatif_128_by_hand() -> None:
    w = whatif.compute(slabinfo.parse(SMALL), 128, 4096)
    # 8: 1024 x 120; 16: 500 x 112; 64: 700 x 64; 96: 300 x 32; 192 -> 256: 100 x 64.
    assert w.extra_bytes == 1024 * 120 + 500 * 112 + 700 * 64 + 300 * 32 + 100 * 64 == 239680
    assert w.extra_pages == 59  # 58.5 rounded up


def test_whatif_total_objects_counts_free_slots() -> None:
    w = whatif.compute(slabinfo.parse(SMALL), 16, 4096, objects="total")
    assert w.extra_bytes == (1024 + 512) * 8  # only class 8 moves, to 16


def test_whatif_at_the_same_minalign_costs_nothing() -> None:
    assert whatif.compute(slabinfo.parse(SMALL), 8, 4096).extra_bytes == 0


def test_whatif_612_arm64_at_64() -> None:
    w = whatif.compute(slabinfo.parse((DATA / "slabinfo-6.12-arm64").read_text()), 64, 4096)
    # Active objects per class over all families (see the file): 8: 7945, 16: 6060,
    # 32: 4530, 96: 1954.
    assert w.extra_bytes == 7945 * 56 + 6060 * 48 + 4530 * 32 + 1954 * 32


def test_whatif_refuses_a_smaller_minalign_than_the_slabinfo_shows() -> None:
    info = slabinfo.parse((DATA / "slabinfo-6.1-arm64").read_text())
    with pytest.raises(ValueError, match="taken at minalign 128"):
        whatif.compute(info, 64, 4096)


def test_whatif_refuses_odd_minalign() -> None:
    with pytest.raises(ValueError, match="use one of"):
        whatif.compute(slabinfo.parse(SMALL), 48, 4096)


# --- kharness slab whatif ---------------------------------------------------------


def slab(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kharness slab")
    cli.add_arguments(parser)
    return cli.main(parser.parse_args(argv))


def test_cli_table_states_the_formula_and_the_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "slabinfo"
    f.write_text(SMALL)
    assert slab(["whatif", str(f), "--minalign", "64"]) == 0
    out = capsys.readouterr().out
    assert "formula: extra_bytes = sum over kmalloc size classes c" in out
    assert "round_up_class(c, N) = the smallest kmalloc size class >= c" in out
    assert "extra: 90944 bytes (88.8 KiB) = 23 pages of 4096 bytes" in out
    assert "page size inferred from the slabinfo" in out
    assert any(line.split()[:3] == ["96", "300", "128"] for line in out.splitlines())


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "slabinfo"
    f.write_text(SMALL)
    args = ["whatif", str(f), "--minalign", "128", "--pagesize", "16384", "--format", "json"]
    assert slab(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["extra_bytes"], doc["extra_pages"], doc["pagesize"]) == (239680, 15, 16384)
    assert doc["pagesize_source"] == "given" and doc["objects"] == "active"
    assert doc["classes"][0] == {"class": "8", "size": 8, "objects": 1024, "rounds_to": 128,
                                 "bytes_now": 8192, "bytes_then": 131072,
                                 "extra_bytes": 122880}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("MemTotal: 5 kB\n", "not a /proc/slabinfo (slabinfo line 1: expected"),
        (b"\x7fELF\x02\x01\x01" + bytes(range(256)), "not a /proc/slabinfo"),
        ("", "not a /proc/slabinfo"),
    ],
)
def test_cli_refuses_a_file_that_is_not_slabinfo(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    f = tmp_path / "file"
    f.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(UsageError, match=re.escape(message)) as exc:
        slab(["whatif", str(f), "--minalign", "64"])
    assert exc.value.exit_code == 2 and "\n" not in str(exc.value)


def test_cli_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read") as exc:
        slab(["whatif", str(tmp_path / "nope"), "--minalign", "64"])
    assert exc.value.exit_code == 2


def test_cli_refuses_a_slabinfo_taken_at_a_larger_minalign() -> None:
    with pytest.raises(UsageError, match="taken at minalign 128") as exc:
        slab(["whatif", str(DATA / "slabinfo-6.1-arm64"), "--minalign", "64"])
    assert "minalign <= --minalign" in str(exc.value)


@pytest.mark.parametrize(
    "extra", [["--minalign", "48"], ["--minalign", "x"], ["--minalign", "64", "--pagesize", "3000"],
              ["--minalign", "64", "--objects", "some"], []],
)
def test_cli_bad_options_exit_2(extra: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        slab(["whatif", str(DATA / "slabinfo-6.12-arm64"), *extra])
    assert exc.value.code == 2
