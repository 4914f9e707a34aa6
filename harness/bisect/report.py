"""The bisection's final report (markdown): the answer, then every step behind it.

It only formats: the answer and the steps come from bisect.json's values.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.bisect import ddmin
from harness.bisect.keys import Space, describe
from harness.bisect.search import Answer
from harness.bisect.state import Step

HEADLINE = {
    "found": "found",
    "not-confirmed": "not confirmed",
    "good-end-not-good": "the good cell is not good",
    "bad-end-not-bad": "the bad cell is not bad",
}


def render(sp: Space, answer: Answer, steps: Sequence[Step], question: dict[str, object],
           judged_by: str) -> str:
    lines = [f"# kharness bisect: {HEADLINE[answer.outcome]}", ""]
    lines += [f"- good: `{question['good_cell']}`", f"- bad: `{question['bad_cell']}`",
              f"- judged by: {judged_by}; {question['repeat']} boot(s) per step, rule {question['rule']}",
              "", f"## Keys that differ ({len(sp.keys)})", ""]
    lines += [f"- {describe(sp, k.name)}" for k in sp.keys]
    lines += ["", "## Answer", "", *_answer(sp, answer, steps), "", "## Steps", ""]
    lines += _table(steps)
    lines += ["", _cost(sp, steps)]
    return "\n".join(lines) + "\n"


def _answer(sp: Space, answer: Answer, steps: Sequence[Step]) -> list[str]:
    if answer.outcome not in ("found", "not-confirmed"):
        return [answer.message, "", "Nothing was narrowed: both ends must hold first."]
    together = "alone turns" if len(answer.keys) == 1 else "together turn"
    out = [f"**{' + '.join(answer.keys)}** {together} the good cell bad:", ""]
    out += [f"- {describe(sp, k)}" for k in answer.keys]
    if len(answer.keys) > 1:
        out += ["", "Each of these keys without the others leaves the cell good (1-minimal)."]
    if answer.confirm is not None:
        confirm = steps[answer.confirm]
        out += ["", f"Confirming run (step {confirm.index + 1}): **{confirm.result.verdict}**, "
                    f"{confirm.result.reason}; results in `{confirm.result.run_dir}`."]
    if answer.outcome == "not-confirmed":
        out += ["", answer.message]
    return out


def _table(steps: Sequence[Step]) -> list[str]:
    rows = ["| step | role | keys applied to the good cell | cell | verdict | why | results |",
            "|---:|---|---|---|---|---|---|"]
    for s in steps:
        keys = ", ".join(s.keys) if s.keys else "(none)"
        why = s.result.reason.replace("|", "\\|")[:160]
        rows.append(f"| {s.index + 1} | {s.role} | {keys} | {s.result.slug or '-'} | {s.result.verdict} "
                    f"| {why} | {s.result.run_dir or '-'} |")
    return rows


def _cost(sp: Space, steps: Sequence[Step]) -> str:
    k = len(sp.keys)
    probes = sum(1 for s in steps if s.role == "probe")
    return (f"{len(steps)} steps: 2 ends, {probes} probes, "
            f"{sum(1 for s in steps if s.role == 'confirm')} confirming; "
            f"for {k} keys ddmin needs about {ddmin.typical(k)} probes for one culprit, "
            f"at most {ddmin.worst_case(k)}.")
