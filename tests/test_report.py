"""report.html: what it shows, that it is self-contained, and that a browser opens it cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

from harness.config.load import load
from harness.formats import svg as dotplot
from harness.machine.qemu import console_tail
from harness.run import report
from harness.run.runner import RunOptions, run, write_reports
from tests.test_run_parallel import SlowBoots

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0")


@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake run with a panicking cell, an infrastructure error, and figures that vary by kernel."""
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "c.yaml").write_text("""
name: report-test
description: fake guests, one kernel's slab made bigger so the plots have something to show
defaults: {workloads: [idle], memory: 128, cpus: 1, repeat: 2}
matrix:
  kernel: [trixie-x86_64, bookworm-x86_64]
  cmdline: [[], [quiet], [nosmt]]
""")
    out = run(load(tmp / "c.yaml"), RunOptions(output=tmp / "out", jobs=2),
              SlowBoots(0.0, panic=("quiet",), fail=("nosmt",))).path
    for metrics in out.glob("cells/bookworm*/*/metrics.json"):  # 6.1 kmalloc caches: bigger
        doc = json.loads(metrics.read_text())
        for m in doc["metrics"]:
            if m["name"] == "slab.kmalloc.bytes":
                m["value"] *= 1.5 + 0.1 * int(metrics.parent.name)
        metrics.write_text(json.dumps(doc))
    write_reports(out)
    return out


def test_report_shows_statuses_failures_and_plots(report_run: Path) -> None:
    html = (report_run / "report.html").read_text()
    assert "kharness run report-test" in html
    assert html.count('class="st pass"') >= 4 and 'class="st fail"' in html and 'class="st error"' in html
    assert "Kernel panic - not syncing: fake" in html  # the console excerpt of the failure
    assert "qemu-system-x86_64 not found (fake)" in html  # the infrastructure error's message
    assert "slab.kmalloc.bytes by kernel" in html  # varies: plotted
    assert "slab.minalign by kernel" not in html  # the same everywhere: not plotted
    assert "<h3>cmdline</h3>" not in html or "by cmdline" in html


def test_report_is_self_contained_and_its_svg_well_formed(report_run: Path) -> None:
    html = (report_run / "report.html").read_text()
    assert not re.search(r"""\b(?:src\s*=|href\s*=\s*"[^#])""", html)  # in-page anchors only
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)
    assert "Content-Security-Policy" in html
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert svgs
    for svg in svgs:
        ET.fromstring(svg)


def test_report_of_an_interrupted_run_lists_what_is_missing(tmp_path: Path) -> None:
    from harness.run.parallel import Stop

    (tmp_path / "c.yaml").write_text("name: r\ndefaults: {workloads: [idle], memory: 128}\n"
                                     "matrix: {kernel: [trixie-x86_64, trixie-arm64]}\n")
    stop = Stop()
    stop.request("SIGTERM")
    out = run(load(tmp_path / "c.yaml"), RunOptions(output=tmp_path / "out"), SlowBoots(0.0), None, stop).path
    html = (out / "report.html").read_text()
    assert "Not finished (2)" in html and "interrupted (SIGTERM)" in html and "--resume" in html


def test_report_text_from_the_guest_is_escaped(tmp_path: Path) -> None:
    strip = dotplot.Strip("<b>x</b>", "bytes", ("<script>",), (dotplot.Point("<script>", 2048.0, "pass", "a&b"),))
    svg = dotplot.render(strip)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg
    ET.fromstring(svg)
    assert console_tail(tmp_path / "none") == ""


@pytest.mark.parametrize(("value", "unit", "text"), [(8, "bytes", "8"), (2744320, "bytes", "2.62 MiB"),
                                                     (512, "slots", "512"), (12345, "", "12.3k")])
def test_report_numbers_are_short(value: float, unit: str, text: str) -> None:
    assert dotplot.human(value, unit) == text


def _chromium(page: Path, tmp: Path) -> tuple[Path, list[str]]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: ./setup.sh installs it")
        pytest.skip("chromium is not installed (./setup.sh installs it)")
    shot = tmp / f"{page.stem}.png"
    proc = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", f"--screenshot={shot}",
         "--window-size=1280,2000", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Console messages (script errors, blocked fetches, CSP violations) are logged as ":CONSOLE".
    return shot, [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def _png_pixels(path: Path) -> bytes:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    idat, pos = b"", 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(idat)


def test_report_opens_in_headless_chromium_without_errors(report_run: Path, tmp_path: Path) -> None:
    shot, console = _chromium(report_run / "report.html", tmp_path)
    assert console == []
    pixels = _png_pixels(shot)
    assert len(set(pixels[:200_000])) > 8  # not a blank page
    if os.environ.get("KHARNESS_SCREENSHOTS"):  # a folder to keep the screenshot in, for a look
        keep = Path(os.environ["KHARNESS_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "report.png")


def test_chromium_check_does_catch_a_page_that_fetches(tmp_path: Path) -> None:
    """The check above is only worth something if it fails for a page that is not self-contained."""
    html = (tmp_path / "bad.html")
    html.write_text(f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    f'content="{report.CSP}"></head><body><img src="http://example.invalid/x.png"></body></html>')
    _, console = _chromium(html, tmp_path)
    assert any("example.invalid" in line for line in console)
