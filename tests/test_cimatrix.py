"""`kharness ci-matrix`, and the nightly CI examples: they parse, and what they run exists."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import build_parser, main
from harness.config.load import load
from harness.run import shard

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {"github": ROOT / "ci" / "github-nightly.yml", "gitlab": ROOT / "ci" / "gitlab-nightly.yml"}
# What the CI system substitutes before the shell sees a command.
GITHUB_EXPR = {"matrix.shard": "2/4", "matrix.index": "2"}
CI_VARS = {"CI_NODE_INDEX": "2", "KHARNESS_SHARD": "2/4"}
KHARNESS_CMD = re.compile(r"(?:\.venv/bin/)?kharness\s[^\n;&|)]*")


def _matrix(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["ci-matrix", *argv]) == 0
    return capsys.readouterr().out


def test_cimatrix_github_is_one_json_line_covering_every_cell(capsys: pytest.CaptureFixture[str]) -> None:
    out = _matrix(capsys, str(ROOT / "configs" / "minalign.yaml"), "--shards", "4", "--format", "github")
    assert out.count("\n") == 1  # fits `echo "matrix=..." >> $GITHUB_OUTPUT`
    rows = json.loads(out)["include"]
    assert [r["shard"] for r in rows] == ["1/4", "2/4", "3/4", "4/4"]
    cells = load(ROOT / "configs" / "minalign.yaml").cells
    assert sum(r["cells"] for r in rows) == len(cells)
    assert sum(r["boots"] for r in rows) == sum(c.repeat for c in cells)
    for r in rows:
        assert len(shard.select(cells, shard.parse(r["shard"]))) == r["cells"]


def test_cimatrix_caps_shards_at_the_number_of_cells(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci-matrix", str(ROOT / "configs" / "quick.yaml"), "--shards", "9", "--format", "gitlab"]) == 0
    captured = capsys.readouterr()
    block = yaml.safe_load(captured.out)
    assert block == {"parallel": {"matrix": [{"KHARNESS_SHARD": ["1/4", "2/4", "3/4", "4/4"]}]}}
    assert "4 shards instead of 9" in captured.err


def test_cimatrix_refuses_zero_shards(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci-matrix", str(ROOT / "configs" / "quick.yaml"), "--shards", "0", "--format", "github"]) == 2
    assert "--shards 0" in capsys.readouterr().err


def _scripts(node: Any) -> list[str]:
    """Every shell line of a workflow: GitHub `run:` values and GitLab `script:` items."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                found.append(value)
            elif key in ("script", "before_script", "after_script") and isinstance(value, list):
                found += [str(v) for v in value]
            else:
                found += _scripts(value)
    elif isinstance(node, list):
        for item in node:
            found += _scripts(item)
    return found


def _commands(ci: str, doc: dict[str, Any]) -> list[list[str]]:
    env = {**{k: str(v) for k, v in (doc.get("env") or doc.get("variables") or {}).items()}, **CI_VARS}
    env["KHARNESS_SHARDS"] = env.get("KHARNESS_SHARDS", "4")
    out = []

    def variable(m: re.Match[str]) -> str:
        return env.get(m.group(1), m.group(0))

    def expression(m: re.Match[str]) -> str:
        return GITHUB_EXPR.get(m.group(1), "x")

    for line in _scripts(doc):
        shell = re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", expression, line)
        for cmd in KHARNESS_CMD.findall(shell):
            expanded = re.sub(r"\$\{?(\w+)\}?", variable, str(cmd))
            out.append(shlex.split(expanded)[1:])
    return out


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_example_parses_and_runs_only_existing_commands(ci: str) -> None:
    doc = yaml.safe_load(EXAMPLES[ci].read_text())
    commands = _commands(ci, doc)
    assert {c[0] for c in commands} >= {"run", "merge"}
    for argv in commands:
        args = build_parser(argv).parse_args(argv)  # SystemExit on an unknown command or option
        assert callable(args._main)
        if argv[0] == "run":
            assert shard.parse(args.shard) == shard.Shard(2, 4)
            assert (ROOT / args.config).is_file()


def test_ci_examples_are_the_readme_ones() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- section:nightly -->")[1].split("<!-- /section:nightly -->")[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert blocks == [EXAMPLES["github"].read_text(), EXAMPLES["gitlab"].read_text()]


def test_github_example_plans_with_cimatrix_and_publishes_junit() -> None:
    doc = yaml.safe_load(EXAMPLES["github"].read_text())
    commands = _commands("github", doc)
    assert ["ci-matrix", "configs/minalign.yaml", "--shards", "4", "--format", "github"] in commands
    jobs = doc["jobs"]
    assert jobs["shard"]["strategy"]["fail-fast"] is False
    assert "fromJSON(needs.plan.outputs.matrix)" in jobs["shard"]["strategy"]["matrix"]
    assert jobs["merge"]["if"] == "always()"
    uses = [s.get("uses", "") for s in jobs["merge"]["steps"]]
    assert any(u.startswith("actions/download-artifact") for u in uses)
    assert any("junit" in u for u in uses)


def test_gitlab_example_matrix_is_what_cimatrix_prints(capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load(EXAMPLES["gitlab"].read_text())
    config = doc["variables"]["KHARNESS_CONFIG"]
    shards = len(doc["kharness-shard"]["parallel"]["matrix"][0]["KHARNESS_SHARD"])
    printed = yaml.safe_load(_matrix(capsys, str(ROOT / config), "--shards", str(shards), "--format", "gitlab"))
    assert doc["kharness-shard"]["parallel"] == printed["parallel"]
    merge = doc["kharness-merge"]
    assert merge["artifacts"]["reports"]["junit"] == "results/nightly/junit.xml"
    assert merge["needs"] == ["kharness-shard"]
