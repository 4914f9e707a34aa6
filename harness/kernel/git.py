"""The git side of a source kernel: a tree at a ref, a patch series, a worktree to apply it in.

Nothing here writes to the user's checkout. Patches are applied in a
`git worktree` that kharness owns (under the cache), detached at the ref:
the user's branch, index and working files stay as they are; only the
repository's object store gains the patched commits and `.git/worktrees`
its entry (`git worktree prune` forgets it once the cache is cleaned).

A patch is identified by `git patch-id --stable`: the same change keeps
its id when its commit message, its line offsets or its base move, so a
rebased series that changes nothing hits the build cache.

Every complaint is the user's input and says which one: not a git tree,
an unknown ref, a file that holds no patch, a patch that does not apply
(with the file and line of the failing hunk).
"""

from __future__ import annotations

import email.header
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.document import did_you_mean
from harness.errors import InfraError, UsageError

GIT_TIMEOUT = 600.0
# Commits kharness makes in its worktrees: the same patches on the same base
# give the same commit, whoever applies them when.
IDENTITY = {
    "GIT_AUTHOR_NAME": "kharness", "GIT_AUTHOR_EMAIL": "kharness@localhost",
    "GIT_COMMITTER_NAME": "kharness", "GIT_COMMITTER_EMAIL": "kharness@localhost",
    "GIT_AUTHOR_DATE": "1970-01-01T00:00:00+0000", "GIT_COMMITTER_DATE": "1970-01-01T00:00:00+0000",
}
# The user's hooks (post-checkout, applypatch-msg, ...) are not run for kharness's worktrees,
# nor an automatic gc of the user's repository in the middle of a build.
SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "gc.auto=0")
_FAILED_HUNK = re.compile(r"^error: patch failed: (.+):(\d+)$", re.M)
_NOT_IN_TREE = re.compile(r"^error: (.+?): (?:does not exist in index|No such file or directory|"
                          r"already exists in (?:index|working directory))$", re.M)
_SUBJECT_PREFIX = re.compile(r"^\s*(\[[^]]*\]\s*)+")


@dataclass(frozen=True)
class Repo:
    """A git repository as the user named it, and its common git directory (its identity)."""

    path: Path  # what the user gave: a work tree or a bare repository
    git_dir: Path  # absolute: shared by every worktree of the repository


@dataclass(frozen=True)
class Patch:
    """One patch of a series, as it is applied."""

    name: str  # what the user calls it: fix.patch, series.mbox [2/3], the commit's short id
    subject: str
    patch_id: str  # git patch-id --stable
    text: bytes  # one mail for git am, or a plain diff for git apply
    mail: bool


def git(args: list[str], cwd: Path, *, stdin: bytes | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """Run git; a missing git binary is the host's problem."""
    if shutil.which("git") is None:
        raise InfraError("no git on this host", "apt-get install git")
    full_env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        res = subprocess.run(["git", *SAFE, *args], cwd=cwd, input=stdin, capture_output=True, env=full_env,
                             timeout=GIT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"git {args[0]} in {cwd} took more than {GIT_TIMEOUT:.0f} s",
                         "check the repository (git fsck) and the disk") from exc
    if check and res.returncode != 0:
        raise InfraError(f"git {' '.join(args[:2])} in {cwd} failed: {_first_error(res.stderr)}",
                         "check the repository (git status, git fsck)")
    return res


def _first_error(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    return (next((ln for ln in lines if ln.startswith(("error", "fatal"))), lines[0]) if lines else "")[:200]


def open_repo(tree: Path) -> Repo:
    """The git repository at `tree` (a work tree or a bare repository), or a UsageError."""
    tree = tree.expanduser().absolute()
    if not tree.is_dir():
        raise UsageError(f"kernel tree {tree} is not a directory", "give the top of a git checkout of the kernel")
    res = git(["rev-parse", "--git-common-dir"], tree, check=False)
    if res.returncode != 0:
        raise UsageError(f"{tree} is not a git tree",
                         "give a git checkout of the kernel (git clone), or run git init and commit an "
                         "unpacked source tarball first")
    common = Path(res.stdout.decode().strip())
    return Repo(tree, (tree / common).resolve() if not common.is_absolute() else common.resolve())


def commit_of(repo: Repo, ref: str) -> str:
    """The full commit id `ref` names; an unknown ref is the user's typo."""
    if not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise UsageError(f"ref {ref!r} is not a git ref", "give a commit, tag or branch, e.g. v6.12 or HEAD")
    res = git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], repo.path, check=False)
    if res.returncode != 0:
        names = git(["for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags"], repo.path,
                    check=False).stdout.decode().split()
        raise UsageError(f"unknown ref {ref!r} in {repo.path}{did_you_mean(ref, names)}",
                         "give a commit, tag or branch of that tree (git log --oneline, git tag)")
    return res.stdout.decode().strip()


