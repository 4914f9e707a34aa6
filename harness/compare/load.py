"""Read result directories into what comparing needs: per cell, per metric, the values.

This walks the result directory as `harness.results.load_run` does, and reads
cell.json with `results.load_record`, but reads metrics.json (with
`fastread`) straight into lists of floats instead of Metric objects: two
directories of 1000 cells x 3 repetitions x 200 metrics are 1.2 million
metrics, and building that many objects alone would take longer than the
whole comparison may.

Cells and metrics that the selection leaves out are skipped while reading
(a filtered cell's metrics.json is not even opened).

The files of a run name the same metrics in the same order: what depends only
on that list (its keys, the selection's cut, the check of names new to the
run) is done once per list, not once per file (`_RunMetrics`), and a cell's
repetitions that share it are put together by one transposition (`_values`).

The directory is untrusted (design.md), and read with harness.results' checks:
directories walked without following links and named by the grammar, each
repetition where its cell.json says it is, a metric at most once per
repetition, so a cell's sample count is the number of its repetitions on
disk, never what a file claims. Names are checked once per run, when first seen.

`load_runs` reads several directories at once on two cores: the later ones
are loaded by a forked child (harness.compare.beside) with this same code,
and cross back packed by msgspec (`_Packed`); reading and decoding 6000
metrics.json files is most of a big comparison's time, and the packed runs
cross in some tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from harness import results
from harness.compare import fastread
from harness.compare.beside import beside
from harness.errors import ResultsError, UsageError
from harness.model import worst

# Usable repetitions: a failed one is the kernel's result (often the very
# thing looked at, e.g. a failed "no bounces" expectation), so its metrics
# count but are marked suspect; error, interrupted and skipped ones are not
# the kernel's figures at all.
USABLE_STATUSES = frozenset({"pass", "fail"})

Identity = tuple[tuple[str, str], ...]
# Axes that result directories written before them lack: at their default they
# tell no cells apart, so such a directory's cells still match today's.
NEWER_AXES = {"iommu": "none"}


@dataclass(frozen=True)
class MetricInfo:
    unit: str
    kind: str
    better: str


@dataclass
class CellSamples:
    """One cell of one run: its repetitions' statuses and metric values."""

    cell_id: str
    slug: str
    axes: dict[str, Any]
    statuses: dict[int, str] = field(default_factory=dict)  # finished reps
    unfinished: list[str] = field(default_factory=list)  # rep dirs without cell.json
    used: int = 0  # reps whose metrics count
    suspect: bool = False  # a failed rep's metrics are among them
    values: dict[str, list[float]] = field(default_factory=dict)  # metric key -> values

    @property
    def status(self) -> str:
        """The cell's status over its reps: the worst one, "pass" only if all passed."""
        return worst(self.statuses.values()) or "unfinished"

    def status_text(self) -> str:
        n = len(self.statuses)
        count = sum(1 for s in self.statuses.values() if s == self.status)
        text = f"{self.status} {count}/{n}" if n else "unfinished"
        return f"{text}, {len(self.unfinished)} unfinished" if self.unfinished else text


