"""Bisecting: `kharness check` (one kernel, one cell: good, bad or untestable, for
`git bisect run`) and `kharness bisect` (which settings turn a good cell bad).

Layers, each importing only those above it:
- ddmin.py, judge.py, keys.py: pure (the search, verdicts, cells as key sets);
- cells.py: cells picked from configs, and candidate cells built through the
  config loader; build.py: kernels built from source trees;
- trial.py: a one-cell config run N times (harness.run) and judged;
- state.py, search.py: a bisection's steps on disk, and the driver;
- report.py, check.py, cli.py: what people read and type.
"""
