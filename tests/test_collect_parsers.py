"""The collectors' parsers against realistic files, and against hostile input.

tests/data/collect/ holds files written in the kernel's and fio's exact
formats (printf widths from mm/slab_common.c and kernel/trace/trace_events_hist.c),
with the figures domain.md reports for arm64 6.1 and 6.12.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.collect import fio, hist, meminfo, slabinfo, swiotlb, vmstat
from harness.collect.text import ParseError

DATA = Path(__file__).parent / "data" / "collect"


def read(name: str) -> str:
    return (DATA / name).read_text()


# --- slabinfo ---------------------------------------------------------------


def test_slabinfo_612_arm64_classes_sum_every_family() -> None:
    info = slabinfo.parse(read("slabinfo-6.12-arm64"))
    classes = {c.label: c for c in slabinfo.size_classes(info)}
    assert list(classes) == ["8", "16", "32", "64", "96", "128", "192", "256", "512",
                             "1k", "2k", "4k", "8k"]
    # kmalloc-8 6921 + kmalloc-cg-8 1024 (rcl and dma empty); 14 + 2 one-page slabs.
    assert classes["8"].active_objs == 6921 + 1024
    assert classes["8"].slab_pages == 16
    # kmalloc-96: 1470 + cg 400 + rcl 84.
    assert classes["96"].active_objs == 1470 + 400 + 84
    assert classes["1k"].families == ("dma-kmalloc", "kmalloc", "kmalloc-cg", "kmalloc-rcl")
    assert slabinfo.minalign(info) == 8
    assert slabinfo.infer_pagesize(info) == 4096


def test_slabinfo_61_arm64_minalign_128_no_96_192() -> None:
    info = slabinfo.parse(read("slabinfo-6.1-arm64"))
    labels = [c.label for c in slabinfo.size_classes(info)]
    assert labels[0] == "128" and "96" not in labels and "192" not in labels
    assert slabinfo.minalign(info) == 128


def test_slabinfo_cache_bytes_use_num_slabs_and_pages_per_slab() -> None:
    info = slabinfo.parse(read("slabinfo-6.12-arm64"))
    cache = next(c for c in info.caches if c.name == "kmalloc-2k")
    assert (cache.num_slabs, cache.pagesperslab) == (33, 8)
    assert cache.bytes(4096) == 33 * 8 * 4096
    assert cache.bytes(16384) == 33 * 8 * 16384  # the guest's page size, not 4096


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("kmalloc-8", ("kmalloc", 8)),
        ("kmalloc-cg-96", ("kmalloc-cg", 96)),
        ("kmalloc-rcl-1k", ("kmalloc-rcl", 1024)),
        ("dma-kmalloc-192", ("dma-kmalloc", 192)),
        ("kmalloc-rnd-15-8k", ("kmalloc-rnd-15", 8192)),
        ("kmalloc-1024", ("kmalloc", 1024)),  # before 4.20: no "1k"
        ("kmalloc-100", None),
        ("kmalloc-0", None),
        ("kmalloc-4", None),
        ("kmalloc-rnd-1-8", None),
        ("kmalloc_buckets-8", None),
        ("dentry", None),
    ],
)
def test_kmalloc_class_names(name: str, expected: tuple[str, int] | None) -> None:
    assert slabinfo.kmalloc_class(name) == expected


def test_slabinfo_random_kmalloc_caches_count_in_their_class() -> None:
    rows = [f"kmalloc-rnd-{i:02d}-8     100    512      8  512    1 : tunables    0    0    0"
            " : slabdata      1      1      0" for i in range(1, 16)]
    rows.append("kmalloc-8          50    512      8  512    1 : tunables    0    0    0"
                " : slabdata      1      1      0")
    info = slabinfo.parse("slabinfo - version: 2.1\n" + "\n".join(rows) + "\n")
    (eight,) = slabinfo.size_classes(info)
    assert (eight.active_objs, eight.slab_pages) == (15 * 100 + 50, 16)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: expected"),
        ("MemTotal: 1 kB\n", "line 1: expected"),
        ("slabinfo - version: 2.1\n", "no caches"),
        ("slabinfo - version: 2.1\nkmalloc-8 1 2 3\n", "line 2: not a cache row"),
        ("slabinfo - version: 2.1\nkmalloc-8 -1 512 8 512 1 : tunables 0 0 0 : slabdata 1 1 0\n",
         "not a non-negative integer"),
        ("slabinfo - version: 2.1\nkmalloc-8 1 512 8 512 1 : tunables 0 0 0 : slabdata 1 1e9 0\n",
         "num_slabs"),
        ("slabinfo - version: 2.1\nkmalloc-8 99999999999999999999 512 8 512 1 : tunables 0 0 0"
         " : slabdata 1 1 0\n", "larger than"),
        ("slabinfo - version: 2.1\nkmalloc-8 600 512 8 512 1 : tunables 0 0 0 : slabdata 1 1 0\n",
         "600 active objects of only 512"),
        ("slabinfo - version: 2.1\nkmalloc-8 1 512 8 512 1 : tunables 0 0 0 : slab 1 1 0\n",
         "not a cache row"),
    ],
)
def test_slabinfo_refuses_with_a_precise_message(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        slabinfo.parse(text)


def test_slabinfo_truncated_mid_row_is_refused() -> None:
    text = read("slabinfo-6.12-arm64")
    with pytest.raises(ParseError, match="not a cache row"):
        slabinfo.parse(text[: text.index("kmalloc-8 ") + 30])


# --- swiotlb ----------------------------------------------------------------


def test_swiotlb_absent_when_the_directory_is_empty() -> None:
    assert swiotlb.parse({}) == swiotlb.Swiotlb(present=False)


def test_swiotlb_612_files() -> None:
    state = swiotlb.parse({"io_tlb_nslabs": "512\n", "io_tlb_used": "3\n",
                           "io_tlb_used_hiwater": "17\n"})
    assert state == swiotlb.Swiotlb(present=True, nslabs=512, used=3, hiwater=17)


def test_swiotlb_61_has_no_hiwater() -> None:
    state = swiotlb.parse({"io_tlb_nslabs": "32768", "io_tlb_used": "0"})
    assert state.present and state.hiwater is None


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"io_tlb_used": "1"}, "io_tlb_nslabs missing"),
        ({"io_tlb_nslabs": ""}, "empty"),
        ({"io_tlb_nslabs": "-5"}, "not a non-negative integer"),
        ({"io_tlb_nslabs": "12 34"}, "not a non-negative integer"),
        ({"io_tlb_nslabs": "9" * 19}, "larger than"),
        ({"io_tlb_nslabs": "512", "io_tlb_used": "513"}, "more than io_tlb_nslabs"),
        ({"io_tlb_nslabs": "cat: can't open: Permission denied"}, "not a non-negative"),
    ],
)
def test_swiotlb_refuses(files: dict[str, str], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        swiotlb.parse(files)


# --- hist -------------------------------------------------------------------


def test_hist_both_triggers_in_one_file() -> None:
    size, dev = hist.parse(read("hist-swiotlb_bounced-after"))
    assert size.keys == ("size",) and dev.keys == ("dev_name",)
    assert size.counts() == {(("size", "1"),): 2371, (("size", "8"),): 40}
    assert (size.hits, size.dropped, size.total) == (2411, 0, 2411)
    # The kernel pads string keys to 50 columns: the value is stripped.
    assert dev.counts() == {(("dev_name", "0000:00:02.0"),): 2411}
    assert hist.find((size, dev), "dev_name") is dev
    assert hist.find((size, dev), "dma_mask") is None


def test_hist_without_triggers_is_empty() -> None:
    assert hist.parse("") == ()


def test_hist_no_hits_yet() -> None:
    text = ("# event histogram\n#\n# trigger info: hist:keys=size:vals=hitcount:sort=hitcount"
            ":size=2048 [active]\n#\n\n\nTotals:\n    Hits: 0\n    Entries: 0\n    Dropped: 0\n")
    (h,) = hist.parse(text)
    assert (h.entries, h.total, h.keys) == ((), 0, ("size",))


def test_hist_multi_key_entry_and_extra_values() -> None:
    text = ("# trigger info: hist:keys=dev_name,size:vals=hitcount,dma_mask [active]\n"
            "{ dev_name: a, b: c                                          , size:         16 }"
            " hitcount:          3  dma_mask:          7\n")
    (h,) = hist.parse(text)
    (entry,) = h.entries
    assert entry.key == (("dev_name", "a, b: c"), ("size", "16"))
    assert (entry.hitcount, entry.values) == (3, (("dma_mask", 7),))
    assert h.hits is None and h.total == 3  # cut off before Totals: the sum


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{ size: 1 } hitcount: 5\n", "before any '# trigger info'"),
        ("# trigger info: hist:keys=size\n{ size: 1 } hitcount:\n", "not a hist entry"),
        ("# trigger info: hist:keys=size\n{ size: 1 } hitcount: -5\n", "not a non-negative"),
        ("# trigger info: hist:keys=size\n{ size: 1 } count: 5\n", "without hitcount"),
        ("# trigger info: hist:keys=size\n{ size 1 } hitcount: 5\n", "is not 'field: value'"),
        ("# trigger info: hist:keys=size\nrandom words\n", "not hist output"),
        ("# trigger info: hist:keys=size\n{ size: 1 } hitcount: 5\nTotals:\n    Entries: 2\n",
         "says 2 entries, 1 listed"),
        ("# trigger info: x\n    Hits: 99999999999999999999999\n", "not a non-negative"),
    ],
)
def test_hist_refuses(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        hist.parse(text)


# --- meminfo, vmstat -----------------------------------------------------------


def test_meminfo_kb_to_bytes_and_counts_as_they_are() -> None:
    m = meminfo.parse(read("meminfo-6.12-arm64"))
    assert m["Slab"] == 29860 * 1024 and m["SUnreclaim"] == 23760 * 1024
    assert m["HugePages_Total"] == 0 and m["Active(anon)"] == 5320 * 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no MemTotal"),
        ("MemTotal: 5 MB\n", "not 'Field: value"),
        ("MemTotal: 5 kB\nMemTotal: 6 kB\n", "given twice"),
        ("MemTotal: -5 kB\n", "not a non-negative"),
        ("MemTotal 5 kB\n", "not 'Field: value"),
    ],
)
def test_meminfo_refuses(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        meminfo.parse(text)


def test_vmstat_reads_every_counter() -> None:
    v = vmstat.parse(read("vmstat-6.12-arm64-after"))
    assert v["pgpgin"] == 13356 and v["pgalloc_dma"] == 102341 and len(v) == 132


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("pgpgin\n", "not 'name value'"),
        ("pgpgin 1 2\n", "not 'name value'"),
        ("pgpgin -1\n", "not a non-negative"),
        ("pgpgin 1\npgpgin 2\n", "given twice"),
        ("PGPGIN 1\n", "not 'name value'"),
    ],
)
def test_vmstat_refuses(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        vmstat.parse(text)


# --- fio ---------------------------------------------------------------------


def test_fio_333_json_after_a_warning_line() -> None:
    result = fio.parse(read("fio-3.33.json"))
    assert result.version == "fio-3.33"
    rd, wr = result.jobs
    assert (rd.name, [d for d, _ in rd.directions]) == ("randread-4k", ["read"])
    read_dir = dict(rd.directions)["read"]
    assert read_dir.ios == 68212 and read_dir.bw_bytes == 27282 * 1024
    assert dict(read_dir.clat_ns) == {"p50": 177152, "p99": 872448, "p99_9": 4227072}
    assert [d for d, _ in wr.directions] == ["write"]


def test_fio_metrics_names_units_and_directions() -> None:
    ms = {m.name: m for m in fio.metrics(fio.parse(read("fio-3.33.json")), "fio-rand")}
    iops = ms["fio.randread-4k.read.iops"]
    assert (iops.unit, iops.kind, iops.better, iops.workload) == ("IO/s", "gauge", "higher",
                                                                  "fio-rand")
    assert ms["fio.randwrite-512.write.bw"].value == 3050 * 1024
    assert ms["fio.randwrite-512.write.clat_p99_ns"].better == "lower"
    assert ms["fio.randread-4k.read.ios"].kind == "counter"
    assert not any(".write." in n for n in ms if n.startswith("fio.randread-4k"))


def _fio_doc(*jobs: dict[str, Any]) -> str:
    return json.dumps({"fio version": "fio-3.33", "jobs": list(jobs)})


def _fio_job(name: str, iops: float, p99: int, bw: int = 1000) -> dict[str, Any]:
    d = {"iops": iops, "bw": bw, "total_ios": 100,
         "clat_ns": {"percentile": {"50.000000": 10, "99.000000": p99}}}
    return {"jobname": name, "error": 0, "read": d}


def test_fio_numjobs_clones_add_up_and_keep_the_worst_percentile() -> None:
    text = _fio_doc(_fio_job("Rand Read", 100.0, 5000), _fio_job("Rand Read", 50.0, 9000))
    ms = {m.name: m.value for m in fio.metrics(fio.parse(text), "w")}
    assert ms["fio.rand_read.read.iops"] == 150.0
    assert ms["fio.rand_read.read.bw"] == 2 * 1000 * 1024  # no bw_bytes: KiB/s x 1024
    assert ms["fio.rand_read.read.clat_p99_ns"] == 9000
    assert "fio.rand_read.read.clat_p99_9_ns" not in ms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no JSON report"),
        ("fio: pid=0, err=2/file:filesetup.c:1: No such file or directory\n", "no JSON report"),
        ('{"jobs": []}', "no 'jobs' list"),
        ('{"jobs": [5]}', "not a JSON object"),
        ('{"jobs": [{"error": 0}]}', "no jobname"),
        ('{"jobs": [{"jobname": "a", "error": 0, "read": {"total_ios": "7"}}]}', "not a number"),
        ('{"jobs": [{"jobname": "a", "error": 0, "read": {"total_ios": -1}}]}', "out of range"),
        ('{"jobs": [{"jobname": "a", "error": 0, "read": {"total_ios": true}}]}', "not a number"),
        ('{"jobs": [{"jobname": "a", "error": 0, "read": {"total_ios": 1e300}}]}', "out of range"),
        ('{"jobs": [{"jobname": "a", "error": 0, "read": {"total_ios": 5}}]}', "read: no bw"),
        ("[" * 100000 + "]" * 100000, "no JSON report"),
        ("{" + '"a":' * 100000, "no JSON report"),
    ],
)
def test_fio_refuses(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        fio.parse(text)


def test_fio_deeply_nested_json_is_a_parse_error_not_a_recursion_error() -> None:
    text = '{"jobs": ' + "[" * 100000 + "]" * 100000 + "}"
    with pytest.raises(ParseError, match="no JSON report"):
        fio.parse(text)


# --- hostile input, every parser ------------------------------------------------

PARSERS: dict[str, Callable[[Any], object]] = {
    "slabinfo": slabinfo.parse,
    "hist": hist.parse,
    "meminfo": meminfo.parse,
    "vmstat": vmstat.parse,
    "fio": fio.parse,
    "swiotlb": lambda data: swiotlb.parse({"io_tlb_nslabs": data}),
}
SAMPLES = {
    "slabinfo": "slabinfo-6.12-arm64",
    "hist": "hist-swiotlb_bounced-after",
    "meminfo": "meminfo-6.12-arm64",
    "vmstat": "vmstat-6.12-arm64-after",
    "fio": "fio-3.33.json",
    "swiotlb": None,
}


@functools.cache
def _hostile() -> dict[str, bytes | str]:
    rng = random.Random(20240611)
    return {
        "binary": bytes(rng.randrange(256) for _ in range(64 * 1024)),
        "nul": b"\x00" * 4096,
        "huge-line": "x" * (5 << 20),
        "over-limit": b"1" * ((16 << 20) + 1),
        "many-lines": "\n" * (1 << 20),
        "negative": "-1\n",
        "huge-number": "1" * 5000 + "\n",
        "ansi": "\x1b[31mslabinfo - version: 2.1\x1b[0m\n",
        "invalid-utf8": b"slabinfo - version: 2.1\n\xff\xfe\xfd 1 2 3\n",
    }


@pytest.mark.parametrize("parser", sorted(PARSERS))
@pytest.mark.parametrize("kind", sorted(_hostile()))
def test_hostile_input_gives_parse_error_only(parser: str, kind: str) -> None:
    """Whatever the guest sends, a parser answers or raises ParseError: nothing else."""
    try:
        PARSERS[parser](_hostile()[kind])
    except ParseError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400  # one readable line
    # Any other exception fails the test.


@pytest.mark.parametrize("parser", [p for p, f in SAMPLES.items() if f])
def test_every_truncation_of_a_real_file_is_handled(parser: str) -> None:
    data = (DATA / str(SAMPLES[parser])).read_bytes()
    step = max(1, len(data) // 300)
    for cut in range(0, len(data), step):
        with contextlib.suppress(ParseError):
            PARSERS[parser](data[:cut])
