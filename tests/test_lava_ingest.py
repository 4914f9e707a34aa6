"""`kharness lava ingest`: a finished LAVA job's log becomes an ordinary result directory.

The log is a real one: tests/data/lava/qemu-trixie-arm64-lava-run.log, written
by Debian's lava-dispatcher (`lava-run`) running the job `kharness lava job`
wrote for tests/data/lava/cell.yaml on LAVA's qemu device type, here
(tests/test_lava_run.py runs it again). Hostile and truncated logs are that
log damaged on purpose.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from junitparser import JUnitXml

from harness import results
from harness.lava import ingest, log

DATA = Path(__file__).parent / "data" / "lava"
LOG = DATA / "qemu-trixie-arm64-lava-run.log"
ROOT = Path(__file__).parent.parent


def kharness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)


def lines() -> list[str]:
    return LOG.read_text().splitlines()


def record(level: str, msg: object) -> str:
    return json.dumps({"dt": "2026-12-01T09:28:00.000000", "lvl": level, "msg": msg})


def parsed(line: str) -> dict[str, Any]:
    """A record of the (trusted) recorded log: JSON, or YAML where LAVA's dumper escaped."""
    try:
        rec: dict[str, Any] = json.loads(line)
    except ValueError:
        rec = yaml.safe_load(line.replace(": ! ", ": "))
    return rec


def with_header(change: dict[str, object]) -> list[str]:
    """The log with its kharness header edited."""
    out = []
    for line in lines():
        rec = parsed(line)
        if rec["lvl"] == "target" and rec["msg"].startswith("eyJ"):
            head = json.loads(base64.b64decode(rec["msg"]))
            head.update(change)
            rec["msg"] = base64.b64encode(json.dumps(head).encode()).decode()
            out.append(json.dumps(rec))
        else:
            out.append(line)
    return out


def write(tmp_path: Path, body: list[str] | bytes, name: str = "job.yaml") -> Path:
    p = tmp_path / name
    p.write_bytes(body if isinstance(body, bytes) else ("\n".join(body) + "\n").encode())
    return p


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lava-ingest") / "run"
    r = kharness("lava", "ingest", LOG, "-o", out, "-q")
    assert r.returncode == 0, r.stderr
    return out


def test_the_log_is_a_result_directory_like_a_qemu_runs(run: Path) -> None:
    loaded = results.load_run(run)
    (rep,) = loaded.reps
    assert rep.record.cell_id == "trixie-arm64-5df799a7" and rep.record.rep == 0 and rep.record.status == "pass"
    assert rep.record.qemu["machine"] == "lava" and rep.record.qemu["device_type"] == "qemu"
    assert rep.record.qemu["lava_dispatcher"] == "2023.01" and rep.record.qemu["lava_job_result"] == "pass"
    assert rep.record.kernel["release"] == "6.12.117+deb13-cloud-arm64"
    assert [t.name for t in rep.record.tests] == ["boot", "workload:idle", "workload:dd-direct", "console:clean"]
    m = {x.key: x.value for x in rep.metrics}
    assert m["boot:slab.minalign"] == 8 and m["boot:swiotlb.slots"] == 512
    assert m["dd-direct:dd.requests"] == 1000 and m["dd-direct:swiotlb.bounces"] == 0
    assert m["boot:slab.kmalloc.bytes"] > 1 << 20 and m["boot:slab.kharness_trace.bytes"] > 0
    assert "dd-direct:slab.kmalloc.bytes.max" in m  # the sampler's series came through
    raw = rep.path / "raw"
    assert (raw / "boot" / "slabinfo").is_file() and (raw / "after-dd-direct" / "swiotlb").is_dir()
    assert "metric dd.requests 1000" in (raw / "workload-dd-direct.txt").read_text()
    assert "KHARNESS-READY" in (rep.path / "console.log").read_text()
    suites = list(JUnitXml.fromfile(str(run / "junit.xml")))
    assert [s.name for s in suites] == ["trixie-arm64#0"]
    assert "trixie-arm64" in (run / "report.html").read_text()


def test_compare_and_merge_read_it(run: Path, tmp_path: Path) -> None:
    r = kharness("compare", run, run, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)
    r = kharness("merge", run, "-o", tmp_path / "merged", "-q")
    assert r.returncode == 0, r.stderr
    r = kharness("show", tmp_path / "merged", "--format", "json")
    assert r.returncode == 0 and "trixie-arm64" in r.stdout


def test_lavacli_raw_log_reads_the_same(run: Path, tmp_path: Path) -> None:
    """The server's output.yaml (lavacli jobs logs --raw) is the same records as list items."""
    raw = write(tmp_path, [f"- {line}" for line in lines()])
    out = tmp_path / "run"
    ingest.ingest([raw], out)
    a = {m.key: m.value for m in results.load_run(run).reps[0].metrics}
    b = {m.key: m.value for m in results.load_run(out).reps[0].metrics}
    assert a == b


def test_yaml_escapes_and_tags_of_lavas_dumper_are_read() -> None:
    """lava_common.log dumps YAML, not JSON: \\e escapes and the non-specific tag ! in results."""
    data = b'{"dt": "t", "lvl": "target", "msg": "kharness-lava# \\e[6nls"}\n' \
           b'- {"dt": "t", "lvl": "results", "msg": {"case": "x", "definition": "0_kharness", "starttc": ! "5"}}\n'
    job = log.parse(data, "x.yaml")
    assert job.console == ["kharness-lava# \x1b[6nls"]
    assert job.results == [{"case": "x", "definition": "0_kharness", "starttc": "5"}]


def _cut_mid_test() -> list[str]:
    keep = []
    for line in lines():
        if "@@kharness-lava begin workload-dd-direct@@" in line:
            break
        keep.append(line)
    return keep


