from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from emerald.cli.main import app
from emerald.errors import ConfigError
from emerald.signals import REGISTRY, Metric, get_spec
from emerald.signals.docs import render_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "signals.md"


def test_docs_signals_md_is_not_stale() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), \
        "docs/signals.md is stale: run `emerald signals docs --write`"


def test_signals_list_json_matches_registry() -> None:
    res = CliRunner().invoke(app, ["signals", "list", "--json"])
    assert res.exit_code == 0, res.output
    d = orjson.loads(res.output.strip().splitlines()[-1])
    assert d["count"] == len(REGISTRY) and {m["name"] for m in d["metrics"]} == set(REGISTRY)


def test_params_reject_bad_values_with_clear_messages() -> None:
    with pytest.raises(ConfigError, match="did you mean 'window_ns'"):
        Metric("trade_flow_imbalance", window=5)
    with pytest.raises(ConfigError, match="`window_ns` must be >= .*was 5"):
        Metric("trade_flow_imbalance", window_ns=5)
    with pytest.raises(ConfigError, match="multiple of `bucket_ns`"):
        Metric("trade_flow_imbalance", window_ns=1_500_000_000)
    with pytest.raises(ConfigError, match="did you mean 'trade_flow_imbalance'"):
        get_spec("trade_flow_imbalanc")
    with pytest.raises(ConfigError, match="must be a number"):
        Metric("trade_flow_imbalance", min_notional="10")
    p = get_spec("trade_flow_imbalance").make_params(min_notional=5.0)
    with pytest.raises(AttributeError):
        p.min_notional = 3.0  # type: ignore[misc]
