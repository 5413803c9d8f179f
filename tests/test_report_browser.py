"""The report rendered by Debian's chromium, headless: a screenshot is produced and the page logs no error.

``scripts/test.sh`` installs chromium with apt when it is missing and the tests run as root; otherwise
this module is skipped with the reason. No browser is ever downloaded.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from metastasis.report import write_report

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs Debian's chromium when run as root)")

#: Lines chromium writes to stderr for the page's console or failed loads (with --enable-logging=stderr).
PAGE_ERROR = re.compile(r"CONSOLE[(:]|Uncaught|Failed to load resource|net::ERR_", re.IGNORECASE)


def render(html: Path, png: Path, profile: Path,
           height: int = 4000) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Screenshot ``html`` with headless chromium; return the process and the page's error lines."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size=1280,{height}",
           "--enable-logging=stderr", "--v=0", html.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return proc, [line for line in proc.stderr.splitlines() if PAGE_ERROR.search(line)]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_error_detection_works(tmp_path: Path) -> None:
    """The check below can fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefined_function();</script></body></html>")
    proc, errors = render(bad, tmp_path / "bad.png", tmp_path / "profile-bad", height=300)
    assert errors and any("undefined_function" in e for e in errors), proc.stderr[-2000:]


def test_report_renders_without_errors(default_run: Path, tmp_path: Path) -> None:
    html = write_report(default_run, tmp_path / "report.html")
    png = tmp_path / "report.png"
    proc, errors = render(html, png, tmp_path / "profile")
    assert png.exists(), proc.stderr[-2000:]
    assert not errors, errors
    assert _png_size(png) == (1280, 4000)
    # a blank page compresses to a few kB; text, a body map and charts do not
    assert png.stat().st_size > 150_000, png.stat().st_size
    from PIL import Image  # pillow comes with matplotlib

    with Image.open(png) as im:
        histogram = im.convert("L").histogram()
        colours = im.convert("RGB").getcolors(maxcolors=1 << 24) or []
    dark = sum(histogram[:128]) / sum(histogram)
    assert 0.005 < dark < 0.5, dark  # ink on a light page, not an empty or black screen
    assert len(colours) > 500, len(colours)  # figures in colour, not just text
