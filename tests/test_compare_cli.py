"""`kharness compare` end to end on generated result directories with planted changes."""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.compare.cli import gc_paused
from tests.fakes import synth
from tests.fakes.synth import SynthCell, SynthMetric

NOISE = 0.005  # 0.5%: a quiet metric


def metrics(noise: float = NOISE) -> tuple[SynthMetric, ...]:
    return (
        SynthMetric("swiotlb.bounces", 2000.0, noise, "", "counter", "lower", "fio"),
        SynthMetric("fio.randrw.read.iops", 5000.0, noise, "IO/s", "gauge", "higher", "fio"),
        SynthMetric("slab.kmalloc-64.bytes", 100_000.0, noise, "bytes", "gauge", "lower"),
        SynthMetric("slab.minalign", 8.0, 0.0, "bytes", "gauge", "neutral"),
    )


def cell(kernel: str = "trixie-arm64", device: str = "nvme", **kw: Any) -> SynthCell:
    kw.setdefault("metrics", metrics())
    return SynthCell((("device", device), ("kernel", kernel)), **kw)


def two_cells(**kw: Any) -> list[SynthCell]:
    return [cell(device="nvme", **kw), cell(device="virtio-blk", **kw)]


def write(tmp_path: Path, name: str, cells: list[SynthCell], seed: int = 0) -> Path:
    return synth.write_run(tmp_path / name, cells, seed=seed)


