"""The answer of `kharness ab`: ab.json for machines, report.md for a review, report.txt for a list.

The comparison is `kharness compare`'s (harness/compare: cells matched by
their axes with the kernel left out, Welch's t-test, noise floors, the same
verdicts); this module only says it the way a reply on a kernel list does:
what was measured on what (kernels, ref, patch subjects, QEMU machine,
accelerator), what changed beyond noise with its evidence (means, spread,
n, p), what did not, and the command that reproduces it. report.txt is
plain text no wider than 72 columns (harness/compare/mail.py's wrapping).

An exact metric (swiotlb.slots, slab.minalign) is judged by compare from
its values alone; with two or more repetitions a side its evidence here
also gets Welch's p, which for values with no spread on either side is 0:
every boot of one kernel said one thing, every boot of the other another.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__, atomic, results
from harness.ab.plan import AB_FILE, FORMAT, Question, Side
from harness.compare import markdown
from harness.compare.diff import CellDiff, Comparison, MetricDiff
from harness.compare.mail import MAIL_WIDTH, clean, wrap
from harness.compare.stats import Summary, welch
from harness.compare.table import number, p_text, percent_text
from harness.errors import EXIT_FAILURES, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, UsageError

CHANGED = ("regressed", "improved", "changed")
KEY_METRICS = ("slab.minalign", "slab.kmalloc.bytes", "meminfo.slab", "meminfo.sunreclaim", "swiotlb.slots",
               "swiotlb.bounces", "swiotlb.bounced_bytes", "swiotlb.bounces_per_io")
TAIL_LINES = 25


@dataclass(frozen=True)
class Finding:
    """One metric of one cell, with its evidence."""

    cell: str
    metric: str  # workload:name
    unit: str
    verdict: str
    reason: str
    base: Summary | None
    new: Summary | None
    change_pct: float | None
    p: float | None
    p_note: str = ""

    def to_json(self) -> dict[str, Any]:
        def side(s: Summary | None) -> dict[str, Any] | None:
            return s._asdict() if s else None

        return {"cell": self.cell, "metric": self.metric, "unit": self.unit, "verdict": self.verdict,
                "reason": self.reason, "base": side(self.base), "patched": side(self.new),
                "change_pct": self.change_pct, "p": self.p, "p_note": self.p_note}


def findings(cmp: Comparison) -> list[Finding]:
    out: list[Finding] = []
    for cell in cmp.cells:
        label = cell_label(cell)
        if cell.presence == "both" and cell.status.verdict != "unchanged":
            out.append(Finding(label, "(status)", "", cell.status.verdict, cell.status.reason, None, None, None, None))
        for m in cell.metrics:
            out.append(_finding(label, m))
    return out


def _finding(label: str, m: MetricDiff) -> Finding:
    b, n = m.summary("base"), m.summary("new")
    p, note = m.judgement.p, ""
    if p is None and m.judgement.verdict in CHANGED and b and n and b.n >= 2 and n.n >= 2:
        p = welch(b, n).p
        note = "no spread on either side" if b.stddev == n.stddev == 0 else ""
    reason = m.judgement.reason + ("; includes failed repetitions" if m.suspect else "")
    return Finding(label, m.key, m.info.unit, m.judgement.verdict, reason, b, n, m.percent(), p, note)


def cell_label(cell: CellDiff) -> str:
    """The cell without its kernel: the settings off their defaults, as in the slug."""
    kernel = str(cell.axes.get("kernel", ""))
    slug = cell.slug
    for prefix in (kernel, kernel.lower().replace("_", "-")):
        if prefix and slug.startswith(prefix + "."):
            return slug[len(prefix) + 1:]
        if prefix and slug == prefix:
            return "defaults"
    return slug


# --- what was measured on what ---------------------------------------------------------------


def side_facts(side: Side) -> dict[str, Any]:
    """From the side's first finished repetition and run.json: kernel, QEMU, accelerator."""
    facts: dict[str, Any] = {"role": side.role, "kernel": side.kernel.name, "results": side.run_dir.name}
    try:
        loaded = results.load_run(side.run_dir)
    except Exception:  # nothing ran (a build failed): the build facts are all there is
        return facts
    tools = loaded.run.get("tools") or {}
    for rep in loaded.reps:
        kernel, qemu = rep.record.kernel, rep.record.qemu
        argv = [str(a) for a in qemu.get("argv") or []]
        binary = argv[0].rsplit("/", 1)[-1] if argv else ""
        facts |= {
            "release": kernel.get("release"), "image_sha256": kernel.get("image_sha256"),
            "origin": kernel.get("origin") or {}, "accelerator": qemu.get("accelerator"),
            "accelerator_reason": kernel.get("accelerator_reason"),
            "machine": argv[argv.index("-M") + 1] if "-M" in argv[:-1] else "",
            "qemu": binary, "qemu_version": tools.get(binary, ""),
        }
        break
    facts["statuses"] = _status_counts(r.record.status for r in loaded.reps)
    problem = next((r for r in loaded.reps if r.record.status != "pass"), None)
    if problem is not None:
        facts["first_problem"] = f"{problem.record.slug}#{problem.record.rep}: {problem.record.reason}"[:300]
    return facts


