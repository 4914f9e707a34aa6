"""compare_runs judges a cell whose sides list the same metrics (most cells) by columns,
and any other cell metric by metric: both give judge()'s verdict and the resolved info."""

from __future__ import annotations

import json
from pathlib import Path

from harness.compare.diff import _Resolver, compare_runs
from harness.compare.judge import judge
from harness.compare.load import Selection, load_samples
from harness.compare.rules import Rules
from tests.fakes import synth


def test_every_metric_is_judged_as_judge_judges_it(tmp_path: Path) -> None:
    cells = synth.bench_cells(3, 30, reps=3, noise=0.02)
    base = synth.write_run(tmp_path / "base", cells)
    new = synth.write_run(tmp_path / "new", synth.planted(cells, "swiotlb.*", factor=1.3), seed=1)
    # One cell of the new run lists its metrics in another order: judged metric by metric.
    path = sorted((new / "cells").glob("*/*/metrics.json"))[0]
    doc = json.loads(path.read_text())
    doc["metrics"].reverse()
    for rep in path.parent.parent.iterdir():
        (rep / "metrics.json").write_text(json.dumps(doc))
    runs = [load_samples(d, Selection()) for d in (base, new)]
    rules = Rules(min_samples=2)
    cmp = compare_runs(runs[0], runs[1], rules)
    resolve = _Resolver(rules, runs[0].info, runs[1].info)
    orders = set()
    for cell in cmp.cells:
        assert cell.base is not None and cell.new is not None
        orders.add(tuple(cell.base.values) == tuple(cell.new.values))
        assert [m.key for m in cell.metrics] == list(cell.base.values)
        for m in cell.metrics:
            rule, info, better = resolve(m.key)
            assert m.base is cell.base.values[m.key] and m.new is cell.new.values[m.key]
            assert m.judgement == judge(m.base, m.new, rule, better, rules.alpha, rules.min_samples)
            assert m.info == info and m.suspect is False
    assert orders == {True, False}
