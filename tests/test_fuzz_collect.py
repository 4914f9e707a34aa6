"""Property-based fuzzing of the collectors' parsers (hypothesis).

What the guest prints is the kernel under test's: each parser is fed random
bytes and real captures with random damage (bytes flipped, lines cut or
repeated, numbers replaced by nan, -1, 1e999 or a hundred digits, NULs, CRs)
and must either parse or raise its one documented error (ParseError; the
snapshot and the sampler never raise at all), in bounded time and memory,
and what it returns must be usable: finite, non-negative counts.

Examples are derandomized so CI is repeatable; KHARNESS_FUZZ_EXAMPLES raises
the count for a longer local hunt.
"""

from __future__ import annotations

import math
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.collect import console, fio, hist, meminfo, sampler, slabinfo, snapshot, swiotlb, vmstat, whatif
from harness.collect.text import ParseError

T = TypeVar("T")
DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
EXAMPLES = int(os.environ.get("KHARNESS_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SECONDS = 5.0  # per call, on a loaded 2-core CI machine: the parsers are linear
PEAK = 64 << 20  # bytes allocated at once by one call of a parser on a few KB of input

TOKENS = [b"nan", b"NaN", b"inf", b"-1", b"-0", b"1e999", b"1e3", b"9" * 100, b"0x10", b"1_000", b"\x00",
          b"\xff\xfe", b"\r", b"\n", b"\r\n", b"\t", b" ", b":", b" : ", b"{", b"}", b"[", b"]", b",", b"#",
          b"@@kharness-section ../../etc@@\n", b"@@kharness-sample 1.0@@\n", b"Hits:", b"Entries: 7",
          b"hitcount:", b'"jobs"', b"null", b"true", b"\x1b[31m", b"Kernel panic - not syncing", b"---[ end trace"]


def sample(*parts: str) -> bytes:
    return (REAL.joinpath(*parts) if (REAL / parts[0]).exists() else DATA.joinpath(*parts)).read_bytes()


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with a few random edits."""
    data = bytearray(original)
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(("flip", "insert", "token", "delete", "repeat")))
        if op == "flip" and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=40))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 400))]
        else:
            chunk = bytes(data[pos:pos + draw(st.integers(1, 200))])
            data[pos:pos] = chunk * draw(st.integers(1, 30))
    return bytes(data)


def inputs(*originals: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, random text, and damaged real captures (most of the examples)."""
    texts = st.text(st.characters(codec="utf-8"), max_size=300).map(str.encode)
    return st.one_of(st.binary(max_size=600), texts, *(damaged(o) for o in originals))


def bounded(fn: Callable[..., T], *args: Any, seconds: float = SECONDS, peak: int = PEAK) -> T:
    """fn(*args), checked to take at most `seconds` and to allocate at most `peak` at once."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        return fn(*args)
    finally:
        took = time.monotonic() - start
        high = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert took < seconds, f"{fn.__name__} took {took:.1f} s"
        assert high < peak, f"{fn.__name__} allocated {high} bytes at once"


def parses_or_refuses(fn: Callable[[bytes], T], data: bytes) -> T | None:
    try:
        return bounded(fn, data)
    except ParseError as exc:
        assert str(exc) and "\n" not in str(exc)[:200]
        return None


SLABINFO = [sample("trixie-arm64", "slabinfo"), sample("bookworm-x86_64", "slabinfo")]


@FUZZ
@given(inputs(*SLABINFO))
def test_slabinfo(data: bytes) -> None:
    info = parses_or_refuses(slabinfo.parse, data)
    if info is None:
        return
    for c in slabinfo.size_classes(info):
        assert 0 <= c.active_objs <= c.num_objs and c.slab_pages >= 0
    page = slabinfo.infer_pagesize(info)
    assert page is None or page & (page - 1) == 0
    if (align := slabinfo.minalign(info)) is not None:
        for n in (a for a in whatif.ALIGNMENTS if a > align):
            w = whatif.compute(info, n, page or 4096)
            assert w.extra_bytes >= 0 and w.extra_pages >= 0


SWIOTLB = sorted((REAL / "trixie-arm64" / "swiotlb").iterdir())


@FUZZ
@given(st.dictionaries(st.sampled_from([p.name for p in SWIOTLB] + ["io_tlb_other", "../x"]),
                       inputs(b"32768\n", b"0\n", b"12\n"), max_size=5))
def test_swiotlb_debugfs(files: dict[str, bytes]) -> None:
    try:
        state = bounded(swiotlb.parse, files)
    except ParseError:
        return
    assert state.nslabs >= 0 and 0 <= state.used <= state.nslabs


HIST = [sample("trixie-arm64", "hist-after-dd-direct"), sample("trixie-arm64-noncoherent", "hist-after-fio-virtio-blk"),
        (DATA / "collect" / "hist-swiotlb_bounced-after").read_bytes()]


@FUZZ
@given(inputs(*HIST))
def test_hist(data: bytes) -> None:
    found = parses_or_refuses(hist.parse, data)
    for h in found or ():
        assert h.total >= 0 and all(n >= 0 for n in h.counts().values())
        assert isinstance(h.keys, tuple)


@FUZZ
@given(inputs(sample("trixie-arm64", "meminfo")))
def test_meminfo(data: bytes) -> None:
    fields = parses_or_refuses(meminfo.parse, data)
    assert fields is None or all(v >= 0 for v in fields.values())


@FUZZ
@given(inputs(sample("trixie-arm64", "vmstat")))
def test_vmstat(data: bytes) -> None:
    fields = parses_or_refuses(vmstat.parse, data)
    assert fields is None or all(v >= 0 for v in fields.values())


FIO = [sample("trixie-arm64-noncoherent", "fio-virtio-blk.json"), (DATA / "collect" / "fio-3.33.json").read_bytes()]


@FUZZ
@given(inputs(*FIO))
def test_fio_json(data: bytes) -> None:
    result = parses_or_refuses(fio.parse, data)
    if result is None:
        return
    for m in fio.metrics(result, "w"):
        assert math.isfinite(m.value) and m.value >= 0
        assert snapshot.SAFE_METRIC.match(m.name), m.name


CONSOLES = [sample("trixie-arm64", "console.log")[:6000], (DATA / "collect" / "console-panic.log").read_bytes()]


@FUZZ
@given(inputs(*CONSOLES))
def test_console_scan(data: bytes) -> None:
    hits = bounded(console.scan, data)  # ParseError only above console.MAX_BYTES
    assert len(hits) <= console.MAX_HITS
    for hit in hits:
        assert hit.summary and "\n" not in hit.title and len(hit.excerpt.splitlines()) <= console.EXCERPT + 1
        assert not any(ord(c) < 32 and c not in "\n\t" for c in hit.excerpt)


def _snapshot_text() -> bytes:
    from tests.fakes.runs import snapshot_text

    return snapshot_text(hist=(DATA / "collect" / "hist-swiotlb_bounced-after").read_text())


@FUZZ
@given(inputs(_snapshot_text()))
def test_snapshot_never_raises(data: bytes) -> None:
    sections = bounded(snapshot.split, data)
    for name in sections:
        assert snapshot.safe_name(name) == name and ".." not in name.split("/") and not name.startswith("/")
    snap = bounded(snapshot.parse, sections)
    for m in snapshot.metrics(snap, snap, "w"):
        assert math.isfinite(m.value), m


def _samples() -> bytes:
    slab = sample("trixie-arm64", "slabinfo").decode()
    rows = "\n".join(line for line in slab.splitlines() if line.startswith(("slabinfo", "# name", "kmalloc-")))
    mem = "MemTotal: 1000 kB\nSlab: 4000 kB\nSUnreclaim: 2000 kB\n"
    body = "".join(f"@@kharness-sample {t}.5@@\n{rows}\n{mem}" for t in range(3))
    return (body + "@@kharness-sampler ticks=12 hz=100@@\n").encode()


@FUZZ
@given(inputs(_samples()), st.sampled_from([None, 4096, 65536]))
def test_sampler_never_raises(data: bytes, pagesize: int | None) -> None:
    series = bounded(sampler.parse, data, pagesize)
    assert len(series.problems) <= sampler.MAX_PROBLEMS + 2
    for m in sampler.metrics(series, "w"):
        assert math.isfinite(m.value) and m.value >= 0
    sampler.to_json(series, 1.0)
