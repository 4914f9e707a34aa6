"""Kernels built from source: a git tree at a ref, patched in a worktree, cached by what makes the image.

Three things are cached, each under $KHARNESS_CACHE:

- `kernel-builds/<key>/`: a built image with its .config, build log and
  build.json. The key is what determines the image: the tree object at the
  ref, the patches' `git patch-id --stable`, the sha256 of the resolved
  .config, the compiler's and linker's version lines (and the arch).
- `kernel-configs/<key>.json`: which resolved .config a request gives (the
  same tree, patches, kconfig, fragments, guest options and compiler always
  resolve to the same .config). With it a warm lookup is git and two small
  files: no checkout, no make, well under a second.
- `kernel-lineages/<key>/`: one build lineage per (repository, arch,
  kconfig, fragments, guest options): a git worktree `src/` whose checkout
  is switched between the commits being built, and one out-of-tree build
  directory `out/` (make O=) shared by all of them. Switching the worktree
  from the base to the patched commit rewrites only the files the patches
  touch, so make recompiles only those (a one-file patch: one object, then
  the link). The user's checkout is never written to.

A lineage is built by one process at a time (a lock); a build that fails
or is stopped leaves the lineage as make left it, and the next build
continues from there. A source kernel that does not build raises
BuildFailure (the kernel's result) and is remembered for the rest of the
process, so the cells of a run do not build it again one by one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import atomic, cache
from harness.arches import preset
from harness.errors import UsageError
from harness.kernel import git
from harness.kernel.build import (
    BuildFailure,
    BuildRequest,
    Report,
    Stopping,
    Toolchain,
    configure,
    make_image,
    options,
    toolchain,
)
from harness.model import KernelSource, SourceTree

FORMAT = 1
BUILDS, CONFIGS, LINEAGES = "kernel-builds", "kernel-configs", "kernel-lineages"
BUILD_FILE = "build.json"
LOG_FILE = "build.log"

# request key -> the failure, for the rest of the process (a run's cells share one build)
_FAILED: dict[str, BuildFailure] = {}


@dataclass(frozen=True)
class Plan:
    """What a source kernel is, worked out from git alone (no checkout, no make)."""

    src: KernelSource
    spec: SourceTree
    repo: git.Repo
    commit: str
    tree_hash: str
    patches: tuple[git.Patch, ...]
    tools: Toolchain
    kconfig_id: str  # a make target, or file:<sha256>
    fragment_ids: tuple[str, ...]  # name:sha256 each
    options: tuple[str, ...]  # the guest's =y options

    @property
    def patch_ids(self) -> list[str]:
        return [p.patch_id for p in self.patches]

    def request_key(self) -> str:
        return cache.key_of("request", FORMAT, self.src.arch, self.tree_hash, self.patch_ids, self.kconfig_id,
                            self.fragment_ids, self.options, self.tools.compiler, self.tools.linker)

    def image_key(self, config_sha256: str) -> str:
        return cache.key_of("image", FORMAT, self.src.arch, self.tree_hash, self.patch_ids, config_sha256,
                            self.tools.compiler, self.tools.linker)

    def lineage_key(self) -> str:
        """By names, not contents: an edited kconfig file rebuilds in the same lineage, incrementally."""
        return cache.key_of("lineage", FORMAT, str(self.repo.git_dir), self.src.arch, self.spec.kconfig,
                            [str(f) for f in self.spec.fragments], self.options)

    def lineage_dir(self) -> Path:
        return cache.cache_root() / LINEAGES / self.lineage_key()

    def describe(self) -> str:
        series = f" + {len(self.patches)} patch{'es' if len(self.patches) != 1 else ''}" if self.patches else ""
        return f"{self.spec.ref} ({git.short(self.commit)}){series}, {self.spec.kconfig}"


@dataclass(frozen=True)
class SourceBuild:
    """A built source kernel in the cache."""

    image: Path
    config: Path
    facts: dict[str, Any]  # build.json: what cell.json records as the kernel's origin
    entry: Path
    hit: bool  # found in the cache (False: built now)


def plan(src: KernelSource) -> Plan:
    """The kernel's identity from git: the ref's commit and tree, the patches and their ids."""
    spec = src.source
    if spec is None:
        raise UsageError(f"kernel {src.name} is not built from source", "give tree: for a source kernel")
    repo = git.open_repo(spec.tree)
    commit = git.commit_of(repo, spec.ref)
    src_arch = preset(src.arch).build.src_arch
    missing = [p for p in ("Makefile", "Kconfig", f"arch/{src_arch}") if not git.has_path(repo, commit, p)]
    if missing:
        raise UsageError(f"{spec.ref} of {repo.path} is not a Linux tree for {src.arch} (no {missing[0]})",
                         "give the kernel's repository and a ref of it")
    if spec.range:
        patches = git.series_from_range(repo, spec.range)
    elif spec.mbox:
        patches = git.series_from_mbox(repo, spec.mbox)
    else:
        patches = git.series_from_files(repo, spec.patches)
    kconfig_id = spec.kconfig
    if Path(spec.kconfig).is_absolute():
        kconfig_id = "file:" + _sha256(Path(spec.kconfig), "kconfig")
    req = BuildRequest(spec.tree, Path(), src.arch, spec.kconfig, devices=spec.devices)
    return Plan(src, spec, repo, commit, git.tree_of(repo, commit), tuple(patches), toolchain(src.arch),
                kconfig_id, tuple(f"{f.name}:{_sha256(f, 'fragment')}" for f in spec.fragments), options(req))


def lookup(p: Plan) -> SourceBuild | None:
    """The cached build of the plan, or None: two small files, no checkout."""
    memo = cache.cache_root() / CONFIGS / f"{p.request_key()}.json"
    try:
        config_sha = json.loads(memo.read_text())["config_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return _entry(p, str(config_sha))


def check_series(src: KernelSource) -> None:
    """A patch that does not apply, found now (UsageError) rather than after other builds: unless cached."""
    p = plan(src)
    if p.patches and lookup(p) is None:
        git.check_applies(p.repo, p.commit, list(p.patches))


def build(src: KernelSource, report: Report | None = None, stop: Stopping | None = None,
          jobs: int | None = None) -> SourceBuild:
    """The built kernel: from the cache, or checked out, patched, configured and made now."""
    p = plan(src)
    hit = lookup(p)
    if hit is not None:
        return hit
    failed = _FAILED.get(p.request_key())
    if failed is not None:
        raise failed
    try:
        return _build(p, report, stop, jobs)
    except BuildFailure as exc:
        _FAILED[p.request_key()] = exc
        raise


def _build(p: Plan, report: Report | None, stop: Stopping | None, jobs: int | None) -> SourceBuild:
    root = cache.cache_root()
    lineage = p.lineage_dir()
    if not lineage.exists():
        sweep_lineages(root)
    with cache.locked(root / LINEAGES / f".{p.lineage_key()}.lock"):
        hit = lookup(p)  # another process may have built it while this one waited
        if hit is not None:
            return hit
        lineage.mkdir(parents=True, exist_ok=True)
        atomic.write_json(lineage / "lineage.json", {"repo": str(p.repo.git_dir), "tree": str(p.repo.path),
                                                     "arch": p.src.arch, "kconfig": p.spec.kconfig,
                                                     "fragments": [str(f) for f in p.spec.fragments]})
        started = time.monotonic()
        src_dir = git.worktree(p.repo, lineage / "src", p.commit)
        patched = _checkout(p, lineage, src_dir)
        req = BuildRequest(src_dir, lineage / "out", p.src.arch, p.spec.kconfig, jobs=jobs or os.cpu_count() or 1,
                           devices=p.spec.devices, fragments=p.spec.fragments)
        log = lineage / LOG_FILE
        with log.open("w") as sink:
            config = configure(req, sink, log, report, stop)
            config_sha = cache.sha256_file(config)
            atomic.write_json(root / CONFIGS / f"{p.request_key()}.json",
                              {"config_sha256": config_sha, "format": FORMAT})
            ready = _entry(p, config_sha)
            if ready is not None:  # this .config was built before (its request memo was lost)
                return ready
            built = make_image(req, sink, log, report, stop, started)
        facts = _facts(p, patched, config_sha) | {
            "build_seconds": built.seconds, "build_cpu_seconds": built.cpu_seconds,
            "compiled_objects": built.compiled, "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "lineage": str(lineage),
        }

        def fill(tmp: Path) -> None:
            shutil.copyfile(built.image, tmp / built.image.name)
            shutil.copyfile(built.config, tmp / "config")
            shutil.copyfile(log, tmp / LOG_FILE)
            atomic.write_json(tmp / BUILD_FILE, facts | {"image_file": built.image.name})

        cache.entry(BUILDS, p.image_key(config_sha), fill)
        result = _entry(p, config_sha)
        assert result is not None
        return SourceBuild(result.image, result.config, result.facts, result.entry, hit=False)


def _checkout(p: Plan, lineage: Path, src_dir: Path) -> str:
    """Switch the lineage's worktree to the commit to build: the ref, or the ref with the patches.

    The patched commit is remembered by (ref commit, patch ids): checking it
    out again rewrites only the files it changes, where applying the patches
    afresh would rewrite (and so recompile) what they touch even when the
    previous build had them already.
    """
    if not p.patches:
        git.switch(src_dir, p.commit)
        return p.commit
    memo_file = lineage / "patched.json"
    try:
        memo: dict[str, str] = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    key = p.commit + ":" + ",".join(p.patch_ids)
    known = memo.get(key)
    if known and git.git(["cat-file", "-e", f"{known}^{{commit}}"], src_dir, check=False).returncode == 0:
        git.switch(src_dir, known)
        return known
    git.switch(src_dir, p.commit)
    patched = git.apply(src_dir, list(p.patches), p.commit)
    memo[key] = patched
    atomic.write_json(memo_file, memo)
    return patched


def _entry(p: Plan, config_sha: str) -> SourceBuild | None:
    entry = cache.cache_root() / BUILDS / p.image_key(config_sha)
    try:
        facts: dict[str, Any] = json.loads((entry / BUILD_FILE).read_text())
    except (OSError, ValueError):
        return None
    image = entry / str(facts.get("image_file", ""))
    if not image.is_file():
        return None
    # Where the tree is named now: the same sources may sit at another path, or at another commit
    # (then the patched commit of the build is not one of this repository's).
    if facts.get("commit") != p.commit:
        facts["patched_commit"] = p.commit if not p.patches else None
    facts |= {"tree": str(p.repo.path), "ref": p.spec.ref, "commit": p.commit, "log": str(entry / LOG_FILE)}
    return SourceBuild(image, entry / "config", facts, entry, hit=True)


def _facts(p: Plan, patched: str, config_sha: str) -> dict[str, Any]:
    patched_tree = git.tree_of(p.repo, patched) if patched != p.commit else p.tree_hash
    return {
        "format": FORMAT, "source": "build", "arch": p.src.arch,
        "tree": str(p.repo.path), "ref": p.spec.ref, "commit": p.commit, "tree_hash": p.tree_hash,
        "patched_commit": patched, "patched_tree_hash": patched_tree,
        "patches": [{"name": x.name, "subject": x.subject, "patch_id": x.patch_id} for x in p.patches],
        "range": p.spec.range, "mbox": str(p.spec.mbox) if p.spec.mbox else None,
        "kconfig": p.spec.kconfig, "fragments": [str(f) for f in p.spec.fragments],
        "config_sha256": config_sha, "compiler": p.tools.compiler, "linker": p.tools.linker,
        "make_target": preset(p.src.arch).build.target,
    }


def sweep_lineages(root: Path | None = None) -> list[Path]:
    """Remove lineages whose repository is gone (a deleted clone, a test's tree)."""
    base = (root or cache.cache_root()) / LINEAGES
    removed = []
    for meta in base.glob("*/lineage.json"):
        try:
            repo = Path(json.loads(meta.read_text())["repo"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not repo.exists():
            shutil.rmtree(meta.parent, ignore_errors=True)
            removed.append(meta.parent)
    return removed


def _sha256(path: Path, what: str) -> str:
    try:
        return cache.sha256_file(path)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path} ({exc.strerror})", f"check {what}:") from exc


__all__ = ["BUILDS", "CONFIGS", "LINEAGES", "Plan", "SourceBuild", "build", "check_series", "lookup", "plan",
           "sweep_lineages"]
