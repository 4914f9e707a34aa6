"""report.html: a run read in a minute, from a CI artefact, with no network.

What a person opening a nightly wants first: did it pass, which cells did
not and why (the failing testcases and the console around the fault), and
how the key figures move along each axis of the matrix. One file with
inline CSS and SVG and no script; its Content-Security-Policy forbids any
fetch, so a report that tried to load something would show as broken in
the browser test rather than silently depend on the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from harness import atomic
from harness.formats import svg
from harness.machine.qemu import console_tail
from harness.model import STATUS_ORDER, Metric
from harness.results import RepRecord, RepResult, RunResult
from harness.run.junit import KEY_METRICS

MAX_FAILURES = 60  # detailed; the rest are listed in the table
OPEN_FAILURES = 8  # shown unfolded; the others one click away
CONSOLE_LINES = 50
EXCERPT_CHARS = 6000
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: left; }
th { background: #f4f4f4; } td { white-space: nowrap; } td.why { white-space: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.st { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; font-size: 12px; }
.pass { background: #228833; } .fail { background: #EE6677; } .error { background: #AA3377; }
.interrupted, .skipped { background: #CCBB44; color: #222; }
.meta { color: #555; } pre { background: #f7f7f7; padding: 6px; overflow-x: auto; max-height: 30em; }
details { margin: .4em 0; } summary { cursor: pointer; }
.plots { display: flex; flex-wrap: wrap; gap: 10px; }
""" + svg.CSS


def write(path: Path, run: RunResult, unfinished: list[RepRecord]) -> None:
    atomic.write_text(path, render(run, unfinished))


def render(run: RunResult, unfinished: list[RepRecord]) -> str:
    doc = run.run
    reps = _in_cell_order(run.reps, doc)
    varying = varying_axes(doc)
    body = [
        _header(doc, run.path),
        _counts([r.record for r in reps] + unfinished),
        '<p class="meta">Sections: <a href="#cells">cells</a> · <a href="#failures">failures</a> · '
        '<a href="#plots">key metrics per axis</a></p>',
        _cell_table(doc, reps, unfinished, varying),
        _failures(reps),
        _plots(doc, reps, varying),
        _unfinished(unfinished),
    ]
    title = f"kharness: {doc.get('name', run.path.name)}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(b for b in body if b) + "\n</body></html>\n")


def _in_cell_order(reps: list[RepResult], doc: dict[str, Any]) -> list[RepResult]:
    order = {e.get("id"): i for i, e in enumerate(doc.get("cells", []))}
    return sorted(reps, key=lambda r: (order.get(r.record.cell_id, len(order)), r.record.cell_id, r.record.rep))


def varying_axes(doc: dict[str, Any]) -> list[str]:
    """The axes whose value differs between cells: the ones worth a column and a plot."""
    seen: dict[str, set[str]] = {}
    for entry in doc.get("cells", []):
        for k, v in (entry.get("axes") or {}).items():
            seen.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
    return sorted(k for k, vals in seen.items() if len(vals) > 1)


def axis_text(value: Any) -> str:
    return "(none)" if value in ("", None) else str(value)


def key_value(metrics: list[Metric], name: str) -> tuple[float, str] | None:
    """One figure per repetition: a counter summed over the workloads, a gauge as after boot."""
    found = [m for m in metrics if m.name == name]
    if not found:
        return None
    if any(m.kind == "counter" for m in found):
        return sum(m.value for m in found if m.workload != "boot"), found[0].unit
    boot = [m for m in found if m.workload == "boot"]
    return (boot or found)[0].value, found[0].unit


def _chip(status: str) -> str:
    return f'<span class="st {escape(status)}">{escape(status)}</span>'


def _header(doc: dict[str, Any], path: Path) -> str:
    cfg = doc.get("config") or {}
    facts = [f"status {doc.get('status', '?')}", f"started {doc.get('started') or '?'}"]
    if doc.get("finished"):
        facts.append(f"finished {doc['finished']}")
    if doc.get("shard"):
        facts.append(f"shard {doc['shard'].get('index')}/{doc['shard'].get('count')}")
    if doc.get("merged_from"):
        facts.append(f"merged from {len(doc['merged_from'])} runs")
    host = doc.get("host") or {}
    facts.append(f"host {host.get('hostname', '?')} ({host.get('machine', '?')})")
    tools = ", ".join(f"{k} {v}" for k, v in (doc.get("tools") or {}).items())
    return (f"<h1>kharness run {escape(str(doc.get('name', path.name)))}</h1>"
            f"<p class=\"meta\">{escape(' · '.join(facts))}<br>config {escape(str(cfg.get('path', '?')))} "
            f"(sha256 {escape(str(cfg.get('sha256', '?'))[:16])}) · {escape(tools)}</p>"
            + (f"<p>{escape(str(cfg.get('description')))}</p>" if cfg.get("description") else ""))


def _counts(records: list[RepRecord]) -> str:
    counts = {s: sum(1 for r in records if r.status == s) for s in STATUS_ORDER}
    parts = [f"{_chip(s)} {n}" for s, n in counts.items() if n]
    return f"<p>{len(records)} repetitions: {' '.join(parts) or 'none'}</p>"


