"""A bisection on disk: the question, every step taken, and the answer.

    <dir>/bisect.json          the question and every finished step (rewritten after each)
    <dir>/report.md            the answer, once there is one
    <dir>/steps/NN-<role>/     one directory per step:
        cell.yaml              the candidate cell as a one-cell config
        run/                   its result directory (run.json, cells/...)

bisect.json is written atomically after every step, so a bisection killed
at any point has lost at most the step it was in. `--resume` reads it back;
replaying the search with the recorded verdicts reaches the same point and
carries on, so the answer is the one an uninterrupted bisection gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness import atomic
from harness.bisect.trial import TrialResult
from harness.errors import ResultsError, UsageError

STATE_FILE = "bisect.json"
REPORT_FILE = "report.md"
STEPS_DIR = "steps"
STATE_FORMAT = 1

Role = Literal["good-end", "bad-end", "probe", "confirm"]


@dataclass(frozen=True)
class Step:
    """One finished step: which keys were applied, and what the trial said."""

    index: int
    role: Role
    keys: tuple[str, ...]
    result: TrialResult

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "role": self.role, "keys": list(self.keys), **self.result.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Step:
        return cls(int(d["index"]), d["role"], tuple(d["keys"]), TrialResult.from_json(d))


@dataclass
class State:
    """The question (as given, and as keys), the steps so far, and the answer."""

    question: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    answer: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "question": self.question,
                "steps": [s.to_json() for s in self.steps], "answer": self.answer}


def step_dir(root: Path, index: int, role: Role) -> Path:
    return root / STEPS_DIR / f"{index:02d}-{role}"


def save(root: Path, state: State) -> None:
    atomic.write_json(root / STATE_FILE, state.to_json())


def load(root: Path) -> State:
    path = root / STATE_FILE
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{root} holds no bisection ({STATE_FILE} missing)",
                         "give the -o directory of the bisection to resume") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path}: unreadable ({exc})", "start the bisection again in a new directory") from exc
    if not isinstance(d, dict) or d.get("format") != STATE_FORMAT:
        raise ResultsError(f"{path}: not a bisection state of format {STATE_FORMAT}",
                           "use the kharness version that wrote it")
    try:
        return State(dict(d["question"]), [Step.from_json(s) for s in d["steps"]], d.get("answer"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: malformed ({exc})", "start the bisection again in a new directory") from exc


def start(root: Path, question: dict[str, Any]) -> State:
    """A new bisection in `root`, which must not hold one already."""
    if (root / STATE_FILE).exists():
        raise UsageError(f"{root} already holds a bisection", "add --resume to carry it on, or choose another -o")
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} exists and is not empty", "choose another -o or remove it")
    root.mkdir(parents=True, exist_ok=True)
    state = State(question)
    save(root, state)
    return state


def clear_unfinished(root: Path, state: State) -> list[Path]:
    """Move aside step directories that no recorded step owns (a step cut short).

    They are kept (renamed *.interrupted) for their console logs; the step
    itself is run again in a fresh directory.
    """
    owned = {step_dir(root, s.index, s.role).name for s in state.steps}
    moved: list[Path] = []
    steps = root / STEPS_DIR
    for d in sorted(steps.iterdir()) if steps.is_dir() else []:
        if d.is_dir() and d.name not in owned and ".interrupted" not in d.name:
            target = d.with_name(d.name + ".interrupted")
            n = 1
            while target.exists():
                n += 1
                target = d.with_name(f"{d.name}.interrupted{n}")
            d.rename(target)
            moved.append(target)
    return moved
