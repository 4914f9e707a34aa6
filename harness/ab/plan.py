"""The question `kharness ab` answers: which two kernels, on which cells, how often.

The cells are the config's own, each with its kernel replaced: every
distinct setting of the config (cells that differ only in their kernel are
one) for the arch of the two kernels. Each side is written as a config of
its own in the ab directory (`base.yaml`, `patched.yaml`: the cells as
include entries, the kernel declared with absolute paths), loaded by the
config loader like any config, so each side's results are an ordinary run
of an ordinary config: `kharness run base.yaml` repeats one side by hand.
The config's expectations come along where they apply, except those that
name a kernel (they are about the config's kernels, not these).
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import atomic
from harness.bisect.keys import cell_settings
from harness.config.kernels import kernel_doc
from harness.config.load import Config, load
from harness.errors import UsageError
from harness.kernel import git
from harness.kernel.defaults import DEFAULT_KERNELS
from harness.model import Cell, Expectation, KernelSource, SourceTree
from harness.run import expect

ROLES = ("base", "patched")
DEFAULT_REPEAT = 3
AB_FILE = "ab.json"
FORMAT = 1


@dataclass(frozen=True)
class Inputs:
    """What the command line says, enough to ask the same question again (ab.json keeps it)."""

    config: Path
    base: str | None = None  # kernel names of the config
    patched: str | None = None
    tree: Path | None = None  # or a tree, a ref and a series
    ref: str = "HEAD"
    patches: tuple[Path, ...] = ()
    range: str | None = None
    mbox: Path | None = None
    kconfig: str | None = None
    fragments: tuple[Path, ...] = ()
    arch: str | None = None
    repeat: int | None = None
    accel: str = "auto"
    jobs: int | None = None
    build_jobs: int | None = None
    rules: Path | None = None
    metrics: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Inputs:
        def path(v: Any) -> Path | None:
            return Path(v) if isinstance(v, str) else None

        try:
            return cls(config=Path(d["config"]), base=d.get("base"), patched=d.get("patched"),
                       tree=path(d.get("tree")), ref=str(d.get("ref") or "HEAD"),
                       patches=tuple(Path(p) for p in d.get("patches") or ()), range=d.get("range"),
                       mbox=path(d.get("mbox")), kconfig=d.get("kconfig"),
                       fragments=tuple(Path(p) for p in d.get("fragments") or ()), arch=d.get("arch"),
                       repeat=d.get("repeat"), accel=str(d.get("accel") or "auto"), jobs=d.get("jobs"),
                       build_jobs=d.get("build_jobs"), rules=path(d.get("rules")),
                       metrics=tuple(d.get("metrics") or ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"ab.json: the question is malformed ({exc})", "start a new ab run") from exc


@dataclass(frozen=True)
class Side:
    role: str  # base | patched
    kernel: KernelSource
    config: Config  # the side's own config (DIR/<role>.yaml)
    run_dir: Path  # DIR/<role>/: an ordinary result directory


@dataclass(frozen=True)
class Question:
    inputs: Inputs
    config: Config  # the user's
    base: Side
    patched: Side
    repeat: int

    @property
    def sides(self) -> tuple[Side, Side]:
        return self.base, self.patched

    def reproduce(self) -> list[str]:
        """The command that asks this question again (paths absolute, moving refs pinned)."""
        i = self.inputs
        argv = ["kharness", "ab", str(self.config.path)]
        if i.tree is not None:
            spec = self.base.kernel.source
            assert spec is not None
            repo = git.open_repo(spec.tree)
            argv += ["--tree", str(spec.tree), "--ref", git.pinned(repo, spec.ref, git.commit_of(repo, spec.ref))]
            argv += [a for p in i.patches for a in ("--patch", str(p.absolute()))]
            argv += ["--range", i.range] if i.range else []
            argv += ["--mbox", str(i.mbox.absolute())] if i.mbox else []
            argv += ["--kconfig", spec.kconfig]
            argv += [a for f in i.fragments for a in ("--fragment", str(f.absolute()))]
            argv += ["--arch", self.base.kernel.arch] if i.arch else []
        elif i.base is not None:
            argv += ["--base", self.base.kernel.name, "--patched", self.patched.kernel.name]
        argv += ["--repeat", str(self.repeat)]
        argv += ["--accel", i.accel] if i.accel != "auto" else []
        argv += ["--rules", str(i.rules.absolute())] if i.rules else []
        argv += [a for m in i.metrics for a in ("--metric", m)]
        return argv

    def reproduce_text(self) -> str:
        return shlex.join(self.reproduce())


def kernels(inputs: Inputs, config: Config) -> tuple[KernelSource, KernelSource]:
    """The two kernels: built from --tree, named by --base/--patched, or the config's base and patched."""
    if inputs.tree is not None:
        return _from_tree(inputs, config)
    if (inputs.base is None) != (inputs.patched is None):
        raise UsageError("--base and --patched go together", "name both kernels, e.g. --base v6.12 --patched v6.12-fix")
    names = (inputs.base, inputs.patched) if inputs.base is not None else ROLES
    declared = {k.name: k for k in config.declared_kernels} | dict(DEFAULT_KERNELS)
    missing = [n for n in names if n not in declared]
    if missing:
        if inputs.base is None:
            raise UsageError(f"{config.path} declares no kernels named base and patched",
                             "declare them under kernels:, or give --base NAME --patched NAME, "
                             "or --tree DIR with --patch FILE")
        raise UsageError(f"{config.path} has no kernel {missing[0]!r}",
                         f"its kernels: {', '.join(sorted(declared))}")
    if names[0] == names[1]:
        raise UsageError(f"--base and --patched are the same kernel ({names[0]})", "name two different kernels")
    base, patched = declared[str(names[0])], declared[str(names[1])]
    if base.arch != patched.arch:
        raise UsageError(f"kernel {base.name} is {base.arch} but {patched.name} is {patched.arch}",
                         "compare two kernels of one arch")
    return base, patched


