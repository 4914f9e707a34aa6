"""The YAML document as a tree of located values.

A config is validated before anything runs, and every complaint must say
where it is (`configs/x.yaml:12: defaults.swiotlb`). PyYAML's `safe_load`
forgets positions and silently keeps the last of two equal keys, so the file
is composed into nodes (which keep their start marks) and walked here into
`Node`s: plain values that remember their line and key path.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError, UsageError

MAX_BYTES = 1 << 20  # a config is a page of text; more is a mistake or an attack
MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")
MERGE_TAG = "tag:yaml.org,2002:merge"
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")  # no !!set, !!omap, !!python/...
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Node:
    """One value of the document and where it stands.

    `value` is a dict[str, Node] for a mapping, a list[Node] for a list and a
    plain scalar otherwise. `line` is 1-based: the key's line for a mapping
    value, the item's own line for a list item.
    """

    value: Any
    line: int
    path: str
    file: str

    @property
    def where(self) -> str:
        return where(self.file, self.line, self.path)

    def error(self, problem: str, fix: str = "") -> ConfigError:
        return ConfigError(problem, fix, where=self.where)

    def plain(self) -> Any:
        """The value without positions, as JSON-able data (for run.json)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def where(file: str, line: int, path: str = "") -> str:
    """`file:line: key.path`, the prefix of every config error."""
    return f"{file}:{line}: {path}" if path else f"{file}:{line}"


def display(text: str) -> str:
    """`text` safe to print on one line: control characters escaped."""
    return text if text.isprintable() else repr(text)[1:-1]


def key_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    part = key if _PLAIN_KEY.fullmatch(key) else repr(key)
    return f"{parent}.{part}" if parent else part


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read(path: Path, shown: str) -> bytes:
    """The config file's bytes, bounded; `shown` is the name errors use."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(
            f"config {shown} not found", "give the path of a YAML config, e.g. configs/quick.yaml"
        ) from None
    except IsADirectoryError:
        raise UsageError(
            f"config {shown} is a directory", "give the path of a YAML file inside it"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"config {shown}: cannot read ({exc.strerror})", "check the path and its permissions"
        ) from exc
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"config is larger than {MAX_BYTES // 1024} KiB",
            "a config is a short YAML file; check the path",
            where=f"{shown}:1",
        )
    return data


def parse(data: bytes, shown: str) -> Node:
    """Compose YAML `data` into a Node tree; every YAML error gets file:line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            "not UTF-8 text", "save the config as UTF-8", where=f"{shown}:{line}"
        ) from exc
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ConfigError(
                "the config is empty",
                "start from configs/quick.yaml",
                where=f"{shown}:1",
            )
        return _Walker(loader, shown).node(root, "")
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, shown) from exc
    except yaml.YAMLError as exc:  # unmarked: reader errors without a position
        problem = display(str(exc).replace("\n", " "))
        raise ConfigError(
            f"not valid YAML ({problem})", "fix the YAML syntax", where=f"{shown}:1"
        ) from exc
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.MarkedYAMLError, shown: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    problem = exc.problem or ""
    if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
        problem = f"{exc.context} on line {exc.context_mark.line + 1}, {problem}"
    elif exc.context:
        problem = f"{exc.context}, {problem}"
    fix = "fix the YAML syntax"
    if "\\t" in problem or "\t" in problem:
        fix = "indent with spaces (YAML does not allow tabs)"
    return ConfigError(f"not valid YAML: {display(problem)}", fix, where=f"{shown}:{line}")


