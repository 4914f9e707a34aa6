"""The result directory: a contract that run writes and compare/merge/bisect read.

    <run>/run.json                      config, host, tool versions, cells + status
    <run>/junit.xml                     derived from the cell.json files
    <run>/report.html
    <run>/cells/<cell-id>/<rep>/cell.json
    <run>/cells/<cell-id>/<rep>/metrics.json
    <run>/cells/<cell-id>/<rep>/console.log
    <run>/cells/<cell-id>/<rep>/raw/...

Every JSON file carries "format": RESULT_FORMAT. Files are written
atomically; a repetition is finished when its cell.json exists (it is written
last), so a killed run leaves no repetition that looks finished but is not.

A result directory is untrusted input (design.md): it travels as a CI
artefact or a mail attachment. So what is read from one is checked before
anything uses it, and a check that fails is one ResultsError naming the file:

- names are checked against the grammar kharness writes them in (cell ids,
  slugs, repetition numbers, axis, metric and workload names): a name is a
  path component or goes into a report, so no "..", "/", markup or control
  characters get through;
- a cell directory is named by its cell.json's cell id and a repetition
  directory by its rep: counts come from what is on disk, and a file that
  says otherwise (two directories claiming one repetition, a metric given
  twice) is refused, never counted twice;
- symbolic links are never followed: a link where a file or directory of the
  contract should be is refused, naming it;
- every JSON file is bounded in size, nesting depth and number length, and
  its values are checked for type (a string where a number goes, a number
  too large to compute with).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from harness import atomic
from harness.errors import ResultsError
from harness.model import STATUS_ORDER, Better, Metric, MetricKind, TestResult

RESULT_FORMAT = 1
CELL_FILE = "cell.json"
METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"
CONSOLE_FILE = "console.log"

# The grammar of what kharness writes (harness/config/identity.py makes the
# ids: a slug of [a-z0-9._-], at most 64 characters, a dash and 8 hex digits
# of a hash; synthetic and older writers also use capitals). Each name is one
# path component at most, never ".", ".." or anything with "/".
SLUG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
CELL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}-[0-9a-f]{8}")
MAX_REPEAT = 100  # repetitions of a cell, as a config allows (config/settings.py REPEAT)
REP_RE = re.compile(r"0|[1-9][0-9]?")  # a repetition directory: 0 .. MAX_REPEAT - 1
AXIS_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
WORKLOAD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
METRIC_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")  # as harness/collect/snapshot.py SAFE_METRIC
RUN_STATUSES = ("running", "finished", "interrupted")
KINDS = ("counter", "gauge")
BETTER = ("higher", "lower", "neutral")

# Bounds on what is read. A run.json of 10000 cells is a few MB and a
# cell.json holds at most some console excerpts; the depth covers run.json's
# copy of a config (harness/document.py refuses YAML deeper than 32).
MAX_JSON_BYTES = 64 << 20
MAX_DEPTH = 64
MAX_TEXT = 1 << 20  # characters of one free-text field (a reason, a console excerpt)
MAX_AXIS_TEXT = 4096  # characters of an axis value (the workloads axis with its parameters)
# Figures beyond this are no measurement (kernel counters are u64, < 2e19)
# and would overflow the statistics; NaN and infinities, which Python's json
# writes, are read as they are.
MAX_VALUE = 1e30


@dataclass
class RepRecord:
    """What cell.json holds for one repetition of one cell."""

    cell_id: str
    slug: str
    axes: dict[str, Any]
    rep: int
    status: str
    reason: str = ""
    kernel: dict[str, Any] = field(default_factory=dict)
    qemu: dict[str, Any] = field(default_factory=dict)  # argv, accelerator, version
    timings: dict[str, float] = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["format"] = RESULT_FORMAT
        return d


@dataclass
class RepResult:
    record: RepRecord
    metrics: list[Metric]
    path: Path


@dataclass
class RunResult:
    path: Path
    run: dict[str, Any]
    reps: list[RepResult]

    def cells(self) -> dict[str, list[RepResult]]:
        out: dict[str, list[RepResult]] = {}
        for r in self.reps:
            out.setdefault(r.record.cell_id, []).append(r)
        return out


def rep_dir(run_dir: Path, cell_id: str, rep: int) -> Path:
    """Where a repetition lives; only for a cell id and rep of the grammar (never a path)."""
    if not CELL_ID_RE.fullmatch(cell_id) or not 0 <= rep < MAX_REPEAT:
        raise ValueError(f"not a cell id and repetition: {cell_id!r} {rep!r}")
    return run_dir / "cells" / cell_id / str(rep)


def write_metrics(path: Path, metrics: list[Metric]) -> None:
    atomic.write_json(
        path / METRICS_FILE,
        {"format": RESULT_FORMAT, "metrics": [_metric_json(m) for m in metrics]},
    )


def _metric_json(m: Metric) -> dict[str, object]:
    """asdict(m), written out: asdict deep-copies field by field, three times slower here."""
    return {"name": m.name, "value": m.value, "unit": m.unit, "kind": m.kind, "better": m.better,
            "workload": m.workload}


def write_record(path: Path, record: RepRecord) -> None:
    """Write cell.json: the mark that this repetition is finished."""
    atomic.write_json(path / CELL_FILE, record.to_json())


# --- names and files --------------------------------------------------------


def shown(path: Path | str) -> str:
    """A path as text that any terminal or file takes: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def quoted(name: str) -> str:
    """A name read from a result directory, quoted for a message: bounded, escapes shown once."""
    text = shown(name if len(name) <= 80 else name[:77] + "...")
    return repr(text) if not text.isprintable() else f"'{text}'"


