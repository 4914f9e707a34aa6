"""Packaging: every third-party import is a declared dependency, and a wheel works on its own.

The wheel test builds kharness from a copy of the checkout's files, installs
it into a fresh virtual environment in a temporary folder outside the
checkout, and runs `kharness workloads` and `kharness expand` there: the
guest scripts and configs must come from the wheel (harness/_data/), not
from the checkout. No network: the wheel is built without build isolation
(setuptools from the test extra) and installed with --no-deps --no-index,
the dependencies seen through a path file onto this environment's
site-packages, this checkout's own editable kharness left out.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "harness"


def _declared() -> set[str]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    names = (re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0] for d in doc["project"]["dependencies"])
    return {_normal(n) for n in names}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files of harness/ importing it, outside the standard library."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "harness":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_dependency() -> None:
    dists = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = {}
    for module, files in sorted(_third_party_imports().items()):
        providers = {_normal(d) for d in dists.get(module, [module])}
        if not providers & declared:
            missing[module] = sorted(files)
    assert not missing, f"imported but not in [project] dependencies: {missing}"


def test_every_declared_dependency_is_imported() -> None:
    """A dependency nothing imports is weight for every user (junitparser: the tests' only)."""
    dists = importlib.metadata.packages_distributions()
    imported = {_normal(d) for module in _third_party_imports() for d in dists.get(module, [module])}
    assert _declared() <= imported, f"declared but never imported: {sorted(_declared() - imported)}"


def _copy_sources(dest: Path) -> Path:
    """The files a clone of this checkout would have (tracked or new, not ignored)."""
    if (ROOT / ".git").exists():
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True).stdout
        for rel in filter(None, out.decode().split("\0")):
            src = ROOT / rel
            if src.is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".venv", ".tox", "results", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    return dest


def _venv_seeing_our_dependencies(venv: Path) -> Path:
    """A fresh venv whose site-packages also sees this one's, except kharness itself."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    farm = venv.parent / "deps"
    farm.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("kharness", "__editable__", "_kharness")) and entry.suffix != ".pth":
            (farm / entry.name).symlink_to(entry)
    (site / "kharness-test-deps.pth").write_text(f"{farm}\n")
    return python


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), KHARNESS_CACHE=str(home / "cache"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(the installed `kharness` script, its environment, an empty working folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = _clean_env(tmp / "home")
    src = _copy_sources(tmp / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(src)], check=True, env=env, cwd=tmp, capture_output=True)
    (wheel,) = (tmp / "dist").glob("kharness-*.whl")
    python = _venv_seeing_our_dependencies(tmp / "venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, env=env, cwd=tmp, capture_output=True)
    shutil.rmtree(src)  # nothing of the sources is left to stand in for the wheel
    work = tmp / "work"
    work.mkdir()
    return tmp / "venv" / "bin" / "kharness", env, work


def test_the_wheel_carries_guest_scripts_and_configs(installed: tuple[Path, dict[str, str], Path]) -> None:
    kharness, env, work = installed
    where = subprocess.run([str(kharness.parent / "python"), "-c", "import harness; print(harness.__file__)"],
                           check=True, capture_output=True, text=True, env=env, cwd=work).stdout
    package = Path(where.strip()).parent
    assert not package.is_relative_to(ROOT)
    shipped = {p.relative_to(package / "_data").as_posix() for p in (package / "_data").rglob("*") if p.is_file()}
    ours = {p.relative_to(ROOT).as_posix() for d in ("guest_scripts", "configs") for p in (ROOT / d).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
    assert ours <= shipped


def test_installed_kharness_lists_workloads_from_the_wheel(installed: tuple[Path, dict[str, str], Path]) -> None:
    kharness, env, work = installed
    out = subprocess.run([str(kharness), "workloads", "--format", "json"], check=True, capture_output=True,
                         text=True, env=env, cwd=work).stdout
    doc = json.loads(out)
    names = {w["name"] for w in doc["workloads"]}
    assert {"idle", "dd-direct", "fio-nvme", "net-virtio"} <= names
    for w in doc["workloads"]:
        assert "/harness/_data/guest_scripts/" in w["script"] and not Path(w["script"]).is_relative_to(ROOT)


def test_installed_kharness_expands_the_shipped_quick_config(
    installed: tuple[Path, dict[str, str], Path],
) -> None:
    kharness, env, work = installed
    assert not (work / "configs").exists()
    out = subprocess.run([str(kharness), "expand", "configs/quick.yaml", "--format", "json"], check=True,
                         capture_output=True, text=True, env=env, cwd=work).stdout
    doc = json.loads(out)
    assert doc["name"] == "quick" and doc["count"] == 4
    assert "/harness/_data/configs/quick.yaml" in doc["path"]
    plain = subprocess.run([str(kharness), "expand", "quick"], check=True, capture_output=True, text=True,
                           env=env, cwd=work).stdout
    assert plain.startswith("quick: 4 cells, 4 boots")


# --- a clone stands alone ---------------------------------------------------------

CLONE_SLICE = ("tests/test_architecture.py", "tests/test_config_cli.py", "tests/test_run_fake.py",
               "tests/test_cli_globals.py")


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout: nothing to clone")
def test_a_clone_with_nothing_beside_it_passes_lint_types_and_a_unit_slice(tmp_path: Path) -> None:
    """The README's test command's core (ruff, mypy, lint-imports, unit tests) in a `git clone`
    into an empty folder: no ../shared, no .venv, no results beside it. Its tools are this
    environment's; its code, tests and data are the clone's own (PYTHONPATH is the clone)."""
    alone = tmp_path / "alone"
    alone.mkdir()
    clone = alone / "kharness"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, capture_output=True)
    assert list(alone.iterdir()) == [clone]
    env = _clean_env(tmp_path / "home")
    env["PYTHONPATH"] = str(clone)
    where = subprocess.run([sys.executable, "-c", "import harness; print(harness.__file__)"], cwd=clone, env=env,
                           check=True, capture_output=True, text=True).stdout
    assert Path(where.strip()).is_relative_to(clone)
    bin_dir = Path(sys.executable).parent
    steps = [
        [sys.executable, "-m", "ruff", "check", "--no-cache", "harness", "tests", "bench"],
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        [str(bin_dir / "lint-imports"), "--no-cache"],
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-m", "not boot",
         *CLONE_SLICE],
    ]
    for argv in steps:
        out = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{' '.join(argv[:4])} in a clone:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}"
    assert not (alone / "shared").exists()