def pair(tmp_path: Path, base: list[SynthCell], new: list[SynthCell]) -> tuple[Path, Path]:
    return write(tmp_path, "base", base), write(tmp_path, "new", new, seed=1)


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    rc = main(["compare", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, dict[str, Any]]:
    rc, out, _ = run(capsys, *argv, "--format", "json")
    return rc, json.loads(out)


def metric(doc: dict[str, Any], name: str, device: str = "nvme", n: int = 0) -> dict[str, Any]:
    cells = doc["comparisons"][n]["cell_diffs"]
    found: list[dict[str, Any]] = [m for c in cells if c["axes"].get("device") == device
             for m in c["metrics"] if m["name"] == name]
    assert len(found) == 1, (name, device)
    return found[0]


def test_ten_percent_regression_with_low_noise_is_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    base_dir, new_dir = pair(tmp_path, base, synth.planted(base, "swiotlb.bounces", factor=1.10))
    rc, doc = as_json(capsys, base_dir, new_dir)
    m = metric(doc, "swiotlb.bounces")
    assert rc == 1
    assert m["verdict"] == "regressed"
    assert m["change_pct"] == pytest.approx(10, abs=1.5)
    assert m["p"] < 0.01
    assert (m["baseline"]["n"], m["new"]["n"]) == (3, 3)
    assert doc["regressions"] == 2
    assert metric(doc, "fio.randrw.read.iops")["verdict"] == "unchanged"


def test_same_change_inside_the_noise_is_inconclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noisy = SynthMetric("swiotlb.bounces", 2000.0, 0, "", "counter", "lower", "fio",
                        spread=(-0.15, 0.0, 0.15))
    base = two_cells(metrics=(noisy, *metrics()[1:]))
    new = synth.planted(base, "swiotlb.bounces", factor=1.10)
    rc, doc = as_json(capsys, *pair(tmp_path, base, new))
    m = metric(doc, "swiotlb.bounces")
    assert rc == 0
    assert m["verdict"] == "inconclusive"
    assert m["change_pct"] == pytest.approx(10.0, abs=0.1)
    assert m["p"] >= 0.05
    assert "may be noise" in m["reason"]


def test_too_few_samples_is_inconclusive_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells(reps=1)
    rc, doc = as_json(capsys, *pair(tmp_path, base, synth.planted(base, "*", factor=1.5)))
    m = metric(doc, "swiotlb.bounces")
    assert rc == 0
    assert m["verdict"] == "inconclusive"
    assert m["reason"] == "too few samples: n=1/1, need 3 a side"
    # an exact metric needs a single repetition
    assert metric(doc, "slab.minalign")["verdict"] == "changed"


def test_min_samples_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells(reps=2)
    new = synth.planted(base, "swiotlb.bounces", factor=1.5)
    _, doc = as_json(capsys, *pair(tmp_path, base, new))
    assert metric(doc, "swiotlb.bounces")["verdict"] == "inconclusive"
    _, doc = as_json(capsys, *pair(tmp_path, base, new), "--min-samples", "2")
    assert metric(doc, "swiotlb.bounces")["verdict"] == "regressed"


def test_reversed_directions_are_judged_the_right_way_round(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    new = synth.planted(base, "slab.kmalloc-64.bytes", factor=0.9)  # lower is better
    new = synth.planted(new, "fio.*.iops", factor=0.9)  # higher is better
    rc, doc = as_json(capsys, *pair(tmp_path, base, new))
    assert metric(doc, "slab.kmalloc-64.bytes")["verdict"] == "improved"
    assert metric(doc, "fio.randrw.read.iops")["verdict"] == "regressed"
    assert rc == 1


def test_rules_file_overrides_direction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    new = synth.planted(base, "fio.*.iops", factor=0.9)
    rules = tmp_path / "rules.yaml"
    rules.write_text("metrics:\n  'fio.*.iops': {better: lower}\n")
    rc, doc = as_json(capsys, *pair(tmp_path, base, new), "--rules", rules)
    assert metric(doc, "fio.randrw.read.iops")["verdict"] == "improved"
    assert rc == 0


def test_metric_on_one_side_only_is_new_or_gone_never_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = SynthMetric("swiotlb.bounces.size-8", 300.0, NOISE, "", "counter", "lower", "fio")
    base = [cell()]
    new = [cell(metrics=(*metrics()[1:], extra))]  # bounces gone, size-8 new
    rc, doc = as_json(capsys, *pair(tmp_path, base, new))
    gone = metric(doc, "swiotlb.bounces")
    added = metric(doc, "swiotlb.bounces.size-8")
    assert (gone["verdict"], gone["new"], gone["change_pct"]) == ("gone", None, None)
    assert (added["verdict"], added["baseline"], added["change_pct"]) == ("new", None, None)
    assert rc == 0


def test_cell_on_one_side_only_is_new_or_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [cell(device="nvme"), cell(device="virtio-blk")]
    new = [cell(device="nvme"), cell(device="e1000e")]
    rc, doc = as_json(capsys, *pair(tmp_path, base, new))
    by_device = {c["axes"]["device"]: c for c in doc["comparisons"][0]["cell_diffs"]}
    assert by_device["virtio-blk"]["presence"] == "gone"
    assert by_device["e1000e"]["presence"] == "new"
    assert by_device["e1000e"]["metrics"] == []  # not a row of zeros
    assert doc["comparisons"][0]["cells"] == {"matched": 1, "new": 1, "gone": 1}
    assert rc == 0


def test_status_pass_to_fail_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    new = [cell(device="nvme", statuses=("pass", "fail", "pass")), cell(device="virtio-blk")]
    rc, doc = as_json(capsys, *pair(tmp_path, base, new))
    nvme = next(c for c in doc["comparisons"][0]["cell_diffs"] if c["axes"]["device"] == "nvme")
    assert nvme["status"]["verdict"] == "regressed"
    assert nvme["status"]["new"]["status"] == "fail"
    assert all(m["suspect"] for m in nvme["metrics"])  # figures of a failed repetition
    assert rc == 1


def test_errored_repetitions_do_not_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    new = [cell(device="nvme", statuses=("error",) * 3), cell(device="virtio-blk")]
    rc, doc = as_json(capsys, *pair(tmp_path, base, new))
    m = metric(doc, "swiotlb.bounces")
    assert m["verdict"] == "inconclusive"
    assert "no usable repetition in the new run (error 3/3)" in m["reason"]
    assert rc == 0


def test_unfinished_repetitions_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    new = [cell(device="nvme", unfinished=(2,)), cell(device="virtio-blk")]
    dirs = pair(tmp_path, base, new)
    rc, out, _ = run(capsys, *dirs)
    assert f"new: cells/{new[0].id}/2: unfinished (no cell.json)" in out
    assert rc == 0
    _, doc = as_json(capsys, *dirs)
    assert metric(doc, "swiotlb.bounces")["reason"] == "too few samples: n=3/2, need 3 a side"


def test_cell_listed_in_run_json_but_never_run_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base_dir, new_dir = pair(tmp_path, two_cells(), two_cells())
    run_json = new_dir / "run.json"
    doc = json.loads(run_json.read_text())
    doc["cells"].append({"id": "e1000e-trixie-arm64-deadbeef", "repeat": 3})
    run_json.write_text(json.dumps(doc))
    _, out, _ = run(capsys, base_dir, new_dir)
    assert "e1000e-trixie-arm64-deadbeef: listed in run.json, no repetition on disk" in out


def test_identical_runs_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    rc, out, _ = run(capsys, *pair(tmp_path, base, base))
    assert rc == 0
    assert "nothing changed beyond the noise floors" in out


def test_where_and_metric_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    new = synth.planted(base, "swiotlb.bounces", factor=1.2)
    dirs = pair(tmp_path, base, new)
    rc, doc = as_json(capsys, *dirs, "--where", "device=virtio*", "--metric", "fio.*")
    cells = doc["comparisons"][0]["cell_diffs"]
    assert [c["axes"]["device"] for c in cells] == ["virtio-blk"]
    assert [m["name"] for m in cells[0]["metrics"]] == ["fio.randrw.read.iops"]
    assert rc == 0
    rc, doc = as_json(capsys, *dirs, "--metric", "fio:swiotlb.*")
    assert {m["key"] for c in doc["comparisons"][0]["cell_diffs"] for m in c["metrics"]} == {
        "fio:swiotlb.bounces"
    }
    assert rc == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--where", "devcie=nvme"], "--where devcie: no cell has an axis 'devcie'"),
        (["--where", "device=nmve"], "--where device=nmve selects no cell in any directory; "
                                     "device is one of: nvme, virtio-blk"),
        (["--metric", "swiotl.*"], "--metric 'swiotl.*' matches no metric"),
        (["--ignore-axis", "kernl"], "--ignore-axis kernl: no cell has an axis 'kernl'"),
        (["--alpha", "2"], "--alpha 2.0: must be between 0 and 1"),
        (["--min-samples", "1"], "--min-samples 1: must be 2 or more"),
        (["--rules", "/nonexistent/rules.yaml"], "/nonexistent/rules.yaml: cannot read"),
        (["--baseline", "/nonexistent/run"], "/nonexistent/run: not a directory"),
    ],
)
def test_typos_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                    message: str) -> None:
    rc, _, err = run(capsys, *pair(tmp_path, two_cells(), two_cells()), *argv)
    assert rc == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_where_syntax_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(tmp_path), str(tmp_path), "--where", "kernel"])
    assert exc.value.code == 2
    assert "expected AXIS=GLOB" in capsys.readouterr().err


