"""Open an HTML page in headless Chromium and report what a reader would see.

Used by the report tests: a page passes when it raised no error, every chart (an element with a
``data-chart`` attribute) holds at least one Plotly trace with at least one point and was drawn,
and the screenshot is not blank.

How it works, without the DevTools protocol: a copy of the page gets two probe scripts, one at the
top of ``<head>`` (before any other script, so it sees every error) recording uncaught errors,
unhandled promise rejections, resources that failed to load and ``console.error`` calls, and one
at the end of ``<body>`` that, after the ``load`` event, writes a JSON summary of the errors and
of every chart's trace sizes into ``<pre id="emerald-selfcheck">``. Chromium runs once per page
with ``--headless --no-sandbox --disable-gpu``, ``--virtual-time-budget`` (so scripts and timers
run to completion), ``--dump-dom`` (the DOM after the scripts ran, on stdout) and
``--screenshot``. The screenshot is decoded by the small PNG reader below (zlib + numpy) and
its distinct colours are counted.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu")
# no background services (the usual headless-automation set): less CPU on a shared box, no network
_QUIET_FLAGS = ("--hide-scrollbars", "--no-first-run", "--mute-audio", "--disable-background-networking",
                "--disable-component-update", "--disable-default-apps", "--disable-sync", "--disable-extensions",
                "--disable-features=Translate,MediaRouter,OptimizationHints")

PROBE_ID = "emerald-selfcheck"

_HEAD_PROBE = """<script data-emerald-probe="head">(function () {
  var errors = window.__emeraldErrors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      errors.push("resource failed to load: " + (t.src || t.href));
    } else {
      errors.push("uncaught error: " + (e.message || String(e.error)));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("unhandled rejection: " + String(e.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  };
})();</script>"""

_TAIL_PROBE = """<pre id="@ID@" style="display:none"></pre>
<script data-emerald-probe="tail">window.addEventListener("load", function () {
  setTimeout(function () {
    function count(v) {
      if (v === null || v === undefined) { return 0; }
      if (v._inputArray) { v = v._inputArray; }
      if (!(Array.isArray(v) || ArrayBuffer.isView(v))) { return 0; }
      var n = 0;
      for (var i = 0; i < v.length; i++) {
        var e = v[i];
        if (Array.isArray(e) || ArrayBuffer.isView(e)) { n += count(e); }
        else if (e !== null && e !== undefined && !(typeof e === "number" && !isFinite(e))) { n += 1; }
      }
      return n;
    }
    function points(t) {
      if (t.z !== undefined) { return count(t.z); }
      if (t.values !== undefined) { return count(t.values); }
      if (t.orientation === "h") { return count(t.x); }
      return t.y !== undefined ? count(t.y) : count(t.x);
    }
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var gd = el.classList.contains("js-plotly-plot") ? el : el.querySelector(".js-plotly-plot");
      var traces = (gd && gd.data) ? gd.data.map(points) : [];
      charts.push({name: el.getAttribute("data-chart"), id: el.id, traces: traces,
                   drawn: !!(gd && gd.querySelector(".main-svg"))});
    });
    document.getElementById("@ID@").textContent =
      JSON.stringify({errors: window.__emeraldErrors || ["head probe did not run"], charts: charts});
  }, 500);
});</script>""".replace("@ID@", PROBE_ID)

_SELFCHECK = re.compile(r'<pre id="' + PROBE_ID + r'"[^>]*>(.*?)</pre>', re.S)


@dataclass(frozen=True)
class ChartCheck:
    """One ``data-chart`` element: its name, DOM id, points per trace, and whether Plotly drew it."""

    name: str
    id: str
    traces: list[int]
    drawn: bool


@dataclass(frozen=True)
class PageCheck:
    """What :func:`check_page` saw.

    ``errors``: every error the page raised (uncaught exceptions, failed resources,
    ``console.error``); ``charts``: one :class:`ChartCheck` per ``data-chart`` element;
    ``screenshot``: the PNG bytes; ``colours``: distinct colours in the screenshot.
    """

    errors: list[str]
    charts: list[ChartCheck]
    screenshot: bytes
    colours: int

    def problems(self, *, min_colours: int = 10, expect_charts: bool = True) -> list[str]:
        """Everything wrong with the page, one line each; empty when the page is fine."""
        out = [f"page error: {e}" for e in self.errors]
        if expect_charts and not self.charts:
            out.append("no chart on the page (no element with a data-chart attribute)")
        for c in self.charts:
            if not c.traces or max(c.traces) < 1:
                out.append(f"chart {c.name!r} (#{c.id}) has no data, traces were {c.traces}")
            if not c.drawn:
                out.append(f"chart {c.name!r} (#{c.id}) was not drawn by Plotly")
        if self.colours <= min_colours:
            out.append(f"screenshot looks blank: {self.colours} distinct colours (need more than {min_colours})")
        return out


def find_chromium() -> str | None:
    """Path of the Chromium binary: ``$EMERALD_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on PATH."""
    env = os.environ.get("EMERALD_CHROMIUM")
    if env:
        return env
    return shutil.which("chromium") or shutil.which("chromium-browser")


def instrument(page: str) -> str:
    """The page with the two probe scripts inserted (head probe first in ``<head>``, tail probe
    last in ``<body>``)."""
    head = re.search(r"<head[^>]*>", page, re.I)
    page = (page[:head.end()] + _HEAD_PROBE + page[head.end():]) if head else _HEAD_PROBE + page
    body_end = page.lower().rfind("</body>")
    return (page[:body_end] + _TAIL_PROBE + page[body_end:]) if body_end >= 0 else page + _TAIL_PROBE


def check_page(path: str | Path, *, width: int = 1280, height: int = 1600, budget_ms: int = 10_000,
               timeout_s: float = 120.0, chromium: str | None = None) -> PageCheck:
    """Load ``path`` in headless Chromium and return what the probes and the screenshot saw.

    Parameters
    ----------
    path
        The HTML file; it is not modified (an instrumented copy goes to a temporary folder).
    width, height
        Browser window (and screenshot) size in pixels.
    budget_ms
        Chromium ``--virtual-time-budget``: virtual milliseconds the page may run before the DOM
        is dumped and the screenshot taken.
    timeout_s
        Wall-clock limit for the Chromium process; on expiry its process group is killed.
    chromium
        Binary to run; default :func:`find_chromium`.

    Raises
    ------
    FileNotFoundError
        No Chromium binary.
    RuntimeError
        Chromium failed, timed out, or the probe wrote nothing (the message holds stderr's tail).
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("Chromium not found: install Debian `chromium` or set EMERALD_CHROMIUM")
    page = Path(path).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="emerald-browser-") as tmp:
        tmp_dir = Path(tmp)
        copy = tmp_dir / "page.html"
        copy.write_text(instrument(page), encoding="utf-8")
        shot = tmp_dir / "screenshot.png"
        args = [binary, *CHROMIUM_FLAGS, *_QUIET_FLAGS, f"--user-data-dir={tmp_dir / 'profile'}",
                f"--window-size={width},{height}",
                f"--virtual-time-budget={budget_ms}", f"--screenshot={shot}", "--dump-dom", copy.as_uri()]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"Chromium did not finish {path} within {timeout_s} s") from None
        tail = err.decode("utf-8", "replace")[-2000:]
        if proc.returncode != 0:
            raise RuntimeError(f"Chromium exited with {proc.returncode} on {path}: {tail}")
        found = _SELFCHECK.search(out.decode("utf-8", "replace"))
        if found is None or not found.group(1).strip():
            raise RuntimeError(f"the self-check probe wrote nothing for {path} (page did not finish loading "
                               f"within {budget_ms} virtual ms?): {tail}")
        report = orjson.loads(html.unescape(found.group(1)))
        if not shot.is_file():
            raise RuntimeError(f"Chromium wrote no screenshot for {path}: {tail}")
        png = shot.read_bytes()
    charts = [ChartCheck(name=c["name"], id=c["id"], traces=[int(n) for n in c["traces"]], drawn=bool(c["drawn"]))
              for c in report["charts"]]
    return PageCheck(errors=[str(e) for e in report["errors"]], charts=charts, screenshot=png,
                     colours=distinct_colours(read_png(png)))


