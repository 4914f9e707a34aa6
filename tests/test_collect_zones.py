"""Zones and fragmentation parsers on real captures from Debian 6.12 guests (tests/data/collect/).

The layouts are the verified ones (domain.md "Zones and GFP_DMA"): arm64 virt
puts RAM from 1 GiB, all of it in ZONE_DMA up to 4 GiB, DMA32 empty, Normal
only past 3 GiB of RAM; x86_64 q35 has DMA up to 16 MiB, DMA32 up to 4 GiB and
Normal only from 2816 MiB of RAM, when q35 moves RAM above 4 GiB.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.collect import catalogue, vmstat, zones
from harness.collect.text import ParseError

DATA = Path(__file__).parent / "data" / "collect"
GiB, MiB = 1 << 30, 1 << 20
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def zoneinfo(name: str) -> dict[str, zones.Zone]:
    return {z.label: z for z in zones.parse_zoneinfo((DATA / f"zoneinfo-6.12-{name}").read_text())}


def span(z: zones.Zone) -> tuple[int, int] | None:
    return z.range(4096)


def test_arm64_1g_all_ram_is_zone_dma_from_1g() -> None:
    z = zoneinfo("arm64-1g")
    assert list(z) == ["dma", "dma32", "normal", "movable", "device"]  # empty zones are listed too
    assert span(z["dma"]) == (1 * GiB, 2 * GiB)
    assert z["dma"].present == z["dma"].spanned == 262144
    assert z["dma"].cma == 16384  # the 64 MiB CMA area sits in ZONE_DMA
    assert 0 < z["dma"].free <= z["dma"].managed < z["dma"].present
    assert z["dma"].min < z["dma"].low < z["dma"].high
    for empty in ("dma32", "normal"):
        assert (z[empty].present, z[empty].spanned, span(z[empty])) == (0, 0, None)


def test_arm64_4g_dma_ends_at_4g_and_normal_follows() -> None:
    z = zoneinfo("arm64-4g")
    assert span(z["dma"]) == (1 * GiB, 4 * GiB)
    assert z["dma32"].present == 0
    assert span(z["normal"]) == (4 * GiB, 5 * GiB)  # the 4th GiB of RAM, past the 3 in ZONE_DMA


def test_x86_64_1g_dma_16m_then_dma32() -> None:
    z = zoneinfo("x86_64-1g")
    dma, dma32 = span(z["dma"]), span(z["dma32"])
    assert dma is not None and dma32 is not None
    assert dma == (4096, 16 * MiB)  # page frame 0 is reserved: start_pfn 1
    assert dma32[0] == 16 * MiB and dma32[1] <= 1 * GiB
    assert z["normal"].present == 0


def test_x86_64_2816m_puts_ram_above_4g_into_normal() -> None:
    z = zoneinfo("x86_64-2816m")
    assert span(z["dma32"]) == (16 * MiB, 4 * GiB)
    assert span(z["normal"]) == (4 * GiB, 4 * GiB + 768 * MiB)  # 2816 - 2048 stay low
    assert z["dma32"].present * 4096 < 2 * GiB <= z["dma32"].spanned * 4096


@pytest.mark.parametrize("name", ["arm64-1g", "arm64-4g", "x86_64-1g", "x86_64-2816m"])
def test_buddyinfo_lists_the_populated_zones_and_matches_zoneinfo(name: str) -> None:
    rows = zones.parse_buddyinfo((DATA / f"buddyinfo-6.12-{name}").read_text())
    z = zoneinfo(name)
    assert [r.label for r in rows] == [k for k, v in z.items() if v.present]
    for r in rows:
        assert len(r.values) == 11  # orders 0..MAX_PAGE_ORDER (10 on 4 KiB pages)
        # buddyinfo and zoneinfo were read a moment apart: free pages agree closely
        assert zones.free_pages(r) == pytest.approx(z[r.label].free, rel=0.01)
        assert zones.largest_order(r) == 10


def test_free_pages_and_largest_order_by_hand() -> None:
    (row,) = zones.parse_buddyinfo((DATA / "buddyinfo-6.12-arm64-1g").read_text())
    assert row.values == (1, 3, 2, 1, 2, 1, 3, 4, 4, 4, 233)
    # 1 + 3*2 + 2*4 + 1*8 + 2*16 + 1*32 + 3*64 + 4*128 + 4*256 + 4*512 + 233*1024
    assert zones.free_pages(row) == 1 + 6 + 8 + 8 + 32 + 32 + 192 + 512 + 1024 + 2048 + 238592
    assert zones.free_pages(row, from_order=9) == 4 * 512 + 233 * 1024
    assert zones.largest_order(zones.ZoneRow(0, "DMA", (3, 0, 1, 0))) == 2
    assert zones.largest_order(zones.ZoneRow(0, "DMA", (0, 0))) == -1


def test_extfrag_indices() -> None:
    unusable = zones.parse_index((DATA / "extfrag-unusable_index-6.12-x86_64-2816m").read_text(), "u")
    extfrag = zones.parse_index((DATA / "extfrag-extfrag_index-6.12-x86_64-2816m").read_text(), "e")
    assert [r.label for r in unusable] == ["dma", "dma32", "normal"] == [r.label for r in extfrag]
    assert unusable[0].values[-1] == pytest.approx(0.172)  # 16 MiB DMA: its free memory is in small blocks
    assert all(0 <= v <= unusable[1].values[-1] for v in unusable[1].values)  # grows with the order
    assert all(v == -1.0 for r in extfrag for v in r.values)  # every order would succeed


def test_metrics_of_a_zone_layout_are_catalogued() -> None:
    pairs = zones.zone_pairs(tuple(zoneinfo("arm64-4g").values()), 4096)
    got = dict(pairs)
    assert got["zone.dma.start"] == 1 * GiB and got["zone.dma.end"] == 4 * GiB
    assert got["zone.normal.start"] == 4 * GiB and got["zone.normal.present"] == 262144
    assert got["zone.dma32.present"] == 0 and "zone.dma32.free" not in got  # empty: said once
    assert got["zone.dma.watermark_min"] == 8545
    rows = zones.parse_buddyinfo((DATA / "buddyinfo-6.12-arm64-4g").read_text())
    pairs += zones.buddy_pairs(rows) + zones.index_pairs(rows, "unusable")
    for name, value in pairs:
        assert catalogue.spec(name) is not None, name
        assert math.isfinite(value)
    assert dict(pairs)["buddy.normal.order-0"] == 19


def test_zone_label_off_node_0() -> None:
    assert zones.zone_label(0, "DMA32") == "dma32"
    assert zones.zone_label(1, "Normal") == "node1-normal"


def test_compaction_counters_over_the_fragment_workload() -> None:
    before = vmstat.parse((DATA / "vmstat-6.12-arm64-smmuv3-boot").read_text())
    after = vmstat.parse((DATA / "vmstat-6.12-arm64-smmuv3-after-fragment").read_text())
    got = dict(zones.compaction_counters(before, after))
    assert got["vmstat.compact_stall"] == 11
    assert got["vmstat.compact_success"] + got["vmstat.compact_fail"] == 11
    assert got["vmstat.compact_isolated"] == 10102 - 1408
    assert got["vmstat.pgmigrate_success"] == 3744
    assert all(n.startswith(("vmstat.compact_", "vmstat.pgmigrate_")) for n in got)
    for name in got:
        spec = catalogue.spec(name)
        assert spec is not None and spec.kind == "counter", name
    # a counter that went back (another boot) is left out, never negative
    assert "vmstat.compact_stall" not in dict(zones.compaction_counters(after, before))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no zone"),
        ("Node 0, zone DMA\n  pages free 5\n", "has no min"),
        ("  pages free 5\n", "before any zone"),
        ("Node 0, zone DMA\n  pages free 5\n  pages free 6\n", "given twice"),
        ("Node x, zone DMA\n", "not 'Node N, zone NAME'"),
        ("Node 0, zone DMA\n  pages free -5\n        min 1\n", "not a non-negative integer"),
    ],
)
def test_bad_zoneinfo(text: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        zones.parse_zoneinfo(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no zone"),
        ("Node 0, zone DMA 1 2 3\nNode 0, zone DMA32 1 2\n", "2 orders, the lines before 3"),
        ("Node 0, zone DMA 1 -2\n", "not a non-negative integer"),
        ("DMA 1 2 3\n", "not 'Node N, zone NAME"),
    ],
)
def test_bad_buddyinfo(text: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        zones.parse_buddyinfo(text)


def test_an_index_outside_its_range_is_refused() -> None:
    with pytest.raises(ParseError, match="outside"):
        zones.parse_index("Node 0, zone DMA 0.5 1.5\n", "extfrag/unusable_index")


REAL = [(DATA / f"zoneinfo-6.12-{n}").read_bytes() for n in ("arm64-1g", "x86_64-2816m")]
BUDDY = (DATA / "buddyinfo-6.12-x86_64-2816m").read_bytes()


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(data)))
        token = draw(st.sampled_from([b"nan", b"-1", b"9" * 30, b"\x00", b"\n", b"Node 0, zone X\n", b" ", b"1e9"]))
        data[pos:pos] = token
    return bytes(data)


@FUZZ
@given(st.one_of(st.binary(max_size=2000), *(damaged(r) for r in REAL)))
def test_zoneinfo_parses_or_says_why(data: bytes) -> None:
    try:
        found = zones.parse_zoneinfo(data)
    except ParseError:
        return
    for z in found:
        assert min(z.free, z.present, z.managed, z.spanned) >= 0
        zones.zone_pairs(found, 4096)


@FUZZ
@given(st.one_of(st.binary(max_size=1000), damaged(BUDDY)))
def test_buddyinfo_parses_or_says_why(data: bytes) -> None:
    try:
        rows = zones.parse_buddyinfo(data)
    except ParseError:
        return
    assert all(v >= 0 and math.isfinite(v) for r in rows for v in r.values)
    zones.buddy_pairs(rows)