@dataclass
class RunSamples:
    path: Path
    run: dict[str, Any]
    cells: dict[Identity, CellSamples] = field(default_factory=dict)
    info: dict[str, MetricInfo] = field(default_factory=dict)  # metric key -> as written
    missing: dict[str, str] = field(default_factory=dict)  # cell id -> why: none finished
    # axis -> values, of every cell, selected or not (to tell a typo in --where)
    axes_seen: dict[str, set[str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return results.shown(self.path.name or self.path)

    @property
    def shown_path(self) -> str:
        """The path as text any output takes (bytes that are not UTF-8 as \\xNN)."""
        return results.shown(self.path)


@dataclass(frozen=True)
class Selection:
    """Which cells and metrics to compare, and which axes make a cell's identity."""

    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # axis -> globs, any may match
    metrics: tuple[str, ...] = ()  # globs on name or workload:name; empty: all
    ignore_axes: tuple[str, ...] = ()
    _metric_cache: dict[str, bool] = field(default_factory=dict, init=False, compare=False)
    _patterns_hit: set[str] = field(default_factory=set, init=False, compare=False)

    def cell_matches(self, axes: dict[str, Any]) -> bool:
        return all(
            name in axes and any(fnmatch.fnmatchcase(axis_text(axes[name]), g) for g in globs)
            for name, globs in self.where
        )

    def metric_matches(self, key: str) -> bool:
        hit = self._metric_cache.get(key)
        if hit is None:
            hit = not self.metrics
            name = key.partition(":")[2]
            for pattern in self.metrics:
                if fnmatch.fnmatchcase(key if ":" in pattern else name, pattern):
                    self._patterns_hit.add(pattern)
                    hit = True
            self._metric_cache[key] = hit
        return hit

    def identity(self, axes: dict[str, Any]) -> Identity:
        return tuple(sorted((k, text) for k, v in axes.items()
                            if k not in self.ignore_axes and NEWER_AXES.get(k) != (text := axis_text(v))))

    def unused_patterns(self) -> list[str]:
        return [p for p in self.metrics if p not in self._patterns_hit]


def axis_text(value: Any) -> str:
    """An axis value as the user writes it in --where: strings bare, the rest as JSON."""
    if isinstance(value, str):
        return value
    # The usual scalars as json.dumps writes them: it makes an encoder on every call (twice a cell)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    return json.dumps(value, sort_keys=True)


def load_runs(dirs: list[Path], selection: Selection) -> list[RunSamples]:
    """load_samples of each directory, in order, the later half loaded by a forked child
    beside this process's half when there are enough cells for it to pay.

    The child runs load_samples itself, so what comes back is what this process would
    have read; when it fails for any reason (a bad file among its directories, for one),
    this process loads its directories after its own, and raises what it finds, in the
    order a serial load meets it."""
    half = (len(dirs) + 1) // 2
    mine, theirs = dirs[:half], dirs[half:]
    if not theirs or _cells_in(theirs) < BESIDE_CELLS:
        return [load_samples(d, selection) for d in dirs]
    loaded, sent = beside(lambda: _pack([load_samples(d, selection) for d in theirs], selection),
                          lambda: [load_samples(d, selection) for d in mine])
    if sent is None:
        return loaded + [load_samples(d, selection) for d in theirs]
    return loaded + _unpack(sent, theirs, selection)


# Cells in the directories a child would load, from which it does: below, the fork
# and the packing cost more than they save (two directories of 1000 cells: about
# 0.25 s saved, of 0.8-1.0 s).
BESIDE_CELLS = 200


def _cells_in(dirs: list[Path]) -> int:
    """How many entries the directories' cells/ hold (0 for one that cannot be listed:
    loading refuses it, naming it)."""
    count = 0
    for d in dirs:
        with contextlib.suppress(OSError):
            count += len(os.listdir(os.path.join(d, "cells")))
    return count


def load_samples(run_dir: Path, selection: Selection) -> RunSamples:
    """Read the selected cells and metrics of one result directory.

    Raises ResultsError naming the first bad file: not a result directory, a
    format version this kharness does not read, truncated or malformed JSON,
    or two cells with the same identity (then --ignore-axis dropped too much).
    """
    if not run_dir.is_dir():
        raise ResultsError(f"{results.shown(run_dir)}: not a directory",
                           "give a result directory written by kharness run")
    run = fastread.read_json(run_dir / results.RUN_FILE)
    samples = RunSamples(run_dir, run)
    metrics = _RunMetrics(samples.info, selection)
    cells = os.path.join(run_dir, "cells")
    for name in _entries(cells, results.CELL_ID_RE, lambda: results.cell_dirs(run_dir)):
        cell = _load_cell(os.path.join(cells, name), name, samples, selection, metrics)
        if cell is not None:
            _add_cell(samples, cell, selection)
    samples.missing.update(_missing_cells(run, samples, selection))
    return samples


def _entries(path: str, grammar: re.Pattern[str], checked: Callable[[], Iterable[Path]]) -> Iterable[str]:
    """The names of `checked()`, results' walk of `path` (cells/ or a cell), when it would find
    only real directories named by the grammar: then they are read here, sorted as it sorts
    them, as strings (12000 Paths cost more than the walk). Anything else there (a link, a
    file, a stray name, `path` itself a link or missing) is left to `checked`, which
    refuses it, naming it, when its walk comes to it, as it always did."""
    names = None
    if not os.path.islink(path):
        try:
            with os.scandir(path) as it:
                found = list(it)
        except OSError:
            found = []
        if found and all(e.is_dir(follow_symlinks=False) for e in found):
            names = sorted(e.name for e in found)
    if names is not None and all(map(grammar.fullmatch, names)):
        return names
    return (p.name for p in checked())


def _load_cell(cell_dir: str, cell_name: str, samples: RunSamples, selection: Selection,
               metrics: _RunMetrics) -> CellSamples | None:
    cell: CellSamples | None = None
    unfinished: list[str] = []
    reps: list[tuple[list[str], list[float]]] = []  # keys and values of each rep that counts
    for rep_name in _entries(cell_dir, results.REP_RE, lambda: results.rep_dirs(Path(cell_dir))):
        rd = os.path.join(cell_dir, rep_name)
        record = _record(rd, cell_name, rep_name)  # also: it is the repetition its directory says
        if record is None:
            unfinished.append(f"cells/{cell_name}/{rep_name}")
            continue
        if cell is None or record.axes != cell.axes:  # the reps of a cell share their axes
            for axis, value in record.axes.items():
                samples.axes_seen.setdefault(axis, set()).add(axis_text(value))
            if not selection.cell_matches(record.axes):
                return None
        if cell is None:
            cell = CellSamples(record.cell_id, record.slug, record.axes)
        elif record.axes != cell.axes:
            raise ResultsError(f"{results.shown(os.path.join(rd, results.CELL_FILE))}: axes differ from the "
                               "cell's other repetitions", "the file is not one kharness wrote; rerun that cell")
        cell.statuses[record.rep] = record.status
        if record.status in USABLE_STATUSES:
            metrics_file = os.path.join(rd, results.METRICS_FILE)
            data = fastread.read_file(metrics_file, os.path.exists)
            if data is not None:
                reps.append(metrics.read(metrics_file, data))
                cell.used += 1
                cell.suspect |= record.status == "fail"
    if cell is None and unfinished:  # nothing finished: still worth reporting
        cell = CellSamples(cell_name, cell_name, {})
    if cell is not None:
        cell.unfinished = unfinished
        cell.values = _values(reps)
    return cell


def _record(rd: str, cell_name: str, rep_name: str) -> results.RepRecord | None:
    """results.load_record of the repetition directory `rd`, or None: it is unfinished (no
    cell.json, as results.finished tells). The usual file (read and decoded by fastread,
    valid, in the directory it names) is checked here by results.record_of; anything else
    goes to results.load_record, which reads it again and refuses it with its own message
    (or reads what only json reads, NaN for one)."""
    data = fastread.read_file(os.path.join(rd, results.CELL_FILE), os.path.lexists)
    if data is None:
        return None
    doc = fastread.result_object(data)
    if doc is not None:
        try:
            record = results.record_of(doc)
        except results.ValueProblem:
            pass
        else:
            if record.cell_id == cell_name and str(record.rep) == rep_name:
                return record
    return results.load_record(Path(rd))


def _add_cell(samples: RunSamples, cell: CellSamples, selection: Selection) -> None:
    if not cell.statuses:  # only unfinished reps: its axes are unknown
        if not selection.where:
            samples.missing[cell.cell_id] = f"unfinished: {', '.join(cell.unfinished)}"
        return
    ident = selection.identity(cell.axes)
    other = samples.cells.get(ident)
    if other is not None:
        raise ResultsError(
            f"{samples.path}: cells {other.cell_id} and {cell.cell_id} have the same identity",
            "ignore fewer axes, or select one of them with --where",
        )
    samples.cells[ident] = cell


class _RunMetrics:
    """The metrics.json files of one run: read, cut to the selection, their metrics
    new to the run checked and catalogued (unit, kind, direction) in `info`.

    Work that depends only on a file's list of metrics (the selection's cut, the
    new-metric check) is done once per list: the reader gives the same list of
    keys, the very object, for each file that names the same metrics in the same
    order, which is nearly every file of a run.
    """

    def __init__(self, info: dict[str, MetricInfo], selection: Selection) -> None:
        self.info = info
        self.selection = selection
        self.reader = fastread.MetricsReader()
        self._keys: list[str] | None = None  # the last file's keys, as read
        self._kept: list[int] | None = None  # their positions the selection keeps (None: all)
        self._selected: list[str] = []  # those keys

    def read(self, path: str, data: bytes) -> tuple[list[str], list[float]]:
        keys, values = self.reader.read(path, data)
        if keys is not self._keys:
            self._cut(keys, path)
        if self._kept is not None:
            values = [values[i] for i in self._kept]
        return self._selected, values

    def _cut(self, keys: list[str], path: str) -> None:
        kept = None
        selected = keys
        if self.selection.metrics:
            kept = [i for i, k in enumerate(keys) if self.selection.metric_matches(k)]
            selected = [keys[i] for i in kept]
        fresh = [k for k in selected if k not in self.info]
        for key in fresh:
            _check_key(key, path)
        if fresh:
            for key, (unit, kind, better) in fastread.metric_info(Path(path), set(fresh)).items():
                self.info[key] = MetricInfo(unit, kind, better)
        self._keys, self._kept, self._selected = keys, kept, selected


def _check_key(key: str, path: str) -> None:
    """A metric key new to the run: workload and name of their grammar (they reach every report)."""
    workload, _, name = key.partition(":")
    if not results.WORKLOAD_RE.fullmatch(workload) or not results.METRIC_RE.fullmatch(name):
        raise ResultsError(f"{results.shown(path)}: {key[:80]!r} is not a metric name",
                           "the file is not one kharness wrote; rerun that cell")


def _values(reps: list[tuple[list[str], list[float]]]) -> dict[str, list[float]]:
    """Metric key -> the values of a cell's reps, in rep order (keys in order of first sight)."""
    if not reps:
        return {}
    first = reps[0][0]
    if all(keys is first for keys, _ in reps):  # the common case: transposed in C
        return dict(zip(first, map(list, zip(*(v for _, v in reps), strict=True)), strict=True))
    values: dict[str, list[float]] = {}
    for keys, new in reps:
        for key, v in zip(keys, new, strict=True):
            seen = values.get(key)
            if seen is None:
                values[key] = [v]
            else:
                seen.append(v)
    return values


def _missing_cells(run: dict[str, Any], samples: RunSamples, selection: Selection) -> dict[str, str]:
    """Cells that run.json lists but that have no finished repetition on disk.

    run.json's "cells" is read loosely (a list of objects with "id" or
    "cell_id", optionally "axes"): a cell whose axes are unknown is reported
    only when no --where filter is given.
    """
    listed = run.get("cells")
    if isinstance(listed, dict):
        listed = [{"id": k, **v} if isinstance(v, dict) else {"id": k} for k, v in listed.items()]
    if not isinstance(listed, list):
        return {}
    have = {c.cell_id for c in samples.cells.values()} | set(samples.missing)
    out = {}
    for entry in listed:
        if not isinstance(entry, dict):
            continue
        cid = entry.get("id", entry.get("cell_id", ""))
        if not isinstance(cid, str) or not results.CELL_ID_RE.fullmatch(cid):
            raise ResultsError(f"{results.shown(samples.path / results.RUN_FILE)}: cells: "
                               f"{str(cid)[:80]!r} is not a cell id", "the file is not one kharness wrote")
        axes = entry.get("axes")
        selected = selection.cell_matches(axes) if isinstance(axes, dict) else not selection.where
        if cid and cid not in have and selected:
            out[cid] = "listed in run.json, no repetition on disk"
    return out


def check_selection(runs: list[RunSamples], selection: Selection) -> None:
    """Refuse a filter that matches nothing anywhere: it is almost always a typo
    (and a CI gate that compares nothing would pass)."""
    seen: dict[str, set[str]] = {}
    for run in runs:
        for axis, values in run.axes_seen.items():
            seen.setdefault(axis, set()).update(values)
    if seen:
        _check_axes(seen, selection, any(r.cells for r in runs))
    unused = selection.unused_patterns()
    if unused and any(r.cells for r in runs):
        raise UsageError(f"--metric {unused[0]!r} matches no metric of the selected cells",
                         "patterns are globs on the name, e.g. 'swiotlb.*' or 'fio.*.iops'")


def _check_axes(seen: dict[str, set[str]], selection: Selection, selected: bool) -> None:
    named = [("--where", axis) for axis, _ in selection.where]
    named += [("--ignore-axis", axis) for axis in selection.ignore_axes]
    for option, axis in named:
        if axis not in seen:
            raise UsageError(f"{option} {axis}: no cell has an axis {axis!r}",
                             f"axes are: {', '.join(sorted(seen))}")
    if selection.where and not selected:
        axis, globs = selection.where[0]
        raise UsageError(f"--where {axis}={'|'.join(globs)} selects no cell in any directory",
                         f"{axis} is one of: {', '.join(sorted(seen[axis]))}")


# --- runs as a child sends them ----------------------------------------------
# The fields of RunSamples, CellSamples and Selection's record of what it matched,
# as msgpack arrays (array_like). Every value is one JSON could hold (run.json as
# read; axes, statuses, names; values all floats), so each comes back as it was;
# one msgpack cannot hold (an integer beyond 64 bits) makes the child fail, and
# this process load that directory itself. The keys of a cell's values are sent
# once per run's list of them (`keys`), as the reader shares one list between
# cells, and the cells come back sharing it. (gc=False: no cycles among them.)


class _PackedCell(msgspec.Struct, array_like=True, gc=False):
    identity: tuple[tuple[str, str], ...]
    cell_id: str
    slug: str
    axes: dict[str, Any]
    statuses: dict[int, str]
    unfinished: list[str]
    used: int
    suspect: bool
    keys: int  # its metric keys: _Packed.keys[keys]
    values: list[list[float]]


class _PackedRun(msgspec.Struct, array_like=True, gc=False):
    run: dict[str, Any]
    cells: list[_PackedCell]
    info: dict[str, tuple[str, str, str]]
    missing: dict[str, str]
    axes_seen: dict[str, list[str]]


class _Packed(msgspec.Struct, array_like=True, gc=False):
    keys: list[list[str]]
    runs: list[_PackedRun]
    matched: dict[str, bool]  # Selection._metric_cache
    patterns_hit: list[str]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Packed)


def _pack(runs: list[RunSamples], selection: Selection) -> bytes:
    keys: dict[tuple[str, ...], int] = {}
    packed = []
    for run in runs:
        cells = []
        for ident, c in run.cells.items():
            index = keys.setdefault(tuple(c.values), len(keys))
            cells.append(_PackedCell(ident, c.cell_id, c.slug, c.axes, c.statuses, c.unfinished, c.used,
                                     c.suspect, index, list(c.values.values())))
        info = {k: (i.unit, i.kind, i.better) for k, i in run.info.items()}
        axes_seen = {axis: list(values) for axis, values in run.axes_seen.items()}
        packed.append(_PackedRun(run.run, cells, info, run.missing, axes_seen))
    return _ENCODER.encode(_Packed([list(k) for k in keys], packed, selection._metric_cache,
                                   list(selection._patterns_hit)))


def _unpack(data: memoryview, dirs: list[Path], selection: Selection) -> list[RunSamples]:
    """The runs of `dirs` that _pack sent, and the selection told what they matched."""
    packed = _DECODER.decode(data)
    selection._metric_cache.update(packed.matched)
    selection._patterns_hit.update(packed.patterns_hit)
    runs = []
    for path, p in zip(dirs, packed.runs, strict=True):
        samples = RunSamples(path, p.run, missing=p.missing,
                             info={k: MetricInfo(*i) for k, i in p.info.items()},
                             axes_seen={axis: set(values) for axis, values in p.axes_seen.items()})
        for c in p.cells:
            samples.cells[c.identity] = CellSamples(c.cell_id, c.slug, c.axes, c.statuses, c.unfinished, c.used,
                                                    c.suspect, dict(zip(packed.keys[c.keys], c.values, strict=True)))
        runs.append(samples)
    return runs