# How a result-directory file is opened for reading: never through a link, and
# without waiting on a FIFO (fstat then refuses anything but a regular file).
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """A regular file of a result directory, without following a link, at most `limit` bytes
    (MAX_JSON_BYTES unless given)."""
    limit = MAX_JSON_BYTES if limit is None else limit
    try:
        fd = os.open(path, READ_FLAGS)
    except FileNotFoundError:
        raise ResultsError(f"{shown(path)}: missing", "is the run finished? resume it or rerun") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResultsError(f"{shown(path)}: a symbolic link, refused",
                               "result directories hold plain files; replace it by the file") from None
        raise ResultsError(f"{shown(path)}: cannot read ({exc.strerror})") from exc
    try:  # os.read, not a file object: compare reads 12000 files, and the object cost more than the read
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ResultsError(f"{shown(path)}: not a regular file", "result directories hold plain files")
        if st.st_size > limit:
            raise ResultsError(f"{shown(path)}: {st.st_size} bytes, more than the {limit} a result file may have",
                               "the file is not one kharness wrote")
        data = _read_up_to(fd, st.st_size + 1)  # a size it gained since fstat shows as one byte more
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ResultsError(f"{shown(path)}: more than the {limit} bytes a result file may have",
                           "the file is not one kharness wrote")
    return data


def _read_up_to(fd: int, size: int) -> bytes:
    """At most `size` bytes from `fd`: until then or the end of the file."""
    data = os.read(fd, size)
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            break
        data += more
    return data


