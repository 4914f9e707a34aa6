"""metrics.json: every field of a Metric is written and read back."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from harness import results
from harness.model import Metric


def test_every_metric_field_round_trips(tmp_path: Path) -> None:
    metrics = [Metric("slab.kmalloc-8.bytes", 4096.0, "bytes", "gauge", "lower", "idle"),
               Metric("dd.requests", 4000, "", "counter", "higher", "dd-direct")]
    results.write_metrics(tmp_path, metrics)
    assert results.load_metrics(tmp_path) == metrics
    written = (tmp_path / results.METRICS_FILE).read_text()
    assert all(f'"{f.name}"' in written for f in fields(Metric))
