"""The HTML report: one self-contained file (inline CSS and SVG, nothing fetched)."""

from __future__ import annotations

from html import escape

from harness import __version__
from harness.compare.diff import Comparison
from harness.compare.load import RunSamples
from harness.compare.plots import CellCharts, report_charts
from harness.compare.table import Row, first_rows, missing_lines, no_match_hint, summary_line
from harness.formats import svg

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 2em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.regressed td.verdict { color: #b00; font-weight: bold; }
tr.improved td.verdict { color: #070; font-weight: bold; }
tr.inconclusive td.verdict { color: #a60; } tr.changed td.verdict { color: #077; }
tr.new td.verdict { color: #22a; } tr.gone td.verdict { color: #a2a; }
.note { color: #a60; } .charts { display: flex; flex-wrap: wrap; gap: 8px; }
""" + svg.CSS

COLUMNS = ("cell", "metric", "baseline", "new", "n", "range (base / new)", "change", "p",
           "verdict", "why")


def render(comparisons: list[Comparison], *, show_all: bool = False, limit: int = 200,
           plot_cells: int = 12) -> str:
    runs = [comparisons[0].base, *(c.new for c in comparisons)]
    title = f"kharness compare: {' vs '.join(r.name for r in runs)}"
    body = [f"<h1>{escape(title)}</h1>", _legend(runs)]
    body += [_section(cmp, show_all, limit) for cmp in comparisons]
    charts, total = report_charts(comparisons, plot_cells)
    body.append(_charts(charts, total))
    body.append(f"<p><small>kharness {escape(__version__)}; alpha {comparisons[0].rules.alpha:g},"
                f" at least {comparisons[0].rules.min_samples} repetitions a side.</small></p>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _legend(runs: list[RunSamples]) -> str:
    items = []
    for i, run in enumerate(runs):
        colour = svg.PALETTE[i % len(svg.PALETTE)]
        role = "baseline" if i == 0 else "new"
        items.append(f'<li><span style="color:{colour}">&#9632;</span> '
                     f"{escape(run.name)} ({role}: <code>{escape(run.shown_path)}</code>)</li>")
    return "<ul>" + "".join(items) + "</ul>"


def _section(cmp: Comparison, show_all: bool, limit: int) -> str:
    out = [f"<h2>{escape(cmp.base.name)} &rarr; {escape(cmp.new.name)}</h2>",
           f"<p>{escape(summary_line(cmp))}</p>"]
    notes = [n for n in (no_match_hint(cmp), *missing_lines(cmp.base), *missing_lines(cmp.new)) if n]
    out += [f'<p class="note">note: {escape(n)}</p>' for n in notes]
    shown, total = first_rows(cmp, show_all=show_all, limit=limit)  # only the rows shown are written out
    if not shown:
        out.append("<p>Nothing changed beyond the noise floors.</p>")
        return "\n".join(out)
    out.append("<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in COLUMNS)
               + "</tr></thead><tbody>")
    out += [_row(r) for r in shown]
    out.append("</tbody></table>")
    if limit and total > limit:
        out.append(f"<p>... and {total - limit} more rows (--limit 0 shows all).</p>")
    return "\n".join(out)


def _row(r: Row) -> str:
    ranges = f"{r.base_range} / {r.new_range}" if r.base_range or r.new_range else ""
    cells = [
        (r.cell, ""), (r.metric, ""), (r.base, "num"), (r.new, "num"), (r.n, "num"), (ranges, "num"),
        (r.change, "num"), (r.p, "num"), (r.verdict, "verdict"), (r.reason, ""),
    ]
    tds = "".join(f'<td class="{cls}">{escape(text)}</td>' if cls else f"<td>{escape(text)}</td>"
                  for text, cls in cells)
    return f'<tr class="{r.verdict}">{tds}</tr>'


def _charts(charts: list[CellCharts], total: int) -> str:
    if not charts:
        return "<h2>Plots</h2><p>No slab, bounce or fio figures to plot.</p>"
    out = ["<h2>Plots</h2>"]
    if total > len(charts):
        out.append(f"<p>The {len(charts)} cells with the most changes, of {total}; "
                   "--plot-cells or --where picks others.</p>")
    for cell in charts:
        out.append(f"<h3>{escape(cell.slug)}</h3>")
        out.append('<div class="charts">' + "".join(svg.render(c) for c in cell.charts) + "</div>")
    return "\n".join(out)
