"""The reports open in headless Chromium with no error, every chart holds data, and the screenshot is
not blank; and the check itself catches a broken page (JS error, empty chart, blank screen)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline
import pytest

from emerald.testing.browser import (
    PageCheck,
    check_page,
    distinct_colours,
    find_chromium,
    instrument,
    read_png,
)
from tests.report.conftest import RUN_CHARTS


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.fail("Chromium not found: `apt-get install -y chromium` (Debian) or set EMERALD_CHROMIUM")
    return binary


def check(path: Path, chromium: str) -> PageCheck:
    return check_page(path, chromium=chromium)


def test_run_report_in_chromium(run_page, chromium):
    """The run fixture carries hostile strings that would call console.error if any were executed."""
    path, _ = run_page
    page = check(path, chromium)
    assert page.problems() == []
    assert {c.name for c in page.charts} == RUN_CHARTS
    by_name = {c.name: c.traces for c in page.charts}
    assert len(by_name["price:BTC-USDT-PERP"]) == 3  # price, entries, exits
    assert by_name["price:BTC-USDT-PERP"][1:] == [6, 6]  # 6 BTC trades in the fixture
    assert by_name["pnl"] == [5]


def test_sweep_report_in_chromium(sweep_page, chromium):
    path, _ = sweep_page
    page = check(path, chromium)
    assert page.problems() == []
    by_name = {c.name: c.traces for c in page.charts}
    assert by_name["objective"] == [6, 1]  # 3 fast x 2 slow cells, one best marker
    assert by_name["walk-forward"] == [3, 3]
    assert {f"oos-{n}" for n in RUN_CHARTS} <= set(by_name)


def test_check_catches_errors_and_a_blank_page(tmp_path, chromium):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><head><title>t</title></head><body>"
                    "<script>console.error('logged on purpose');</script>"
                    "<script>notDefinedAnywhere();</script>"
                    "<script src='missing-file.js'></script>"
                    "</body></html>", encoding="utf-8")
    result = check(page, chromium)
    assert any("console.error: logged on purpose" in e for e in result.errors)
    assert any("uncaught error" in e and "notDefinedAnywhere" in e for e in result.errors)
    assert any("resource failed to load" in e and "missing-file.js" in e for e in result.errors)
    assert result.colours <= 10  # a white page
    problems = result.problems()
    assert any(p.startswith("screenshot looks blank") for p in problems)
    assert "no chart on the page (no element with a data-chart attribute)" in problems


def test_check_catches_empty_charts(tmp_path, chromium):
    def fragment(fig: go.Figure, name: str) -> str:
        div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"{name}-plot")
        return f'<figure id="{name}" data-chart="{name}">{div}</figure>'

    full = go.Figure(go.Scatter(x=[1, 2, 3], y=[3.0, 1.0, 2.0]))
    no_trace = go.Figure()
    empty_trace = go.Figure(go.Scatter(x=[], y=[]))
    nan_heatmap = go.Figure(go.Heatmap(z=[[None, float("nan")]]))
    page = tmp_path / "empty.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><script>{plotly.offline.get_plotlyjs()}"
                    f"</script></head><body>{fragment(full, 'full')}{fragment(no_trace, 'none')}"
                    f"{fragment(empty_trace, 'empty')}{fragment(nan_heatmap, 'nan')}</body></html>",
                    encoding="utf-8")
    result = check(page, chromium)
    assert result.errors == []
    assert {c.name: c.traces for c in result.charts} == {"full": [3], "none": [], "empty": [0], "nan": [0]}
    problems = result.problems()
    assert [p for p in problems if "has no data" in p] == [
        "chart 'none' (#none) has no data, traces were []",
        "chart 'empty' (#empty) has no data, traces were [0]",
        "chart 'nan' (#nan) has no data, traces were [0]",
    ]
    assert not any("'full'" in p for p in problems)


# --------------------------------------------------------------------------- no browser needed

def encode_png(pixels: np.ndarray, filters: list[int]) -> bytes:
    """An RGB PNG written from the spec (https://www.w3.org/TR/png-3/#9Filters), one filter type per row."""
    h, w, bpp = pixels.shape
    rows, prev = [], [0] * (w * bpp)
    for r in range(h):
        line = [int(v) for v in pixels[r].reshape(-1)]
        out = []
        for i, x in enumerate(line):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            paeth = min((abs(p - a), 0, a), (abs(p - b), 1, b), (abs(p - c), 2, c))[2]
            pred = [0, a, b, (a + b) // 2, paeth][filters[r]]
            out.append((x - pred) % 256)
        rows.append(bytes([filters[r]] + out))
        prev = line

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


def test_png_reader_undoes_every_filter():
    pixels = np.random.default_rng(3).integers(0, 256, size=(10, 7, 3), dtype=np.uint8)
    filters = [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]
    decoded = read_png(encode_png(pixels, filters))
    np.testing.assert_array_equal(decoded, pixels)
    # distinct colours counted independently with Python tuples
    assert distinct_colours(decoded) == len({tuple(p) for p in pixels.reshape(-1, 3)})


def test_png_reader_rejects_what_it_cannot_read():
    with pytest.raises(ValueError, match="not a PNG"):
        read_png(b"GIF89a....")


def test_instrument_puts_the_error_probe_before_any_page_script():
    out = instrument("<html><head><script>boom()</script></head><body><p>x</p></body></html>")
    assert out.index('data-emerald-probe="head"') < out.index("boom()")
    assert out.index('data-emerald-probe="tail"') < out.index("</body>")
