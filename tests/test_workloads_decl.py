"""Workload declarations (<name>.yaml beside <name>.sh) are read like configs: located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import workloads
from harness.errors import ConfigError

GOOD = """\
description: a test workload
devices:
  - {kind: virtio-blk, id: scratch, size_mib: 64}
params:
  count: 10
timeout: 30
metrics:
  w.seconds: {unit: s, better: lower}
"""


def declare(tmp_path: Path, text: str) -> Path:
    (tmp_path / "mine.sh").write_text("echo metric w.seconds 1\n")
    (tmp_path / "mine.yaml").write_text(text)
    return tmp_path


def refused(tmp_path: Path, text: str) -> str:
    folder = declare(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        workloads.load("mine", (folder,))
    message = str(err.value)
    assert message.startswith(f"{folder / 'mine.yaml'}:"), message
    assert "\n" not in message and message.count("; ") == 1, message
    return message


def test_a_good_declaration(tmp_path: Path) -> None:
    wl = workloads.load("mine", (declare(tmp_path, GOOD),))
    assert wl.script == tmp_path / "mine.sh"  # the default: <name>.sh beside it
    assert wl.devices == (workloads.DeviceDecl("virtio-blk", "scratch", 64),)
    assert (wl.params, wl.timeout) == ((("count", 10),), 30.0)
    assert wl.metric_decl("w.seconds") == workloads.MetricDecl("s", "gauge", "lower")


def test_builtin_declarations_load() -> None:
    for name in workloads.available():
        assert workloads.load(name).script.is_file()


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, GOOD + "timeout: 60\n")
    assert "mine.yaml:9: duplicate key 'timeout' (first on line 6)" in message


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (GOOD.replace("timeout:", "timout:"), ":6: timout", "unknown key 'timout' (did you mean 'timeout'?)"),
        (GOOD.replace("size_mib", "size_mb"), ":3: devices[0].size_mb", "(did you mean 'size_mib'?)"),
        (GOOD.replace("better:", "bettr:"), ":8: metrics.w.seconds.bettr", "(did you mean 'better'?)"),
        (GOOD.replace("virtio-blk", "virtio-blok"), ":3: devices[0].kind",
         "unknown device kind 'virtio-blok' (did you mean 'virtio-blk'?)"),
    ],
)
def test_typo_key_names_its_line(tmp_path: Path, text: str, where: str, problem: str) -> None:
    message = refused(tmp_path, text)
    assert f"mine.yaml{where}: " in message and problem in message


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        (GOOD.replace("timeout: 30", "timeout: soon"), ":6: timeout", "must be a number, not a string 'soon'"),
        (GOOD.replace("count: 10", "count: [1, 2]"), ":5: params.count", "must be a string, number or boolean"),
        (GOOD.replace("size_mib: 64", "size_mib: big"), ":3: devices[0].size_mib", "must be an integer"),
        (GOOD.replace("- {kind", "- 5\n  - {kind"), ":3: devices[0]", "must be a mapping, not an integer 5"),
        ("description: [a]\n", ":1: description", "must be a string, not a list"),
        ("- idle\n", ":1", "a workload declaration is a mapping"),
    ],
)
def test_wrong_type_names_its_line(tmp_path: Path, text: str, where: str, problem: str) -> None:
    message = refused(tmp_path, text)
    assert f"mine.yaml{where}: " in message and problem in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("script: ../mine.sh\n", "script mine.sh not found beside the declaration"),
        ("script: other.sh\n", "script other.sh not found beside the declaration"),
        ("devices: [{kind: nvme, id: a}, {kind: nvme, id: a}]\n", "device id 'a' appears twice"),
        ("devices: [{kind: nvme, id: A}]\n", "device id 'A' is not valid"),
        ("devices: [{id: a}]\n", "missing key 'kind'"),
        ("params: {Block-Size: 1}\n", "parameter name 'Block-Size' is not valid"),
        ("metrics: {m: {kind: gaug}}\n", "unknown value 'gaug' (did you mean 'gauge'?); write one of counter, gauge"),
        ("timeout: 0\n", "timeout 0 s is not positive"),
        ("", "the workload declaration is empty"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    assert problem in refused(tmp_path, text)
