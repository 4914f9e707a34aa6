"""Source kernel builds: cold, warm (a cache hit) and incremental (a one-file patch), side by side.

    .venv/bin/python bench/build_bench.py [--tree DIR] [--kconfig tinyconfig] [--patch FILE] [--keep]

The tree is Debian's linux-source-6.1 (setup.sh --test installs it) made a
git repository in a temporary directory, unless --tree names one; the
patch is tests/data/ab/0001-swiotlb-halve-the-default-pool-size.patch
(kernel/dma/swiotlb.c, one line). Everything runs against a fresh, empty
KHARNESS_CACHE, through kharness's own build path (harness/kernel/source.py):

- cold: the base kernel from nothing: worktree checkout, configure, make;
- warm: the same kernel asked for again, in a new process: the whole
  command's time, and the lookup's own (git rev-parse, patch ids, the
  toolchain's versions, two small files);
- incremental: base plus the one-file patch, in the same build lineage.

Targets: a cache hit under 1 s; the one-file rebuild under 10% of the cold build.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stamp import ROOT, say  # bench/stamp.py (a script's own folder is on sys.path)

SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
PATCH = ROOT / "tests/data/ab/0001-swiotlb-halve-the-default-pool-size.patch"
HIT_TARGET_S = 1.0
INCREMENTAL_TARGET = 0.10

# Run in a new interpreter for the warm figure: what `kharness ab` pays at startup.
WARM = """
import json, sys, time
t0 = time.perf_counter()
from harness.kernel import source
from harness.model import KernelSource, SourceTree
t1 = time.perf_counter()
spec = json.loads(sys.argv[1])
k = KernelSource("base", "x86_64", source=SourceTree(tree=__import__("pathlib").Path(spec["tree"]),
                                                       kconfig=spec["kconfig"]))
b = source.build(k)
t2 = time.perf_counter()
print(json.dumps({"hit": b.hit, "import_s": t1 - t0, "lookup_s": t2 - t1}))
"""


def git_tree(work: Path) -> Path:
    """linux-source-6.1 unpacked and committed (Debian's .gitignore ignores the top level: -f)."""
    t = time.perf_counter()
    subprocess.run(["tar", "-xf", str(SOURCE), "-C", str(work)], check=True)
    (tree,) = [p for p in work.iterdir() if p.name.startswith("linux-source")]
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
    for argv in (["git", "init", "-q"], ["git", "add", "-f", "-A", "."], ["git", "commit", "-q", "-m", "6.1"]):
        subprocess.run(argv, cwd=tree, check=True, env=env)
    print(f"tree: {SOURCE.name} unpacked and committed in {time.perf_counter() - t:.0f} s")
    return tree


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", type=Path, help="a kernel git tree (default: linux-source-6.1 made one)")
    p.add_argument("--kconfig", default="tinyconfig")
    p.add_argument("--patch", type=Path, default=PATCH)
    p.add_argument("--keep", action="store_true", help="keep the temporary tree and cache")
    args = p.parse_args()
    say("bench/build_bench.py")
    work = Path(tempfile.mkdtemp(prefix="kharness-build-bench-"))
    cache = work / "cache"
    os.environ["KHARNESS_CACHE"] = str(cache)
    try:
        tree = args.tree.absolute() if args.tree else git_tree(work)
        from harness.kernel import source
        from harness.model import KernelSource, SourceTree

        def kernel(*patches: Path) -> KernelSource:
            return KernelSource("bench", "x86_64", source=SourceTree(tree=tree, kconfig=args.kconfig,
                                                                     patches=patches))

        t = time.perf_counter()
        cold = source.build(kernel())
        cold_s = time.perf_counter() - t
        assert not cold.hit
        print(f"cold:        {cold_s:7.1f} s  ({cold.facts['compiled_objects']} objects compiled, "
              f"{cold.facts['build_cpu_seconds']} s of CPU; worktree checkout included)")

        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", WARM, json.dumps({"tree": str(tree), "kconfig": args.kconfig})],
                             capture_output=True, text=True, check=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        warm_s = time.perf_counter() - t
        warm = json.loads(out.stdout)
        assert warm["hit"], warm
        print(f"warm:        {warm_s:7.2f} s  (a new process; of it imports {warm['import_s']:.2f} s, "
              f"the lookup {warm['lookup_s']:.3f} s)")

        t = time.perf_counter()
        inc = source.build(kernel(args.patch.absolute()))
        inc_s = time.perf_counter() - t
        assert not inc.hit
        print(f"incremental: {inc_s:7.1f} s  ({inc.facts['compiled_objects']} objects compiled, "
              f"{inc.facts['build_cpu_seconds']} s of CPU) for {args.patch.name}")
        print()
        print(f"cache hit:   {warm_s:.2f} s whole command, {warm['lookup_s']:.3f} s lookup; "
              f"target < {HIT_TARGET_S:g} s: {'ok' if warm_s < HIT_TARGET_S else 'MISSED'}")
        ratio = inc_s / cold_s
        print(f"one-file rebuild / cold build = {inc_s:.1f} / {cold_s:.1f} s = {ratio:.1%}; "
              f"target < {INCREMENTAL_TARGET:.0%}: {'ok' if ratio < INCREMENTAL_TARGET else 'MISSED'}")
        return 0 if warm_s < HIT_TARGET_S and ratio < INCREMENTAL_TARGET else 1
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
