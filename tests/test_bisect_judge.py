"""Judging repetitions (pure): expressions, each rule, unknowns, and the N-repetition rules."""

from __future__ import annotations

import pytest

from harness.bisect import judge as j
from harness.errors import UsageError
from harness.model import Metric
from harness.model import TestResult as Case

METRICS = (
    Metric("slab.minalign", 8, workload="boot"),
    Metric("slab.minalign", 8, workload="idle"),
    Metric("swiotlb.bounces", 0, workload="idle"),
    Metric("swiotlb.bounces", 2251, workload="dd-direct"),
)
CONSOLE = "[ 1.0] Linux version 6.12\n[ 2.5] WARNING: CPU: 1 PID: 7 at mm/slub.c:42 f+0x1\n[ 3.0] ok\n"


def rep(status: str = "pass", **kw: object) -> j.RepView:
    return j.RepView(status, **kw)  # type: ignore[arg-type]


def test_parse_expression() -> None:
    assert j.parse_expression("dd-direct:swiotlb.bounces > 0") == j.MetricRule("swiotlb.bounces", ">", 0, "dd-direct")
    assert j.parse_expression(" slab.minalign==8 ") == j.MetricRule("slab.minalign", "==", 8)
    assert j.parse_expression("fio.read.iops <= 1e3").value == 1000


@pytest.mark.parametrize("text", ["bounces > 0", "swiotlb.bounces >> 0", "swiotlb.bounces > x",
                                  "swiotlb.bounces > nan", "swiotlb.bounces", "A:swiotlb.bounces > 0", ""])
def test_bad_expressions_say_how_it_should_look(text: str) -> None:
    with pytest.raises(UsageError, match=r"METRIC OP NUMBER"):
        j.parse_expression(text)


def test_bad_console_regex() -> None:
    with pytest.raises(UsageError, match="regular expression"):
        j.console_rule("WARNING: (")


def test_metric_rule_with_and_without_workload() -> None:
    judge = j.Judge(metrics=(j.parse_expression("dd-direct:swiotlb.bounces > 0"),))
    verdict = j.judge_rep(judge, rep(metrics=METRICS))
    assert verdict.verdict == "bad" and "dd-direct:swiotlb.bounces = 2251" in verdict.reason
    any_workload = j.Judge(metrics=(j.parse_expression("swiotlb.bounces > 0"),))
    assert j.judge_rep(any_workload, rep(metrics=METRICS)).verdict == "bad"
    idle_only = j.Judge(metrics=(j.parse_expression("idle:swiotlb.bounces > 0"),))
    assert j.judge_rep(idle_only, rep(metrics=METRICS)) == j.RepVerdict(
        "good", "idle:swiotlb.bounces = 0 (not > 0)")


def test_a_metric_not_measured_is_untestable_never_good() -> None:
    judge = j.Judge(metrics=(j.parse_expression("fio-nvme:swiotlb.bounces > 0"),))
    verdict = j.judge_rep(judge, rep(metrics=METRICS))
    assert verdict.verdict == "untestable" and "not measured" in verdict.reason


def test_infrastructure_failure_is_untestable_even_with_rules() -> None:
    judge = j.Judge(metrics=(j.parse_expression("slab.minalign == 8"),))
    for status in ("error", "interrupted", "skipped"):
        assert j.judge_rep(judge, rep(status, reason="boot: QEMU missing", metrics=METRICS)).verdict == "untestable"


def test_default_rule_is_the_cells_status() -> None:
    assert j.judge_rep(j.Judge(), rep("fail", reason="console:oops")).verdict == "bad"
    assert j.judge_rep(j.Judge(), rep("pass")).verdict == "good"
    assert j.judge_rep(j.Judge(), rep("error")).verdict == "untestable"


def test_console_rule() -> None:
    judge = j.Judge(consoles=(j.console_rule(r"WARNING: CPU: \d+"),))
    verdict = j.judge_rep(judge, rep(console=CONSOLE))
    assert verdict.verdict == "bad" and verdict.reason.startswith("console: [ 2.5] WARNING: CPU: 1")
    assert j.judge_rep(judge, rep(console="clean\n")).verdict == "good"


def test_expectation_rule_by_name_and_glob() -> None:
    tests = (Case("expect:no-bounces[dd-direct]", "fail", "swiotlb.bounces = 3"),
             Case("expect:minalign-8[idle]", "pass"))
    failing = j.judge_rep(j.Judge(expectations=(j.ExpectationRule("no-bounces"),)), rep("fail", tests=tests))
    assert failing.verdict == "bad" and "swiotlb.bounces = 3" in failing.reason
    assert j.judge_rep(j.Judge(expectations=(j.ExpectationRule("minalign-*"),)), rep(tests=tests)).verdict == "good"
    assert j.judge_rep(j.Judge(expectations=(j.ExpectationRule("*"),)), rep(tests=tests)).verdict == "bad"
    unknown = j.judge_rep(j.Judge(expectations=(j.ExpectationRule("nope"),)), rep(tests=tests))
    assert unknown.verdict == "untestable"


def test_reference_rule_closer_to_bad() -> None:
    rule = j.ReferenceRule("swiotlb.bounces", "dd-direct", good=0, bad=2000)
    judge = j.Judge(references=(rule,))
    assert j.judge_rep(judge, rep(metrics=METRICS)).verdict == "bad"
    near_good = (Metric("swiotlb.bounces", 10, workload="dd-direct"),)
    assert j.judge_rep(judge, rep(metrics=near_good)).verdict == "good"
    halfway = (Metric("swiotlb.bounces", 1000, workload="dd-direct"),)
    assert j.judge_rep(judge, rep(metrics=halfway)).verdict == "untestable"


def test_any_bad_rule_wins_over_an_unknown() -> None:
    judge = j.Judge(metrics=(j.parse_expression("fio-nvme:fio.read.iops < 10"),),
                    consoles=(j.console_rule("WARNING"),))
    assert j.judge_rep(judge, rep(console=CONSOLE)).verdict == "bad"
    assert j.judge_rep(judge, rep(console="")).verdict == "untestable"


@pytest.mark.parametrize(("verdicts", "rule", "want"), [
    (["good", "bad", "good"], "any", "bad"),
    (["good", "good"], "any", "good"),
    (["good", "untestable"], "any", "untestable"),
    (["bad", "bad", "good"], "majority", "bad"),
    (["good", "good", "untestable"], "majority", "good"),
    (["bad", "good", "untestable"], "majority", "untestable"),
    (["bad", "good"], "majority", "untestable"),
    (["bad", "bad"], "all", "bad"),
    (["bad", "good"], "all", "good"),
    (["bad", "untestable"], "all", "untestable"),
    ([], "any", "untestable"),
])
def test_decide(verdicts: list[j.Verdict], rule: j.Rule, want: str) -> None:
    decision = j.decide(verdicts, rule)
    assert decision.verdict == want
    assert decision.reason.endswith(f"of {len(verdicts)} (rule: {rule})")


def test_judge_round_trips_through_json() -> None:
    judge = j.Judge((j.parse_expression("a.b > 1"),), (j.ConsoleRule("x"),), (j.ExpectationRule("e*"),),
                    (j.ReferenceRule("a.b", "idle", 1.0, 2.0),))
    assert j.Judge.from_json(judge.to_json()) == judge
    assert "a.b > 1 or console ~ /x/" in judge.describe()
