"""Source kernels on toy git trees: refs, patches, worktrees, the build cache and its keys.

Git is real here (repositories, worktrees, git am/apply, patch-id); the
kernel is the toy of tests/fakes/trees.py, whose Makefile copies each .c
into the build directory with make's own timestamp rules. Tests whose
build goes through that toy Makefile say `fake` in their names.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.kernel import source
from harness.kernel.build import BuildFailure, BuildInterrupted, Status
from harness.kernel.resolve import resolve
from harness.model import KernelSource, SourceTree
from tests.fakes.trees import commit_change, git, patch_file, toy_tree


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    source._FAILED.clear()
    return tmp_path / "cache"


def kernel(tree: Path, name: str = "toy", **spec: object) -> KernelSource:
    return KernelSource(name, "x86_64", source=SourceTree(tree=tree, kconfig="tinyconfig", **spec))  # type: ignore[arg-type]


def fix_patch(tree: Path, dest: Path, new: str = "return 100;", subject: str = "file1: return 100") -> Path:
    return patch_file(tree, dest, "file1.c", "return 1;", new, subject)


def test_not_a_git_tree_is_one_line(tmp_path: Path) -> None:
    plain = tmp_path / "linux"
    plain.mkdir()
    (plain / "Makefile").write_text("all:\n")
    with pytest.raises(UsageError, match=r"linux is not a git tree; give a git checkout of the kernel"):
        source.plan(kernel(plain))


def test_unknown_ref_names_it_and_a_near_miss(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    with pytest.raises(UsageError, match=r"unknown ref 'v11' in .*linux \(did you mean 'v1'\?\)"):
        source.plan(kernel(tree, ref="v11"))
    with pytest.raises(UsageError, match=r"range v1\.\.nope.*|unknown ref 'nope'"):
        source.plan(kernel(tree, range="v1..nope"))


def test_a_tree_that_is_not_linux_for_the_arch_is_refused(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    with pytest.raises(UsageError, match=r"not a Linux tree for arm64 \(no arch/arm64\)"):
        source.plan(KernelSource("toy", "arm64", source=SourceTree(tree=tree, kconfig="tinyconfig")))


def test_patch_that_does_not_apply_names_the_patch_and_the_file_of_the_hunk(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    # made against a later version of file2.c than v1 has
    commit_change(tree, "file2.c", "return 2;", "return 20;", "file2: 20")
    bad = patch_file(tree, tmp_path / "0001-file2-200.patch", "file2.c", "return 20;", "return 200;", "file2: 200")
    with pytest.raises(UsageError) as err:
        source.build(kernel(tree, ref="v1", patches=(bad,)))
    text = str(err.value)
    assert "patch 0001-file2-200.patch (file2: 200) does not apply to" in text
    assert "hunk at file2.c:8 fails" in text
    assert text.endswith("rebase it onto that ref, or give the ref it was made for")


def test_patch_ids_are_stable_across_messages_offsets_and_bases(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    one = fix_patch(tree, tmp_path / "a.patch", subject="file1: return 100")
    other_words = fix_patch(tree, tmp_path / "b.patch", subject="file1: make it a hundred")
    commit_change(tree, "file1.c", "/* file1.c, header line 0 */",
                  "/* moved */\n/* down */\n/* file1.c, header line 0 */", "shift f1 down")
    shifted = fix_patch(tree, tmp_path / "c.patch")
    different = fix_patch(tree, tmp_path / "d.patch", new="return 101;")
    ids = {p.name: source.plan(kernel(tree, ref="v1", patches=(p,))).patch_ids[0]
           for p in (one, other_words, different)}
    ids["c.patch"] = source.plan(kernel(tree, ref="main", patches=(shifted,))).patch_ids[0]
    assert ids["a.patch"] == ids["b.patch"] == ids["c.patch"] != ids["d.patch"]


def test_cache_keys_follow_what_determines_the_image(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    fix = fix_patch(tree, tmp_path / "fix.patch")
    base = source.plan(kernel(tree, ref="v1"))
    patched = source.plan(kernel(tree, ref="v1", patches=(fix,)))
    again = source.plan(kernel(tree, name="other-name", ref="main"))  # same tree object, another name
    assert base.request_key() == again.request_key()
    assert base.request_key() != patched.request_key()
    assert base.image_key("c0") != patched.image_key("c0") and base.image_key("c0") != base.image_key("c1")
    defconfig = source.plan(KernelSource("toy", "x86_64", source=SourceTree(tree=tree, kconfig="defconfig")))
    assert defconfig.request_key() != base.request_key()
    # base and patched share one lineage: the patched build starts from the base's objects
    assert base.lineage_key() == patched.lineage_key() != defconfig.lineage_key()


def test_fake_build_is_a_cache_hit_on_the_second_resolution(tmp_path: Path, cache: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    first = source.build(kernel(tree))
    assert not first.hit and first.facts["compiled_objects"] == 4
    log = source.plan(kernel(tree)).lineage_dir() / source.LOG_FILE
    log.unlink()  # a second make would write it again
    second = source.build(kernel(tree))
    assert second.hit and second.image == first.image
    assert not log.exists()
    k = resolve(kernel(tree))
    assert k.release == "6.99.0-toy" and k.image_sha256 and k.config == first.config
    origin = k.origin
    assert origin["source"] == "build" and origin["ref"] == "HEAD"
    assert origin["tree_hash"] == git(tree, "rev-parse", "HEAD^{tree}").strip()
    assert origin["config_sha256"] and origin["compiler"].startswith("gcc") and origin["build_seconds"] >= 0
    assert origin["patches"] == []


def test_fake_patched_build_recompiles_only_the_patched_file(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    fix = fix_patch(tree, tmp_path / "0001-file1-return-100.patch")
    base = source.build(kernel(tree, ref="v1"))
    patched = source.build(kernel(tree, ref="v1", patches=(fix,)))
    assert base.facts["compiled_objects"] == 4
    assert patched.facts["compiled_objects"] == 1  # file1.o only: the lineage kept the others
    assert b"return 100;" in patched.image.read_bytes() and b"return 100;" not in base.image.read_bytes()
    assert patched.facts["patches"] == [{"name": "0001-file1-return-100.patch", "subject": "file1: return 100",
                                         "patch_id": source.plan(kernel(tree, patches=(fix,))).patch_ids[0]}]
    assert patched.facts["patched_tree_hash"] != patched.facts["tree_hash"] == base.facts["tree_hash"]
    # both are cached now: neither builds again, in either order
    assert source.build(kernel(tree, ref="v1")).hit and source.build(kernel(tree, ref="v1", patches=(fix,))).hit


def test_fake_builds_never_touch_the_users_checkout(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    fix = fix_patch(tree, tmp_path / "fix.patch")
    git(tree, "checkout", "-q", "-b", "work")
    (tree / "file3.c").write_text("/* uncommitted work */\n")
    (tree / "notes.txt").write_text("untracked\n")
    for hook in ("post-checkout", "applypatch-msg", "pre-applypatch", "post-applypatch"):  # not run for us
        (tree / ".git/hooks" / hook).write_text(f"#!/bin/sh\necho {hook} >> {tmp_path}/hooks-ran\n")
        (tree / ".git/hooks" / hook).chmod(0o755)
    before, status = _files(tree), git(tree, "status", "--porcelain")
    source.build(kernel(tree, ref="v1", patches=(fix,)))
    assert _files(tree) == before
    assert not (tmp_path / "hooks-ran").exists()
    assert git(tree, "status", "--porcelain") == status
    assert git(tree, "rev-parse", "--abbrev-ref", "HEAD").strip() == "work"
    assert not (tree / ".config").exists() and not list(tree.glob("*.o"))
    worktrees = git(tree, "worktree", "list", "--porcelain")
    assert str(source.plan(kernel(tree)).lineage_dir() / "src") in worktrees


def _files(tree: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file of the checkout (not .git) with its bytes and mtime."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tree.rglob("*")
            if p.is_file() and ".git" not in p.parts}


def test_range_and_mbox_series(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    git(tree, "checkout", "-q", "-b", "fixes", "v1")
    commit_change(tree, "file1.c", "return 1;", "return 100;", "file1: return 100")
    commit_change(tree, "file2.c", "return 2;", "return 200;", "file2: return 200")
    git(tree, "checkout", "-q", "main")
    by_range = source.plan(kernel(tree, range="v1..fixes"))
    assert [p.subject for p in by_range.patches] == ["file1: return 100", "file2: return 200"]
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(tree, "format-patch", "--stdout", "v1..fixes"))
    by_mbox = source.plan(kernel(tree, ref="v1", mbox=mbox))
    assert [p.name for p in by_mbox.patches] == ["series.mbox [1/2]", "series.mbox [2/2]"]
    source.check_series(kernel(tree, ref="v1", mbox=mbox))  # each patch onto the one before: applies
    with pytest.raises(UsageError, match=r"patch series\.mbox \[1/2\] .* hunk at file1\.c:\d+ fails"):
        source.check_series(kernel(tree, ref="fixes", mbox=mbox))  # already in: does not apply again
    assert by_mbox.patch_ids == by_range.patch_ids
    empty = tmp_path / "empty.patch"
    empty.write_text("just words, no diff\n")
    with pytest.raises(UsageError, match=r"patch empty\.patch holds no diff"):
        source.plan(kernel(tree, patches=(empty,)))


def test_fake_plain_diff_applies_with_git_apply(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    (tree / "file0.c").write_text((tree / "file0.c").read_text().replace("return 0;", "return 7;"))
    diff = tmp_path / "seven.diff"
    diff.write_text(git(tree, "diff"))
    git(tree, "checkout", "-q", "--", "file0.c")
    built = source.build(kernel(tree, patches=(diff,)))
    assert b"return 7;" in built.image.read_bytes()
    assert built.facts["patches"][0]["subject"] == "seven.diff"


def test_fake_patched_tree_that_does_not_build_fails_once(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    broken = patch_file(tree, tmp_path / "broken.patch", "file1.c", "int f1(void)", "#error nope\nint f1(void)",
                        "file1: break it")
    with pytest.raises(BuildFailure) as err:
        source.build(kernel(tree, patches=(broken,)))
    assert err.value.summary == "make bzImage exited with 2"
    assert "file1.c:1: error: #error" in err.value.excerpt
    log = source.plan(kernel(tree)).lineage_dir() / source.LOG_FILE
    log.unlink()
    with pytest.raises(BuildFailure):  # remembered: no second make in this process
        source.build(kernel(tree, patches=(broken,)))
    assert not log.exists()


def test_git_missing_objects_are_not_a_traceback(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    subprocess.run(["git", "-C", str(tree), "tag", "-d", "v1"], check=True, capture_output=True)
    with pytest.raises(UsageError, match="unknown ref 'v1'"):
        source.plan(kernel(tree, ref="v1"))


def test_fake_build_stops_with_every_process_it_started_when_asked(tmp_path: Path) -> None:
    tree = toy_tree(tmp_path / "linux")
    slow = patch_file(tree, tmp_path / "slow.patch", "Makefile", "bzImage: $(OBJS)\n",
                      "bzImage: $(OBJS)\n\t@echo '  CC      slow.o' && sleep 3141\n", "toy: a slow link")
    seen: list[str] = []

    def report(status: Status) -> None:
        seen.append(status.step)

    with pytest.raises(BuildInterrupted):
        source.build(kernel(tree, patches=(slow,)), report, stop=lambda: "CC slow.o" in seen)
    assert not _processes_running("sleep\x003141")
    assert not source.lookup(source.plan(kernel(tree, patches=(slow,))))  # nothing cached


def _processes_running(cmdline: str) -> list[int]:
    found = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline in p.read_text():
                found.append(int(p.parent.name))
        except OSError:
            continue
    return found
