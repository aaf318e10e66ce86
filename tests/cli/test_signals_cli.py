from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
from typer.testing import CliRunner

from emerald.cli.main import app
from emerald.signals import REGISTRY
from emerald.tape.importers import run_import

runner = CliRunner()


def last_json(output: str) -> dict:
    return orjson.loads(output.strip().splitlines()[-1])


def test_parity_and_compute_on_a_real_capture(tmp_path: Path, real_data: Path) -> None:
    root = tmp_path / "tape"
    run_import("binance-raw", [real_data / "binance-raw" / "usdm_btcusdt_20230404.dat.gz"], root,
               venue="binance-usdm", symbol="BTCUSDT")
    res = runner.invoke(app, ["signals", "parity", "--root", str(root), "--max-events", "3000", "--json"])
    assert res.exit_code == 0, res.output
    d = last_json(res.output)
    assert d["ok"] and d["mismatches"] == 0 and d["events"] == 3000
    assert set(d["metrics"]) | set(d["skipped"]) == set(REGISTRY)
    assert "ref-venue" in d["skipped"]["basis"] and "liquidations" in d["skipped"]["liquidation_notional"]
    assert d["metrics"]["trade_flow_imbalance"]["non_nan"] > 0
    out = tmp_path / "sig.parquet"
    res = runner.invoke(app, ["signals", "compute", "trade_flow_imbalance,book_spread", "--root", str(root),
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    t = pq.read_table(out)
    assert {"trade_flow_imbalance.imbalance", "book_spread.spread_bps"} <= set(t.column_names)
    spread = t.column("book_spread.spread_bps").to_numpy()
    assert (spread[~(spread != spread)] >= 0).all()  # bid < ask on the real book