def _status_counts(statuses: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in statuses:
        out[s] = out.get(s, 0) + 1
    return out


# --- the verdict -----------------------------------------------------------------------------


@dataclass
class Answer:
    exit_code: int
    headline: str  # one line: what the command prints last
    comparison: Comparison | None = None
    found: list[Finding] | None = None
    build_failure: dict[str, Any] | None = None  # role, summary, log, tail


def judge(cmp: Comparison, statuses: set[str], interrupted: str) -> Answer:
    found = findings(cmp)
    regressed = [f for f in found if f.verdict == "regressed"]
    if interrupted:
        return Answer(EXIT_INTERRUPTED, f"interrupted ({interrupted})", cmp, found)
    if statuses & {"error", "interrupted"}:
        return Answer(EXIT_INFRA, "some boots failed for reasons of the host, not the kernel (see the result "
                                  "directories); the figures are incomplete", cmp, found)
    if regressed:
        return Answer(EXIT_FAILURES, f"{len(regressed)} regression(s): "
                      + ", ".join(f"{f.metric}" for f in regressed[:3]) + ("..." if len(regressed) > 3 else ""),
                      cmp, found)
    changed = [f for f in found if f.verdict in CHANGED]
    return Answer(EXIT_OK, f"no regression; {len(changed)} change(s) beyond noise", cmp, found)


# --- writing ---------------------------------------------------------------------------------


def write(out: Path, q: Question, doc: dict[str, Any], answer: Answer) -> None:
    """ab.json, report.md, report.txt: everything from `doc` (the facts) and `answer`."""
    facts = {side.role: side_facts(side) for side in q.sides}
    doc["sides"] = {role: {**doc.get("sides", {}).get(role, {}), **f} for role, f in facts.items()}
    doc["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    doc["exit"] = answer.exit_code
    doc["headline"] = answer.headline
    if answer.found is not None:
        doc["findings"] = [f.to_json() for f in answer.found if f.verdict != "unchanged"]
        doc["unchanged"] = sum(1 for f in answer.found if f.verdict == "unchanged")
    if answer.build_failure is not None:
        doc["build_failure"] = answer.build_failure
    atomic.write_json(out / AB_FILE, doc)
    atomic.write_text(out / "report.txt", text_report(q, doc, answer))
    atomic.write_text(out / "report.md", markdown_report(q, doc, answer))


def text_report(q: Question, doc: dict[str, Any], answer: Answer, width: int = MAIL_WIDTH) -> str:
    lines: list[str] = []

    def para(text: str, indent: str = "", first: str | None = None) -> None:
        lines.extend(wrap(text, width, indent, first))

    subjects = _subjects(doc)
    title = subjects[0] if len(subjects) == 1 else f"{len(subjects)} patches" if subjects else q.patched.kernel.name
    para(f"kharness ab: {title}", "  ", "")
    lines.append("")
    lines += _kernels_text(q, doc, width)
    lines.append("")
    lines += _measured_text(q, doc, width)
    lines.append("")
    if answer.build_failure is not None:
        bf = answer.build_failure
        para(f"The {bf['role']} kernel does not build: {bf['summary']}. The last lines of make's output "
             f"({bf['log']}):")
        lines.append("")
        lines += [line for raw in str(bf.get("tail", "")).splitlines()[-TAIL_LINES:]
                  for line in wrap(raw, width, "    ", "  ")]
        lines.append("")
    if answer.found is not None:
        lines += _findings_text(answer.found, width)
    para(f"Verdict: {answer.headline} (exit {answer.exit_code}).")
    lines.append("")
    para("Reproduce with:")
    lines += shell_lines(q.reproduce(), width)
    lines.append("")
    dirs = ", ".join(s["results"] + "/" for s in doc["sides"].values())
    para(f"-- kharness {__version__} ab; in {Path(doc['dir']).name}/: {dirs}, ab.json, report.md")
    return "\n".join(lines) + "\n"


def _subjects(doc: dict[str, Any]) -> list[str]:
    build = doc.get("builds", {}).get("patched") or {}
    return [str(p.get("subject", "")) for p in build.get("patches", [])]


def _kernels_text(q: Question, doc: dict[str, Any], width: int) -> list[str]:
    lines: list[str] = []
    builds = doc.get("builds", {})
    base_build, _patched_build = builds.get("base") or {}, builds.get("patched") or {}
    if base_build.get("source") == "build":
        common = (f"Kernels: {q.base.kernel.arch}, built from {base_build.get('tree')} at "
                  f"{base_build.get('ref')} ({str(base_build.get('commit', ''))[:12]}, tree "
                  f"{str(base_build.get('tree_hash', ''))[:12]}), {base_build.get('kconfig')} plus the "
                  f"kharness guest options, {base_build.get('compiler')}.")
        lines += wrap(common, width)
    else:
        lines += wrap(f"Kernels: {q.base.kernel.arch}.", width)
    for role, side in (("base", q.base), ("patched", q.patched)):
        facts = doc["sides"][role]
        build = builds.get(role) or {}
        release = facts.get("release") or build.get("release") or "?"
        what = release + (f" (kernel {side.kernel.name})" if side.kernel.name != role else "")
        if build.get("source") == "build" and build.get("ok", True):
            objects = build.get("compiled_objects", "?")
            what += (f", config sha256 {str(build.get('config_sha256', ''))[:12]}, built in "
                     f"{build.get('build_seconds')} s ({objects} object{'' if objects == 1 else 's'} compiled)")
        elif build.get("source") == "build":
            what += ": does not build"
            if role == "patched" and build.get("patches"):
                n = len(build["patches"])
                what += f"; {'the ' if n > 1 else ''}{n} patch{'es' if n > 1 else ''} applied:"
        elif facts.get("origin", {}).get("version"):
            what += f" (Debian {facts['origin']['version']})"
        lines += wrap(what, width, "             ", f"  {role:<10} ")
        if role == "patched":
            for i, patch in enumerate(build.get("patches", []), 1):
                lines += wrap(f"[{i}/{len(build['patches'])}] {patch.get('subject')} (patch-id "
                              f"{str(patch.get('patch_id', ''))[:12]})", width, "                 ", "             ")
    return lines


def _measured_text(q: Question, doc: dict[str, Any], width: int) -> list[str]:
    base = doc["sides"]["base"]
    cells = q.base.config.cells
    accel = str(base.get("accelerator") or "?").upper()
    reason = base.get("accelerator_reason")
    machine = base.get("machine") or "?"
    qemu = f"{base.get('qemu', 'QEMU')} {base.get('qemu_version', '')}".strip()
    lines = wrap(f"Measured: {len(cells)} cell{'s' if len(cells) != 1 else ''} x {q.repeat} boots a side, "
                 f"base and patched boots interleaved, under {qemu} (machine {machine}, {accel}"
                 + (f": {reason}" if reason else "") + ").", width)
    for cell in cells:
        settings = (f"{cell.memory_mib} MiB, {cell.cpus} vCPU{'s' if cell.cpus != 1 else ''}, swiotlb "
                    f"{cell.swiotlb}, {'coherent' if cell.dma_coherent else 'non-coherent'} DMA"
                    + (", iommu_platform" if cell.iommu_platform else "")
                    + (f", slub_debug={cell.slub_debug}" if cell.slub_debug is not None else "")
                    + (f", cmdline {' '.join(cell.cmdline)}" if cell.cmdline else "")
                    + f"; workloads {', '.join(w.name for w in cell.workloads) or 'none'}")
        slug = cell.slug[len(q.base.kernel.name) + 1:] if cell.slug.startswith(q.base.kernel.name + ".") else cell.slug
        lines += wrap(f"{slug}: {settings}", width, "      ", "  ")
    for role in ("base", "patched"):
        counts = doc["sides"][role].get("statuses") or {}
        if set(counts) - {"pass"}:
            text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            first = doc["sides"][role].get("first_problem")
            lines += wrap(f"{role} boots: {text}" + (f"; first: {first}" if first else ""), width, "      ", "  ")
    return lines


def _findings_text(found: list[Finding], width: int) -> list[str]:
    lines: list[str] = []
    changed = _telling_first([f for f in found if f.verdict in CHANGED])
    inconclusive = _telling_first([f for f in found if f.verdict == "inconclusive" and f.p is not None])
    unchanged = [f for f in found if f.verdict == "unchanged"]
    other = [f for f in found if f.verdict in ("new", "gone")]
    many_cells = len({f.cell for f in found}) > 1
    if changed:
        lines += wrap("Changed beyond the noise floor, p < 0.05 (Welch's t-test):", width)
        for group in _grouped(changed):
            lines += ["", *_finding_block(group, width, many_cells)]
    else:
        lines += wrap("Nothing changed beyond the noise floors.", width)
    lines.append("")
    if inconclusive:
        lines += wrap("Moved beyond the noise floor, but p >= 0.05 (may be noise):", width)
        for group in _grouped(inconclusive):
            lines += ["", *_finding_block(group, width, many_cells)]
        lines.append("")
    if other:
        lines += wrap("On one side only: " + ", ".join(f"{f.metric} ({f.verdict})" for f in other[:12])
                      + (f" and {len(other) - 12} more" if len(other) > 12 else "") + ".", width)
        lines.append("")
    key: dict[str, Finding] = {}
    for f in unchanged:  # each key metric once, at its first workload (boot)
        name = f.metric.partition(":")[2]
        if name in KEY_METRICS and f.base and f.new:
            key.setdefault(name, f)
    text = f"Unchanged within noise: {len(unchanged)} metric{'s' if len(unchanged) != 1 else ''}"
    if key:
        text += ", among them " + "; ".join(
            f"{f.metric} {_value(f.base, f.unit)} -> {_value(f.new, f.unit)}"
            + (f" ({percent_text(f.change_pct)})" if f.change_pct is not None else "")
            for f in sorted(key.values(), key=lambda f: KEY_METRICS.index(f.metric.partition(":")[2])))
    lines += wrap(text + ".", width)
    lines.append("")
    return lines


def _telling_first(found: list[Finding]) -> list[Finding]:
    """Regressions first, then by the size of the change (a change from zero is the largest)."""
    def size(f: Finding) -> float:
        return abs(f.change_pct) if f.change_pct is not None else float("inf")

    return sorted(found, key=lambda f: (f.verdict != "regressed", -size(f)))


def _grouped(found: list[Finding]) -> list[list[Finding]]:
    """One block for a metric that several workloads of a cell report with the same figures
    (a gauge that the workloads did not move: boot:swiotlb.slots and idle:swiotlb.slots)."""
    groups: dict[tuple[object, ...], list[Finding]] = {}
    for f in found:
        name = f.metric.partition(":")[2]
        key = (f.cell, name, f.unit, f.verdict, f.base, f.new)
        groups.setdefault(key, []).append(f)
    return list(groups.values())


VERDICT_WIDTH = 12  # "inconclusive"
PAD = " " * (2 + VERDICT_WIDTH + 1)


def _finding_block(group: list[Finding], width: int, with_cell: bool) -> list[str]:
    f = group[0]
    head = f"{f.verdict:<{VERDICT_WIDTH}} {', '.join(g.metric for g in group)}" + (f" [{f.unit}]" if f.unit else "")
    lines = wrap(head, width, PAD, "  ")
    if with_cell:
        lines += wrap(f"in {f.cell}", width, PAD, PAD)
    for label, s in (("base", f.base), ("patched", f.new)):
        if s is not None:
            spread = f" ±{number(s.stddev, 3)}" if s.n > 1 else ""
            rng = f", {number(s.min)}..{number(s.max)}" if s.n > 1 else ""
            lines += wrap(f"{label:<8} {number(s.mean)}{spread} (n={s.n}{rng})", width, PAD + "  ", PAD)
    figures = ", ".join(x for x in (percent_text(f.change_pct), _p(f.p)) if x)
    why = f.reason + (f" ({f.p_note})" if f.p_note else "")
    lines += wrap("; ".join(x for x in (figures, why) if x), width, PAD, PAD)
    return lines


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return "p < 0.0001" if p < 1e-4 else f"p = {p_text(p)}"


def _value(s: Summary | None, unit: str) -> str:
    if s is None:
        return "-"
    if unit == "bytes" and abs(s.mean) >= 10240:
        return f"{number(s.mean / 1024)} KiB"
    return number(s.mean) + (f" {unit}" if unit and unit not in ("bytes",) else "")


def shell_lines(argv: list[str], width: int = MAIL_WIDTH) -> list[str]:
    """A command as shell lines no wider than `width`, continued with backslashes.

    A word too long for a line is split inside itself with a backslash and a
    newline, which the shell removes again (outside single quotes: such a
    word is written in double quotes instead).
    """
    words = [_splittable(a) for a in argv]
    lines: list[str] = []
    current = "  "
    limit = width - 2  # room for " \"
    for whole in words:
        sep = "" if current.strip() == "" else " "
        if len(current) + len(sep) + len(whole) <= limit:
            current += sep + whole
            continue
        if current.strip():
            lines.append(current + " \\")
            current = "    "
        rest = whole
        while len(current) + len(rest) > limit:
            cut = limit - len(current) - 1
            lines.append(current + rest[:cut] + "\\")
            rest, current = rest[cut:], ""
        current += rest
    lines.append(current)
    return lines


def _splittable(word: str) -> str:
    """The word as the shell would read it back, in a form where backslash-newline may split it."""
    quoted = shlex.quote(word)
    if quoted == word:
        return word
    escaped = "".join("\\" + c if c in '"$`\\' else c for c in word)
    return f'"{escaped}"'


def markdown_report(q: Question, doc: dict[str, Any], answer: Answer) -> str:
    esc = markdown.escape
    lines = [f"## kharness ab: {esc(', '.join(_subjects(doc)) or q.patched.kernel.name)}", ""]
    builds = doc.get("builds", {})
    for role, side in (("base", q.base), ("patched", q.patched)):
        facts, build = doc["sides"][role], builds.get(role) or {}
        item = f"- **{role}** {markdown.code(side.kernel.name, table=False)}: {esc(str(facts.get('release') or '?'))}"
        if build.get("source") == "build":
            item += (f", {esc(str(build.get('tree')))} at {esc(str(build.get('ref')))} "
                     f"({esc(str(build.get('commit', ''))[:12])}), {esc(str(build.get('kconfig')))}, config sha256 "
                     f"{esc(str(build.get('config_sha256', ''))[:12])}, {esc(str(build.get('compiler')))}, "
                     f"built in {esc(str(build.get('build_seconds')))} s")
        lines.append(item)
        for patch in build.get("patches", []) if role == "patched" else []:
            lines.append(f"  - {esc(str(patch.get('subject')))} (patch-id "
                         f"{markdown.code(str(patch.get('patch_id', ''))[:12], table=False)})")
    base = doc["sides"]["base"]
    lines += ["", esc(f"{len(q.base.config.cells)} cell(s) x {q.repeat} boots a side, interleaved, "
                      f"{base.get('qemu', '')} {base.get('qemu_version', '')} machine {base.get('machine', '?')}, "
                      f"{str(base.get('accelerator') or '?').upper()}"), ""]
    if answer.build_failure is not None:
        bf = answer.build_failure
        lines += [esc(f"The {bf['role']} kernel does not build: {bf['summary']}"), "", "```",
                  *[clean(x) for x in str(bf.get("tail", "")).replace("```", "'''").splitlines()[-TAIL_LINES:]],
                  "```", ""]
    if answer.comparison is not None:
        lines += [markdown.render([answer.comparison]), ""]
        exact = [f for f in answer.found or [] if f.p_note]
        if exact:
            lines += [esc("Exact metrics that changed, with Welch's p over their repetitions: "
                          + "; ".join(f"{f.metric} p {p_text(f.p)} ({f.p_note})" for f in exact)), ""]
    lines += [f"**Verdict**: {esc(answer.headline)} (exit {answer.exit_code})", "", "```sh",
              q.reproduce_text().replace("```", "'''"), "```", ""]
    return "\n".join(lines)


def load_doc(out: Path) -> dict[str, Any]:
    try:
        value = json.loads((out / AB_FILE).read_text())
    except FileNotFoundError:
        raise UsageError(f"{out} has no {AB_FILE}: not a kharness ab directory",
                         "give the directory a kharness ab run wrote (its -o)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{out / AB_FILE}: cannot be read ({exc})", "start a new kharness ab run") from exc
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise UsageError(f"{out / AB_FILE}: not an ab.json of this kharness (format {FORMAT})",
                         "start a new kharness ab run")
    return value


__all__ = ["Answer", "Finding", "findings", "judge", "load_doc", "shell_lines", "write"]
