"""`kharness kcidb`: result directories as KCIDB I/O JSON that kcidb-io's own schema (v5.3) accepts.

Real run directories: the two kharness runs in tests/data/compare/real (a
QEMU boot each, as `kharness run` wrote them) and the result directory the
real lava-run log of tests/data/lava ingests to. Synthetic ones (tests/fakes/
synth.py, marked FAKE there) bring every status and an unfinished repetition.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kcidb_io
import pytest

from harness.kcidb import export
from harness.lava import ingest
from tests.fakes import synth

ROOT = Path(__file__).parent.parent
REAL = ROOT / "tests" / "data" / "compare" / "real"
LOG = ROOT / "tests" / "data" / "lava" / "qemu-trixie-arm64-lava-run.log"


def kharness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)


def kcidb(run: Path, tmp_path: Path, origin: str = "kharness") -> dict[str, Any]:
    out = tmp_path / "kcidb.json"
    r = kharness("kcidb", run, "-o", out, "--origin", origin)
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(out.read_text())
    kcidb_io.schema.LATEST.validate(doc)  # the schema itself, not our reading of it
    assert kcidb_io.schema.LATEST.major == 5 and kcidb_io.schema.LATEST.minor >= 3
    return doc


@pytest.mark.parametrize("name", ["trixie-arm64", "bookworm-arm64"])
def test_a_real_qemu_run_is_valid_kcidb(tmp_path: Path, name: str) -> None:
    doc = kcidb(REAL / name, tmp_path)
    assert doc["version"] == {"major": 5, "minor": 3}
    checkouts = {c["id"]: c for c in doc["checkouts"]}
    builds = {b["id"]: b for b in doc["builds"]}
    assert checkouts and builds
    for build in builds.values():
        assert build["checkout_id"] in checkouts and build["architecture"] in ("arm64", "x86_64")
    booted = [b for b in builds.values() if b["status"] == "PASS"]
    assert booted and all(b["misc"]["release"] for b in booted)
    # a Debian kernel's checkout is its package and version; a cell that never booted is a MISS build
    assert any(c["misc"].get("package", "").startswith("linux-image-") for c in checkouts.values())
    assert all(b["status"] in ("PASS", "MISS") for b in builds.values())
    tests = doc["tests"]
    assert all(t["build_id"] in builds and t["id"].startswith("kharness:") for t in tests)
    assert len({t["id"] for t in tests}) == len(tests)
    boots = [t for t in tests if t["path"] == "boot"]
    passed = [t for t in boots if t["status"] == "PASS"]
    assert passed and {t["status"] for t in boots} <= set(export.STATUS.values())
    assert all("slab.minalign" in t["misc"]["metrics"] for t in passed)  # the boot snapshot's figures
    assert {t["path"].split(".")[1] for t in tests if t["path"] != "boot"} <= {"workload", "expect", "console"}


def test_a_lava_run_is_valid_kcidb_with_its_device(tmp_path: Path) -> None:
    run = tmp_path / "lava"
    ingest.ingest([LOG], run)
    doc = kcidb(run, tmp_path)
    paths = [t["path"] for t in doc["tests"]]
    assert paths == ["boot", "kharness.workload.idle", "kharness.workload.dd-direct", "kharness.console.clean"]
    dd = doc["tests"][2]
    assert dd["status"] == "PASS" and dd["misc"]["metrics"]["dd.requests"] == 1000
    assert dd["environment"]["comment"] == "LAVA device type qemu"
    assert dd["environment"]["misc"]["axes"]["kernel"] == "trixie-arm64"


def test_every_status_maps_and_an_unfinished_repetition_is_a_miss(tmp_path: Path) -> None:
    metrics = (synth.SynthMetric("slab.minalign", 8.0), synth.SynthMetric("swiotlb.bounces", 3.0, workload="w"))
    cells = [synth.SynthCell((("kernel", "k1"), ("swiotlb", "default")), metrics, reps=4,
                             statuses=("pass", "fail", "error", "skipped"), unfinished=(3,))]
    run = synth.write_run(tmp_path / "run", cells)
    doc = kcidb(run, tmp_path)
    by_rep: dict[int, set[str]] = {}
    for t in doc["tests"]:
        by_rep.setdefault(t["environment"]["misc"]["rep"], set()).add(t["status"])
    assert doc["tests"] and {s for v in by_rep.values() for s in v} <= {"PASS", "FAIL", "ERROR", "SKIP", "MISS"}
    assert "MISS" in by_rep[3]  # in run.json, no cell.json: never reported as a pass
    assert export.STATUS == {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP",
                             "interrupted": "MISS"}


def test_ids_name_the_kernel_and_the_run(tmp_path: Path) -> None:
    """The same run exports the same ids (resubmitting replaces nothing new); another run and kernel, others."""
    run = tmp_path / "lava"
    ingest.ingest([LOG], run)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    once, again = kcidb(run, tmp_path / "a"), kcidb(run, tmp_path / "b")
    assert once == again
    real = kcidb(REAL / "trixie-arm64", tmp_path)
    assert once["checkouts"][0]["misc"]["version"] != real["checkouts"][0]["misc"]["version"]
    assert not {c["id"] for c in once["checkouts"]} & {c["id"] for c in real["checkouts"]}
    assert not {t["id"] for t in once["tests"]} & {t["id"] for t in real["tests"]}


@pytest.mark.parametrize("origin", ["Kharness", "kharness-ci", "", "a b", "x:y"])
def test_an_origin_outside_the_grammar_is_one_line_and_exit_2(tmp_path: Path, origin: str) -> None:
    r = kharness("kcidb", REAL / "trixie-arm64", "-o", tmp_path / "k.json", "--origin", origin)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "[a-z0-9_]+" in r.stderr
    assert not (tmp_path / "k.json").exists()


def test_not_a_result_directory_is_one_line_and_exit_2(tmp_path: Path) -> None:
    r = kharness("kcidb", tmp_path, "--origin", "kharness")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("name", "path"), [
    ("boot", "boot"), ("workload:dd-direct", "kharness.workload.dd-direct"),
    ("expect:no-bounce[dd-direct]", "kharness.expect.no-bounce.dd-direct"),
    ("expect:minalign", "kharness.expect.minalign"),
    ("console:Kernel panic", "kharness.console.Kernel_panic"), ("console:clean", "kharness.console.clean"),
    ("harness", "kharness.harness"), ("workload:a.b/../c", "kharness.workload.a_b____c"),
])
def test_testcase_names_become_kcidb_paths(name: str, path: str) -> None:
    assert export.test_path(name) == path
