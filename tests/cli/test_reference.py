"""docs/cli.md is generated from the commands; it must not go stale."""

from __future__ import annotations

from emerald.cli.main import app
from emerald.cli.reference import DOCS_PATH, FORMATS_PATH, render, render_formats


def test_cli_reference_is_current() -> None:
    expected = render(app)
    assert DOCS_PATH.read_text() == expected, "docs/cli.md is stale: run `emerald docs cli --write`"


def test_reference_lists_every_command_with_its_options() -> None:
    text = render(app)
    for command in ("emerald backtest", "emerald sweep", "emerald demo", "emerald record", "emerald data import",
                    "emerald signals list", "emerald strategies list"):
        assert f"`{command}`" in text
    assert "| `--root` | path | required |" in text


def test_tape_formats_doc_is_current() -> None:
    expected = render_formats()
    assert FORMATS_PATH.read_text() == expected, "docs/tape-formats.md is stale: run `emerald docs formats --write`"
    for fmt in ("binance-raw", "binance-vision", "tardis", "hyperliquid-raw", "histdata", "mt5", "funding-csv",
                "bars-csv"):
        assert f"`{fmt}`" in expected