def test_baseline_among_several_dirs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    a = write(tmp_path, "a", base)
    b = write(tmp_path, "b", synth.planted(base, "swiotlb.bounces", factor=1.2), seed=1)
    c = write(tmp_path, "c", synth.planted(base, "swiotlb.bounces", factor=0.8), seed=2)
    rc, doc = as_json(capsys, a, b, c, "--baseline", b)
    assert doc["baseline"] == str(b)
    assert [x["new"] for x in doc["comparisons"]] == [str(a), str(c)]
    assert metric(doc, "swiotlb.bounces", n=0)["verdict"] == "improved"  # b -> a: down
    assert rc == 0
    rc, doc = as_json(capsys, a, b, c)
    assert [metric(doc, "swiotlb.bounces", n=i)["verdict"] for i in (0, 1)] == [
        "regressed", "improved"]
    assert rc == 1


def test_one_dir_is_not_enough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = write(tmp_path, "a", two_cells())
    rc, _, err = run(capsys, d)
    assert rc == 2
    assert "two result directories" in err


def test_ignore_axis_compares_across_kernels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [cell(kernel="bookworm-arm64", device=d) for d in ("nvme", "virtio-blk")]
    new = [cell(kernel="trixie-arm64", device=d) for d in ("nvme", "virtio-blk")]
    new = synth.planted(new, "slab.kmalloc-64.bytes", factor=0.7)
    dirs = pair(tmp_path, base, new)
    rc, out, _ = run(capsys, *dirs)
    assert "use --ignore-axis kernel" in out
    assert rc == 0
    rc, doc = as_json(capsys, *dirs, "--ignore-axis", "kernel")
    assert metric(doc, "slab.kmalloc-64.bytes")["verdict"] == "improved"
    assert doc["comparisons"][0]["cells"]["matched"] == 2


def test_ignoring_an_axis_that_makes_cells_collide_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = pair(tmp_path, two_cells(), two_cells())
    rc, _, err = run(capsys, *dirs, "--ignore-axis", "device")
    assert rc == 2
    assert "have the same identity" in err


def test_output_file_is_written_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = two_cells()
    dirs = pair(tmp_path, base, synth.planted(base, "swiotlb.bounces", factor=1.2))
    out_file = tmp_path / "reports" / "cmp.md"
    rc, out, _ = run(capsys, *dirs, "--format", "markdown", "-o", out_file)
    assert rc == 1
    assert out == ""
    assert "| cell | metric |" in out_file.read_text()
    assert [p.name for p in out_file.parent.iterdir()] == ["cmp.md"]  # no temporary left


def test_minalign_example_61_against_612(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The flagship question in miniature: what 6.12's minalign 8 saves and costs."""
    bookworm, trixie = synth.minalign_example()
    dirs = pair(tmp_path, bookworm, trixie)
    rc, doc = as_json(capsys, *dirs, "--ignore-axis", "kernel", "--where", "dma_coherent=false")
    assert rc == 1  # bounces from 0: a regression
    assert metric(doc, "slab.kmalloc-128.bytes")["verdict"] == "improved"
    assert metric(doc, "slab.kmalloc-8.bytes")["verdict"] == "new"  # no kmalloc-8 on 6.1
    assert metric(doc, "slab.minalign")["verdict"] == "changed"
    bounces = metric(doc, "swiotlb.bounces")
    assert (bounces["verdict"], bounces["change_pct"]) == ("regressed", None)  # from zero
    assert bounces["baseline"]["mean"] == 0
    rc, out, _ = run(capsys, *dirs, "--ignore-axis", "kernel", "--format", "markdown")
    assert "| +2,2" in out or "| +2,3" in out  # the change in bounces, not a percentage


def test_what_is_made_while_the_collector_is_paused_goes_to_the_oldest_generation() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        made = [[i] for i in range(5000)]
    assert gc.isenabled()
    assert gc.get_count()[0] < 100  # not 5000 objects waiting for a young collection
    assert gc.get_freeze_count() == 0
    assert any(x is made for x in gc.get_objects(generation=2))


def test_objects_frozen_by_someone_else_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            pass
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
