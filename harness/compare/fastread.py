"""Reading result JSON files fast, with the checks of the result contract.

metrics.json files are most of what compare reads: two directories of 1000
cells x 3 repetitions x 200 metrics are 6000 files and 1.2 million metrics.
msgspec decodes them straight into (workload, name, value) rows, checking
their types and the value's bound in C, at about twice the speed of json
plus picking the fields out. Anything msgspec refuses (NaN, which
Python's json writes and reads; a wrong type; another format; nesting too
deep) goes the slow way through harness.results, which gives the contract's
error messages. Without msgspec, everything goes the slow way.

Files are read as harness.results reads them: bounded, never through a link.
`read_file` does it in one open, fstat and read for the usual file (a plain
file, whole at the first read) and leaves anything else to
results.read_bytes, which refuses it with its own message: 12000 files go
through here, and its Path and the second read that finds the end cost as
much as the read. Names are checked against their grammar when a run first
shows them (harness.compare.load), not in every file.

The files of one run list the same metrics in the same order, file after
file. So a `MetricsReader` keeps the names of the last file it read: when a
file's names are those (compared as lists, in C), it gives the same list of
keys again, already checked for duplicates, instead of building 200 new
strings that every dictionary on the way would hash anew.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from harness import results
from harness.errors import ResultsError

try:
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None  # type: ignore[assignment]


def read_json(path: Path) -> dict[str, Any]:
    """A result JSON file as a dict; ResultsError names the file when it is not one."""
    return results.checked(results.parse_json(results.read_bytes(path), path), path)


def read_file(path: str, exists: Callable[[str], bool]) -> bytes | None:
    """results.read_bytes(path), or None when `exists(path)` says there is no such file
    (os.path.lexists or os.path.exists: what the caller looked with before reading)."""
    try:
        fd = os.open(path, results.READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError:  # a link, no permission: refused below, unless it is not there at all
        return results.read_bytes(Path(path)) if exists(path) else None
    try:
        st = os.fstat(fd)
        usual = stat.S_ISREG(st.st_mode) and st.st_size <= results.MAX_JSON_BYTES
        # A regular file reads whole at once; a short read is its end.
        data = os.read(fd, st.st_size + 1) if usual else None
    finally:
        os.close(fd)
    if data is None or len(data) > st.st_size:  # not a plain file within the bound, or it grew
        return results.read_bytes(Path(path))
    return data


class MetricsReader:
    """Reads the metrics.json files of one run (see the module's docstring)."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._workloads: list[str] = []
        self._keys: list[str] = []

    def read(self, path: Path | str, data: bytes | None = None) -> tuple[list[str], list[float]]:
        """The keys ("workload:name") and values of a metrics.json (its bytes `data`, else
        read), in file order; a key given twice is refused (one repetition measures a metric
        once). The keys are the very list the last call gave when the file names the same
        metrics in the same order."""
        if data is None:
            data = results.read_bytes(Path(path))
        rows = _fast_rows(data)
        if rows is not None:
            # (list comprehensions: half the cost of map(attrgetter) on a Struct)
            names, workloads = [m.name for m in rows], [m.workload for m in rows]
            values = [m.value for m in rows]
            if names == self._names and workloads == self._workloads:
                return self._keys, values
            keys = [f"{w}:{n}" for w, n in zip(workloads, names, strict=True)]
        else:
            metrics = _slow_metrics(Path(path), data)
            names, workloads = [m.name for m in metrics], [m.workload for m in metrics]
            keys, values = [m.key for m in metrics], [m.value for m in metrics]
            if keys == self._keys:
                return self._keys, values
        twice = results.duplicate(keys)
        if twice is not None:
            raise ResultsError(f"{results.shown(path)}: metric {twice} given twice",
                               "one repetition measures a metric once; the file is not one kharness wrote")
        self._names, self._workloads, self._keys = names, workloads, keys
        return keys, values


def metric_values(path: Path) -> tuple[list[str], list[float]]:
    """The keys and values of one metrics.json (MetricsReader.read, for a lone file)."""
    return MetricsReader().read(path)


def result_object(data: bytes) -> dict[str, Any] | None:
    """A small result file (cell.json) as results.parse_json and results.checked would give
    it, decoded by msgspec at about twice json's speed; or None: leave it to them (msgspec
    refuses more than json does, NaN for one, and never accepts what json refuses), as
    for a file nested more deeply than results.MAX_DEPTH could be."""
    if _ANY is None or data.count(b"[") + data.count(b"{") > results.MAX_DEPTH:
        return None
    try:
        doc = _ANY.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == results.RESULT_FORMAT else None


def _fast_rows(data: bytes) -> list[Any] | None:
    """The rows of a metrics.json as msgspec reads them, or None: go the slow way."""
    if _DECODER is None:
        return None
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    return doc.metrics if doc.format == results.RESULT_FORMAT else None


def metric_info(path: Path, keys: set[str]) -> dict[str, tuple[str, str, str]]:
    """Unit, kind and direction of some metrics of a metrics.json (read the slow way:
    this is needed only the first time a run shows a metric)."""
    return {m.key: (m.unit, m.kind, m.better) for m in _slow_metrics(path, results.read_bytes(path))
            if m.key in keys}


def _slow_metrics(path: Path, data: bytes) -> list[Any]:
    doc = results.checked(results.parse_json(data, path), path)
    rows = doc.get("metrics")
    if not isinstance(rows, list):
        raise ResultsError(f"{results.shown(path)}: malformed (no list of metrics)", "rerun that cell")
    try:
        return [results.metric_of(m, i) for i, m in enumerate(rows)]
    except results.ValueProblem as exc:
        raise ResultsError(f"{results.shown(path)}: malformed ({exc})", "rerun that cell") from None


if msgspec is not None:
    _Value = Annotated[float, msgspec.Meta(ge=-results.MAX_VALUE, le=results.MAX_VALUE)]

    # Only what compare uses of every file; unit, kind and direction are read
    # (and checked) the slow way, from the file where a run first shows a
    # metric. Decoding them here too would cost a sixth of the load time.
    # gc=False: they hold only strings and floats, so they are in no cycle, and the
    # collector need not track 1.2 million of them.
    class _Row(msgspec.Struct, gc=False):
        name: str
        value: _Value
        workload: str = "boot"

    class _MetricsFile(msgspec.Struct, gc=False):
        metrics: list[_Row]
        format: int | None = None

    _DECODER: msgspec.json.Decoder[_MetricsFile] | None = msgspec.json.Decoder(_MetricsFile)
    _ANY: msgspec.json.Decoder[Any] | None = msgspec.json.Decoder()
else:  # pragma: no cover
    _DECODER = None
    _ANY = None