def tree_of(repo: Repo, commit: str) -> str:
    """The tree object of a commit: what the sources are, whatever the history."""
    return git(["rev-parse", f"{commit}^{{tree}}"], repo.path).stdout.decode().strip()


def has_path(repo: Repo, commit: str, path: str) -> bool:
    return git(["cat-file", "-e", f"{commit}:{path}"], repo.path, check=False).returncode == 0


def short(commit: str) -> str:
    return commit[:12]


# --- the series -------------------------------------------------------------------------------


def series_from_files(repo: Repo, files: tuple[Path, ...]) -> list[Patch]:
    """Patch files in order: a mail or mbox (git format-patch, b4) is split into its mails."""
    out: list[Patch] = []
    for path in files:
        out += _from_file(repo, path, path.name)
    return out


def series_from_mbox(repo: Repo, mbox: Path) -> list[Patch]:
    return _from_file(repo, mbox, mbox.name)


def series_from_range(repo: Repo, spec: str) -> list[Patch]:
    """The commits of a range A..B (oldest first), as git format-patch writes them."""
    start, sep, end = spec.partition("..")
    if not sep or not start or not end or end.startswith("."):
        raise UsageError(f"range {spec!r} is not A..B",
                         "e.g. range: v6.12..my-fix (the commits of my-fix not in v6.12)")
    a, b = commit_of(repo, start), commit_of(repo, end)
    listed = git(["rev-list", "--reverse", "--parents", f"{a}..{b}"], repo.path).stdout.decode().split("\n")
    commits = [line.split() for line in listed if line.strip()]
    if not commits:
        raise UsageError(f"range {spec} has no commits", f"check the order: the commits of {end} not in {start}")
    merges = [c[0] for c in commits if len(c) > 2]
    if merges:
        raise UsageError(f"range {spec} has merge commits ({short(merges[0])})",
                         "give a linear range, or the series as patch files")
    out: list[Patch] = []
    for fields in commits:
        commit = fields[0]
        text = git(["format-patch", "-1", "--stdout", "--no-signature", "--keep-subject", commit],
                   repo.path).stdout
        subject = git(["log", "-1", "--format=%s", commit], repo.path).stdout.decode().strip()
        out.append(Patch(short(commit), subject, _patch_id(repo, text, short(commit)), text, True))
    return out


def _from_file(repo: Repo, path: Path, name: str) -> list[Patch]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read patch {path} ({exc.strerror})", "check patches:") from exc
    if not _is_mail(data):
        return [Patch(name, name, _patch_id(repo, data, name), data, False)]
    mails = _split_mails(repo, data, name)
    many = len(mails) > 1
    return [Patch(f"{name} [{i}/{len(mails)}]" if many else name, _subject(m) or name,
                  _patch_id(repo, m, name), m, True) for i, m in enumerate(mails, 1)]


def _is_mail(data: bytes) -> bool:
    head = data.lstrip()[:2048]
    return head.startswith(b"From ") or re.match(rb"(?i)(from|subject|date|message-id):", head) is not None


def _split_mails(repo: Repo, data: bytes, name: str) -> list[bytes]:
    if not data.lstrip().startswith(b"From "):
        data = b"From kharness Mon Sep 17 00:00:00 2001\n" + data.lstrip()
    with tempfile.TemporaryDirectory(prefix="kharness-mails-") as tmp:
        box, out = Path(tmp) / "mbox", Path(tmp) / "out"
        box.write_bytes(data)
        out.mkdir()
        res = git(["mailsplit", f"-o{out}", "--keep-cr", str(box)], repo.path, check=False)
        mails = [p.read_bytes() for p in sorted(out.iterdir())]
        if res.returncode != 0 or not mails:
            raise UsageError(f"patch {name} is not a readable mailbox ({_first_error(res.stderr)})",
                             "give git format-patch output, an mbox (b4 am), or a plain diff")
        return mails


def _subject(mail: bytes) -> str:
    """The Subject header (unfolded, decoded), without its [PATCH ...] prefix."""
    head = mail.split(b"\n\n", 1)[0].decode(errors="replace")
    m = re.search(r"(?im)^subject:[ \t]*(.*(?:\n[ \t].*)*)", head)
    if not m:
        return ""
    raw = re.sub(r"\n[ \t]+", " ", m.group(1)).strip()
    try:
        text = str(email.header.make_header(email.header.decode_header(raw)))
    except (UnicodeError, LookupError, email.errors.HeaderParseError):
        text = raw
    return _SUBJECT_PREFIX.sub("", text).strip()


