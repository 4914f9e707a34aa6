"""How each metric is judged: its noise floor, and overrides of what metrics.json says.

Each metric in metrics.json carries its unit, kind and direction (the
collectors' catalogue decides them). What compare adds is the *noise floor*:
the smallest change worth calling a change, whatever a t-test says. It is
the larger of a fraction of the baseline mean and an absolute amount in the
metric's unit. The defaults below are per metric-name pattern; a YAML file
(`--rules`) overrides some of their settings for its own patterns:

    alpha: 0.05          # significance level of Welch's t-test
    min_samples: 3       # repetitions needed a side before anything is judged
    metrics:
      "fio.*.iops": {noise: 8%}
      "swiotlb.bounces": {noise_abs: 10, better: lower}
      "slab.minalign": {exact: true}

Patterns are shell globs on the metric name, or on "workload:name" when they
contain a colon. A metric takes the first built-in rule that matches, then
the settings of the first YAML pattern that matches; what that pattern does
not set stays as built in.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, get_args

from harness import document
from harness.document import Kind, Node, did_you_mean, mapping, named
from harness.errors import ConfigError
from harness.model import Better, MetricKind

T = TypeVar("T")


@dataclass(frozen=True)
class MetricRule:
    pattern: str
    noise: float = 0.05  # fraction of |baseline mean|
    noise_abs: float = 0.0  # in the metric's unit
    # Deterministic for a given kernel and boot settings: when neither side
    # scatters, one repetition a side is enough to judge.
    exact: bool = False
    better: Better | None = None  # None: as metrics.json says
    unit: str | None = None
    kind: MetricKind | None = None
    # For a kmalloc size class's bytes: the floor is at least this many objects of
    # the class the metric names (kmalloc-1k: 1024 bytes each), resolved in rule_for.
    noise_objects: int = 0

    def matches(self, workload: str, name: str) -> bool:
        target = f"{workload}:{name}" if ":" in self.pattern else name
        return fnmatch.fnmatchcase(target, self.pattern)

    def floor(self, base_mean: float) -> float:
        """The larger of noise_abs and the fraction of |base_mean| (max() written out: it is
        called for every metric of a JSON comparison, and the builtin costs more than this)."""
        relative = self.noise * abs(base_mean)
        return relative if relative > self.noise_abs else self.noise_abs


# Defaults for the names of harness.collect.catalogue. Why these floors: slab
# figures after boot move by a few slabs from boot to boot (RCU-deferred
# frees, timers, network buffers in flight while slabinfo is read), so 2%, a
# page, or 16 objects of the class (one kmalloc-1k slab is 8 objects, 8 KiB:
# a page alone would call one more of them a change); a delta over a workload hovers around zero,
# so a few pages; swiotlb geometry and minalign are fixed by the kernel and its
# command line; bounce counts follow the I/O done, which fio makes repeatable to
# a few percent; fio latency tails under TCG are the noisiest figures of all.
DEFAULT_RULES: tuple[MetricRule, ...] = (
    MetricRule("slab.minalign", noise=0.0, exact=True),
    MetricRule("mm.page_size", noise=0.0, exact=True),
    MetricRule("swiotlb.present", noise=0.0, exact=True),
    MetricRule("swiotlb.slots", noise=0.0, exact=True),
    MetricRule("slab.kmalloc-*.objects", noise=0.02, noise_abs=64.0),
    MetricRule("slab.kmalloc-*.bytes", noise=0.02, noise_abs=4096.0, noise_objects=16),
    MetricRule("slab.kmalloc.bytes.delta", noise=0.10, noise_abs=4 * 4096.0),
    MetricRule("slab.kmalloc.bytes*", noise=0.01, noise_abs=4096.0),
    MetricRule("slab.whatif.*", noise=0.02),
    MetricRule("slab.kharness_trace.bytes", noise=0.02, noise_abs=4096.0),
    MetricRule("meminfo.*", noise=0.01, noise_abs=16 * 4096.0),
    # counted in USER_HZ ticks (10 ms) and a few ticks in all: under TCG it moves
    # by several from boot to boot; 10 ticks are the floor
    MetricRule("sampler.cpu_seconds", noise=0.10, noise_abs=0.1),
    MetricRule("sampler.*", noise=0.10),
    MetricRule("swiotlb.used", noise=0.05, noise_abs=1.0),
    MetricRule("swiotlb.hiwater", noise=0.05, noise_abs=1.0),
    MetricRule("swiotlb.bounces_per_io", noise=0.05),
    MetricRule("swiotlb.bounces_per_mapping", noise=0.05),
    MetricRule("swiotlb.bounced_bytes_per_io", noise=0.05),
    MetricRule("swiotlb.bounce_size.max", noise=0.0),
    MetricRule("swiotlb.bounce*", noise=0.05, noise_abs=1.0),
    MetricRule("vmstat.allocstall", noise=0.05, noise_abs=1.0),
    # mappings follow the I/O done like bounces; the DMA path is fixed by the cell
    MetricRule("dma.map_failures", noise=0.0, noise_abs=1.0),
    MetricRule("dma.*", noise=0.05, noise_abs=1.0),
    MetricRule("iommu.*", noise=0.0, exact=True),
    # Zones are laid out by RAM size, machine and kernel: exact. Free memory and its
    # breakup move from boot to boot by a few blocks at every order; the indices are
    # fractions printed to 3 decimals. Compaction counts follow what the workload did.
    MetricRule("zone.*.free", noise=0.02, noise_abs=256.0),
    MetricRule("zone.*", noise=0.0, exact=True),
    MetricRule("buddy.*.largest_order", noise=0.0, noise_abs=1.0),
    MetricRule("buddy.*.order-*", noise=0.10, noise_abs=16.0),
    MetricRule("extfrag.*", noise=0.05, noise_abs=0.01),
    MetricRule("vmstat.compact_*", noise=0.10, noise_abs=4.0),
    MetricRule("vmstat.pgmigrate_*", noise=0.10, noise_abs=64.0),
    # GFP_DMA caches are empty in these guests: a new user of a few objects should show.
    MetricRule("slab.dma-kmalloc*.objects", noise=0.02, noise_abs=8.0),
    MetricRule("slab.dma-kmalloc*.bytes", noise=0.02, noise_abs=4096.0),
    MetricRule("slab.gfp_dma_to_pages.*", noise=0.02, noise_abs=4096.0),
    # slub_debug U: a caller's live objects move like the class's (2%, a few objects);
    # which caches store users is the boot's setting.
    MetricRule("slab.store_user_caches", noise=0.0, exact=True),
    MetricRule("slab.callers.*.waste_bytes", noise=0.05, noise_abs=256.0),
    MetricRule("slab.callers.*.sites", noise=0.05, noise_abs=4.0),
    MetricRule("slab.callers.*", noise=0.05, noise_abs=16.0),
    MetricRule("slab.alloc_traces.cost_bytes", noise=0.10, noise_abs=4 * 4096.0),
    MetricRule("slab.alloc_traces.cost_pgalloc", noise=0.10, noise_abs=64.0),
    MetricRule("fio.*.clat_p99*", noise=0.10),
    MetricRule("fio.*", noise=0.05),
    MetricRule("*", noise=0.05),
)


@dataclass(frozen=True)
class Override:
    """A --rules entry: only the settings it gives; the rest stay the built-in ones."""

    pattern: str
    settings: tuple[tuple[str, Any], ...]

    def matches(self, workload: str, name: str) -> bool:
        return MetricRule(self.pattern).matches(workload, name)


@dataclass(frozen=True)
class Rules:
    metrics: tuple[MetricRule, ...] = DEFAULT_RULES
    overrides: tuple[Override, ...] = ()
    alpha: float = 0.05
    min_samples: int = 3
    _cache: dict[str, MetricRule] = field(default_factory=dict, init=False, compare=False, repr=False)

    def rule_for(self, key: str) -> MetricRule:
        """The rule of a metric key ("workload:name"): the first built-in rule that matches
        (the catch-all "*" always does), with the first matching override's settings."""
        rule = self._cache.get(key)
        if rule is None:
            workload, _, name = key.partition(":")
            rule = next(r for r in (*self.metrics, MetricRule("*")) if r.matches(workload, name))
            if rule.noise_objects:
                rule = _objects_floor(rule, name)
            override = next((o for o in self.overrides if o.matches(workload, name)), None)
            if override is not None:
                rule = replace(rule, pattern=override.pattern, **dict(override.settings))
            self._cache[key] = rule
        return rule


