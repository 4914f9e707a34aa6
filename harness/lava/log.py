"""A finished LAVA job's log, as lavacli fetches it or lava-run writes it: pure parsing, bounded.

LAVA logs one record a line, a YAML flow mapping in double-quoted style
(lava_common/log.py): `{"dt": "...", "lvl": "target", "msg": "..."}`. The
server's copy (`lavacli jobs logs --raw ID`, output.yaml) writes each as a
list item, `- {...}`; lava-run without a server writes the bare mapping.
Both are read. `target` records are the device's console, line by line;
`results` records are LAVA's own test cases (its actions, the job, and the
test shell's `lava-test-case` lines); `info` names the dispatcher's version.

The log is untrusted input (it comes from a lab, through a CI artefact): the
file, each line and what is kept are bounded, and a line must be a flow
mapping of JSON-like values (no anchors, aliases or tags beyond the core
scalars), at most a few levels deep. Most lines are JSON as they stand and
are read as JSON; the rest (YAML escapes such as \\e) through PyYAML's
event parser, building values here so that nothing YAML can express beyond
that is ever constructed. A line that is none of this is a LogError naming
the file and line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.errors import UsageError

MAX_BYTES = 512 << 20  # a job log; a day-long job with a chatty console is tens of MB
MAX_LINE = 1 << 20  # LAVA itself cuts a record at 10**6 characters
MAX_CONSOLE = 256 << 20  # characters of console kept
MAX_RESULTS = 100_000
MAX_DEPTH = 6
_DISPATCHER = re.compile(r"lava-dispatcher, installed at version: (\S{1,64})")
_SCALAR_TAGS = {"tag:yaml.org,2002:str": str, "tag:yaml.org,2002:int": int,
                "tag:yaml.org,2002:float": float, "tag:yaml.org,2002:bool": bool, "tag:yaml.org,2002:null": None}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LogError(UsageError):
    """Not a LAVA job log, or one kharness will not read; says where and what to do."""


@dataclass
class JobLog:
    console: list[str] = field(default_factory=list)  # the device's console, a line each
    results: list[dict[str, Any]] = field(default_factory=list)
    dispatcher: str = ""  # lava-dispatcher's version, if the log says
    started: str = ""  # the first record's time
    finished: str = ""  # the last record's time
    records: int = 0
    problems: list[str] = field(default_factory=list)

    def job_result(self) -> dict[str, Any] | None:
        """LAVA's verdict on the job (definition lava, case job), if the log got that far."""
        return next((r for r in reversed(self.results) if r.get("definition") == "lava" and r.get("case") == "job"),
                    None)


def parse(data: bytes, shown: str) -> JobLog:
    """Read a job log's bytes; LogError (one line) if it is not a LAVA log."""
    if len(data) > MAX_BYTES:
        raise LogError(f"{shown}: {len(data)} bytes, more than the {MAX_BYTES} a job log may have",
                       "give the log of one job (lavacli jobs logs --raw ID)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LogError(f"{shown}: not UTF-8 text (byte {exc.start})", "give the job's YAML log as LAVA wrote it") \
            from None
    log = JobLog()
    console_chars = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            raise LogError(f"{shown}:{number}: a line of {len(line)} characters, more than LAVA writes",
                           "give the job's YAML log as LAVA wrote it")
        record = _record(line, f"{shown}:{number}")
        log.records += 1
        when = record.get("dt")
        if isinstance(when, str):
            log.started = log.started or when[:40]
            log.finished = when[:40]
        level, msg = record.get("lvl"), record.get("msg")
        if level == "target" and isinstance(msg, str):
            console_chars += len(msg) + 1
            if console_chars > MAX_CONSOLE:
                log.problems.append(f"console beyond {MAX_CONSOLE} characters cut")
                continue
            log.console.extend(msg.replace("\r", "").split("\n"))
        elif level == "results" and isinstance(msg, dict):
            if len(log.results) >= MAX_RESULTS:
                raise LogError(f"{shown}:{number}: more than {MAX_RESULTS} results", "give the log of one job")
            log.results.append(msg)
        elif level == "info" and isinstance(msg, str) and not log.dispatcher:
            m = _DISPATCHER.match(msg)
            if m:
                log.dispatcher = m[1]
    if log.records == 0:
        raise LogError(f"{shown}: no LAVA log records", "give the job's YAML log (lavacli jobs logs --raw ID)")
    return log


def _record(line: str, where: str) -> dict[str, Any]:
    body = line[2:] if line.startswith("- ") else line
    value: Any
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        value = _yaml_flow(body, where)
    if not isinstance(value, dict) or "lvl" not in value or "msg" not in value:
        raise LogError(f"{where}: not a LAVA log record ({{dt, lvl, msg}})",
                       "give the job's YAML log as LAVA wrote it (lavacli jobs logs --raw ID)")
    if _depth(value) > MAX_DEPTH:
        raise LogError(f"{where}: a record nested deeper than {MAX_DEPTH}", "give the job's YAML log as LAVA wrote it")
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((c, d + 1) for c in children if isinstance(c, dict | list))
    return deepest


def _yaml_flow(body: str, where: str) -> Any:
    """One line of YAML flow collections and scalars, built from parser events (no constructor)."""
    bad = LogError(f"{where}: not a LAVA log record (a YAML mapping on one line)",
                   "give the job's YAML log as LAVA wrote it (lavacli jobs logs --raw ID)")
    try:
        events = list(yaml.parse(body, Loader=_Loader))
    except yaml.YAMLError:
        raise bad from None
    stack: list[Any] = []
    keys: list[Any] = []
    done: list[Any] = []

    def put(value: Any) -> None:
        if not stack:
            done.append(value)
        elif isinstance(stack[-1], list):
            stack[-1].append(value)
        elif keys[-1] is _NO_KEY:
            if not isinstance(value, str):
                raise bad
            keys[-1] = value
        else:
            stack[-1][keys[-1]] = value
            keys[-1] = _NO_KEY

    for ev in events:
        if getattr(ev, "anchor", None) or isinstance(ev, yaml.AliasEvent) or len(stack) > MAX_DEPTH:
            raise bad
        if isinstance(ev, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            if ev.tag not in (None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                raise bad
            stack.append({} if isinstance(ev, yaml.MappingStartEvent) else [])
            keys.append(_NO_KEY)
        elif isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            value = stack.pop()
            keys.pop()
            put(value)
        elif isinstance(ev, yaml.ScalarEvent):
            put(_scalar(ev, bad))
    if len(done) != 1:
        raise bad
    return done[0]


class _NoKey:
    pass


_NO_KEY = _NoKey()


def _scalar(ev: yaml.ScalarEvent, bad: LogError) -> Any:
    if ev.tag is not None and ev.tag != "!":
        if ev.tag not in _SCALAR_TAGS:
            raise bad
        kind = _SCALAR_TAGS[ev.tag]
        if kind is None:
            return None
        try:
            if kind is bool:
                return ev.value.lower() in ("true", "yes", "on")
            return kind(ev.value) if len(ev.value) < 64 or kind is str else ev.value
        except ValueError:
            raise bad from None
    if ev.style:  # quoted: a string as it is
        return ev.value
    v = ev.value
    if re.fullmatch(r"[-+]?[0-9]{1,18}", v):
        return int(v)
    if re.fullmatch(r"[-+]?[0-9]{1,18}\.[0-9]{0,18}", v):
        return float(v)
    return {"true": True, "false": False, "null": None, "~": None, "": None}.get(v.lower(), v)
