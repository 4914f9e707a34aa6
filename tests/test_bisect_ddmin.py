"""ddmin with judge functions: culprits found, interactions found, tests counted."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from harness.bisect import ddmin
from harness.bisect.ddmin import Outcome

KEYS = tuple(f"k{i:02d}" for i in range(16))


def culprits(*needed: str) -> Callable[[tuple[str, ...]], Outcome]:
    """Bad exactly when every needed key is applied: an interaction of len(needed) keys."""
    return lambda keys: "bad" if set(needed) <= set(keys) else "good"


def test_split_covers_in_order_nearly_equal() -> None:
    assert ddmin.split(("a", "b", "c", "d", "e"), 2) == [("a", "b"), ("c", "d", "e")]
    assert ddmin.split(("a", "b", "c"), 5) == [("a",), ("b",), ("c",)]
    parts = ddmin.split(KEYS, 3)
    assert sum(parts, ()) == KEYS and {len(p) for p in parts} <= {5, 6}


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 16])
def test_single_culprit_found_within_two_tests_per_halving(n: int) -> None:
    keys = KEYS[:n]
    for culprit in keys:
        memo: dict[frozenset[str], Outcome] = {}
        assert ddmin.run(keys, culprits(culprit), memo) == (culprit,)
        assert len(memo) <= ddmin.typical(n), (culprit, len(memo))


@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_every_pair_found_far_below_the_bound(n: int) -> None:
    keys = KEYS[:n]
    worst = 0
    for pair in itertools.combinations(keys, 2):
        memo: dict[frozenset[str], Outcome] = {}
        assert ddmin.run(keys, culprits(*pair), memo) == pair
        worst = max(worst, len(memo))
    # Measured: 2, 10, 18, 26 tests at most for 2, 4, 8, 16 keys (bound 10, 28, 88, 304).
    assert worst <= 2 * ddmin.typical(n) + n // 2 + 2
    assert worst < ddmin.worst_case(n)


def test_triple_interaction_found() -> None:
    assert ddmin.run(KEYS, culprits("k01", "k07", "k13")) == ("k01", "k07", "k13")


def test_either_of_two_culprits_gives_one_of_them() -> None:
    """Two keys that each cause it alone: the answer is one of them, minimal."""
    result = ddmin.run(KEYS, lambda ks: "bad" if {"k03", "k11"} & set(ks) else "good")
    assert result in (("k03",), ("k11",))


def test_unresolved_probes_are_gone_around() -> None:
    """Probes holding k04 cannot be tested (like dma_coherent: false with an x86 kernel)."""
    def judge(keys: tuple[str, ...]) -> Outcome:
        if "k04" in keys:
            return "unresolved"
        return "bad" if "k05" in keys else "good"

    memo: dict[frozenset[str], Outcome] = {}
    assert ddmin.run(KEYS[:8], judge, memo) == ("k05",)
    assert "unresolved" in memo.values()


def test_unresolved_everywhere_leaves_the_whole_set() -> None:
    """Nothing can be told apart: the answer is every key, never a guess."""
    assert ddmin.run(KEYS[:4], lambda keys: "unresolved") == KEYS[:4]


def test_probes_say_where_the_search_stands() -> None:
    search = ddmin.ddmin(KEYS[:4])
    probe = next(search)
    assert probe == ddmin.Probe(("k00", "k01"), KEYS[:4], 2, "subset")
    probe = search.send("good")
    assert probe.keys == ("k02", "k03") and probe.kind == "subset"
    probe = search.send("bad")
    assert probe.current == ("k02", "k03") and probe.granularity == 2 and probe.keys == ("k02",)


def test_bounds() -> None:
    assert ddmin.worst_case(3) == 18 and ddmin.typical(16) == 8 and ddmin.typical(1) == 0
