"""Good, bad or untestable: judging one repetition, then N of them by a stated rule.

A judgement is a set of rules; a repetition is bad if any rule finds it bad:
- `MetricRule`: a threshold, `[workload:]metric op value` (e.g.
  `dd-direct:swiotlb.bounces > 0`); without a workload, any workload
  reporting the metric (and the after-boot figures) may make it bad;
- `ConsoleRule`: a regular expression found in the serial console;
- `ExpectationRule`: a config expectation (by name, glob) that failed;
- `ReferenceRule`: the metric closer to a bad reference run than to a good one;
- with no rule given, the repetition's own status: "fail" (a kernel fault,
  a failed expectation or workload) is bad, "pass" is good.

An unknown is never good (design.md): a repetition the infrastructure failed
(status error, interrupted, skipped), or one that did not measure a metric a
rule needs, is untestable unless another rule already found it bad.

Everything here is pure: a repetition comes in as a `RepView` of values.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import UsageError
from harness.model import Metric, TestResult
from harness.run.expect import OPS  # the same comparisons as a config's expectations

Verdict = Literal["good", "bad", "untestable"]
VERDICTS: tuple[Verdict, ...] = ("good", "bad", "untestable")
Rule = Literal["any", "majority", "all"]
RULES: tuple[Rule, ...] = ("any", "majority", "all")
RULE_HELP = {
    "any": "bad if any repetition is bad (flaky problems)",
    "majority": "bad or good if more than half the repetitions say so",
    "all": "bad only if every repetition is bad",
}

_METRIC = r"(?:(?P<workload>[a-z0-9][a-z0-9_-]*):)?(?P<metric>[a-z][a-z0-9_]*(?:\.[a-z0-9_-]+)+)"
METRIC_RE = re.compile(_METRIC)
EXPR_RE = re.compile(rf"\s*{_METRIC}\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>\S+)\s*")
EXPR_EXAMPLE = "'dd-direct:swiotlb.bounces > 0' or 'slab.minalign == 8'"


@dataclass(frozen=True)
class MetricRule:
    metric: str
    op: str
    value: float
    workload: str | None = None

    def __str__(self) -> str:
        return f"{_key(self.workload, self.metric)} {self.op} {self.value:g}"


@dataclass(frozen=True)
class ConsoleRule:
    pattern: str

    def __str__(self) -> str:
        return f"console ~ /{self.pattern}/"


@dataclass(frozen=True)
class ExpectationRule:
    name: str  # a glob over expectation names; "*" is any

    def __str__(self) -> str:
        return f"expectation {self.name} failed"


@dataclass(frozen=True)
class ReferenceRule:
    """Closer to the bad run's mean than to the good run's; the two means are taken once."""

    metric: str
    workload: str
    good: float
    bad: float

    def __str__(self) -> str:
        return f"{self.workload}:{self.metric} closer to {self.bad:g} (bad) than to {self.good:g} (good)"


@dataclass(frozen=True)
class Judge:
    metrics: tuple[MetricRule, ...] = ()
    consoles: tuple[ConsoleRule, ...] = ()
    expectations: tuple[ExpectationRule, ...] = ()
    references: tuple[ReferenceRule, ...] = ()

    def rules(self) -> tuple[MetricRule | ConsoleRule | ExpectationRule | ReferenceRule, ...]:
        return (*self.metrics, *self.consoles, *self.expectations, *self.references)

    def describe(self) -> str:
        rules = self.rules()
        return " or ".join(str(r) for r in rules) if rules else "the cell's status (fail is bad)"

    def to_json(self) -> dict[str, Any]:
        return {
            "metrics": [vars(r) for r in self.metrics],
            "consoles": [vars(r) for r in self.consoles],
            "expectations": [vars(r) for r in self.expectations],
            "references": [vars(r) for r in self.references],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Judge:
        return cls(
            tuple(MetricRule(**r) for r in d.get("metrics", [])),
            tuple(ConsoleRule(**r) for r in d.get("consoles", [])),
            tuple(ExpectationRule(**r) for r in d.get("expectations", [])),
            tuple(ReferenceRule(**r) for r in d.get("references", [])),
        )


@dataclass(frozen=True)
class RepView:
    """What judging needs of one finished repetition."""

    status: str
    reason: str = ""
    tests: tuple[TestResult, ...] = ()
    metrics: tuple[Metric, ...] = ()
    console: str = ""


@dataclass(frozen=True)
class RepVerdict:
    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Decision:
    """N repetitions' verdicts combined by a rule, with the counts that decided."""

    verdict: Verdict
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""


def _key(workload: str | None, metric: str) -> str:
    return f"{workload}:{metric}" if workload else metric


def parse_expression(text: str) -> MetricRule:
    """`[workload:]metric op number`; UsageError saying how it should look."""
    m = EXPR_RE.fullmatch(text)
    try:
        value = float(m.group("value")) if m else math.nan
    except ValueError:
        value = math.nan
    if m is None or not math.isfinite(value):
        raise UsageError(f"--bad-if {text!r} is not a metric comparison",
                         f"write [WORKLOAD:]METRIC OP NUMBER, e.g. {EXPR_EXAMPLE}")
    return MetricRule(m.group("metric"), m.group("op"), value, m.group("workload"))


