"""`kharness check` with fake guests and a fake kernel tree: exit codes 0/1/125/2 and its files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.bisect import check
from harness.errors import InfraError
from harness.kernel import build as kbuild
from harness.model import Cell
from tests.fakes import kernels as fake
from tests.fakes.bisect import FakeBooter, parse

CONFIG = """
name: fakecheck
defaults: {iommu_platform: true, workloads: [dd-direct]}
include:
  - {kernel: trixie-x86_64}
  - {kernel: trixie-arm64, dma_coherent: false}
"""
X86, ARM_NC = "trixie-x86_64.iommu", "trixie-arm64.nc.iommu"
BAD_IF = ["--bad-if", "dd-direct:fake.bounces > 0"]
# A fake kernel tree (tuxmake's habit): make "builds" by copying a fake bzImage,
# and fails at a target when a file FAIL-<target> exists in the tree.
MAKEFILE = """\
%config:
\t@test ! -e FAIL-$@ || { echo "fake: error in $@"; exit 2; }
\t@mkdir -p $(O) && touch $(O)/.config
bzImage:
\t@test ! -e FAIL-$@ || { echo "fake: error in $@"; exit 2; }
\t@mkdir -p $(O)/arch/x86/boot && cp fake-bzImage $(O)/arch/x86/boot/bzImage
"""


def bounces_on_local_kernels(cell: Cell) -> int:
    return 7 if cell.kernel.image is not None else 0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return path


def run_check(config: Path, out: Path, booter: FakeBooter, *argv: str) -> int:
    return check.check(parse(["check", "--config", str(config), "-o", str(out), "-q", *argv]), booter)


def only_check(out: Path) -> dict[str, object]:
    (one,) = out.iterdir()
    doc: dict[str, object] = json.loads((one / check.CHECK_FILE).read_text())
    return doc


def test_good_and_bad_exit_0_and_1(config: Path, tmp_path: Path) -> None:
    assert run_check(config, tmp_path / "g", FakeBooter(lambda c: 0), "--cell", X86, *BAD_IF) == 0
    assert run_check(config, tmp_path / "b", FakeBooter(lambda c: 3), "--cell", X86, *BAD_IF) == 1
    doc = only_check(tmp_path / "b")
    assert doc["verdict"] == "bad" and doc["exit"] == 1 and doc["config_cell"].startswith(X86)  # type: ignore[attr-defined]
    assert "dd-direct:fake.bounces = 3 (> 0)" in str(doc["reason"])


def test_image_replaces_the_cells_kernel(config: Path, tmp_path: Path) -> None:
    image = tmp_path / "Image"
    image.write_bytes(fake.arm64_image())
    booter = FakeBooter(bounces_on_local_kernels)
    assert run_check(config, tmp_path / "o", booter, "--cell", ARM_NC, "--image", str(image), *BAD_IF) == 1
    (cell,) = booter.boots
    assert cell.kernel.name == check.KERNEL_NAME and cell.kernel.image == image and not cell.dma_coherent
    (one,) = (tmp_path / "o").iterdir()
    assert (one / "cell.yaml").is_file() and (one / "run" / "run.json").is_file()


def test_missing_image_is_no_kernel_to_test(config: Path, tmp_path: Path) -> None:
    booter = FakeBooter(lambda c: 0)
    rc = run_check(config, tmp_path / "o", booter, "--cell", X86, "--image", str(tmp_path / "nope"), *BAD_IF)
    assert rc == 125 and booter.boots == []
    assert "no kernel to test" in str(only_check(tmp_path / "o")["reason"])


def test_a_metric_not_measured_is_untestable(config: Path, tmp_path: Path) -> None:
    rc = run_check(config, tmp_path / "o", FakeBooter(lambda c: 0), "--cell", X86, "--bad-if", "idle:x.y > 0")
    assert rc == 125


@pytest.mark.parametrize(("rule", "rc"), [("any", 1), ("majority", 0), ("all", 0)])
def test_repeat_with_a_rule(config: Path, tmp_path: Path, rule: str, rc: int) -> None:
    """One of three boots bounces: bad for `any`, good for `majority` and `all`."""
    counts = iter([0, 5, 0])
    booter = FakeBooter(lambda c: next(counts))
    assert run_check(config, tmp_path / "o", booter, "--cell", X86, *BAD_IF, "--repeat", "3", "--rule", rule) == rc
    assert len(booter.boots) == 3
    assert f"of 3 (rule: {rule})" in str(only_check(tmp_path / "o")["reason"])


def test_closer_to_a_bad_reference_run(config: Path, tmp_path: Path) -> None:
    """Two earlier checks are the references: their run/ directories are result directories."""
    assert run_check(config, tmp_path / "good", FakeBooter(lambda c: 0), "--cell", X86) == 0
    assert run_check(config, tmp_path / "bad", FakeBooter(lambda c: 2000), "--cell", X86) == 0
    refs = ["--closer-to-bad", "fake.bounces", "--good-run", str(next((tmp_path / "good").iterdir()) / "run"),
            "--bad-run", str(next((tmp_path / "bad").iterdir()) / "run")]
    assert run_check(config, tmp_path / "a", FakeBooter(lambda c: 1500), "--cell", X86, *refs) == 1
    assert run_check(config, tmp_path / "b", FakeBooter(lambda c: 400), "--cell", X86, *refs) == 0
    assert "dd-direct:fake.bounces = 400 (good 0, bad 2000)" in str(only_check(tmp_path / "b")["reason"])


def test_reference_metric_must_be_measured(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(config, tmp_path / "good", FakeBooter(lambda c: 0), "--cell", X86) == 0
    run = str(next((tmp_path / "good").iterdir()) / "run")
    rc = cli.main(["check", "--config", str(config), "--cell", X86, "--closer-to-bad", "nope.metric",
                   "--good-run", run, "--bad-run", run])
    assert rc == 2 and "no usable repetition measured nope.metric" in capsys.readouterr().err


def test_infrastructure_failure_is_125_not_3(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: object, booter: object) -> int:
        raise InfraError("qemu-system-x86_64 not found", "run ./setup.sh")

    monkeypatch.setattr(check, "check", broken)
    assert cli.main(["check", "--config", str(config), "--cell", X86]) == 125
    assert "untestable: qemu-system-x86_64 not found" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["--cell", "nope"], "no cell 'nope'"),
    ([], "has 2 cells"),
    (["--cell", X86, "--bad-if", "swiotlb.bounces >"], "is not a metric comparison"),
    (["--cell", X86, "--modules", "m"], "--modules goes with --image"),
    (["--cell", X86, "--bad-if-console", "("], "not a regular expression"),
    (["--cell", X86, "--good-run", "r"], "references for --closer-to-bad"),
])
def test_bad_input_is_one_line_and_exit_2(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          argv: list[str], message: str) -> None:
    assert cli.main(["check", "--config", str(config), "-o", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# --- --tree -------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = tmp_path / "linux"
    (t / "arch" / "x86").mkdir(parents=True)
    (t / "Kconfig").write_text("")
    (t / "Makefile").write_text(MAKEFILE)
    (t / "fake-bzImage").write_bytes(fake.bzimage())
    return t


def test_tree_is_built_then_booted(config: Path, tmp_path: Path, tree: Path) -> None:
    booter = FakeBooter(bounces_on_local_kernels)
    assert run_check(config, tmp_path / "o", booter, "--cell", X86, "--tree", str(tree), *BAD_IF) == 1
    (cell,) = booter.boots
    build_dir = tree / ".kharness" / "build-x86_64"
    assert cell.kernel.image == build_dir / "arch/x86/boot/bzImage" and cell.kernel.config == build_dir / ".config"
    config_text = (build_dir / ".config").read_text()
    assert "CONFIG_VIRTIO_NET=y" in config_text and "CONFIG_SERIAL_8250_CONSOLE=y" in config_text
    doc = only_check(tmp_path / "o")
    assert doc["build"]["ok"] is True  # type: ignore[index]
    log = (Path(doc["build"]["log"])).read_text()  # type: ignore[index]
    assert "defconfig" in log and "olddefconfig" in log and "bzImage" in log


@pytest.mark.parametrize(("target", "flag", "rc"), [
    ("bzImage", [], 125), ("bzImage", ["--build-failure-is-bad"], 1), ("olddefconfig", [], 125),
])
def test_build_failure_is_untestable_unless_said_otherwise(config: Path, tmp_path: Path, tree: Path,
                                                           target: str, flag: list[str], rc: int) -> None:
    (tree / f"FAIL-{target}").write_text("")
    booter = FakeBooter(lambda c: 0)
    assert run_check(config, tmp_path / "o", booter, "--cell", X86, "--tree", str(tree), *flag, *BAD_IF) == rc
    assert booter.boots == []
    doc = only_check(tmp_path / "o")
    assert f"make {target} exited with 2" in str(doc["reason"])


def test_kconfig_file_is_the_base(config: Path, tmp_path: Path, tree: Path) -> None:
    base = tmp_path / "my.config"
    base.write_text("CONFIG_MY_OWN=y\n")
    booter = FakeBooter(lambda c: 0)
    assert run_check(config, tmp_path / "o", booter, "--cell", X86, "--tree", str(tree),
                     "--kconfig", str(base), *BAD_IF) == 0
    text = (tree / ".kharness" / "build-x86_64" / ".config").read_text()
    assert text.startswith("CONFIG_MY_OWN=y\n") and "CONFIG_DEVTMPFS=y" in text


def test_missing_cross_compiler_is_untestable_and_recorded(config: Path, tmp_path: Path, tree: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tree / "arch" / "arm64").mkdir()
    monkeypatch.setattr("shutil.which", lambda name: None if "aarch64" in name else "/usr/bin/" + name)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    monkeypatch.setattr(check, "real_boot", lambda accel: FakeBooter(lambda c: 0))
    rc = cli.main(["check", "--config", str(config), "--cell", ARM_NC, "--tree", str(tree), "-o", str(tmp_path / "o")])
    assert rc == 125
    doc = only_check(tmp_path / "o")
    assert doc["exit"] == 125 and "apt-get install gcc-aarch64-linux-gnu" in str(doc["reason"])


def test_a_tree_that_is_not_one(config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["check", "--config", str(config), "--cell", X86, "--tree", str(tmp_path), "-o", str(tmp_path / "o")])
    assert rc == 2 and "is not a Linux source tree" in capsys.readouterr().err


def test_guest_options_come_with_their_dependencies() -> None:
    """olddefconfig drops a symbol whose dependencies are off: list them too."""
    options = set(kbuild.GUEST_OPTIONS)
    for needs, deps in {"VIRTIO_NET": {"NETDEVICES", "NET_CORE", "VIRTIO_PCI"}, "VIRTIO_PCI": {"PCI", "VIRTIO_MENU"},
                        "HIST_TRIGGERS": {"FTRACE"}, "VIRTIO_BLK": {"BLK_DEV", "BLOCK"}}.items():
        assert needs in options and deps <= options
