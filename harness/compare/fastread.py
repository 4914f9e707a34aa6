"""Reading result JSON files fast, with the checks of the result contract.

metrics.json files are most of what compare reads: two directories of 1000
cells x 3 repetitions x 200 metrics are 6000 files and 1.2 million metrics.
msgspec decodes them straight into (workload, name, value) rows, skipping
the fields compare does not need, at about twice the speed of json plus
picking the fields out. Anything msgspec refuses (NaN, which Python's json
writes and reads; a wrong type; another format) goes the slow way through
json, which also gives the contract's error messages. Without msgspec,
everything goes the slow way.
"""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Any

from harness import results
from harness.errors import ResultsError

try:
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None  # type: ignore[assignment]


def read_json(path: Path) -> dict[str, Any]:
    """A result JSON file as a dict; ResultsError names the file when it is not one."""
    return _checked(_parse(_read(path), path), path)


def metric_values(path: Path) -> tuple[list[str], list[float]]:
    """The keys ("workload:name") and values of a metrics.json, in file order."""
    data = _read(path)
    if _DECODER is not None:
        try:
            doc = _DECODER.decode(data)
        except msgspec.DecodeError:
            doc = None
        if doc is not None and doc.format == results.RESULT_FORMAT:
            rows = doc.metrics
            return [f"{m.workload}:{m.name}" for m in rows], [m.value for m in rows]
    return _slow_rows(_checked(_parse(data, path), path), path)


def metric_info(path: Path, keys: set[str]) -> dict[str, tuple[str, str, str]]:
    """Unit, kind and direction of some metrics of a metrics.json (read the slow way:
    this is needed only the first time a run shows a metric)."""
    out = {}
    for m in read_json(path).get("metrics", []):
        key = f"{m.get('workload', 'boot')}:{m.get('name')}"
        if key in keys:
            out[key] = (str(m.get("unit", "")), str(m.get("kind", "gauge")),
                        str(m.get("better", "neutral")))
    return out


if msgspec is not None:

    class _Row(msgspec.Struct):
        name: str
        value: float
        workload: str = "boot"

    class _MetricsFile(msgspec.Struct):
        metrics: list[_Row]
        format: Any = None

    _DECODER: msgspec.json.Decoder[_MetricsFile] | None = msgspec.json.Decoder(_MetricsFile)
else:  # pragma: no cover
    _DECODER = None

_ROW = operator.itemgetter("workload", "name", "value")


def _slow_rows(doc: dict[str, Any], path: Path) -> tuple[list[str], list[float]]:
    try:
        metrics = doc["metrics"]
        try:
            rows = list(map(_ROW, metrics))
        except KeyError:  # "workload" may be left out (Metric's default); the rest may not
            rows = [(m.get("workload", "boot"), m["name"], m["value"]) for m in metrics]
        return [f"{w}:{n}" for w, n, _ in rows], [float(v) for _, _, v in rows]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsError(f"{path}: malformed ({exc!r})", "rerun that cell") from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing", "is the run finished? resume it or rerun") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror})") from exc


def _parse(data: bytes, path: Path) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})",
                           "the file is truncated or corrupt; rerun that cell") from exc


def _checked(value: Any, path: Path) -> dict[str, Any]:
    """The checks of harness.results._load_json, on an already parsed value."""
    if not isinstance(value, dict):
        raise ResultsError(f"{path}: not a JSON object", "the file is corrupt; rerun that cell")
    fmt = value.get("format")
    if fmt != results.RESULT_FORMAT:
        raise ResultsError(
            f"{path}: result format {fmt!r}, this kharness reads {results.RESULT_FORMAT}",
            "use the kharness version that wrote it",
        )
    return value
