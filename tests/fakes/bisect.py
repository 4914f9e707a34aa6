"""Fake physics for check and bisect tests: a guest whose figures depend on its cell."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from harness.bisect.trial import Booter
from harness.cli import build_parser
from harness.config.load import Config
from harness.machine.guest import Booted
from harness.model import Cell
from tests.fakes.guest import fake_boot
from tests.fakes.runs import guest_factory, workload

Physics = Callable[[Cell], int]  # the bounces a cell's dd-direct reports


class FakeBooter:
    """Boots fake guests whose dd-direct reports `fake.bounces` from `physics(cell)`.

    Counts boots; `cut_at` raises KeyboardInterrupt at that boot, as Ctrl-C would.
    """

    def __init__(self, physics: Physics, cut_at: int | None = None) -> None:
        self.physics = physics
        self.cut_at = cut_at
        self.boots: list[Cell] = []

    def __call__(self, config: Config) -> Callable[[Cell, Path], AbstractContextManager[Booted]]:
        def boot(cell: Cell, path: Path) -> AbstractContextManager[Booted]:
            self.boots.append(cell)
            if self.cut_at is not None and len(self.boots) >= self.cut_at:
                raise KeyboardInterrupt
            out = f"metric fake.bounces {self.physics(cell)}\n".encode()
            return fake_boot(guest_factory(workload("dd-direct", out)))(cell, path)

        return boot


def as_booter(fake: FakeBooter) -> Booter:
    return fake


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments as `kharness` parses them (so the tests use the real option table)."""
    return build_parser(list(argv)).parse_args(list(argv))
