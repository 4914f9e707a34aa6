"""Hostile YAML (configs, workload declarations, compare rules): one located line, exit 2.

Every YAML file goes through harness/document.py, so the bounds are tested
there and once through each kind of file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import document
from harness.cli import main
from harness.errors import ConfigError

HOSTILE: dict[str, tuple[bytes, str]] = {
    "deep flow list": (b"name: x\nmatrix: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nests deeper than 32"),
    "deep flow map": (b"name: x\nmatrix: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n", "nests deeper than 32"),
    "deep block": (b"name: x\n" + b"".join(b"  " * i + b"k:\n" for i in range(200)), "nests deeper than 32"),
    "alias in itself (list)": (b"name: x\nmatrix: &a [*a]\n", "an alias contains itself"),
    "alias in itself (map)": (b"name: x\nmatrix: &a {k: *a}\n", "an alias contains itself"),
    "billion laughs": (b"a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
                       "expands to more than"),
    "long integer": (b"name: x\ndefaults: {repeat: " + b"7" * 5000 + b"}\n", "thousands of digits"),
    "sexagesimal integer": (b"name: x\ndefaults: {repeat: 1:" + b"59:" * 3000 + b"1}\n", "beyond 64 bits"),
    "impossible date": (b"name: x\ndescription: 2020-13-45\n", "month must be in 1..12"),
    "binary": (b"name: x\ndescription: !!binary QUJD\n", "tag 'tag:yaml.org,2002:binary'"),
    "python object": (b"name: !!python/object:os.system x\n", "is not supported"),
    "lone surrogate": (b'name: x\ndescription: "\\ud800"\n', "not valid Unicode"),
    "NUL": (b"name: x\x00\n", "not valid YAML"),
    "not UTF-8": (b"name: \xff\xfe\n", "not UTF-8"),
    "too big": (b"name: x\ndescription: '" + b"a" * (1 << 20) + b"'\n", "larger than"),
}


@pytest.mark.parametrize("name", [n for n in HOSTILE if n != "too big"])  # size: read()'s, below
def test_hostile_yaml_is_one_located_line(name: str) -> None:
    data, said = HOSTILE[name]
    with pytest.raises(ConfigError, match=said) as caught:
        document.parse(data, "bad.yaml", document.CONFIG)
    message = str(caught.value)
    assert message.startswith("bad.yaml:") and "\n" not in message
    assert len(message) < 400


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_configs_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    data, said = HOSTILE[name]
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    assert main(["expand", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and "\n" not in err and "Traceback" not in err, err


def test_the_depth_bound_leaves_real_depths_alone() -> None:
    depth = document.MAX_DEPTH - 1  # the mapping is a level too
    ok = document.parse(b"a: " + b"[" * depth + b"]" * depth, "f", document.CONFIG)
    assert ok.plain()["a"]


@pytest.mark.parametrize("name", ["deep flow list", "alias in itself (map)", "long integer", "binary"])
def test_hostile_rules_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    from tests.fakes import synth

    cells = synth.bench_cells(1, 5)
    a, b = synth.write_run(tmp_path / "a", cells), synth.write_run(tmp_path / "b", cells, seed=1)
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(HOSTILE[name][0].replace(b"name: x\n", b"").replace(b"matrix:", b"metrics:"))
    assert main(["compare", str(a), str(b), "--rules", str(rules)]) == 2
    err = capsys.readouterr().err.strip()
    assert "rules.yaml:" in err and "\n" not in err


@pytest.mark.parametrize("name", ["deep flow map", "alias in itself (list)", "lone surrogate"])
def test_hostile_workload_declarations_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    wl = tmp_path / "wl"
    wl.mkdir()
    (wl / "evil.sh").write_text("true\n")
    (wl / "evil.yaml").write_bytes(HOSTILE[name][0].replace(b"name: x\n", b"description: d\n")
                                   .replace(b"matrix:", b"params:"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: c\nworkload_dirs: [{wl}]\ndefaults: {{workloads: [evil]}}\n"
                   "include: [{kernel: trixie-arm64}]\n")
    assert main(["expand", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "evil.yaml:" in err and "\n" not in err, err
