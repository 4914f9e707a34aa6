"""`kharness run --resume DIR`: finish a run that was interrupted or killed.

A repetition is finished iff its cell.json exists (cell.py writes it last),
so resuming means: run every repetition of the run's cells (its shard's,
if it was a shard) that has none, after removing whatever partial files
the cut-off attempt left, and rebuild run.json, junit.xml and report.html
over old and new results together. Only the same config may continue a
run (its sha256 is in run.json): cells of another config would not line up.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness import results
from harness.config.load import Config
from harness.errors import UsageError
from harness.machine.guest import BootFn
from harness.run import runner, shard
from harness.run.parallel import Stop
from harness.run.progress import Progress, Silent
from harness.run.runner import RunOptions, RunOutcome


def recorded_config(run_dir: Path) -> Path:
    """The config path run.json names, for `--resume DIR` without a CONFIG."""
    doc = results.load_run(run_dir).run
    path = doc.get("config_path")
    if not isinstance(path, str):
        raise UsageError(f"{run_dir / results.RUN_FILE}: names no config", "give the CONFIG as well")
    return Path(path)


def check_same_config(doc: dict[str, Any], config: Config, run_dir: Path) -> None:
    """Byte for byte: an edited config may have other cells, ids, expectations or shards."""
    recorded = (doc.get("config") or {}).get("sha256")
    if recorded != config.sha256:
        raise UsageError(
            f"{config.path} is not the config {run_dir} was run with "
            f"(sha256 {config.sha256[:12]}, run.json has {str(recorded)[:12]})",
            "resume with the same config file, unchanged, or start a new run",
        )


def shard_of(doc: dict[str, Any], asked: shard.Shard | None) -> shard.Shard | None:
    """The run's own shard; --shard, if given too, must be the same."""
    rec = doc.get("shard")
    recorded = shard.Shard(int(rec["index"]), int(rec["count"])) if isinstance(rec, dict) else None
    if asked is not None and asked != recorded:
        raise UsageError(f"--shard {asked} but the run was {recorded or 'not sharded'}",
                         "leave --shard out when resuming: the run's own shard is used")
    return recorded


def resume(config: Config, run_dir: Path, opts: RunOptions, boot: BootFn, progress: Progress | None = None,
           stop: Stop | None = None) -> RunOutcome:
    """Run what `run_dir` lacks, then rebuild its run.json and reports over old and new results."""
    loaded = results.load_run(run_dir)  # also refuses a corrupt cell.json, naming it
    doc = loaded.run
    if doc.get("merged_from"):
        raise UsageError(f"{run_dir} is a merge of several runs", "resume the shard runs, then merge again")
    check_same_config(doc, config, run_dir)
    part = shard_of(doc, opts.shard)
    cells = shard.select(config.cells, part)
    done = {(r.record.cell_id, r.record.rep) for r in loaded.reps}
    todo = [(c, r) for c in cells for r in range(c.repeat) if (c.id, r) not in done]
    for c, r in todo:  # partial files of a cut-off attempt would mix with the new ones
        shutil.rmtree(results.rep_dir(run_dir, c.id, r), ignore_errors=True)
    doc["resumed"] = [*doc.get("resumed", []), {"at": runner.now_iso(), "host": runner.host_facts(),
                                                 "repetitions": len(todo)}]
    doc["cells"] = [runner.cell_entry(c, None) for c in cells]
    return runner.execute(config, cells, run_dir, doc, todo, boot, opts, progress or Silent(), stop or Stop())