def assert_page_ok(path: str | Path, **kwargs: object) -> PageCheck:
    """:func:`check_page`, then raise AssertionError listing every problem."""
    check = check_page(path, **kwargs)  # type: ignore[arg-type]
    problems = check.problems()
    if problems:
        raise AssertionError(f"{path}:\n  " + "\n  ".join(problems))
    return check


_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel (8-bit, no palette)


def read_png(data: bytes) -> np.ndarray:
    """Decode an 8-bit, non-interlaced greyscale/RGB(A) PNG into a ``(height, width, channels)`` uint8 array.

    Enough for Chromium screenshots (RGB, filters None/Sub/Up/Average/Paeth per row); anything
    else raises ValueError naming the field.
    """
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"not a PNG file: signature was {data[:8]!r}")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunk_type, chunk = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if chunk_type == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif chunk_type == b"IDAT":
            idat.append(chunk)
        elif chunk_type == b"IEND":
            break
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace != 0:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {colour}, interlace {interlace} "
                         "(need 8-bit, colour type 0/2/4/6, not interlaced)")
    bpp = _CHANNELS[colour]
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    if raw.size != height * (stride + 1):
        raise ValueError(f"PNG data size was {raw.size}, expected {height * (stride + 1)}")
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for r in range(height):
        kind, line = int(rows[r, 0]), rows[r, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # Sub: running sum per channel, modulo 256
            cur = np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.uint8).reshape(stride)
        elif kind == 2:  # Up
            cur = line + prev
        elif kind in (3, 4):
            cur = _unfilter_sequential(kind, line, prev, bpp)
        else:
            raise ValueError(f"PNG row {r}: filter type was {kind}, expected 0..4")
        out[r] = cur
        prev = cur
    return out.reshape(height, width, bpp)


def _unfilter_sequential(kind: int, line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """Average (3) and Paeth (4) rows: each byte depends on the decoded byte to its left."""
    cur = bytearray(line.tobytes())
    up = prev.tobytes()
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            cur[i] = (cur[i] + ((a + b) >> 1)) & 0xFF
            continue
        c = up[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (cur[i] + pred) & 0xFF
    return np.frombuffer(bytes(cur), dtype=np.uint8)


def distinct_colours(pixels: np.ndarray) -> int:
    """Number of distinct colours (all channels together) in a ``(h, w, channels)`` uint8 array."""
    flat = pixels.reshape(-1, pixels.shape[-1]).astype(np.uint32)
    packed = np.zeros(flat.shape[0], dtype=np.uint32)
    for ch in range(flat.shape[1]):
        packed = (packed << np.uint32(8)) | flat[:, ch]
    return int(np.unique(packed).size)
