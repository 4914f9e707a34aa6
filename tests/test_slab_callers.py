"""Who pays: alloc_traces parsing, callers per size class, the by-caller and GFP_DMA what-ifs.

Real captures: tests/data/collect/alloc_traces-6.12-arm64-u/ is raw/boot/
alloc_traces/ of a trixie arm64 boot with slub_debug=U,kmalloc-* (1 GiB, 2
vCPUs), slabinfo-6.12-arm64-u its slabinfo of the same snapshot. The what-ifs
are checked against hand computations on small inputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.collect import alloc_traces, callers, cli, gfpdma, slabinfo, whatif
from harness.collect.text import ParseError
from harness.errors import UsageError

DATA = Path(__file__).parent / "data" / "collect"
TRACES = DATA / "alloc_traces-6.12-arm64-u"


def real() -> dict[str, alloc_traces.AllocTraces]:
    return {p.name: alloc_traces.parse(p.read_text()) for p in sorted(TRACES.iterdir())}


# --- the parser on real files ------------------------------------------------------


def test_real_kmalloc_8_entries() -> None:
    t = alloc_traces.parse((TRACES / "kmalloc-8").read_text())
    assert t.cut_at is None and len(t.entries) == 400 and t.objects == 1756
    first = t.entries[0]  # the most objects first: kharness's own hist map
    assert (first.count, first.caller, first.function) == (384, "tracing_map_init+0xa0/0x270", "tracing_map_init")
    assert (first.waste_each, first.pids, first.cpus) == (0, (148, 148), "0")
    assert first.age[0] <= first.age[1] <= first.age[2]
    assert first.frames[:2] == ("tracing_map_init+0xa0/0x270", "event_hist_trigger_parse+0x1b2c/0x2090")
    assert callers.is_kharness(first)
    counts = [e.count for e in t.entries]
    assert counts == sorted(counts, reverse=True)
    strdup = [e for e in t.entries if e.function == "kstrdup_const" and e.waste_each]
    assert strdup and all(e.waste_total == e.count * e.waste_each for e in strdup)
    assert all(1 <= e.requested(8) < 8 for e in strdup)
    ranged = [e for e in t.entries if e.pids[0] != e.pids[1]]
    assert ranged and all(e.pids[0] < e.pids[1] for e in ranged)  # pid=155-158
    assert any(e.cpus == "0-1" for e in t.entries)
    assert all(len(e.frames) <= 16 for e in t.entries)  # SLUB keeps 16 frames


def test_real_no_data_and_single_age() -> None:
    assert alloc_traces.parse((TRACES / "kmalloc-rcl-8").read_text()).entries == ()
    cg = alloc_traces.parse((TRACES / "kmalloc-cg-8").read_text())
    single = [e for e in cg.entries if e.age[0] == e.age[2]]
    assert single and all(e.age[0] == e.age[1] for e in single)  # age=2626


def test_real_traces_agree_with_slabinfo() -> None:
    """alloc_traces lists live objects: per class about slabinfo's active objects."""
    by = {sc.size: sc for sc in callers.by_class(real())}
    info = {c.size: c for c in slabinfo.size_classes(slabinfo.parse((DATA / "slabinfo-6.12-arm64-u").read_text()))}
    assert by[8].caches == ("kmalloc-8", "kmalloc-cg-8", "kmalloc-rcl-8")
    assert by[8].objects == 1775 and info[8].active_objs == 1774  # read a moment later
    for size in (16, 32, 96):
        assert by[size].objects == pytest.approx(info[size].active_objs, rel=0.05), size
    assert [c.function for c in by[8].callers[:3]] == ["kstrdup_const", "alloc_cpumask_var_node", "tracing_map_init"]
    assert by[8].kharness_objects == 402 and by[32].kharness_objects == 1547 and by[96].kharness_objects == 0
    strdup = by[8].callers[0]
    assert strdup.requested == (2, 8)
    assert strdup.vias()[0] == ("__kernfs_new_node", 538)