def _from_tree(inputs: Inputs, config: Config) -> tuple[KernelSource, KernelSource]:
    assert inputs.tree is not None
    if inputs.base is not None or inputs.patched is not None:
        raise UsageError("--tree makes both kernels; --base and --patched name a config's kernels",
                         "give one or the other")
    series = [bool(inputs.patches), bool(inputs.range), inputs.mbox is not None]
    if sum(series) != 1:
        raise UsageError("--tree needs the patch: one of --patch FILE (repeatable), --range A..B or --mbox FILE",
                         "e.g. --patch 0001-fix.patch")
    arch = inputs.arch or _only_arch(config)
    tree = inputs.tree.expanduser().absolute()
    repo = git.open_repo(tree)
    ref = inputs.range.partition("..")[0] if inputs.range and inputs.ref == "HEAD" else inputs.ref
    git.commit_of(repo, ref)
    for p in (*inputs.patches, *inputs.fragments, *([inputs.mbox] if inputs.mbox else [])):
        if not p.is_file():
            raise UsageError(f"{p} does not exist", "give the path of the file")
    kconfig = inputs.kconfig or "defconfig"
    if Path(kconfig).expanduser().is_file():
        kconfig = str(Path(kconfig).expanduser().absolute())
    base = SourceTree(tree=tree, ref=ref, kconfig=kconfig,
                      fragments=tuple(f.absolute() for f in inputs.fragments))
    patched = dataclasses.replace(base, patches=tuple(p.absolute() for p in inputs.patches), range=inputs.range,
                                  mbox=inputs.mbox.absolute() if inputs.mbox else None)
    return KernelSource("base", arch, source=base), KernelSource("patched", arch, source=patched)


def _only_arch(config: Config) -> str:
    found = sorted({c.arch for c in config.cells})
    if len(found) != 1:
        raise UsageError(f"{config.path} has cells of {' and '.join(found)}",
                         f"say which with --arch ({' or '.join(found)})")
    return found[0]


def side_cells(config: Config, arch: str) -> list[Cell]:
    """The config's distinct settings for `arch`, in order: cells differing only by kernel are one."""
    seen: dict[str, Cell] = {}
    for cell in config.cells:
        if cell.arch != arch:
            continue
        settings = cell_settings(cell)
        settings.pop("kernel")
        key = yaml.safe_dump(settings, sort_keys=True)
        seen.setdefault(key, cell)
    if not seen:
        raise UsageError(f"{config.path} has no {arch} cell", "add one, or compare kernels of its cells' arch")
    return list(seen.values())


def question(inputs: Inputs, out: Path) -> Question:
    """Load the config, pick the kernels and cells, and write and load both side configs into `out`."""
    config = load(inputs.config)
    base, patched = kernels(inputs, config)
    cells = side_cells(config, base.arch)
    repeat = inputs.repeat if inputs.repeat is not None else max(DEFAULT_REPEAT, *(c.repeat for c in cells))
    if not 1 <= repeat <= 100:
        raise UsageError(f"--repeat {repeat}: give 1 to 100", f"{DEFAULT_REPEAT} or more to judge changes")
    sides = [_side(role, k, config, cells, repeat, out) for role, k in zip(ROLES, (base, patched), strict=True)]
    return Question(inputs, config, sides[0], sides[1], repeat)


def _side(role: str, kernel: KernelSource, config: Config, cells: Sequence[Cell], repeat: int,
          out: Path) -> Side:
    include = []
    for cell in cells:
        entry = cell_settings(cell)
        entry["kernel"] = kernel.name
        entry["timeouts"] = dataclasses.asdict(cell.timeouts)
        include.append(entry)
    doc = {
        "name": f"{config.name}-{role}"[:64],
        "description": f"kharness ab: the {role} side ({kernel.name}) of {config.path}",
        "kernels": {} if DEFAULT_KERNELS.get(kernel.name) == kernel else {kernel.name: kernel_doc(kernel)},
        "workload_dirs": [str(d) for d in config.workload_dirs],
        "defaults": {"repeat": repeat},
        "include": include,
    }
    path = out / f"{role}.yaml"
    head = (f"# kharness ab: the {role} side of {config.path}: its cells, with kernel {kernel.name}.\n"
            "# The config's expectations that apply are attached by kharness ab.\n")
    atomic.write_text(path, head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    loaded = load(path)
    by_settings = {yaml.safe_dump(_without_kernel(c), sort_keys=True): c for c in cells}
    new_cells = tuple(dataclasses.replace(c, expectations=_expectations(
        by_settings[yaml.safe_dump(_without_kernel(c), sort_keys=True)], c)) for c in loaded.cells)
    side_config = dataclasses.replace(loaded, cells=new_cells,
                                      expectations=tuple(dict.fromkeys(e for c in new_cells for e in c.expectations)))
    return Side(role, kernel, side_config, out / role)


def _without_kernel(cell: Cell) -> dict[str, Any]:
    settings = cell_settings(cell)
    settings.pop("kernel")
    return settings


def _expectations(original: Cell, cell: Cell) -> tuple[Expectation, ...]:
    """The original cell's expectations that do not name a kernel and still apply."""
    return tuple(e for e in original.expectations
                 if not any(k == "kernel" for k, _ in e.when) and expect.applies(e, cell))