class _Walker:
    """Turns composed YAML nodes into Nodes, refusing what YAML lets slip."""

    def __init__(self, loader: yaml.SafeLoader, shown: str) -> None:
        self.loader = loader
        self.shown = shown
        self.count = 0

    def node(self, yn: yaml.Node, path: str, line: int | None = None) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(
                f"the config expands to more than {MAX_NODES} values",
                "write the config out plainly (YAML aliases multiply)",
                where=where(self.shown, yn.start_mark.line + 1),
            )
        at = line if line is not None else yn.start_mark.line + 1
        if yn.tag not in PLAIN_TAGS and not isinstance(yn, yaml.ScalarNode):
            raise ConfigError(
                f"YAML tag {yn.tag!r} is not supported",
                "write plain mappings and lists",
                where=where(self.shown, at, path),
            )
        if isinstance(yn, yaml.MappingNode):
            return Node(self._mapping(yn, path), at, path, self.shown)
        if isinstance(yn, yaml.SequenceNode):
            items = [self.node(item, key_path(path, i)) for i, item in enumerate(yn.value)]
            return Node(items, at, path, self.shown)
        value = self.loader.construct_object(yn, deep=True)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(
                "infinite or NaN numbers are not allowed",
                "give a finite number",
                where=where(self.shown, at, path),
            )
        return Node(value, at, path, self.shown)

    def _mapping(self, yn: yaml.MappingNode, path: str) -> dict[str, Node]:
        out: dict[str, Node] = {}
        for key_node, value_node in yn.value:
            line = key_node.start_mark.line + 1
            at = where(self.shown, line, path)
            if key_node.tag == MERGE_TAG:
                raise ConfigError(
                    "YAML merge keys (<<) are not supported",
                    "put shared settings under defaults:",
                    where=at,
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "a key must be a plain word, not a list or mapping",
                    "write `key: value`",
                    where=at,
                )
            key = str(key_node.value)
            if key in out:
                raise ConfigError(
                    f"duplicate key {key!r} (first on line {out[key].line})",
                    "remove one (YAML would silently keep the last)",
                    where=at,
                )
            out[key] = self.node(value_node, key_path(path, key), line)
        return out


# Type checks. YAML's own names for types, since that is what the user wrote.
def type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        datetime.date: "a date",
        datetime.datetime: "a date and time",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def _wrong(node: Node, want: str, example: str) -> ConfigError:
    value = node.value
    scalar = not isinstance(value, dict | list)
    shown = f" {value!r}" if isinstance(value, str) else f" {value}" if scalar else ""
    fix = f"write e.g. {example}"
    if want == "a string" and scalar and value is not None:
        fix += f', or quote it: "{value}"'
    return node.error(f"must be {want}, not {type_name(value)}{shown}", fix)


def mapping(
    node: Node, allowed: Iterable[str], required: Iterable[str] = (), example: str = "key: value"
) -> dict[str, Node]:
    """The mapping in `node`; unknown keys refused with a did-you-mean."""
    if not isinstance(node.value, dict):
        raise _wrong(node, "a mapping", example)
    allowed = tuple(allowed)
    for key, child in node.value.items():
        if key not in allowed:
            raise child.error(
                f"unknown key {key!r}{did_you_mean(key, allowed)}",
                f"allowed here: {', '.join(allowed)}" if allowed else "no keys are allowed here",
            )
    for key in required:
        if key not in node.value:
            raise node.error(f"missing key {key!r}", f"add {key}: (see configs/quick.yaml)")
    return dict(node.value)


def named(node: Node, example: str) -> dict[str, Node]:
    """A mapping whose keys are the user's own names (kernels:, params:)."""
    if not isinstance(node.value, dict):
        raise _wrong(node, "a mapping", example)
    return dict(node.value)


def items(node: Node, example: str) -> list[Node]:
    if not isinstance(node.value, list):
        raise _wrong(node, "a list", example)
    return list(node.value)


def string(node: Node, example: str) -> str:
    if not isinstance(node.value, str):
        raise _wrong(node, "a string", example)
    return node.value


def integer(node: Node, low: int, high: int, unit: str = "", example: str = "") -> int:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(node, "an integer", example or str(low))
    if not low <= value <= high:
        raise node.error(f"{value}{unit} is out of range", f"give {low}..{high}{unit}")
    return int(value)


def number(node: Node, example: str) -> float:
    """An int or float. YAML 1.1 reads 1e6 (no dot) as a string: take that too."""
    value = node.value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _wrong(node, "a number", example)
    return float(value)


def boolean(node: Node) -> bool:
    if not isinstance(node.value, bool):
        raise _wrong(node, "true or false", "true")
    return node.value