_CLASS_SIZE = re.compile(r"kmalloc-([0-9]{1,5})(k?)\.bytes\Z")


def _objects_floor(rule: MetricRule, name: str) -> MetricRule:
    """`rule` with noise_abs raised to noise_objects objects of the size class in `name`
    (slab.kmalloc-1k.bytes: 1024 bytes each); a name with no class keeps the rule."""
    found = _CLASS_SIZE.search(name)
    if found is None:
        return rule
    size = int(found[1]) * (1024 if found[2] else 1)
    return replace(rule, noise_abs=max(rule.noise_abs, float(rule.noise_objects * size)))


RULES = Kind("rules file", "tests/data/compare/rules.yaml", may_be_empty=True)
TOP_KEYS = ("alpha", "min_samples", "metrics")


def load_rules(path: Path) -> Rules:
    """Read a rules YAML file: its metric patterns override the built-in settings."""
    return parse_rules(document.load(path, RULES))


def parse_rules(top: Node) -> Rules:
    """The rules of a located document; ConfigError `file:line: key: problem; fix`."""
    if not isinstance(top.value, dict):
        raise top.error("expected a mapping with alpha, min_samples, metrics", f"see {RULES.example}")
    keys = mapping(top, TOP_KEYS)
    metrics = keys.get("metrics")
    patterns: dict[str, Node] = {}
    if metrics is not None and metrics.value is not None:  # `metrics:` with every pattern commented out
        patterns = named(metrics, "{'fio.*.iops': {noise: 8%}}")
    return Rules(
        overrides=tuple(_override(p, s) for p, s in patterns.items()),
        alpha=_setting(keys.get("alpha"), _alpha, 0.05),
        min_samples=_setting(keys.get("min_samples"), _min_samples, 3),
    )