def parse_json(data: bytes, path: Path) -> Any:
    """JSON text as values; ResultsError for bad JSON, too deep a nesting or too long a number."""
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{shown(path)}: not valid JSON ({exc})",
                           "the file is truncated or corrupt; rerun that cell") from exc
    except RecursionError:
        raise ResultsError(f"{shown(path)}: JSON nested deeper than {MAX_DEPTH}",
                           "the file is not one kharness wrote") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise ResultsError(f"{shown(path)}: a number of thousands of digits",
                           "the file is not one kharness wrote") from None
    # Fewer brackets than the bound cannot nest deeper than it (most files: no walk at all).
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth_over(value, MAX_DEPTH):
        raise ResultsError(f"{shown(path)}: JSON nested deeper than {MAX_DEPTH}",
                           "the file is not one kharness wrote")
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than `limit` (iteratively: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def checked(value: Any, path: Path) -> dict[str, Any]:
    """A parsed result file: a JSON object of this kharness's format."""
    if not isinstance(value, dict):
        raise ResultsError(f"{shown(path)}: not a JSON object", "the file is corrupt; rerun that cell")
    fmt = value.get("format")
    if fmt != RESULT_FORMAT:
        raise ResultsError(
            f"{shown(path)}: result format {_short(fmt)}, this kharness reads {RESULT_FORMAT}",
            "use the kharness version that wrote it",
        )
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _load_json(path: Path) -> dict[str, Any]:
    return checked(parse_json(read_bytes(path), path), path)


def entries(path: Path, grammar: re.Pattern[str], what: str) -> Iterator[Path]:
    """The subdirectories of `path` (cells/ or a cell), sorted; each a real directory named by `grammar`.

    Nothing is followed: a link, a file, or a name outside the grammar is
    refused, naming it. A missing `path` has no entries.
    """
    try:
        with os.scandir(path) as it:
            found = sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise ResultsError(f"{shown(path)}: not a directory", "the result directory is corrupt") from None
    except OSError as exc:
        raise ResultsError(f"{shown(path)}: cannot read ({exc.strerror})") from exc
    for e in found:
        if e.is_symlink():
            raise ResultsError(f"{shown(e.path)}: a symbolic link, refused",
                               "result directories hold plain directories and files")
        if not e.is_dir(follow_symlinks=False):
            raise ResultsError(f"{shown(e.path)}: not a directory, where {what} directories are",
                               "remove it, or give the result directory as kharness wrote it")
        if not grammar.fullmatch(e.name):
            raise ResultsError(f"{shown(path)}: {quoted(e.name)} is not {what}",
                               "remove it, or give the result directory as kharness wrote it")
        yield path / e.name  # (cheaper than Path(e.path), which parses the whole path again)


def cell_dirs(run_dir: Path) -> Iterator[Path]:
    """cells/<cell-id> of a result directory, checked (see `entries`)."""
    cells = run_dir / "cells"
    if cells.is_symlink():
        raise ResultsError(f"{shown(cells)}: a symbolic link, refused", "result directories hold plain directories")
    return entries(cells, CELL_ID_RE, "a cell id")


def rep_dirs(cell_dir: Path) -> Iterator[Path]:
    """The repetition directories of a cell, checked (see `entries`)."""
    return entries(cell_dir, REP_RE, f"a repetition number (0 to {MAX_REPEAT - 1})")


def finished(rd: Path) -> bool:
    """A repetition is finished when its cell.json exists (a link there is refused on reading)."""
    return os.path.lexists(os.path.join(rd, CELL_FILE))


def _no_links(rd: Path) -> None:
    """The files a reader opens (console.log for a report) are never links out of the input."""
    with os.scandir(rd) as it:
        for e in it:
            if e.is_symlink():
                raise ResultsError(f"{shown(e.path)}: a symbolic link, refused",
                                   "result directories hold plain files; replace it by the file")


# --- values -----------------------------------------------------------------


class ValueProblem(Exception):
    """A value that is not what the contract says; the message names the field."""


class _UnknownStatus(ValueProblem):
    """A status outside STATUS_ORDER: said as it is, not as "malformed"."""


def _str(d: dict[str, Any], key: str, default: str | None = None, *, grammar: re.Pattern[str] | None = None,
         limit: int = MAX_TEXT) -> str:
    if key not in d:
        if default is None:
            raise ValueProblem(f"no {key!r}")
        return default
    value = d[key]
    if not isinstance(value, str):
        raise ValueProblem(f"{key} is {_short(value)}, not a string")
    if grammar is not None and not grammar.fullmatch(value):
        raise ValueProblem(f"{key} {quoted(value)} is not a valid {key}")
    if len(value) > limit:
        raise ValueProblem(f"{key} has {len(value)} characters, more than {limit}")
    return value


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueProblem(f"{what} is {_short(value)}, not an integer from {low} to {high}")
    return int(value)


def number(value: Any, what: str) -> float:
    """A figure: int or float, NaN and infinities as Python's json writes them, finite ones bounded."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueProblem(f"{what} is {_short(value)}, not a number")
    if isinstance(value, int) and abs(value) > MAX_VALUE:
        raise ValueProblem(f"{what} is {_short(value)}, beyond +-{MAX_VALUE:g}")
    v = float(value)
    if math.isfinite(v) and abs(v) > MAX_VALUE:
        raise ValueProblem(f"{what} is {v:g}, beyond +-{MAX_VALUE:g}")
    return v


def _dict(d: dict[str, Any], key: str) -> dict[str, Any]:
    value = d.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueProblem(f"{key} is {_short(value)}, not an object")
    return value


def axes_of(value: Any, what: str = "axes") -> dict[str, Any]:
    """A cell's axes: names of the grammar, each a JSON scalar (short, printable text)."""
    if not isinstance(value, dict):
        raise ValueProblem(f"{what} is {_short(value)}, not an object")
    for name, v in value.items():
        if not AXIS_RE.fullmatch(name):
            raise ValueProblem(f"{what}: {quoted(name)} is not an axis name")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueProblem(f"{what}.{name} is {v}, not a setting")
        if isinstance(v, str) and (len(v) > MAX_AXIS_TEXT or not v.isprintable()):
            raise ValueProblem(f"{what}.{name} is not a short line of printable text")
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_VALUE:
            raise ValueProblem(f"{what}.{name} is {_short(v)}, beyond +-{MAX_VALUE:g}")
        if not (v is None or isinstance(v, str | int | float | bool)):
            raise ValueProblem(f"{what}.{name} is {_short(v)}, not a string, number, boolean or null")
    return dict(value)


def _test(t: Any, i: int) -> TestResult:
    if not isinstance(t, dict):
        raise ValueProblem(f"tests[{i}] is {_short(t)}, not an object")
    unknown = set(t) - {"name", "status", "message", "output", "seconds"}
    if unknown:
        raise ValueProblem(f"tests[{i}] has unknown key {_short(sorted(unknown)[0])}")
    status = _str(t, "status")
    if status not in STATUS_ORDER:
        raise ValueProblem(f"tests[{i}].status {_short(status)} is not one of {', '.join(STATUS_ORDER)}")
    seconds = number(t.get("seconds", 0.0), f"tests[{i}].seconds")
    return TestResult(_str(t, "name", limit=512), status, _str(t, "message", ""),
                      _str(t, "output", ""), seconds)


def record_of(d: dict[str, Any]) -> RepRecord:
    """cell.json's values, checked; ValueProblem names the first field that is not as kharness writes it."""
    tests = d.get("tests", [])
    if not isinstance(tests, list):
        raise ValueProblem(f"tests is {_short(tests)}, not a list")
    timings = {}
    for key, value in _dict(d, "timings").items():
        timings[key] = number(value, f"timings.{key}")
    rec = RepRecord(
        cell_id=_str(d, "cell_id", grammar=CELL_ID_RE), slug=_str(d, "slug", grammar=SLUG_RE),
        axes=axes_of(d.get("axes")), rep=_int(d.get("rep"), "rep", 0, MAX_REPEAT - 1),
        status=_str(d, "status"), reason=_str(d, "reason", ""), kernel=_dict(d, "kernel"), qemu=_dict(d, "qemu"),
        timings=timings, tests=[_test(t, i) for i, t in enumerate(tests)],
    )
    if rec.status not in STATUS_ORDER:
        raise _UnknownStatus(f"unknown status {_short(rec.status)}")
    return rec


def load_record(path: Path) -> RepRecord:
    """cell.json of the repetition directory `path`, which must be cells/<its cell id>/<its rep>."""
    file = path / CELL_FILE
    d = _load_json(file)
    try:
        rec = record_of(d)
    except _UnknownStatus as exc:
        raise ResultsError(f"{shown(file)}: {exc}", "rerun that cell") from None
    except ValueProblem as exc:
        raise ResultsError(f"{shown(file)}: malformed ({exc})", "rerun that cell") from None
    if path.parts[-2:] != (rec.cell_id, str(rec.rep)):
        raise ResultsError(
            f"{shown(file)}: says cell {rec.cell_id} repetition {rec.rep}, but is in "
            f"{shown(path.parent.name)}/{shown(path.name)}",
            "a repetition is counted where it is on disk: give the result directory as kharness wrote it",
        )
    return rec


def metric_of(m: Any, i: int) -> Metric:
    if not isinstance(m, dict):
        raise ValueProblem(f"metrics[{i}] is {_short(m)}, not an object")
    unknown = set(m) - {"name", "value", "unit", "kind", "better", "workload"}
    if unknown:
        raise ValueProblem(f"metrics[{i}] has unknown key {_short(sorted(unknown)[0])}")
    kind, better = _str(m, "kind", "gauge"), _str(m, "better", "neutral")
    if kind not in KINDS or better not in BETTER:
        raise ValueProblem(f"metrics[{i}]: kind {_short(kind)} / better {_short(better)} unknown")
    return Metric(_str(m, "name", grammar=METRIC_RE), number(m.get("value"), f"metrics[{i}].value"),
                  _str(m, "unit", "", limit=64), cast(MetricKind, kind), cast(Better, better),
                  _str(m, "workload", "boot", grammar=WORKLOAD_RE))


def load_metrics(path: Path) -> list[Metric]:
    file = path / METRICS_FILE
    d = _load_json(file)
    try:
        rows = d["metrics"]
        if not isinstance(rows, list):
            raise ValueProblem(f"metrics is {_short(rows)}, not a list")
        metrics = [metric_of(m, i) for i, m in enumerate(rows)]
    except KeyError as exc:
        raise ResultsError(f"{shown(file)}: malformed (no {exc})", "rerun that cell") from None
    except ValueProblem as exc:
        raise ResultsError(f"{shown(file)}: malformed ({exc})", "rerun that cell") from None
    twice = duplicate([m.key for m in metrics])
    if twice is not None:
        raise ResultsError(f"{shown(file)}: metric {twice} given twice",
                           "one repetition measures a metric once; the file is not one kharness wrote")
    return metrics


def duplicate(keys: list[str]) -> str | None:
    """The first key given twice, or None."""
    if len(set(keys)) == len(keys):
        return None
    seen: set[str] = set()
    for k in keys:
        if k in seen:
            return k
        seen.add(k)
    return None  # pragma: no cover - the sets differ, so one repeats


# --- run.json ---------------------------------------------------------------

_OPTIONAL_TEXT = ("name", "config_path", "started", "finished")
_LISTS_OF_OBJECTS = ("interruptions", "resumed", "merged_from")


def check_run_doc(doc: dict[str, Any]) -> None:
    """run.json's fields that readers use have the types and grammar kharness writes (ValueProblem if not)."""
    for key in _OPTIONAL_TEXT:
        if doc.get(key) is not None:
            _str(doc, key, limit=4096)
    if doc.get("status") is not None and doc["status"] not in RUN_STATUSES:
        raise ValueProblem(f"status {_short(doc['status'])} is not one of {', '.join(RUN_STATUSES)}")
    for key in _LISTS_OF_OBJECTS:
        items = doc.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueProblem(f"{key} is not a list of objects")
    for key in ("host", "tools", "budget"):
        _dict(doc, key)
    if any(not isinstance(v, str) for v in _dict(doc, "tools").values()):
        raise ValueProblem("tools: a version that is not a string")
    _check_shard(doc.get("shard"))
    config = _dict(doc, "config")
    for key in ("name", "path", "sha256", "description"):
        if config.get(key) is not None:
            _str(config, key, limit=MAX_TEXT)
    _ids(config.get("cells", []), "config.cells")
    _ids(doc.get("missing_cells", []), "missing_cells")
    cells = doc.get("cells", [])
    if not isinstance(cells, list):
        raise ValueProblem(f"cells is {_short(cells)}, not a list")
    for i, entry in enumerate(cells):
        try:
            _cell_entry(entry, i)
        except ValueProblem as exc:
            text = str(exc)
            raise ValueProblem(text if text.startswith("cells[") else f"cells[{i}]: {text}") from None


def _check_shard(shard: Any) -> None:
    if shard is None:
        return
    if not isinstance(shard, dict):
        raise ValueProblem(f"shard is {_short(shard)}, not an object")
    count = _int(shard.get("count"), "shard.count", 1, 1 << 20)
    _int(shard.get("index"), "shard.index", 1, count)


def _ids(value: Any, what: str) -> None:
    if not isinstance(value, list):
        raise ValueProblem(f"{what} is {_short(value)}, not a list")
    for v in value:
        if not isinstance(v, str) or not CELL_ID_RE.fullmatch(v):
            raise ValueProblem(f"{what}: {quoted(str(v))} is not a cell id")


def _cell_entry(entry: Any, i: int) -> None:
    if not isinstance(entry, dict):
        raise ValueProblem(f"cells[{i}] is {_short(entry)}, not an object")
    _str(entry, "id", grammar=CELL_ID_RE)
    if "slug" in entry:
        _str(entry, "slug", grammar=SLUG_RE)
    axes_of(entry.get("axes", {}), f"cells[{i}].axes")
    _int(entry.get("repeat", 1), f"cells[{i}].repeat", 1, MAX_REPEAT)
    status = entry.get("status")
    if status is not None and status not in STATUS_ORDER:
        raise ValueProblem(f"cells[{i}].status {_short(status)} is not one of {', '.join(STATUS_ORDER)}")


def load_run_doc(run_dir: Path) -> dict[str, Any]:
    """run.json of `run_dir`, checked (check_run_doc)."""
    file = run_dir / RUN_FILE
    doc = _load_json(file)
    _checked_with(check_run_doc, doc, file)
    return doc


def _checked_with(check: Callable[[dict[str, Any]], None], doc: dict[str, Any], file: Path) -> None:
    try:
        check(doc)
    except ValueProblem as exc:
        raise ResultsError(f"{shown(file)}: malformed ({exc})", "the file is not one kharness wrote") from None


def load_run(run_dir: Path) -> RunResult:
    """Read a whole result directory; ResultsError names the first bad file."""
    if not run_dir.is_dir():
        raise ResultsError(f"{shown(run_dir)}: not a directory", "give a result directory written by kharness run")
    run = load_run_doc(run_dir)
    reps: list[RepResult] = []
    for cell_dir in cell_dirs(run_dir):
        for rd in rep_dirs(cell_dir):
            if not finished(rd):
                continue  # unfinished repetition (a killed run): not a result
            _no_links(rd)
            record = load_record(rd)
            metrics = load_metrics(rd) if os.path.lexists(rd / METRICS_FILE) else []
            reps.append(RepResult(record, metrics, rd))
    return RunResult(run_dir, run, reps)
