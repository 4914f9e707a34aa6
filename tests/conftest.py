"""What every test starts from.

The terminal variables of whatever runs the tests do not reach them: tox
and pytest-xdist's workers set COLUMNS (80), a developer's shell may set
NO_COLOR, and kharness honours both (harness/formats/terminal.py). A test
of those sets them itself (tests/test_cli_terminal.py).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_terminal_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
