"""Figures that come from combining sources: a workload's fio report, bounces per I/O.

A workload script that prints a fio JSON report (`fio --output-format=json`)
gets fio's metrics without writing any `metric` lines: the host parses the
report with harness.collect.fio. Once the snapshot after the workload is in,
its bounce counters are put over the I/Os fio completed, which is the
figure the minalign threads argue about: what each request costs in bounces.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.collect import catalogue, fio
from harness.collect.text import ParseError
from harness.model import Metric

# fio's JSON report always carries this key; its absence means "no report".
REPORT_MARK = '"fio version"'
SIZE_PREFIX = "swiotlb.bounces.size-"


def fio_report(output: str, workload: str) -> tuple[list[Metric], list[str]]:
    """fio's metrics from a workload's stdout, and problems (a bad report, a failed job)."""
    if REPORT_MARK not in output:
        return [], []
    try:
        result = fio.parse(output)
    except ParseError as exc:
        return [], [f"fio report: {exc}"]
    problems = [f"fio job {fio.job_label(j.name)} failed with error {j.error}" for j in result.jobs if j.error]
    return fio.metrics(result, workload), problems


def per_io(metrics: Iterable[Metric], workload: str) -> list[Metric]:
    """swiotlb.bounce_size.max, bounces per DMA mapping, and bounces and bounced bytes per fio I/O.

    Nothing is made up: without bounce counters (no hist trigger) there is no
    figure, and without fio I/Os there is nothing to divide by.
    """
    mine = {m.name: m.value for m in metrics if m.workload == workload}
    if "swiotlb.bounces" not in mine:
        return []
    sizes = [int(n.removeprefix(SIZE_PREFIX)) for n, v in mine.items()
             if n.startswith(SIZE_PREFIX) and n.removeprefix(SIZE_PREFIX).isdigit() and v > 0]
    out = [catalogue.metric("swiotlb.bounce_size.max", max(sizes, default=0), workload)]
    if mine.get("dma.mappings", 0) > 0:
        out.append(catalogue.metric("swiotlb.bounces_per_mapping", mine["swiotlb.bounces"] / mine["dma.mappings"],
                                    workload))
    ios = sum(v for n, v in mine.items() if n.startswith("fio.") and n.endswith(".ios"))
    if ios > 0:
        out.append(catalogue.metric("swiotlb.bounces_per_io", mine["swiotlb.bounces"] / ios, workload))
        if "swiotlb.bounced_bytes" in mine:
            out.append(catalogue.metric("swiotlb.bounced_bytes_per_io", mine["swiotlb.bounced_bytes"] / ios,
                                        workload))
    return out