def test_real_by_caller_whatif_64_moves_every_small_object() -> None:
    classes = callers.by_class(real())
    w = callers.compute_whatif(classes, 64)
    per = w.per_class()
    by = {sc.size: sc for sc in classes}
    # at 64 every object of class 8, 16, 32 lands in kmalloc-64 whatever it asked for
    assert per[8] == by[8].objects * 56 == 99400
    assert per[16] == by[16].objects * 48 and per[32] == by[32].objects * 32
    assert per[96] == by[96].objects * 32  # 96 -> 128
    assert w.rows[0].caller.function == "eventfs_create_dir" and w.rows[0].extra_bytes == 1560 * 32
    # the slabinfo what-if of the same snapshot (active objects, all families) agrees in size
    info = slabinfo.parse((DATA / "slabinfo-6.12-arm64-u").read_text())
    assert w.extra_bytes == pytest.approx(whatif.compute(info, 64, 4096).extra_bytes, rel=0.05)


# --- the what-if by hand -------------------------------------------------------------

SMALL = {
    "kmalloc-8": "     10 foo+0x10/0x20 waste=30/3 age=1/2/3 pid=1 cpus=0\n        foo+0x10/0x20\n"
                 "        top+0x1/0x8\n\n      4 bar+0x1/0x2 age=5 pid=2\n\n",
    "kmalloc-cg-8": "      6 foo+0x18/0x20 waste=6/1 age=1 pid=1-3 cpus=0-1\n\n",
    "kmalloc-64": "      5 big+0x0/0x10 waste=280/56 age=1 pid=1\n\n",
    "kmalloc-96": "      3 baz+0x1/0x2 waste=24/8 age=1 pid=1\n\n"
                  "      2 qux+0x3/0x4 [virtio_blk] waste=62/31 age=1 pid=1\n\n",
    "dentry": "    999 d_alloc+0x1/0x2 age=1 pid=1\n\n",  # not kmalloc: ignored
}


def small() -> tuple[callers.SizeClass, ...]:
    return callers.by_class({k: alloc_traces.parse(v) for k, v in SMALL.items()})


@pytest.mark.parametrize(
    ("minalign", "by_hand"),
    [
        # foo asks 5 and 7 (16 objects), bar 8 (4), big 8 (5, in kmalloc-64), baz 88 (3), qux 65 (2)
        (64, {"foo": 16 * 56, "bar": 4 * 56, "baz": 3 * 32, "qux": 2 * 32, "big": 0}),
        (128, {"foo": 16 * 120, "bar": 4 * 120, "baz": 3 * 32, "qux": 2 * 32, "big": 5 * 64}),
        # below the minalign the traces were taken at: big's 8 bytes would go to kmalloc-8
        (8, {"foo": 0, "bar": 0, "baz": 0, "qux": 0, "big": 5 * (8 - 64)}),
        (16, {"foo": 16 * 8, "bar": 4 * 8, "baz": 0, "qux": 0, "big": 5 * (16 - 64)}),
    ],
)
def test_by_caller_whatif_by_hand(minalign: int, by_hand: dict[str, int]) -> None:
    w = callers.compute_whatif(small(), minalign)
    assert {r.caller.function: r.extra_bytes for r in w.rows} == by_hand
    assert w.extra_bytes == sum(by_hand.values())


def test_callers_merge_families_and_offsets() -> None:
    (c8, c64, c96) = small()
    assert (c8.size, c8.caches) == (8, ("kmalloc-8", "kmalloc-cg-8"))
    foo = c8.callers[0]
    assert (foo.function, foo.objects, foo.waste_bytes, foo.requested) == ("foo", 16, 36, (5, 7))
    assert c96.callers[1].modules == ("virtio_blk",)
    assert c8.sites == 3 and c8.objects == 20 and c64.objects == 5


@pytest.mark.parametrize(("size", "minalign", "lands"), [
    (5, 8, 8), (5, 64, 64), (65, 32, 96), (65, 64, 128), (88, 128, 128), (129, 64, 192), (129, 128, 256),
    (8192, 8, 8192), (9000, 8, 16384)])
def test_class_for(size: int, minalign: int, lands: int) -> None:
    assert callers.class_for(size, minalign) == lands


# --- the GFP_DMA what-if by hand -------------------------------------------------------


