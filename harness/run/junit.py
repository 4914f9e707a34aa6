"""junit.xml of a run: one testsuite per cell and repetition, written by harness.formats.junit.

Only maps: the statuses and messages were decided when the repetition ran
and are read back from cell.json, so `merge` can rebuild the same file from
shard directories.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from harness.formats import junit
from harness.model import Metric, TestResult
from harness.results import RepRecord

# Metrics worth seeing in a CI job's test report without opening the results.
KEY_METRICS = ("slab.minalign", "slab.kmalloc.bytes", "meminfo.slab", "swiotlb.slots",
               "swiotlb.bounces", "swiotlb.bounced_bytes")
# A testcase's status as a JUnit outcome: an unfinished repetition is an
# error (of type "interrupted"), so a partial run never reads as a pass.
OUTCOME: dict[str, junit.Outcome] = {"pass": "pass", "fail": "failure", "error": "error",
                                     "interrupted": "error", "skipped": "skipped"}


def write(path: Path, reps: Sequence[tuple[RepRecord, list[Metric]]]) -> None:
    labels = rep_labels([record for record, _ in reps])
    junit.write(path, [suite_for(r, m, labels[r.cell_id, r.rep]) for r, m in reps], "kharness")


def rep_labels(records: Sequence[RepRecord]) -> dict[tuple[str, int], str]:
    """Each repetition's classname: <slug>#<rep>, or <cell id>#<rep> where cells share a slug.

    CI annotations and test lists are titled with the classname, so it must
    tell one repetition from every other; the slug does, unless two cells
    differ only in what the slug leaves out (their workloads).
    """
    cells_per_slug = Counter(slug for _, slug in {(r.cell_id, r.slug) for r in records})
    return {(r.cell_id, r.rep): junit.classname(f"{r.slug if cells_per_slug[r.slug] == 1 else r.cell_id}#{r.rep}")
            for r in records}


def suite_for(record: RepRecord, metrics: list[Metric], label: str) -> junit.Suite:
    props = [("cell_id", record.cell_id), ("status", record.status)]
    props += [(f"axis.{key}", str(value)) for key, value in sorted(record.axes.items())]
    props += [(f"metric.{m.key}", f"{m.value:.15g}") for m in metrics if m.name in KEY_METRICS]
    cases = tuple(_case(t, label) for t in record.tests)
    return junit.Suite(f"{record.slug}#{record.rep}", cases, tuple(props), id=label)


def _case(t: TestResult, classname: str) -> junit.Case:
    outcome = OUTCOME[t.status]
    return junit.Case(t.name, classname, t.seconds, outcome, t.message,
                      kind=t.status if outcome == "error" else "", output=t.output)
