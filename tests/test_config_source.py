"""Source kernels in a config: what `kernels:` entries with `tree:` mean, and their located errors.

The trees are toy git repositories (tests/fakes/trees.py); nothing is built here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.bisect import cells
from harness.config.kernels import kernel_doc
from harness.config.load import load
from harness.errors import ConfigError
from tests.fakes.trees import commit_change, git, patch_file, toy_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = toy_tree(tmp_path / "linux")
    patch_file(t, tmp_path / "fix.patch", "file1.c", "return 1;", "return 100;", "file1: 100")
    (tmp_path / "debug.config").write_text("CONFIG_TOY=y\n")
    (tmp_path / "my.config").write_text("CONFIG_TOY=y\n")
    return t


def write(tmp_path: Path, kernels: str, extra: str = "") -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"kernels:\n{kernels}\ndefaults: {{workloads: [idle{extra}]}}\n"
                   "matrix: {kernel: [base, patched]}\n")
    return cfg


BOTH = """\
  base: {tree: linux, ref: v1, kconfig: tinyconfig, arch: x86_64}
  patched: {tree: linux, ref: v1, patches: [fix.patch], kconfig: my.config, fragments: [debug.config], arch: x86_64}
"""


def test_a_source_kernel_entry(tmp_path: Path, tree: Path) -> None:
    config = load(write(tmp_path, BOTH))
    base, patched = (c.kernel for c in config.cells)
    assert base.source is not None and patched.source is not None
    assert base.source.tree == tree and base.source.ref == "v1" and base.source.kconfig == "tinyconfig"
    assert not base.source.patched and base.image is None and base.debian is None
    assert patched.source.patches == (tmp_path / "fix.patch",)
    assert patched.source.kconfig == str(tmp_path / "my.config")  # a file, made absolute
    assert patched.source.fragments == (tmp_path / "debug.config",)
    assert config.cells[0].id.startswith("base-") and config.cells[1].id.startswith("patched-")
    assert {k.name for k in config.declared_kernels} == {"base", "patched"}
    # run.json can hold it
    assert config.to_json()["kernels"]["patched"]["source"]["patches"] == [str(tmp_path / "fix.patch")]


def test_defaults_ref_head_kconfig_defconfig_and_a_range(tmp_path: Path, tree: Path) -> None:
    git(tree, "checkout", "-q", "-b", "fixes")
    commit_change(tree, "file2.c", "return 2;", "return 200;", "file2: 200")
    cfg = write(tmp_path, "  base: {tree: linux, arch: x86_64}\n"
                          "  patched: {tree: linux, range: v1..fixes, arch: x86_64}\n")
    base, patched = (c.kernel for c in load(cfg).cells)
    assert base.source is not None and (base.source.ref, base.source.kconfig) == ("HEAD", "defconfig")
    assert patched.source is not None and (patched.source.ref, patched.source.range) == ("v1", "v1..fixes")


def test_source_kernels_are_built_for_the_devices_of_their_cells(tmp_path: Path, tree: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("kernels:\n" + BOTH + "defaults: {workloads: [idle]}\n"
                   "include: [{kernel: base, workloads: [usb-storage]}, {kernel: patched}]\n")
    base, patched = (c.kernel for c in load(cfg).cells)
    assert base.source is not None and "usb-storage" in base.source.devices
    assert patched.source is not None and patched.source.devices == ()


def test_a_source_kernel_round_trips_through_a_one_cell_config(tmp_path: Path, tree: Path) -> None:
    config = load(write(tmp_path, BOTH))
    patched = config.cells[1]
    org = cells.origin([config])
    doc = cells.document(org, {"kernel": "patched", "workloads": [{"name": "idle"}]}, "rt", 1,
                         patched.timeouts)
    again = cells.build(org, doc, tmp_path / "rt" / "cell.yaml")
    assert again.cells[0].kernel == patched.kernel
    assert kernel_doc(patched.kernel)["patches"] == [str(tmp_path / "fix.patch")]


@pytest.mark.parametrize(("entry", "where", "message"), [
    ("tree: nowhere", "tree", "nowhere does not exist"),
    ("tree: plain", "tree", "plain is not a git tree; give a git checkout"),
    ("tree: fix.patch", "tree", "fix.patch is not a directory"),
    ("tree: linux, ref: v11", "ref", r"unknown ref 'v11' in .* \(did you mean 'v1'\?\)"),
    ("tree: linux, ref: 1234567", "ref", r"must be a string, not an integer 1234567.*quote it"),
    ("tree: linux, range: v1", "range", r"range 'v1' is not A\.\.B"),
    ("tree: linux, range: v1..nope", "range", "unknown ref 'nope'"),
    ("tree: linux, patches: [nope.patch]", r"patches\[0\]", "nope.patch does not exist"),
    ("tree: linux, patches: []", "patches", "patches: is empty"),
    ("tree: linux, patches: [fix.patch], mbox: fix.patch", "mbox",
     "give one of patches:, range: or mbox:, not patches and mbox"),
    ("tree: linux, kconfig: ../x/.config", "kconfig", "neither a file nor a make target"),
    ("tree: linux, image: x", "image", "unknown key 'image'"),
])
def test_source_kernel_errors_are_located(tmp_path: Path, tree: Path, entry: str, where: str, message: str) -> None:
    (tmp_path / "plain").mkdir()
    cfg = write(tmp_path, f"  base: {{{entry}, arch: x86_64}}\n  patched: {{tree: linux, arch: x86_64}}\n")
    with pytest.raises(ConfigError) as err:
        load(cfg)
    text = str(err.value)
    assert re.search(f":2: kernels\\.base\\.{where}: ", text) and re.search(message, text), text


def test_a_source_kernel_needs_its_arch(tmp_path: Path, tree: Path) -> None:
    with pytest.raises(ConfigError, match=r":2: kernels\.base: missing key 'arch'"):
        load(write(tmp_path, "  base: {tree: linux}\n  patched: {tree: linux, arch: x86_64}\n"))
