"""Every YAML file a user writes, as a tree of located values.

Configs, workload declarations and compare rules are validated before
anything uses them, and every complaint must say where it is
(`configs/x.yaml:12: defaults.swiotlb: ...; fix`). PyYAML's `safe_load`
forgets positions and silently keeps the last of two equal keys, so the file
is composed into nodes (which keep their start marks) and walked here into
`Node`s: plain values that remember their line and key path. The walk also
refuses what plain YAML lets slip: duplicate keys, merge keys, tags beyond
plain mappings, lists and scalars (no !!python/..., !!binary, !!set), and
alias bombs. Files come from anywhere (a config in a bug report), so every
reading is bounded, each bound one located line when crossed: the file's
size (MAX_BYTES), its nesting depth (MAX_DEPTH, an alias that contains
itself included), the values it expands to (MAX_NODES), and values YAML
cannot turn into Python (an integer of thousands of digits, 2020-13-45,
invalid Unicode) are refused, not raised.

This is the bottom layer: it knows no kind of file beyond its `Kind`.

    top = load(path, Kind("rules file", "tests/data/compare/rules.yaml"))
    keys = mapping(top, ("alpha", "metrics"))   # unknown key: did-you-mean
    alpha = number(keys["alpha"], "0.05")       # wrong type: file:line and an example
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError

MAX_BYTES = 1 << 20  # a YAML file a user writes is a page of text; more is a mistake or an attack
MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")
# Configs nest about 5 deep; PyYAML's composer recurses and would hit
# Python's recursion limit near 300. (run.json keeps a config's document:
# harness/results.py reads JSON up to 64 deep.)
MAX_DEPTH = 32
MAX_INT_BITS = 64  # every count, size and parameter a user writes fits
MERGE_TAG = "tag:yaml.org,2002:merge"
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")  # no !!set, !!omap, !!python/...
SCALAR_TAGS = tuple(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp"))
_SURROGATE = re.compile("[\ud800-\udfff]")
# Key path parts shown unquoted; others are quoted so the path stays one
# unambiguous line. Glob characters are plain: rules patterns are keys ("fio.*").
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.*?:-]+")


@dataclass(frozen=True)
class Kind:
    """A kind of YAML file, as its errors name it."""

    noun: str  # "config", "workload declaration", "rules file"
    example: str  # a good file of the kind, for the fixes: "configs/quick.yaml"
    may_be_empty: bool = False  # True: an empty file is an empty mapping (all defaults)


# Configs are what most users write, and what the config layer reads without
# naming a kind.
CONFIG = Kind("config", "configs/quick.yaml")


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


def load(path: Path, kind: Kind = CONFIG) -> Node:
    """read() and parse() the file at `path`, named in errors as given."""
    shown = display(os.fspath(path))
    return parse(read(path, shown, kind), shown, kind)


def read(path: Path, shown: str, kind: Kind = CONFIG) -> bytes:
    """The file's bytes, bounded; `shown` is the name errors use."""
    noun = kind.noun
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"cannot read the {noun}: not found",
            f"give the path of a YAML {noun}, e.g. {kind.example}",
            where=shown,
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"cannot read the {noun}: it is a directory",
            "give the path of a YAML file inside it",
            where=shown,
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read the {noun} ({exc.strerror})",
            "check the path and its permissions",
            where=shown,
        ) from exc
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"{noun} is larger than {MAX_BYTES // 1024} KiB",
            f"a {noun} is a short YAML file; check the path",
            where=f"{shown}:1",
        )
    return data


