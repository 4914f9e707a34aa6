"""Real captured guest files (tests/data/real/<kernel>/...) parse, with sane figures.

The files come from real boots (the lead drops them in; save_raw's layout
raw/<tag>/<section> works as it is). Each file is recognised by its name:

    slabinfo*  meminfo*  vmstat*  pagesize*  uptime*  probe  end
    hist*  or  hist/<event>          a hist file (both triggers)
    swiotlb/  (a directory)          the debugfs swiotlb directory
    swiotlb-<file>                   one debugfs swiotlb file
    console*.log  dmesg*             a serial console log, or dmesg output
    trace-setup*                     kharness-trace.sh's status line
    fio*.json                        fio --output-format=json output
    snapshot*                        a whole kharness-snapshot.sh output

With no real files there are no such tests (nothing is skipped); a file
with a name not listed above fails, so no capture goes untested silently
(READMEs, *.md, and the run's own cell.json, metrics.json and output.txt
are not sources and are passed over).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.collect import console, fio, hist, meminfo, slabinfo, snapshot, swiotlb, vmstat
from harness.machine.guest import scan_console

REAL = Path(__file__).parent / "data" / "real"
PREFIXES = ("slabinfo", "meminfo", "vmstat", "pagesize", "uptime", "hist", "snapshot")


def classify(path: Path) -> str | None:
    """The source kind of a captured file; None for what is not a source (READMEs)."""
    name = path.name.lower()
    if path.is_dir():
        return "swiotlb-dir" if name == "swiotlb" else None
    if path.parent.name == "swiotlb" or name.endswith(".md") or name.startswith("readme"):
        return None  # read with its directory / documentation
    if name in ("cell.json", "metrics.json", "run.json", "output.txt"):
        return None  # the run's own files, not guest sources
    if path.parent.name == "hist":
        return "hist"
    if (name.startswith("console") and name.endswith(".log")) or name.startswith("dmesg"):
        return "console"
    if name.startswith("trace-setup"):
        return "trace-setup"
    if name.startswith("fio") and name.endswith(".json"):
        return "fio"
    if name.startswith("swiotlb-"):
        return "swiotlb-file"
    if name in ("probe", "end"):
        return name
    return next((p for p in PREFIXES if name.startswith(p)), "unknown")


def real_sources() -> list[tuple[str, Path]]:
    if not REAL.is_dir():
        return []
    found = ((classify(p), p) for p in sorted(REAL.rglob("*")))
    return [(kind, path) for kind, path in found if kind is not None]


def check_slabinfo(path: Path) -> None:
    info = slabinfo.parse(path.read_bytes())
    align = slabinfo.minalign(info)
    assert align in (8, 16, 32, 64, 128, 256), f"minalign {align}"
    classes = slabinfo.size_classes(info)
    assert classes and classes[0].size == align
    assert all(c.objsize > 0 and c.active_objs <= c.num_objs for c in info.caches)
    assert slabinfo.infer_pagesize(info) in (4096, 16384, 65536)


def check_swiotlb_dir(path: Path) -> None:
    files = {f.name: f.read_bytes() for f in path.iterdir() if f.is_file()}
    state = swiotlb.parse(files)
    if state.present:
        assert state.used <= state.nslabs and (state.hiwater or 0) <= state.nslabs


def check_swiotlb_file(path: Path) -> None:
    assert 0 <= swiotlb.value(path.name.removeprefix("swiotlb-"), path.read_bytes()) < 1 << 32


def check_hist(path: Path) -> None:
    for h in hist.parse(path.read_bytes()):
        assert sum(e.hitcount for e in h.entries) <= h.total
        assert h.keys, h.trigger


def check_meminfo(path: Path) -> None:
    m = meminfo.parse(path.read_bytes())
    assert 0 < m["Slab"] < m["MemTotal"] and m["SUnreclaim"] <= m["Slab"]


def check_vmstat(path: Path) -> None:
    v = vmstat.parse(path.read_bytes())
    assert "nr_free_pages" in v and "pgpgin" in v


def check_console(path: Path) -> None:
    for hit in scan_console(path):
        assert hit.line <= hit.last_line and hit.signature in dict(console.SIGNATURES)
        assert 0 < len(hit.excerpt.split("\n")) <= console.EXCERPT


def check_fio(path: Path) -> None:
    result = fio.parse(path.read_bytes())
    assert result.jobs and fio.metrics(result, "real")


def check_pagesize(path: Path) -> None:
    assert snapshot.pagesize(path.read_text()) in (4096, 16384, 65536)


def check_uptime(path: Path) -> None:
    assert snapshot.uptime(path.read_text()) > 0


def check_probe(path: Path) -> None:
    facts = dict(line.split("=", 1) for line in path.read_text().splitlines() if line)
    assert set(facts.values()) <= {"yes", "no"} and "debugfs" in facts


def check_end(path: Path) -> None:
    assert path.read_text().strip() == "ok"


def check_snapshot(path: Path) -> None:
    sections = snapshot.split(path.read_bytes())
    snap = snapshot.parse(sections)
    assert sections.problems == () and snap.complete
    assert snap.slab is not None and snap.meminfo is not None and snap.pagesize is not None
    assert "slab.minalign" in {m.name for m in snapshot.metrics(None, snap, "boot")}


def check_trace_setup(path: Path) -> None:
    assert path.read_text().startswith("kharness-trace: ")


def check_unknown(path: Path) -> None:
    pytest.fail(f"{path.relative_to(REAL)}: not a known source name (see this module's docstring)")


CHECKS = {
    "slabinfo": check_slabinfo, "swiotlb-dir": check_swiotlb_dir,
    "swiotlb-file": check_swiotlb_file, "hist": check_hist, "meminfo": check_meminfo,
    "vmstat": check_vmstat, "console": check_console, "fio": check_fio,
    "pagesize": check_pagesize, "uptime": check_uptime, "probe": check_probe, "end": check_end,
    "snapshot": check_snapshot, "trace-setup": check_trace_setup, "unknown": check_unknown,
}

SOURCES = real_sources()

if SOURCES:  # no captures, no tests: nothing to skip

    @pytest.mark.parametrize(
        ("kind", "path"), SOURCES, ids=[str(p.relative_to(REAL)) for _, p in SOURCES]
    )
    def test_real_capture_parses_with_sane_figures(kind: str, path: Path) -> None:
        CHECKS[kind](path)


def test_classify_names_the_sources(tmp_path: Path) -> None:
    """The file-name rules above, so the real captures land in the right parser."""
    (tmp_path / "raw/before/swiotlb").mkdir(parents=True)
    (tmp_path / "raw/before/hist").mkdir()
    names = {
        "slabinfo": "slabinfo", "raw/before/hist/swiotlb_bounced": "hist",
        "hist-swiotlb_bounced": "hist", "swiotlb-io_tlb_used": "swiotlb-file",
        "raw/before/swiotlb/io_tlb_used": None, "console.log": "console",
        "fio-randread.json": "fio", "README.md": None, "kmsg.txt": "unknown", "probe": "probe",
        "dmesg.txt": "console", "trace-setup.txt": "trace-setup", "metrics.json": None,
    }
    for rel, kind in names.items():
        path = tmp_path / rel
        path.write_text("")
        assert classify(path) == kind, rel
    assert classify(tmp_path / "raw/before/swiotlb") == "swiotlb-dir"
    assert classify(tmp_path / "raw/before/hist") is None
