"""compare on result directories from a real run: arm64 6.1 against 6.12.

tests/data/compare/real/ holds cell.json and metrics.json of the
bookworm-arm64 and trixie-arm64 cells of a real `kharness run
configs/quick.yaml` (console and raw files left out), one per directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

REAL = Path(__file__).parent / "data" / "compare" / "real"


def _compare(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    rc = main(["compare", str(REAL / "bookworm-arm64"), str(REAL / "trixie-arm64"),
               "--ignore-axis", "kernel", "--format", "json", *extra])
    return rc, json.loads(capsys.readouterr().out)


def _rows(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    rows: dict[str, dict] = {}  # type: ignore[type-arg]

    def walk(x: object) -> None:
        if isinstance(x, dict):
            if "key" in x and "verdict" in x:
                rows[str(x["key"])] = x
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    return rows


def test_real_6_1_vs_6_12_minalign_is_an_exact_change(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = _compare(capsys)
    rows = _rows(doc)
    minalign = rows["boot:slab.minalign"]
    assert minalign["verdict"] == "changed"
    assert minalign["baseline"]["mean"] == 128 and minalign["new"]["mean"] == 8


def test_real_single_repetitions_are_inconclusive_not_judged(capsys: pytest.CaptureFixture[str]) -> None:
    rc, doc = _compare(capsys)
    rows = _rows(doc)
    kmalloc = rows["boot:slab.kmalloc.bytes"]
    assert kmalloc["verdict"] == "inconclusive"  # one boot a side: too few samples to call it
    assert rc == 0  # nothing regressed on evidence


def test_real_size_classes_only_6_12_has_are_new(capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = _compare(capsys)
    rows = _rows(doc)
    # 6.12 at minalign 8 has kmalloc-8 .. kmalloc-64; 6.1 arm64 starts at kmalloc-128.
    assert rows["boot:slab.kmalloc-8.bytes"]["verdict"] == "new"
    assert rows["boot:slab.kmalloc-128.bytes"]["verdict"] != "new"
