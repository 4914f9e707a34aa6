"""The one-screen summary printed at the end of a run."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import results
from harness.results import RepRecord

STYLE = {"pass": "green", "fail": "red", "error": "magenta", "skipped": "yellow", "interrupted": "yellow"}


def print_summary(run_dir: Path, records: list[RepRecord], console: Console | None = None) -> None:
    # Not a terminal (a CI log): wide enough that a row stays one line.
    console = console or Console(stderr=False, width=None if sys.stdout.isatty() else 200)
    loaded = {(r.record.cell_id, r.record.rep): r for r in results.load_run(run_dir).reps}
    table = Table(title=f"kharness: {run_dir}", show_lines=False)
    for col in ("cell", "rep", "status", "boot s", "minalign", "slab kmalloc", "bounces", "reason"):
        table.add_column(col)
    for rec in records:
        rep = loaded.get((rec.cell_id, rec.rep))
        m = {x.key: x.value for x in rep.metrics} if rep else {}
        bounces = sum(v for k, v in m.items() if k.endswith(":swiotlb.bounces") and not k.startswith("boot:"))
        table.add_row(
            rec.slug, str(rec.rep), f"[{STYLE.get(rec.status, '')}]{rec.status}[/]",
            f"{rec.timings.get('boot', 0):.1f}",
            _fmt(m.get("boot:slab.minalign")), _fmt_bytes(m.get("boot:slab.kmalloc.bytes")),
            f"{bounces:g}", rec.reason[:60],
        )
    console.print(table)
    counts = {s: sum(1 for r in records if r.status == s) for s in STYLE}
    console.print(" ".join(f"{n} {s}" for s, n in counts.items() if n) or "no repetitions ran")
    console.print(f"results: {run_dir}  (junit: {run_dir / 'junit.xml'})")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _fmt_bytes(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1024:.0f} KiB"
