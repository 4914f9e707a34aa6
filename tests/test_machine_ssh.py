"""What reaches the guest's shell from a config: values as data, never as code."""

from __future__ import annotations

import shlex

import pytest

from harness.errors import GuestError
from harness.machine.ssh import with_env

HOSTILE = ["$(reboot)", "`id`", "a; rm -rf /", "x' y \"z", "\n", "--help", "*", "a\\b", "${IFS}"]


@pytest.mark.parametrize("value", HOSTILE)
def test_env_values_are_single_words_for_the_shell(value: str) -> None:
    line = with_env("sh /kharness/scripts/w.sh", {"KH_NAME": value})
    words = shlex.split(line)
    assert words == ["env", f"KH_NAME={value}", "sh", "/kharness/scripts/w.sh"]


@pytest.mark.parametrize("name", ["A B", "X;Y", "1ABC", "A=B", "$(x)", ""])
def test_env_names_must_be_identifiers(name: str) -> None:
    with pytest.raises(GuestError):
        with_env("true", {name: "v"})


def test_no_env_leaves_the_command_alone() -> None:
    assert with_env("dmesg", {}) == "dmesg"