def _override(pattern: str, node: Node) -> Override:
    settings = mapping(node, _PARSERS, example="{noise: 5%, better: lower}")
    return Override(pattern, tuple((k, _setting(v, _PARSERS[k], None)) for k, v in settings.items()))


def _setting(node: Node | None, parse: Callable[[Any, str], T], default: T) -> T:
    """A setting's value checked by `parse`, whose errors name the node's file:line and key."""
    return default if node is None else parse(node.plain(), node.where)


def parse_percent(value: Any, where: str) -> float:
    """"5%" -> 0.05. A bare number is refused: 5 could mean 5% or 500%."""
    text = str(value).strip()
    if not text.endswith("%"):
        raise ConfigError(f"{value!r} is not a percentage", "write it like 5%", where=where)
    try:
        fraction = float(text[:-1]) / 100.0
    except ValueError:
        raise ConfigError(f"{value!r} is not a percentage", "write it like 5%", where=where) from None
    if not math.isfinite(fraction) or fraction < 0:
        raise ConfigError(f"{value!r} must be a finite percentage >= 0", "write it like 5%", where=where)
    return fraction


def _non_negative(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigError(f"{value!r} must be a number >= 0", "give it in the metric's unit, e.g. 4096",
                          where=where)
    return float(value)


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{value!r} must be true or false", "write true or false", where=where)
    return value


def _choice(value: Any, choices: tuple[str, ...], where: str) -> Any:
    if value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(f"{value!r} is not one of {', '.join(choices)}{hint}",
                          f"write one of {', '.join(choices)}", where=where)
    return value


def _better(value: Any, where: str) -> Any:
    return _choice(value, get_args(Better), where)


def _kind(value: Any, where: str) -> Any:
    return _choice(value, get_args(MetricKind), where)


def _unit(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{value!r} must be a string", 'quote it, e.g. unit: "bytes"', where=where)
    return value


# Each setting a rules file may give, and how its value is checked.
_PARSERS: dict[str, Callable[[Any, str], Any]] = {
    "noise": parse_percent, "noise_abs": _non_negative, "exact": _bool,
    "better": _better, "kind": _kind, "unit": _unit,
}


def _alpha(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ConfigError(f"{value!r} must be a number between 0 and 1", "e.g. 0.05", where=where)
    return float(value)


def _min_samples(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigError(f"{value!r} must be a whole number >= 2",
                          "Welch's t-test needs 2 samples a side", where=where)
    return int(value)
