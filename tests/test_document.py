"""The one located YAML loader every user-written file goes through (harness/document.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import document
from harness.document import Kind, mapping, number
from harness.errors import ConfigError

THING = Kind("thing file", "things/good.yaml")


def load(tmp_path: Path, text: str, kind: Kind = THING) -> document.Node:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return document.load(path, kind)


def refused(tmp_path: Path, text: str, kind: Kind = THING) -> str:
    with pytest.raises(ConfigError) as err:
        top = load(tmp_path, text, kind)
        keys = mapping(top, ("alpha", "metrics"))
        number(keys["alpha"], "0.05")
    message = str(err.value)
    assert "\n" not in message and message.count("; ") == 1, message
    return message


def test_values_keep_their_line_and_key_path(tmp_path: Path) -> None:
    top = load(tmp_path, "# comment\nalpha: 0.1\nmetrics:\n  'fio.*': {noise: 5%}\n")
    metrics = top.value["metrics"]
    assert (top.value["alpha"].line, top.value["alpha"].value) == (2, 0.1)
    # Glob characters stay plain in key paths: rules patterns are keys.
    assert metrics.value["fio.*"].value["noise"].where.endswith("t.yaml:4: metrics.fio.*.noise")
    assert top.plain() == {"alpha": 0.1, "metrics": {"fio.*": {"noise": "5%"}}}


def test_duplicate_key_is_refused_at_its_second_line(tmp_path: Path) -> None:
    message = refused(tmp_path, "alpha: 0.1\nmetrics: {}\nalpha: 0.2\n")
    assert "t.yaml:3: duplicate key 'alpha' (first on line 1)" in message


def test_typo_key_names_its_line_and_the_near_miss(tmp_path: Path) -> None:
    message = refused(tmp_path, "alpha: 0.1\nmetrisc: {}\n")
    assert "t.yaml:2: metrisc: unknown key 'metrisc' (did you mean 'metrics'?)" in message
    assert message.endswith("; allowed here: alpha, metrics")


def test_wrong_type_says_what_it_got_and_gives_an_example(tmp_path: Path) -> None:
    message = refused(tmp_path, "alpha: [1]\n")
    assert "t.yaml:1: alpha: must be a number, not a list; write e.g. 0.05" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &a [1]\nb: !!python/object/apply:os.system [ls]\n", "YAML tag"),
        ("base: &b {x: 1}\nalpha: {<<: *b}\n", "merge keys"),
        ("alpha: [1\n", "not valid YAML"),
        ("alpha: .inf\n", "infinite or NaN"),
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{c}: &{c} [{', '.join(['*' + chr(ord(c) - 1)] * 10)}]\n" for c in "bcdef"),
         "the thing file expands to more than 100000 values"),
    ],
)
def test_what_plain_yaml_lets_slip_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    assert problem in refused(tmp_path, text)


def test_errors_name_the_kind_of_file(tmp_path: Path) -> None:
    assert "t.yaml:1: the thing file is empty; start from things/good.yaml" in refused(tmp_path, "# nothing\n")
    with pytest.raises(ConfigError, match=r"cannot read the thing file: not found; .*things/good\.yaml"):
        document.load(tmp_path / "nope.yaml", THING)


def test_a_kind_may_take_an_empty_file_as_all_defaults(tmp_path: Path) -> None:
    top = load(tmp_path, "# every setting commented out\n", Kind("rules file", "r.yaml", may_be_empty=True))
    assert top.value == {} and mapping(top, ("alpha",)) == {}
