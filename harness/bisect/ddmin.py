"""Delta debugging: the smallest set of keys that, applied together, cause it.

This is ddmin (Zeller and Hildebrandt, "Simplifying and Isolating
Failure-Inducing Input", IEEE TSE 2002) over the keys in which a good cell
and a bad cell differ. A probe is a subset of those keys, taken from the bad
cell and applied to the good one; "bad" means the problem shows. The search
keeps the smallest bad set found so far (`current`), splits it into `n`
parts and tries each part, then each complement; if none is bad it splits
finer. It ends with a set from which no single key can be removed (1-minimal):
a single culprit, or a pair or more that only cause it together.

Why a generator: the algorithm stays pure (no booting, no files, no clock),
and its driver decides what a probe costs (a memo, a state file, N boots).
The driver sends back "bad", "good" or "unresolved"; an unresolved probe
(untestable: the infrastructure failed, or the combination cannot be built)
counts as "not bad", so the search goes on around it, as ddmin prescribes
for unresolved outcomes.

Tests needed: about 2*log2(k) for one culprit among k keys; the worst case,
reached only with many unresolved probes, is k*k + 3*k (the paper's bound).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Literal

Outcome = Literal["bad", "good", "unresolved"]
OUTCOMES: tuple[Outcome, ...] = ("bad", "good", "unresolved")


@dataclass(frozen=True)
class Probe:
    """One test the search asks for, with where it stands (for progress lines)."""

    keys: tuple[str, ...]  # the subset of keys to apply to the good cell
    current: tuple[str, ...]  # the smallest bad set known so far
    granularity: int  # how many parts `current` is split into
    kind: Literal["subset", "complement"]


Search = Generator[Probe, Outcome, tuple[str, ...]]


def split(keys: Sequence[str], parts: int) -> list[tuple[str, ...]]:
    """`keys` cut into `parts` contiguous, nearly equal, non-empty pieces, in order."""
    parts = max(1, min(parts, len(keys)))
    out: list[tuple[str, ...]] = []
    start = 0
    for i in range(parts):
        end = start + (len(keys) - start) // (parts - i)
        out.append(tuple(keys[start:end]))
        start = end
    return out


def ddmin(keys: Sequence[str]) -> Search:
    """Search over `keys` (all of them together known to be bad, none known good).

    Yields probes; returns the 1-minimal bad subset, in the order of `keys`.
    """
    current = tuple(keys)
    n = 2
    while len(current) >= 2:
        parts = split(current, n)
        reduced = yield from _try_parts(current, parts, n)
        if reduced is not None:
            current, n = reduced
            continue
        if n >= len(current):
            break  # every single key was tried: 1-minimal
        n = min(len(current), 2 * n)
    return current


def _try_parts(current: tuple[str, ...], parts: list[tuple[str, ...]], n: int) -> Generator[
        Probe, Outcome, tuple[tuple[str, ...], int] | None]:
    """The reduction step: a bad part (then n=2) or a bad complement (then n-1)."""
    for part in parts:
        if (yield Probe(part, current, n, "subset")) == "bad":
            return part, 2
    if n == 2:
        return None  # with two parts each complement is the other part: already tried
    for part in parts:
        rest = tuple(k for k in current if k not in part)
        if (yield Probe(rest, current, n, "complement")) == "bad":
            return rest, max(n - 1, 2)
    return None


def worst_case(size: int) -> int:
    """The paper's bound on the number of tests for `size` keys: size^2 + 3*size."""
    return size * size + 3 * size


def typical(size: int) -> int:
    """About how many tests one culprit among `size` keys takes (two per halving)."""
    return 2 * math.ceil(math.log2(size)) if size > 1 else 0


def run(keys: Sequence[str], judge: Callable[[tuple[str, ...]], Outcome],
        memo: dict[frozenset[str], Outcome] | None = None) -> tuple[str, ...]:
    """Run ddmin to its end with a judge function, each distinct subset judged once.

    The simplest driver: `memo` (subset -> outcome) is filled in as it goes,
    so its size afterwards is the number of tests the search needed.
    """
    memo = {} if memo is None else memo
    search = ddmin(keys)
    try:
        probe = next(search)
        while True:
            subset = frozenset(probe.keys)
            if subset not in memo:
                memo[subset] = judge(probe.keys)
            probe = search.send(memo[subset])
    except StopIteration as stop:
        result: tuple[str, ...] = stop.value
        return result
