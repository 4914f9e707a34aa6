"""FAKE: toy kernel git trees, for unit tests of source builds: real git, a toy Makefile.

The repository is real (git init, commits, tags, branches) and so are the
worktrees, patches, `git am`/`git apply` and patch ids that kharness uses
on it. Only the kernel is a toy: its Makefile has kbuild's outward shape
(make -C TREE O=OUT ARCH=x86_64 tinyconfig | olddefconfig | bzImage, with
kbuild's "  CC      file.o" lines), compiles each `*.c` into OUT by copying
it (a real make rule, so make's own timestamps decide what is rebuilt) and
"links" a bzImage: a fake boot header (tests/fakes/kernels.py) followed by
the objects. A source file containing `#error` does not compile.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.fakes import kernels as fake_kernels

MAKEFILE = """\
# FAKE kernel tree (tests/fakes/trees.py): kbuild's targets, a copy for a compiler.
O ?= .
SRCS := $(sort $(wildcard *.c))
OBJS := $(SRCS:%.c=$(O)/%.o)
.PHONY: tinyconfig defconfig olddefconfig bzImage

tinyconfig defconfig:
\t@mkdir -p $(O) && printf 'CONFIG_TOY=y\\n# CONFIG_FLOPPY is not set\\n' > $(O)/.config

olddefconfig:
\t@test -f $(O)/.config

$(O)/%.o: %.c
\t@! grep -q '^#error' $< || { echo "$<:1: error: #error"; exit 1; }
\t@cp $< $@ && echo "  CC      $*.o"

bzImage: $(OBJS)
\t@mkdir -p $(O)/arch/x86/boot && echo "  LD      vmlinux"
\t@cat image.bin $(OBJS) > $(O)/arch/x86/boot/bzImage && echo "  BUILD   arch/x86/boot/bzImage"
"""

IDENTITY = {"GIT_AUTHOR_NAME": "Toy Dev", "GIT_AUTHOR_EMAIL": "toy@example.invalid",
            "GIT_COMMITTER_NAME": "Toy Dev", "GIT_COMMITTER_EMAIL": "toy@example.invalid",
            "GIT_AUTHOR_DATE": "2025-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00+0000"}


def git(tree: Path, *args: str, stdin: bytes | None = None) -> str:
    import os

    res = subprocess.run(["git", *args], cwd=tree, input=stdin, capture_output=True, check=True,
                         env={**os.environ, **IDENTITY, "LC_ALL": "C"})
    return res.stdout.decode()


def toy_tree(path: Path, files: int = 4, release: str = "6.99.0-toy") -> Path:
    """A git repository with a toy kernel at tag v1 (branch main): Makefile, Kconfig, arch/x86, *.c."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "Makefile").write_text(MAKEFILE)
    (path / "Kconfig").write_text("config TOY\n\tbool \"toy\"\n")
    (path / "arch/x86").mkdir(parents=True)
    (path / "arch/x86/Kconfig").write_text("config X86\n\tdef_bool y\n")
    (path / "image.bin").write_bytes(fake_kernels.bzimage(release))
    for i in range(files):
        head = "".join(f"/* file{i}.c, header line {n} */\n" for n in range(8))
        tail = "".join(f"/* trailer line {n} */\n" for n in range(8))
        (path / f"file{i}.c").write_text(f"{head}int f{i}(void)\n{{\n\treturn {i};\n}}\n{tail}")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "toy kernel v1")
    git(path, "tag", "v1")
    return path


def commit_change(tree: Path, file: str, old: str, new: str, subject: str) -> str:
    """Replace `old` by `new` in `file` and commit it; returns the commit id."""
    p = tree / file
    text = p.read_text()
    assert old in text, f"{old!r} not in {file}"
    p.write_text(text.replace(old, new, 1))
    git(tree, "commit", "-q", "-am", subject)
    return git(tree, "rev-parse", "HEAD").strip()


def patch_file(tree: Path, dest: Path, file: str, old: str, new: str, subject: str) -> Path:
    """A git format-patch file of one change on top of the current HEAD, without moving HEAD."""
    base = git(tree, "rev-parse", "HEAD").strip()
    branch = git(tree, "rev-parse", "--abbrev-ref", "HEAD").strip()
    git(tree, "checkout", "-q", "--detach")
    commit_change(tree, file, old, new, subject)
    dest.write_text(git(tree, "format-patch", "-1", "--stdout"))
    git(tree, "checkout", "-q", branch if branch != "HEAD" else base)
    return dest
