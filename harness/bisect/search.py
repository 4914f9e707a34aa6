"""Driving a bisection: verify both ends, narrow with ddmin, confirm; every step saved.

The driver owns what the pure search (`ddmin`) leaves out: running a step
(a trial, given as a function, so unit tests pass a judge function of the
keys and real runs boot), remembering each subset's verdict (ddmin asks for
some twice; a resumed bisection replays from these), saving the state after
every step, and saying where it stands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.bisect import ddmin
from harness.bisect.judge import Verdict
from harness.bisect.state import Role, State, Step
from harness.bisect.trial import TrialResult

Trial = Callable[[int, Role, tuple[str, ...]], TrialResult]  # (step index, role, keys applied)
Save = Callable[[State], None]
Progress = Callable[[str], None]
Outcome = Literal["found", "not-confirmed", "good-end-not-good", "bad-end-not-bad"]
# An untestable step is unresolved for ddmin: not bad, so the search goes around it.
OUTCOME_OF: dict[Verdict, ddmin.Outcome] = {"bad": "bad", "good": "good", "untestable": "unresolved"}


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    keys: tuple[str, ...]  # the minimal set (found, not-confirmed); () otherwise
    message: str
    confirm: int | None = None  # index of the confirming step
    untestable_end: bool = False  # an end could not be tested at all: the infrastructure's fault

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "keys": list(self.keys), "message": self.message,
                "confirm": self.confirm, "untestable_end": self.untestable_end}


class Driver:
    """Runs steps once each (by subset), saves after each, and reports progress."""

    def __init__(self, keys: Sequence[str], state: State, trial: Trial, save: Save,
                 progress: Progress) -> None:
        self.keys = tuple(keys)
        self.state = state
        self.trial = trial
        self.save = save
        self.progress = progress
        self.memo = {frozenset(s.keys): s for s in state.steps if s.role != "confirm"}
        self.current = self.keys
        self.granularity = 2

    def step(self, role: Role, keys: tuple[str, ...]) -> Step:
        """The step for `keys`: recorded already, or run now."""
        known = self.memo.get(frozenset(keys))
        if known is not None:
            return known
        step = self._run(role, keys)
        self.memo[frozenset(keys)] = step
        return step

    def confirm(self, keys: tuple[str, ...]) -> Step:
        """A fresh trial of the answer (a recorded one is reused only on resume)."""
        done = [s for s in self.state.steps if s.role == "confirm" and s.keys == keys]
        return done[-1] if done else self._run("confirm", keys)

    def _run(self, role: Role, keys: tuple[str, ...]) -> Step:
        index = len(self.state.steps)
        self.progress(self._where(index, role, keys))
        step = Step(index, role, keys, self.trial(index, role, keys))
        self.state.steps.append(step)
        self.save(self.state)
        self.progress(f"step {index + 1}: {step.result.verdict} ({step.result.reason})")
        return step

    def _where(self, index: int, role: Role, keys: tuple[str, ...]) -> str:
        """`step 4 of about 9 (at most 31): probe memory, slub_debug; in play: ...`."""
        ends_left = sum(1 for k in ((), self.keys) if frozenset(k) not in self.memo)
        ends_left -= 1 if role in ("good-end", "bad-end") else 0
        left = ends_left + 1  # the ends still to do, and the confirming run
        about = index + 1 + left + (ddmin.typical(len(self.current)) if role != "confirm" else 0)
        most = index + 1 + left + (ddmin.worst_case(len(self.current)) if role != "confirm" else 0)
        shown = ", ".join(keys) if keys else "none (the good cell)"
        play = f"{len(self.current)} of {len(self.keys)} keys in play, split in {self.granularity}"
        return (f"step {index + 1} of about {about} (at most {most}): {role} with {shown}; "
                f"{play}: {', '.join(self.current)}")


def bisect(keys: Sequence[str], state: State, trial: Trial, save: Save,
           progress: Progress = lambda s: None) -> Answer:
    """Ends, ddmin, confirmation; the answer is also stored in `state`."""
    driver = Driver(keys, state, trial, save, progress)
    answer = _ends(driver) or _narrow(driver)
    state.answer = answer.to_json()
    save(state)
    return answer


def _ends(driver: Driver) -> Answer | None:
    """None if the good end is good and the bad end bad, else why not."""
    good = driver.step("good-end", ())
    if good.result.verdict != "good":
        return Answer("good-end-not-good", (), f"the good cell is {good.result.verdict}: {good.result.reason}",
                      untestable_end=good.result.verdict == "untestable")
    bad = driver.step("bad-end", driver.keys)
    if bad.result.verdict != "bad":
        return Answer("bad-end-not-bad", (), f"the bad cell is {bad.result.verdict}: {bad.result.reason}",
                      untestable_end=bad.result.verdict == "untestable")
    return None


def _narrow(driver: Driver) -> Answer:
    search = ddmin.ddmin(driver.keys)
    try:
        probe = next(search)
        while True:
            driver.current, driver.granularity = probe.current, probe.granularity
            probe = search.send(OUTCOME_OF[driver.step("probe", probe.keys).result.verdict])
    except StopIteration as stop:
        minimal: tuple[str, ...] = stop.value
    driver.current = minimal
    confirm = driver.confirm(minimal)
    names = ", ".join(minimal)
    if confirm.result.verdict == "bad":
        return Answer("found", minimal, f"minimal set: {names} (confirmed bad)", confirm.index)
    return Answer("not-confirmed", minimal,
                  f"minimal set {names} was {confirm.result.verdict} when run again: "
                  "the problem is flaky; raise --repeat or use --rule any", confirm.index)
