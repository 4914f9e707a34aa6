"""Noise floors per metric pattern, and the YAML that overrides them."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from harness.compare.judge import judge
from harness.compare.rules import MetricRule, Override, Rules, load_rules, parse_percent
from harness.errors import ConfigError


@pytest.mark.parametrize(
    ("key", "pattern"),
    [
        ("boot:slab.minalign", "slab.minalign"),
        ("boot:slab.kmalloc-96.bytes", "slab.kmalloc-*.bytes"),
        ("boot:slab.kmalloc.bytes", "slab.kmalloc.bytes*"),
        ("fio-randrw:swiotlb.bounces.size-8", "swiotlb.bounce*"),
        ("fio-randrw:swiotlb.bounced_bytes", "swiotlb.bounce*"),
        ("fio-randrw:fio.randrw.read.clat_p99_ns", "fio.*.clat_p99*"),
        ("fio-randrw:fio.randrw.read.clat_p99_9_ns", "fio.*.clat_p99*"),
        ("fio-randrw:slab.kmalloc.bytes.delta", "slab.kmalloc.bytes.delta"),
        ("fio-randrw:slab.kmalloc.bytes.max", "slab.kmalloc.bytes*"),
        ("fio-randrw:swiotlb.bounces_per_io", "swiotlb.bounces_per_io"),
        ("fio-randrw:fio.randrw.read.iops", "fio.*"),
        ("boot:something.new", "*"),
    ],
)
def test_every_builtin_metric_has_a_default(key: str, pattern: str) -> None:
    assert Rules().rule_for(key).pattern == pattern


def test_floor_is_the_larger_of_relative_and_absolute() -> None:
    rule = Rules().rule_for("boot:slab.kmalloc-8.bytes")  # 2% or one page
    assert rule.floor(1_000_000) == 20_000
    assert rule.floor(10_000) == 4096


def test_a_size_classs_bytes_floor_is_at_least_sixteen_of_its_objects() -> None:
    """One more kmalloc-1k slab (8 objects, 8 KiB) in every boot of one side is noise: seen
    as network buffers in flight while the boot snapshot read slabinfo (test_ab_build)."""
    rules = Rules()
    assert rules.rule_for("boot:slab.kmalloc-1k.bytes").floor(98_304) == 16 * 1024
    assert rules.rule_for("boot:slab.kmalloc-8k.bytes").floor(1_000_000) == 16 * 8192
    assert rules.rule_for("boot:slab.kmalloc-192.bytes").floor(10_000) == 4096  # a page is more
    assert rules.rule_for("boot:slab.kmalloc-128.bytes").floor(1_000_000) == 20_000  # 2% is more
    assert judge([98_304] * 3, [106_496] * 3, rules.rule_for("boot:slab.kmalloc-1k.bytes"),
                 "lower", 0.05, 3).verdict == "unchanged"
    assert judge([98_304] * 3, [131_072] * 3, rules.rule_for("boot:slab.kmalloc-1k.bytes"),
                 "lower", 0.05, 3).verdict == "regressed"


def test_a_rules_file_still_sets_a_size_classs_floor() -> None:
    rules = Rules(overrides=(Override("slab.kmalloc-1k.bytes", (("noise_abs", 0.0),)),))
    assert rules.rule_for("boot:slab.kmalloc-1k.bytes").floor(98_304) == pytest.approx(0.02 * 98_304)


def test_the_samplers_own_cpu_time_needs_ten_ticks_to_count() -> None:
    """USER_HZ ticks of 10 ms: 0.04 s against 0.06 s (seen in one ab run) is noise."""
    rule = Rules().rule_for("idle:sampler.cpu_seconds")
    assert rule.pattern == "sampler.cpu_seconds" and rule.floor(0.04) == pytest.approx(0.1)
    assert Rules().rule_for("idle:sampler.samples").pattern == "sampler.*"


def test_yaml_overrides_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "alpha: 0.01\nmin_samples: 5\nmetrics:\n"
        "  'fio.*.iops': {noise: 8%}\n"
        "  'net:swiotlb.bounces': {noise_abs: 10, better: higher, unit: bounces}\n"
    )
    rules = load_rules(path)
    assert (rules.alpha, rules.min_samples) == (0.01, 5)
    assert rules.rule_for("fio-randrw:fio.randrw.read.iops").noise == pytest.approx(0.08)
    net = rules.rule_for("net:swiotlb.bounces")
    assert (net.noise_abs, net.better, net.unit) == (10.0, "higher", "bounces")
    # The workload-qualified pattern does not catch other workloads; the default does.
    assert rules.rule_for("boot:swiotlb.bounces").pattern == "swiotlb.bounce*"


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("metrics:\n  'fio.*': {noise: 5}\n", "metrics.fio.*.noise", "not a percentage"),
        ("metrics:\n  'fio.*': {nosie: 5%}\n", "metrics.fio.*", "unknown key 'nosie'"),
        ("metrics:\n  'fio.*': {better: up}\n", "metrics.fio.*.better", "not one of"),
        ("metrics:\n  'fio.*': {noise_abs: -1}\n", "metrics.fio.*.noise_abs", ">= 0"),
        ("alpha: 5\n", "alpha", "between 0 and 1"),
        ("min_samples: 1\n", "min_samples", ">= 2"),
        ("thresholds: {}\n", "rules.yaml", "unknown key 'thresholds'"),
        ("[1, 2]\n", "rules.yaml", "expected a mapping"),
        ("metrics: {a: [\n", "rules.yaml", "not valid YAML"),
    ],
)
def test_bad_yaml_names_the_key(tmp_path: Path, text: str, where: str, problem: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    assert where in str(err.value)
    assert problem in str(err.value)


def test_duplicate_pattern_is_refused(tmp_path: Path) -> None:
    """YAML would silently keep the second: a rule the user wrote would never apply."""
    path = tmp_path / "rules.yaml"
    path.write_text("metrics:\n  'fio.*': {noise: 8%}\n  'fio.*': {noise: 2%}\n")
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    assert f"{path}:3: metrics: duplicate key 'fio.*' (first on line 2)" in str(err.value)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("alpha: 0.05\nmetrics:\n  'fio.*': {noise_ab: 10}\n", ":3: metrics.fio.*.noise_ab",
         "unknown key 'noise_ab' (did you mean 'noise_abs'?); allowed here: noise, noise_abs,"),
        ("alpah: 0.01\n", ":1: alpah", "unknown key 'alpah' (did you mean 'alpha'?)"),
        ("metrics:\n  'fio.*': {better: lowr}\n", ":2: metrics.fio.*.better", "(did you mean 'lower'?)"),
    ],
)
def test_typo_key_names_its_line(tmp_path: Path, text: str, where: str, problem: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    assert f"{path}{where}: " in str(err.value) and problem in str(err.value)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("metrics:\n  'fio.*': 8%\n", ":2: metrics.fio.*", "must be a mapping, not a string '8%'"),
        ("metrics: [fio.*]\n", ":1: metrics", "must be a mapping, not a list"),
        ("min_samples: three\n", ":1: min_samples", "'three' must be a whole number >= 2"),
        ("metrics:\n  x: {exact: yes please}\n", ":2: metrics.x.exact", "must be true or false"),
    ],
)
def test_wrong_type_names_its_line(tmp_path: Path, text: str, where: str, problem: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_rules(path)
    message = str(err.value)
    assert f"{path}{where}: " in message and problem in message
    assert message.count("; ") == 1, "one problem, then one fix"


def test_empty_rules_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("# nothing overridden yet\n")
    assert load_rules(path) == Rules()


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(tmp_path / "nope.yaml")


def test_parse_percent() -> None:
    assert parse_percent("2.5%", "x") == pytest.approx(0.025)
    with pytest.raises(ConfigError):
        parse_percent("abc%", "x")


def test_every_catalogued_metric_gets_a_specific_floor() -> None:
    """Each pattern of the collectors' catalogue meets a rule of its own, not the catch-all
    (fio.* and vmstat.* patterns share one per family)."""
    from harness.collect.catalogue import CATALOGUE

    rules = Rules()
    for spec in CATALOGUE:
        name = spec.pattern.replace("*", "x")
        if name.startswith("vmstat.") and name != "vmstat.allocstall":
            continue  # neutral I/O counters: the 5% catch-all is their floor
        assert rules.rule_for(f"w:{name}").pattern != "*", spec.pattern


def test_example_rules_file() -> None:
    rules = load_rules(Path(__file__).parent / "data" / "compare" / "rules.yaml")
    assert rules.rule_for("fio-nvme:fio.randread.read.iops").noise == pytest.approx(0.08)
    assert rules.rule_for("fio-nvme:swiotlb.bounces").noise_abs == 10
    assert rules.rule_for("boot:swiotlb.bounces").noise_abs == 1  # the built-in default
    objects = rules.rule_for("boot:slab.kmalloc-64.objects")
    assert objects.better == "lower"
    assert (objects.noise, objects.noise_abs) == (0.02, 64.0)  # not set: as built in


@pytest.mark.parametrize("noise_abs", [0.0, 4096.0, -1.0, math.nan])
@pytest.mark.parametrize("mean", [0.0, -0.0, 1e5, -3.5, 1e30, math.inf, math.nan])
def test_floor_is_the_larger_of_its_two_parts(noise_abs: float, mean: float) -> None:
    """floor() is max() written out: the same float, whichever part wins, NaN included."""
    rule = MetricRule("x", noise=0.02, noise_abs=noise_abs)
    expected = max(noise_abs, 0.02 * abs(mean))
    assert struct.pack("<d", rule.floor(mean)) == struct.pack("<d", expected)