def row(name: str, active: int, num: int, size: int, perslab: int, pages: int = 1) -> str:
    slabs = -(-num // perslab)
    return (f"{name:<17} {active:6d} {num:6d} {size:6d} {perslab:4d} {pages:4d} : tunables"
            f"    0    0    0 : slabdata {slabs:6d} {slabs:6d}      0")


DMA = "\n".join([
    "slabinfo - version: 2.1",
    row("kmalloc-8", 1000, 1024, 8, 512),
    row("dma-kmalloc-8", 100, 512, 8, 512),
    row("dma-kmalloc-64", 0, 0, 64, 64),
    row("dma-kmalloc-512", 10, 32, 512, 32, 4),
    row("dma-kmalloc-8k", 3, 4, 8192, 4, 8),
]) + "\n"


def test_gfp_dma_to_pages_by_hand() -> None:
    w = gfpdma.compute(slabinfo.parse(DMA), 4096)
    assert [(r.name, r.order, r.empty) for r in w.rows] == [
        ("dma-kmalloc-8", 0, False), ("dma-kmalloc-64", 0, True), ("dma-kmalloc-512", 0, False),
        ("dma-kmalloc-8k", 1, False)]
    # now: one slab of 1, 4 and 8 pages; then: a page per object, two for 8 KiB
    assert w.bytes_now == 4096 + 4 * 4096 + 8 * 4096 == 53248
    assert w.bytes_then == 100 * 4096 + 10 * 4096 + 3 * 8192 == 475136
    assert w.extra_bytes == 421888
    sixteen = gfpdma.compute(slabinfo.parse(DMA), 16384)  # 16 KiB pages: 8 KiB fits one
    assert sixteen.bytes_then == (100 + 10 + 3) * 16384
    total = gfpdma.compute(slabinfo.parse(DMA), 4096, objects="total")
    assert total.bytes_then == 512 * 4096 + 32 * 4096 + 4 * 8192


def test_gfp_dma_real_caches_are_empty() -> None:
    w = gfpdma.compute(slabinfo.parse((DATA / "slabinfo-6.12-arm64-u").read_text()), 4096)
    assert len(w.rows) == 13 and all(r.empty for r in w.rows)  # every size class, from boot
    assert (w.bytes_now, w.bytes_then, w.extra_bytes) == (0, 0, 0)
    assert "all 13 dma-kmalloc caches are empty" in gfpdma.table(w, "given")


@pytest.mark.parametrize(("size", "order"), [(8, 0), (4096, 0), (4097, 1), (8192, 1), (8193, 2)])
def test_order_for(size: int, order: int) -> None:
    assert gfpdma.order_for(size, 4096) == order


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("     10 foo+0x1/0x2 waste=31/3 age=1 pid=1\n", "is not count 10 x 3"),
        ("     10 foo+0x1/0x2 age=3/2/1 pid=1\n", "min <= avg <= max"),
        ("     10 foo+0x1/0x2 age=1 pid=5-2\n", "low-high"),
        ("     10 foo+0x1/0x2 age=1 age=2\n", "one key=value"),
        ("     10 foo+0x1/0x2 cpus=zero\n", "list like"),
        ("        orphan+0x1/0x2\n", "not an alloc_traces line"),
        ("     -1 foo+0x1/0x2\n", "not an alloc_traces line"),
        ("      1 foo+0x1/0x2\nkharness: cut at 5 bytes\n      2 bar\n", "after the cut mark"),
    ],
)
def test_bad_alloc_traces(text: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        alloc_traces.parse(text)


def test_cut_mark() -> None:
    t = alloc_traces.parse("      7 foo+0x1/0x2 age=1 pid=1\n        foo+0x1/0x2\nkharness: cut at 40 bytes\n")
    assert t.cut_at == 40 and t.objects == 7
    (sc,) = callers.by_class({"kmalloc-8": t})
    assert sc.cut


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000) | st.builds(
    lambda cut, tok: (TRACES / "kmalloc-cg-8").read_bytes()[:cut] + tok + (TRACES / "kmalloc-cg-8").read_bytes()[cut:],
    st.integers(0, 8000), st.sampled_from([b"-1", b"\n\n", b"waste=1/0 ", b"9" * 40, b"\x00", b" [", b"nan"])))
def test_parses_or_says_why(data: bytes) -> None:
    try:
        t = alloc_traces.parse(data)
    except ParseError:
        return
    for e in t.entries:
        assert e.count >= 0 and e.waste_total == e.count * e.waste_each
    callers.compute_whatif(callers.by_class({"kmalloc-8": t}), 64)


# --- kharness slab callers / whatif ----------------------------------------------------------