HOSTILE: list[tuple[str, object, str]] = [
    ("cut mid-line", "\n".join(lines())[:-40], "not a LAVA log record"),
    ("cut at a line, mid-test, no job result", _cut_mid_test(), "cut off: no LAVA job result"),
    ("not UTF-8", b"\xff\xfe" + LOG.read_bytes()[:100], "not UTF-8"),
    ("empty", b"", "no LAVA log records"),
    ("no log at all", [json.dumps({"a": 1})], "not a LAVA log record"),
    ("an alias bomb", ['- &a {"dt": "t", "lvl": "target", "msg": [*a, *a]}'], "not a LAVA log record"),
    ("a tag", ['{"dt": "t", "lvl": "target", "msg": !!python/object:os.system "x"}'], "not a LAVA log record"),
    ("a line of 2 MiB", [record("target", "x" * (2 << 20))], "more than LAVA writes"),
    ("deep nesting", ["{" + '"dt": "t", "lvl": "results", "msg": ' + '{"a": ' * 40 + "1" + "}" * 41],
     "nested deeper"),
    ("no kharness header", [record("target", "hello"), record("results", {"definition": "lava", "case": "job",
                                                                          "result": "fail", "error_msg": "boom"})],
     "no kharness header"),
    ("a cell id that is a path", with_header({"cell_id": "../../../tmp/x-0000000a"}), "header is not one"),
    ("axes with markup", with_header({"axes": {"kernel<x>": 1}}), "header is not one"),
    ("a repetition beyond repeat", with_header({"rep": 5}), "header is not one"),
    ("an unknown workload", with_header({"workloads": [{"name": "no-such-workload", "params": {}}]}),
     "workload no-such-workload"),
]


@pytest.mark.parametrize(("what", "body", "says"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_truncated_or_hostile_log_is_one_line_and_exit_2(tmp_path: Path, what: str, body: object,
                                                           says: str) -> None:
    p = write(tmp_path, body.encode() if isinstance(body, str) else body)  # type: ignore[arg-type]
    r = kharness("lava", "ingest", p, "-o", tmp_path / "out")
    assert r.returncode == 2, (what, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_two_logs_of_one_repetition_are_refused(tmp_path: Path) -> None:
    r = kharness("lava", "ingest", LOG, LOG, "-o", tmp_path / "out")
    assert r.returncode == 2 and "a second log of cell trixie-arm64-5df799a7 repetition 0" in r.stderr


def test_a_link_is_not_followed(tmp_path: Path) -> None:
    os.symlink(LOG, tmp_path / "link.yaml")
    r = kharness("lava", "ingest", tmp_path / "link.yaml", "-o", tmp_path / "out")
    assert r.returncode == 2 and "cannot read" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_what_the_guest_prints_stays_text(tmp_path: Path) -> None:
    """A hostile guest: markup on the console, a metric named like a path, a section named like one."""
    body = []
    for line in lines():
        rec = parsed(line)
        if rec["lvl"] == "target" and rec["msg"] == "metric dd.requests 1000":
            body.append(record("target", "metric ../../etc/passwd 1"))
            body.append(record("target", "<script>alert(1)</script>"))
        if rec["lvl"] == "target" and rec["msg"] == "@@kharness-section end@@":
            body.append(record("target", "@@kharness-section ../../../escape@@"))
        body.append(line)
    out = tmp_path / "run"
    r = kharness("lava", "ingest", write(tmp_path, body), "-o", out, "-q")
    assert r.returncode == 1, r.stderr  # the workload's bad metric line fails it, as in a QEMU run
    rep = results.load_run(out).reps[0]
    dd = next(t for t in rep.record.tests if t.name == "workload:dd-direct")
    assert dd.status == "fail" and "malformed metric line" in dd.message
    assert not (tmp_path / "escape").exists() and not list(tmp_path.rglob("passwd"))
    assert "<script>alert" not in (out / "report.html").read_text()


def test_a_device_lost_mid_workload_is_a_result(tmp_path: Path) -> None:
    """The job ended (LAVA says why) during dd-direct: the workload is an error, what came before stays."""
    body = [*_cut_mid_test(), record("target", "@@kharness-lava begin workload-dd-direct@@"),
            record("results", {"definition": "lava", "case": "job", "result": "fail",
                               "error_msg": "lava-test-shell timed out after 300 seconds"})]
    out = tmp_path / "run"
    r = kharness("lava", "ingest", write(tmp_path, body), "-o", out, "-q")
    assert r.returncode == 3, r.stderr
    rep = results.load_run(out).reps[0]
    lost = next(t for t in rep.record.tests if t.name == "workload:dd-direct")
    assert lost.status == "error" and "timed out after 300 seconds" in lost.message
    assert {m.key for m in rep.metrics} >= {"boot:slab.minalign", "idle:swiotlb.bounces"}


def test_a_kernel_fault_on_the_console_is_the_kernels(tmp_path: Path) -> None:
    body = [*_cut_mid_test(), record("target", "@@kharness-lava begin workload-dd-direct@@"),
            record("target", "[   20.1] Unable to handle kernel NULL pointer dereference at virtual address 0"),
            record("target", "[   20.2] Internal error: Oops: 0000000096000004 [#1] SMP"),
            record("target", "[   20.3] Kernel panic - not syncing: Oops: Fatal exception"),
            record("results", {"definition": "lava", "case": "job", "result": "fail", "error_msg": "kernel panic"})]
    out = tmp_path / "run"
    r = kharness("lava", "ingest", write(tmp_path, body), "-o", out, "-q")
    assert r.returncode == 1, r.stderr
    rep = results.load_run(out).reps[0]
    assert rep.record.status == "fail"
    assert any(t.name.startswith("console:") and t.status == "fail" for t in rep.record.tests)
