"""junit.xml from finished repetitions: one testsuite per cell and repetition.

Only formats: the statuses and messages were decided when the repetition ran
and are read back from cell.json, so `merge` can rebuild the same file from
shard directories. Text from the guest is made XML-safe (control characters
dropped, length bounded) before it goes in.
"""

from __future__ import annotations

import re
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Properties, Property, Skipped, TestCase, TestSuite

from harness import atomic
from harness.model import Metric
from harness.results import RepRecord

# Characters XML 1.0 cannot carry at all.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_TEXT = 64 * 1024
# Metrics worth seeing in a CI job's test report without opening the results.
KEY_METRICS = ("slab.minalign", "slab.kmalloc.bytes", "meminfo.slab", "swiotlb.slots",
               "swiotlb.bounces", "swiotlb.bounced_bytes")


def xml_safe(text: str, limit: int = MAX_TEXT) -> str:
    text = _XML_BAD.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit // 2] + "\n[...]\n" + text[-limit // 2 :]


def suite_for(record: RepRecord, metrics: list[Metric]) -> TestSuite:
    suite = TestSuite(xml_safe(f"{record.slug}#{record.rep}", 512))
    props = Properties()
    props.add_property(Property("cell_id", record.cell_id))
    props.add_property(Property("status", record.status))
    for key, value in sorted(record.axes.items()):
        props.add_property(Property(f"axis.{key}", xml_safe(str(value), 512)))
    for m in metrics:
        if m.name in KEY_METRICS:
            props.add_property(Property(f"metric.{m.key}", f"{m.value:g}"))
    suite.append(props)
    for t in record.tests:
        case = TestCase(xml_safe(t.name, 512), classname=xml_safe(record.slug, 512), time=round(t.seconds, 3))
        message = xml_safe(t.message, 1024)
        if t.status == "fail":
            case.result = [Failure(message, type_="failure")]
        elif t.status in ("error", "interrupted"):
            case.result = [Error(message, type_=t.status)]
        elif t.status == "skipped":
            case.result = [Skipped(message)]
        if t.output:
            case.system_out = xml_safe(t.output)
        suite.add_testcase(case)
    suite.update_statistics()
    suite.time = round(sum(t.seconds for t in record.tests), 3)
    return suite


def write(path: Path, reps: list[tuple[RepRecord, list[Metric]]]) -> None:
    xml = JUnitXml("kharness")
    for record, metrics in reps:
        xml.add_testsuite(suite_for(record, metrics))
    xml.update_statistics()
    # The Jenkins xUnit schema has no "skipped" on <testsuites> (it is per suite).
    xml._elem.attrib.pop("skipped", None)
    atomic.write_bytes(path, xml.tostring())