def _patch_id(repo: Repo, text: bytes, name: str) -> str:
    out = git(["patch-id", "--stable"], repo.path, stdin=text).stdout.decode().split()
    if not out:
        raise UsageError(f"patch {name} holds no diff", "give a file made by git format-patch or diff -u")
    return out[0]


# --- the worktree -----------------------------------------------------------------------------


def worktree(repo: Repo, path: Path, commit: str) -> Path:
    """A detached worktree of `repo` at `path` (made if absent or another repository's)."""
    if path.is_dir():
        res = git(["rev-parse", "--git-common-dir"], path, check=False)
        if res.returncode == 0 and (path / Path(res.stdout.decode().strip())).resolve() == repo.git_dir:
            return path
        shutil.rmtree(path)
    git(["worktree", "prune"], repo.path, check=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    git(["worktree", "add", "--detach", "--force", "--no-checkout", str(path), commit], repo.path)
    return path


def switch(path: Path, commit: str) -> None:
    """Check out `commit` in a kharness worktree: only files that differ are rewritten,
    so make recompiles only what changed since the last build there."""
    if (Path(_git_path(path, "rebase-apply"))).exists():
        git(["am", "--abort"], path, check=False)
    git(["checkout", "--detach", "--force", "--quiet", commit], path)
    git(["clean", "-ffdxq"], path)


def _git_path(path: Path, name: str) -> str:
    res = git(["rev-parse", "--git-path", name], path)
    p = Path(res.stdout.decode().strip())
    return str(p if p.is_absolute() else path / p)


def head(path: Path) -> str:
    return git(["rev-parse", "HEAD"], path).stdout.decode().strip()


def apply(path: Path, patches: list[Patch], onto: str) -> str:
    """Apply the series on the checked-out commit; returns the patched commit.

    A patch that does not apply is the user's input (UsageError, exit 2):
    the message names the patch and the file (and line) of the failing hunk.
    """
    for patch in patches:
        if patch.mail:
            res = git(["am", "--quiet", "--committer-date-is-author-date", "--keep-cr"], path,
                      stdin=patch.text, env=IDENTITY, check=False)
        else:
            res = git(["apply", "--index", "--whitespace=nowarn"], path, stdin=patch.text, check=False)
            if res.returncode == 0:
                res = git(["commit", "--quiet", "--no-verify", "--allow-empty", "-m", patch.subject], path,
                          env=IDENTITY, check=False)
        if res.returncode != 0:
            why = _why_not(res.stderr.decode(errors="replace") + res.stdout.decode(errors="replace"))
            switch(path, onto)
            raise UsageError(f"patch {patch.name} ({patch.subject}) does not apply to {short(onto)}: {why}",
                             "rebase it onto that ref, or give the ref it was made for")
    return head(path)


def check_applies(repo: Repo, onto: str, patches: list[Patch]) -> None:
    """Does the series apply onto `onto`? Asked of a temporary index, without a checkout: so a
    patch that does not apply is found before anything is built (the same message as apply's)."""
    with tempfile.TemporaryDirectory(prefix="kharness-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(["read-tree", onto], repo.path, env=env)
        for patch in patches:
            res = git(["apply", "--cached", "--whitespace=nowarn"], repo.path, stdin=patch.text, env=env,
                      check=False)
            if res.returncode != 0:
                why = _why_not(res.stderr.decode(errors="replace"))
                raise UsageError(f"patch {patch.name} ({patch.subject}) does not apply to {short(onto)}: {why}",
                                 "rebase it onto that ref, or give the ref it was made for")


def _why_not(output: str) -> str:
    m = _FAILED_HUNK.search(output)
    if m:
        return f"hunk at {m.group(1)}:{m.group(2)} fails"
    m = _NOT_IN_TREE.search(output)
    if m:
        return f"{m.group(1)} does not fit the tree ({m.group(0).split(': ')[-1]})"
    return _first_error(output.encode()) or "git could not apply it"


def pinned(repo: Repo, ref: str, commit: str) -> str:
    """`ref` if it names its commit for good (a tag, a commit id), else the commit id:
    for a command that must build the same thing tomorrow (HEAD and branches move)."""
    if re.fullmatch(r"[0-9a-f]{7,40}", ref) and commit.startswith(ref):
        return ref
    if git(["show-ref", "--verify", "--quiet", f"refs/tags/{ref}"], repo.path, check=False).returncode == 0:
        return ref
    return short(commit)