def parse(data: bytes, shown: str, kind: Kind = CONFIG) -> Node:
    """Compose YAML `data` into a Node tree; every YAML error gets file:line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            "not UTF-8 text", f"save the {kind.noun} as UTF-8", where=f"{shown}:{line}"
        ) from exc
    loader: _Loader | None = None
    try:
        loader = _Loader(text, shown, kind.noun)
        root = loader.get_single_node()
        if root is None and kind.may_be_empty:
            return Node({}, 1, "", shown)
        if root is None:
            raise ConfigError(
                f"the {kind.noun} is empty",
                f"start from {kind.example}",
                where=f"{shown}:1",
            )
        return _Walker(loader, shown, kind.noun).node(root, "")
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, shown) from exc
    except yaml.YAMLError as exc:  # unmarked: reader errors without a position
        problem = display(str(exc).replace("\n", " "))
        raise ConfigError(
            f"not valid YAML ({problem})", "fix the YAML syntax", where=f"{shown}:1"
        ) from exc
    finally:
        if loader is not None:
            loader.dispose()


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, composing at most MAX_DEPTH levels deep (its composer recurses)."""

    def __init__(self, text: str, shown: str, noun: str) -> None:
        super().__init__(text)
        self.shown, self.noun, self.depth = shown, noun, 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _too_deep(self.shown, mark.line + 1, self.noun)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _too_deep(shown: str, line: int, noun: str, path: str = "") -> ConfigError:
    return ConfigError(
        f"the {noun} nests deeper than {MAX_DEPTH} levels (or an alias contains itself)",
        f"write the {noun} out plainly; start from a good one",
        where=where(shown, line, path),
    )


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

    def __init__(self, loader: yaml.SafeLoader, shown: str, noun: str) -> None:
        self.loader = loader
        self.shown = shown
        self.noun = noun
        self.count = 0

    def node(self, yn: yaml.Node, path: str, line: int | None = None, depth: int = 1) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(
                f"the {self.noun} expands to more than {MAX_NODES} values",
                f"write the {self.noun} out plainly (YAML aliases multiply)",
                where=where(self.shown, yn.start_mark.line + 1),
            )
        at = line if line is not None else yn.start_mark.line + 1
        if depth > MAX_DEPTH:  # the composer bounds depth, but an alias may point at its own ancestor
            raise _too_deep(self.shown, at, self.noun, path)
        if yn.tag not in (SCALAR_TAGS if isinstance(yn, yaml.ScalarNode) else PLAIN_TAGS):
            raise ConfigError(
                f"YAML tag {display(str(yn.tag))[:80]!r} is not supported",
                "write plain mappings, lists, strings and numbers",
                where=where(self.shown, at, path),
            )
        if isinstance(yn, yaml.MappingNode):
            return Node(self._mapping(yn, path, depth), at, path, self.shown)
        if isinstance(yn, yaml.SequenceNode):
            items = [self.node(item, key_path(path, i), None, depth + 1) for i, item in enumerate(yn.value)]
            return Node(items, at, path, self.shown)
        try:
            value = self.loader.construct_object(yn, deep=True)
        except (ValueError, OverflowError) as exc:  # 2020-13-45, an integer of 5000 digits
            said = "an integer of thousands of digits" if "digits" in str(exc) else display(str(exc))[:120]
            raise ConfigError(
                f"YAML cannot read this value ({said})",
                "quote it if it is text, or give a plain number or date",
                where=where(self.shown, at, path),
            ) from None
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:  # 1:2:3:...: sexagesimal
            raise ConfigError(f"an integer beyond {MAX_INT_BITS} bits", "give a smaller number",
                              where=where(self.shown, at, path))
        if isinstance(value, str) and _SURROGATE.search(value):
            raise ConfigError("a string that is not valid Unicode (a lone surrogate)",
                              "write the text itself, not \\u escapes of half a character",
                              where=where(self.shown, at, path))
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(
                "infinite or NaN numbers are not allowed",
                "give a finite number",
                where=where(self.shown, at, path),
            )
        return Node(value, at, path, self.shown)

    def _mapping(self, yn: yaml.MappingNode, path: str, depth: int) -> dict[str, Node]:
        out: dict[str, Node] = {}
        for key_node, value_node in yn.value:
            line = key_node.start_mark.line + 1
            at = where(self.shown, line, path)
            if key_node.tag == MERGE_TAG:
                raise ConfigError(
                    "YAML merge keys (<<) are not supported",
                    "write the keys out (a config shares settings under defaults:)",
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
            out[key] = self.node(value_node, key_path(path, key), line, depth + 1)
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
    shown = f" {_short(repr(value))}" if isinstance(value, str) else f" {_short(str(value))}" if scalar else ""
    fix = f"write e.g. {example}"
    if want == "a string" and scalar and value is not None:
        fix += f', or quote it: "{value}"'
    return node.error(f"must be {want}, not {type_name(value)}{shown}", fix)


def _short(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


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
            raise node.error(f"missing key {key!r}", f"add {key}:, e.g. {example}")
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
