"""The bisection driver with a judge function: ends, answers, untestable steps, state and resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.bisect import search
from harness.bisect import state as st
from harness.bisect.judge import Verdict
from harness.bisect.trial import TrialResult
from harness.errors import ResultsError, UsageError

KEYS = ("kernel", "memory", "swiotlb", "dma_coherent", "slub_debug", "cmdline:loglevel",
        "cmdline:quiet", "workload:idle")


class Judged:
    """A trial from a pure judge function of the keys applied; counts what it ran."""

    def __init__(self, judge: Callable[[frozenset[str]], Verdict], stop_after: int | None = None) -> None:
        self.judge = judge
        self.calls: list[tuple[int, str, tuple[str, ...]]] = []
        self.stop_after = stop_after

    def __call__(self, index: int, role: st.Role, keys: tuple[str, ...]) -> TrialResult:
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        self.calls.append((index, role, keys))
        return TrialResult(self.judge(frozenset(keys)), f"judged {sorted(keys)}")


def bad_with(*needed: str) -> Callable[[frozenset[str]], Verdict]:
    return lambda keys: "bad" if set(needed) <= keys else "good"


def _run(tmp_path: Path, trial: Judged, keys: tuple[str, ...] = KEYS,
         lines: list[str] | None = None) -> tuple[search.Answer, st.State]:
    root = tmp_path / "b"
    state = st.load(root) if (root / st.STATE_FILE).exists() else st.start(root, {"q": 1})
    answer = search.bisect(keys, state, trial, lambda s: st.save(root, s),
                           (lines.append if lines is not None else lambda s: None))
    return answer, state


def test_single_culprit(tmp_path: Path) -> None:
    trial = Judged(bad_with("dma_coherent"))
    answer, state = _run(tmp_path, trial)
    assert answer.outcome == "found" and answer.keys == ("dma_coherent",)
    roles = [s.role for s in state.steps]
    assert roles[:2] == ["good-end", "bad-end"] and roles[-1] == "confirm"
    assert state.steps[0].keys == () and state.steps[1].keys == KEYS
    assert roles.count("probe") <= 6  # 2 * log2(8)
    assert answer.confirm == len(state.steps) - 1


def test_pair_found_as_an_interaction(tmp_path: Path) -> None:
    answer, state = _run(tmp_path, Judged(bad_with("kernel", "dma_coherent")))
    assert answer.outcome == "found" and answer.keys == ("kernel", "dma_coherent")
    assert sum(1 for s in state.steps if s.role == "probe") <= 18


def test_each_subset_is_tested_once(tmp_path: Path) -> None:
    trial = Judged(bad_with("memory", "cmdline:quiet"))
    _run(tmp_path, trial)
    tested = [frozenset(k) for _, role, k in trial.calls if role != "confirm"]
    assert len(tested) == len(set(tested))


def test_good_end_not_good_stops_before_narrowing(tmp_path: Path) -> None:
    trial = Judged(lambda keys: "bad")
    answer, state = _run(tmp_path, trial)
    assert answer.outcome == "good-end-not-good" and not answer.untestable_end
    assert len(trial.calls) == 1 and state.answer is not None


def test_bad_end_not_bad(tmp_path: Path) -> None:
    answer, _ = _run(tmp_path, Judged(lambda keys: "good"))
    assert answer.outcome == "bad-end-not-bad"


def test_untestable_end_is_the_infrastructures(tmp_path: Path) -> None:
    answer, _ = _run(tmp_path, Judged(lambda keys: "untestable" if not keys else "bad"))
    assert answer.outcome == "good-end-not-good" and answer.untestable_end


def test_untestable_steps_are_skipped_and_the_search_goes_on(tmp_path: Path) -> None:
    """Probes with the kernel key but not dma_coherent cannot be tested."""
    def judge(keys: frozenset[str]) -> Verdict:
        if "kernel" in keys and "dma_coherent" not in keys:
            return "untestable"
        return "bad" if "swiotlb" in keys else "good"

    answer, state = _run(tmp_path, Judged(judge))
    assert answer.outcome == "found" and answer.keys == ("swiotlb",)
    assert any(s.result.verdict == "untestable" for s in state.steps)


def test_flaky_answer_is_not_confirmed(tmp_path: Path) -> None:
    seen: set[frozenset[str]] = set()

    def judge(keys: frozenset[str]) -> Verdict:
        if keys == {"memory"} and keys in seen:
            return "good"  # bad once, good when run again
        seen.add(keys)
        return "bad" if "memory" in keys else "good"

    answer, _ = _run(tmp_path, Judged(judge))
    assert answer.outcome == "not-confirmed" and answer.keys == ("memory",)
    assert "flaky" in answer.message


@pytest.mark.parametrize("stop_after", [1, 2, 3, 5, 7])
def test_resume_after_interruption_gives_the_same_answer(tmp_path: Path, stop_after: int) -> None:
    judge = bad_with("swiotlb", "workload:idle")
    straight = Judged(judge)
    answer, state = _run(tmp_path / "straight", straight)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "cut", Judged(judge, stop_after=stop_after))
    saved = json.loads((tmp_path / "cut" / "b" / st.STATE_FILE).read_text())
    assert len(saved["steps"]) == stop_after and saved["answer"] is None
    again = Judged(judge)
    resumed, rstate = _run(tmp_path / "cut", again)
    assert resumed == answer
    assert [(s.role, s.keys) for s in rstate.steps] == [(s.role, s.keys) for s in state.steps]
    assert len(again.calls) == len(straight.calls) - stop_after  # nothing run twice


def test_resume_of_a_finished_bisection_runs_nothing(tmp_path: Path) -> None:
    judge = bad_with("memory")
    first, _ = _run(tmp_path, Judged(judge))
    again = Judged(judge)
    second, _ = _run(tmp_path, again)
    assert second == first and again.calls == []


def test_progress_says_step_of_about_and_keys_in_play(tmp_path: Path) -> None:
    lines: list[str] = []
    _run(tmp_path, Judged(bad_with("dma_coherent")), lines=lines)
    starts = [line for line in lines if " of about " in line]
    assert starts[0].startswith("step 1 of about ") and "good-end" in starts[0]
    assert "8 of 8 keys in play" in starts[0]
    assert any("keys in play" in line and "1 of 8" not in line and "probe" in line for line in starts)
    assert starts[-1].startswith(f"step {len(starts)} of about ") and "confirm" in starts[-1]
    assert any(line.startswith("step 2: bad") for line in lines)


def test_clear_unfinished_moves_a_cut_step_aside(tmp_path: Path) -> None:
    root = tmp_path / "b"
    state = st.start(root, {})
    state.steps.append(st.Step(0, "good-end", (), TrialResult("good", "ok")))
    st.step_dir(root, 0, "good-end").mkdir(parents=True)
    st.step_dir(root, 1, "bad-end").mkdir(parents=True)
    moved = st.clear_unfinished(root, state)
    assert [p.name for p in moved] == ["01-bad-end.interrupted"]
    st.step_dir(root, 1, "bad-end").mkdir()
    assert [p.name for p in st.clear_unfinished(root, state)] == ["01-bad-end.interrupted2"]


def test_state_refuses_a_second_start_and_reads_back(tmp_path: Path) -> None:
    root = tmp_path / "b"
    st.start(root, {"a": 1})
    with pytest.raises(UsageError, match="--resume"):
        st.start(root, {"a": 1})
    assert st.load(root).question == {"a": 1}
    (root / st.STATE_FILE).write_text("{")
    with pytest.raises(ResultsError):
        st.load(root)
    with pytest.raises(UsageError, match="holds no bisection"):
        st.load(tmp_path / "nothing")
