"""JUnit XML from plain values: the one writer behind run's junit.xml and compare's --format junit.

The file validates against the Jenkins xUnit schema (junit-10.xsd) and is
shaped for the readers CI jobs actually use; each rule says which one needs it:

- an XML declaration, so readers that sniff for one take the file as XML;
- a body in <failure> and <error> (the message, then an excerpt of the
  output): GitLab shows that text and ignores the message attribute;
- a time on every testcase and testsuite, as plain decimal seconds (the
  schema's pattern has no exponent; dorny/test-reporter computes NaN for a
  testcase without one);
- counts that match the elements (xunitparser asserts them), and on
  <testsuites> only the attributes the schema allows (no "skipped");
- property names unique in the whole file: xunitparser gathers the
  properties of every testsuite into one dict and asserts each name is new,
  so each name is written as "<suite id>/<name>";
- every text and attribute made XML-safe (characters XML 1.0 cannot carry
  are replaced, lengths bounded): guest output goes in here.

Classnames are for the callers to choose, with `classname()`: see there.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness import atomic

Outcome = Literal["pass", "failure", "error", "skipped"]

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters XML 1.0 cannot carry at all, even escaped.
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_TEXT = 64 * 1024  # system-out
NAME_MAX = 512  # names, classnames, property values
MESSAGE_MAX = 1024  # the message attribute: one line's worth, CI tables show it whole
BODY_EXCERPT = 8 * 1024  # of the output, in the failure's body: what a CI page shows inline


@dataclass(frozen=True)
class Case:
    name: str
    classname: str  # from classname(): unique per repetition, its last dotted part meaningful
    seconds: float = 0.0
    outcome: Outcome = "pass"
    message: str = ""  # why, in a line: the message attribute of failure/error/skipped
    kind: str = ""  # the type attribute of failure/error; the outcome's name if empty
    output: str = ""  # what the test printed (console excerpt, command output): system-out


@dataclass(frozen=True)
class Suite:
    name: str
    cases: tuple[Case, ...]
    properties: tuple[tuple[str, str], ...] = ()  # (name, value), in order
    id: str = ""  # what property names are prefixed with; unique in the file; the name if empty


def xml_safe(text: str, limit: int = MAX_TEXT) -> str:
    """`text` with what XML 1.0 cannot carry replaced, and its middle cut if longer than `limit`."""
    text = _XML_BAD.sub("\ufffd", text)
    return text if len(text) <= limit else text[: limit // 2] + "\n[...]\n" + text[-limit // 2 :]


def classname(*parts: str) -> str:
    """A testcase classname: the parts joined by dots, with the dots inside each part made "+".

    Readers split a classname at its dots: Jenkins into package and class,
    and mikepenz/action-junit-report titles an annotation with the last part
    only, so the cell trixie-arm64.swiotlb-noforce.iommu would be titled
    "iommu"; as trixie-arm64+swiotlb-noforce+iommu it is titled whole ("+"
    because no slug contains one).
    """
    return ".".join(p.replace(".", "+") for p in parts)


def render(suites: Sequence[Suite], name: str) -> str:
    """The whole file, declaration first."""
    root = ET.Element("testsuites", name=xml_safe(name, NAME_MAX))
    seen: set[str] = set()
    for s in suites:
        root.append(_suite(s, seen))
    for total in ("tests", "failures", "errors"):
        root.set(total, str(sum(int(el.get(total, "0")) for el in root)))
    root.set("time", _seconds(sum(float(el.get("time", "0")) for el in root)))
    ET.indent(root)
    return DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def write(path: Path, suites: Sequence[Suite], name: str) -> None:
    # Bytes, not text: the declaration says UTF-8 whatever the locale's encoding is.
    atomic.write_bytes(path, render(suites, name).encode())


def _suite(s: Suite, seen: set[str]) -> ET.Element:
    count = {o: sum(1 for c in s.cases if c.outcome == o) for o in ("failure", "error", "skipped")}
    el = ET.Element("testsuite", name=xml_safe(s.name, NAME_MAX), tests=str(len(s.cases)),
                    failures=str(count["failure"]), errors=str(count["error"]), skipped=str(count["skipped"]),
                    time=_seconds(sum(_finite(c.seconds) for c in s.cases)))
    if s.properties:
        props = ET.SubElement(el, "properties")
        for key, value in s.properties:
            prop = xml_safe(f"{s.id or s.name}/{key}", NAME_MAX)
            if prop in seen:
                raise ValueError(f"property {prop!r} repeats in the JUnit file, which xunitparser refuses; "
                                 "give each testsuite its own id")
            seen.add(prop)
            ET.SubElement(props, "property", name=prop, value=xml_safe(value, NAME_MAX))
    for c in s.cases:
        el.append(_case(c))
    return el


def _case(c: Case) -> ET.Element:
    el = ET.Element("testcase", name=xml_safe(c.name, NAME_MAX), classname=xml_safe(c.classname, NAME_MAX),
                    time=_seconds(c.seconds))
    message = xml_safe(c.message, MESSAGE_MAX)
    if c.outcome == "skipped":
        ET.SubElement(el, "skipped", message=message)
    elif c.outcome in ("failure", "error"):
        result = ET.SubElement(el, c.outcome, message=message, type=xml_safe(c.kind or c.outcome, NAME_MAX))
        result.text = message + (f"\n\n{xml_safe(c.output, BODY_EXCERPT)}" if c.output else "")
    if c.output:
        ET.SubElement(el, "system-out").text = xml_safe(c.output)
    return el


def _finite(seconds: float) -> float:
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _seconds(seconds: float) -> str:
    """Plain decimal seconds, as junit-10.xsd's time pattern wants (no exponent, no sign)."""
    return f"{_finite(seconds):.3f}"