def parse_metric(text: str) -> tuple[str | None, str]:
    """`[workload:]metric` -> (workload or None, metric)."""
    m = METRIC_RE.fullmatch(text.strip())
    if m is None:
        raise UsageError(f"{text!r} is not a metric name",
                         "write [WORKLOAD:]METRIC, e.g. dd-direct:swiotlb.bounces")
    return m.group("workload"), m.group("metric")


def console_rule(pattern: str) -> ConsoleRule:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--bad-if-console {pattern!r} is not a regular expression ({exc})",
                         "write a Python regular expression, e.g. 'WARNING: CPU:'") from exc
    return ConsoleRule(pattern)


# --- one repetition ----------------------------------------------------------------

Finding = tuple[Verdict, str]


def judge_rep(judge: Judge, rep: RepView) -> RepVerdict:
    """Bad if any rule finds it bad; else untestable if any rule could not tell; else good."""
    if rep.status not in ("pass", "fail"):
        return RepVerdict("untestable", f"repetition {rep.status}: {rep.reason}".rstrip(": "))
    rules = judge.rules()
    if not rules:
        return RepVerdict("bad" if rep.status == "fail" else "good", rep.reason or "pass")
    findings = [_finding(rule, rep) for rule in rules]
    for wanted in ("bad", "untestable"):
        hits = [reason for verdict, reason in findings if verdict == wanted]
        if hits:
            return RepVerdict(wanted, "; ".join(hits))
    return RepVerdict("good", "; ".join(reason for _, reason in findings))


def _finding(rule: MetricRule | ConsoleRule | ExpectationRule | ReferenceRule, rep: RepView) -> Finding:
    if isinstance(rule, MetricRule):
        return _metric_finding(rule, rep.metrics)
    if isinstance(rule, ConsoleRule):
        return _console_finding(rule, rep.console)
    if isinstance(rule, ExpectationRule):
        return _expectation_finding(rule, rep.tests)
    return _reference_finding(rule, rep.metrics)


def _metric_finding(rule: MetricRule, metrics: Sequence[Metric]) -> Finding:
    found = [m for m in metrics if m.name == rule.metric and rule.workload in (None, m.workload)]
    if not found:
        return "untestable", f"{_key(rule.workload, rule.metric)} was not measured"
    hits = [m for m in found if OPS[rule.op](m.value, rule.value)]
    shown = hits[0] if hits else found[0]
    text = f"{shown.key} = {shown.value:g} ({'' if hits else 'not '}{rule.op} {rule.value:g})"
    return ("bad" if hits else "good"), text


def _console_finding(rule: ConsoleRule, console: str) -> Finding:
    m = re.search(rule.pattern, console, re.MULTILINE)
    if m is None:
        return "good", f"console has no /{rule.pattern}/"
    start = console.rfind("\n", 0, m.start()) + 1
    end = console.find("\n", m.end())
    return "bad", f"console: {console[start:end if end >= 0 else None].strip()[:200]}"


def _expectation_finding(rule: ExpectationRule, tests: Sequence[TestResult]) -> Finding:
    judged = [t for t in tests if t.name.startswith("expect:")
              and fnmatch.fnmatchcase(_expectation_name(t.name), rule.name)]
    failed = [t for t in judged if t.status == "fail"]
    if failed:
        return "bad", f"{failed[0].name}: {failed[0].message}"
    if not [t for t in judged if t.status == "pass"]:
        return "untestable", f"no expectation {rule.name!r} was judged"
    return "good", f"expectation {rule.name} held"


def _expectation_name(test_name: str) -> str:
    """`expect:no-bounces[dd-direct]` -> `no-bounces`."""
    return test_name[len("expect:"):].split("[", 1)[0]


def _reference_finding(rule: ReferenceRule, metrics: Sequence[Metric]) -> Finding:
    found = [m for m in metrics if m.name == rule.metric and m.workload == rule.workload]
    if not found:
        return "untestable", f"{rule.workload}:{rule.metric} was not measured"
    value = found[0].value
    to_bad, to_good = abs(value - rule.bad), abs(value - rule.good)
    text = f"{rule.workload}:{rule.metric} = {value:g} (good {rule.good:g}, bad {rule.bad:g})"
    if to_bad == to_good:
        return "untestable", text + ": halfway"
    return ("bad" if to_bad < to_good else "good"), text


# --- N repetitions -----------------------------------------------------------------


def decide(verdicts: Sequence[Verdict], rule: Rule) -> Decision:
    """Combine the repetitions' verdicts.

    any: bad if one is bad; good only if all are good.
    majority: whichever of bad and good has more than half of all repetitions.
    all: bad only if all are bad; good if one is good.
    Anything else is untestable: too few repetitions could be judged.
    """
    counts: dict[str, int] = {v: sum(1 for x in verdicts if x == v) for v in VERDICTS}
    n = len(verdicts)
    bad, good = counts["bad"], counts["good"]
    verdict: Verdict = "untestable"
    if n == 0:
        verdict = "untestable"
    elif rule == "any":
        verdict = "bad" if bad else "good" if good == n else "untestable"
    elif rule == "majority":
        verdict = "bad" if 2 * bad > n else "good" if 2 * good > n else "untestable"
    elif rule == "all":
        verdict = "bad" if bad == n else "good" if good else "untestable"
    shown = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])
    return Decision(verdict, counts, f"{shown} of {n} (rule: {rule})")