def _cell_table(doc: dict[str, Any], reps: list[RepResult], unfinished: list[RepRecord],
                varying: list[str]) -> str:
    """One row per cell: only the axes that vary get a column, so a wide matrix stays readable."""
    by_cell: dict[str, list[RepRecord]] = {}
    metrics: dict[str, list[list[Metric]]] = {}
    for r in reps:
        by_cell.setdefault(r.record.cell_id, []).append(r.record)
        metrics.setdefault(r.record.cell_id, []).append(r.metrics)
    for u in unfinished:
        by_cell.setdefault(u.cell_id, []).append(u)
    head = ["cell", *varying, "repetitions", *KEY_METRICS, "first problem"]
    rows = []
    for entry in doc.get("cells", []):
        cid = entry.get("id", "")
        recs = sorted(by_cell.get(cid, []), key=lambda r: r.rep)
        axes = entry.get("axes") or {}
        figures = [_mean_text(metrics.get(cid, []), name) for name in KEY_METRICS]
        problem = next((r.reason for r in recs if r.status != "pass" and r.reason), "")
        tds = ([f'<td class="cell" title="{escape(cid)}">{escape(str(entry.get("slug", cid)))}</td>']
               + [f"<td>{escape(axis_text(axes.get(a)))}</td>" for a in varying]
               + [f"<td>{' '.join(_chip(r.status) for r in recs) or '-'}</td>"]
               + [f'<td class="num">{escape(f)}</td>' for f in figures]
               + [f'<td class="why">{escape(problem[:200])}</td>'])
        rows.append(f"<tr>{''.join(tds)}</tr>")
    return ("<h2 id=\"cells\">Cells</h2><table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "\n".join(rows) + "</tbody></table>"
            + "<p class=\"meta\">Figures are means over finished repetitions: gauges after boot, "
              "counters summed over the workloads.</p>")


def _mean_text(per_rep: list[list[Metric]], name: str) -> str:
    values = [v for m in per_rep if (v := key_value(m, name)) is not None]
    if not values:
        return "-"
    return svg.human(sum(v for v, _ in values) / len(values), values[0][1])


def _failures(reps: list[RepResult]) -> str:
    bad = [r for r in reps if r.record.status in ("fail", "error")]
    if not bad:
        return '<h2 id="failures">Failures</h2><p>None.</p>'
    out = ['<h2 id="failures">Failures</h2>']
    for i, r in enumerate(bad[:MAX_FAILURES]):
        out.append(_failure(r, unfolded=i < OPEN_FAILURES))
    if len(bad) > MAX_FAILURES:
        out.append(f"<p>... and {len(bad) - MAX_FAILURES} more; see their cells/ directories.</p>")
    return "\n".join(out)


def _failure(r: RepResult, unfolded: bool) -> str:
    rec = r.record
    items = []
    for t in rec.tests:
        if t.status not in ("fail", "error"):
            continue
        items.append(f"<li>{_chip(t.status)} <b>{escape(t.name)}</b>: {escape(t.message[:500])}"
                     + (f"<pre>{escape(t.output[-EXCERPT_CHARS:])}</pre>" if t.output else "") + "</li>")
    tail = console_tail(r.path / "console.log", CONSOLE_LINES)[-EXCERPT_CHARS:]
    return (f"<details{' open' if unfolded else ''}><summary>{_chip(rec.status)} <b>{escape(rec.slug)}#{rec.rep}</b> "
            f"{escape(rec.reason[:200])}</summary><ul>{''.join(items)}</ul>"
            + (f"<p>console.log, last lines:</p><pre>{escape(tail)}</pre>" if tail else "")
            + "</details>")




def _plots(doc: dict[str, Any], reps: list[RepResult], varying: list[str]) -> str:
    if not varying:
        return '<h2 id="plots">Key metrics per axis</h2><p>One cell, or no axis varies: nothing to plot.</p>'
    out = ['<h2 id="plots">Key metrics per axis</h2><p class="meta">One dot per finished repetition '
           "(green pass, red fail, purple error); the bar is the mean.</p>"]
    for axis in varying:
        strips = [s for name in KEY_METRICS if (s := strip_for(doc, reps, axis, name)) is not None]
        if strips:
            out.append(f"<h3>{escape(axis)}</h3><div class=\"plots\">"
                       + "".join(svg.render(s) for s in strips) + "</div>")
    if len(out) == 1:
        out.append("<p>No key metric differs between cells.</p>")
    return "\n".join(out)


def strip_for(doc: dict[str, Any], reps: Iterable[RepResult], axis: str, name: str) -> svg.Strip | None:
    """`name` per value of `axis`; None when no repetition has it or it never changes."""
    columns = list(dict.fromkeys(axis_text((e.get("axes") or {}).get(axis)) for e in doc.get("cells", [])))
    points = []
    unit = ""
    for r in reps:
        found = key_value(r.metrics, name)
        if found is None:
            continue
        value, unit = found
        points.append(svg.Point(axis_text(r.record.axes.get(axis)), value, r.record.status,
                                f"{r.record.slug}#{r.record.rep}"))
    if len({p.value for p in points}) < 2:
        return None
    return svg.Strip(f"{name} by {axis}", unit, tuple(columns), tuple(points))


def _unfinished(unfinished: list[RepRecord]) -> str:
    if not unfinished:
        return ""
    items = "".join(f"<li>{escape(u.slug)}#{u.rep}</li>" for u in unfinished[:200])
    more = f"<li>... and {len(unfinished) - 200} more</li>" if len(unfinished) > 200 else ""
    why = unfinished[0].tests[0].message if unfinished[0].tests else unfinished[0].reason
    return (f"<h2>Not finished ({len(unfinished)})</h2><p>{escape(why)}</p>"
            f"<ul>{items}{more}</ul>")