def slab(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kharness slab")
    cli.add_arguments(parser)
    return cli.main(parser.parse_args(argv))


def rep_dir(tmp_path: Path) -> Path:
    """A repetition's directory as kharness run writes it, with a U boot's snapshot."""
    rep = tmp_path / "cells" / "trixie-arm64.slub-12345678" / "0"
    boot = rep / "raw" / "boot"
    (boot / "alloc_traces").mkdir(parents=True)
    for p in TRACES.iterdir():
        (boot / "alloc_traces" / p.name).write_bytes(p.read_bytes())
    (boot / "slabinfo").write_bytes((DATA / "slabinfo-6.12-arm64-u").read_bytes())
    (boot / "pagesize").write_text("KernelPageSize:        4 kB\n")
    return rep


def test_cli_callers_of_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert slab(["callers", str(TRACES), "--class", "8", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "kmalloc-8: 1775 objects from 418 call sites (kmalloc-8, kmalloc-cg-8, kmalloc-rcl-8)" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["692", "kstrdup_const", "2-8"] in [x[:3] for x in lines]
    assert any(x[1:3] == ["tracing_map_init", "(kharness)"] for x in lines if len(x) > 2)
    assert "kmalloc-16:" not in out and "... 28 more callers" in out


def test_cli_callers_of_a_result_directory_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rep = rep_dir(tmp_path)
    assert slab(["callers", str(tmp_path), "--format", "json", "--top", "2"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["alloc_traces"] == str(rep / "raw" / "boot" / "alloc_traces")
    assert [c["class"] for c in doc["classes"]] == ["8", "16", "32", "96"]
    eight = doc["classes"][0]
    assert eight["callers"][0]["function"] == "kstrdup_const" and len(eight["callers"]) == 2


def test_cli_whatif_by_caller(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rep_dir(tmp_path)
    assert slab(["whatif", str(tmp_path), "--minalign", "64", "--by-caller", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["taken_at_minalign"] == 8 and doc["formula"] == callers.FORMULA
    assert doc["per_class"]["8"] == 99400 and doc["callers"][0]["function"] == "eventfs_create_dir"
    assert doc["kharness_extra_bytes"] > 0
    assert slab(["whatif", str(tmp_path), "--minalign", "64", "--by-caller"]) == 0
    out = capsys.readouterr().out
    assert "formula: extra(caller) = sum over its entries of count x (class_N(r) - c)" in out
    assert "alloc_traces taken at minalign 8" in out


def test_cli_whatif_by_caller_on_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "kmalloc-96" / "alloc_traces"  # as /sys/kernel/debug/slab/ names it
    f.parent.mkdir()
    f.write_text(SMALL["kmalloc-96"])
    assert slab(["whatif", str(f), "--minalign", "128", "--by-caller", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["extra_bytes"] == 3 * 32 + 2 * 32
    other = tmp_path / "traces.txt"
    other.write_text(SMALL["kmalloc-96"])
    with pytest.raises(UsageError, match="which kmalloc cache"):
        slab(["callers", str(other)])
    assert slab(["callers", str(other), "--cache", "kmalloc-96"]) == 0


def test_cli_gfp_dma_to_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "slabinfo"
    f.write_text(DMA)
    assert slab(["whatif", str(f), "--gfp-dma-to-pages", "--pagesize", "4096"]) == 0
    out = capsys.readouterr().out
    assert "formula: memory_then = sum over dma-kmalloc-N of objects(N) x page_size x 2^order(N)" in out
    assert "extra: 421888 bytes" in out
    assert any(line.split()[:2] == ["dma-kmalloc-64", "empty"] for line in out.splitlines())
    rep_dir(tmp_path / "run")
    assert slab(["whatif", str(tmp_path / "run"), "--gfp-dma-to-pages", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pagesize_source"] == "the run's raw/boot/pagesize" and doc["extra_bytes"] == 0
    assert all(c["empty"] for c in doc["caches"])


def test_cli_says_what_is_missing(tmp_path: Path) -> None:
    rep = rep_dir(tmp_path)
    with pytest.raises(UsageError, match="no alloc_traces") as err:
        slab(["callers", str(rep), "--at", "after-idle"])
    assert 'slub_debug: "U,kmalloc-*"' in err.value.fix
    with pytest.raises(UsageError, match="no size class 4k"):
        slab(["callers", str(rep), "--class", "4k"])
    with pytest.raises(UsageError, match="--by-caller goes with --minalign"):
        slab(["whatif", str(rep), "--gfp-dma-to-pages", "--by-caller"])
    with pytest.raises(SystemExit):  # argparse: one of --minalign and --gfp-dma-to-pages
        slab(["whatif", str(rep)])
    with pytest.raises(SystemExit):
        slab(["callers", str(rep), "--at", "../etc"])
