from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from emerald.cli.main import app
from emerald.tape.writer import TapeWriter
from emerald.testing.tapes import T0, make_trades

runner = CliRunner()


def last_json(output: str) -> dict:
    return orjson.loads(output.strip().splitlines()[-1])


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    with TapeWriter(tmp_path) as w:
        w.write("trades", "binance-usdm", "BTCUSDT", make_trades(500, mean_gap_ns=10**9))
        interval = 8 * 3600 * 10**9
        ts = (T0 // interval + 1) * interval + np.arange(3) * interval  # 2023-11-15 00:00, 08:00, 16:00
        w.write("funding", "binance-usdm", "BTCUSDT", {"ts_event": ts, "rate": [1e-4] * 3,
                                                      "interval_ns": [8 * 3600 * 10**9] * 3,
                                                      "next_funding_ts": ts, "is_settlement": [True] * 3})
    return tmp_path


def test_ls_json(root: Path) -> None:
    res = runner.invoke(app, ["data", "ls", "--root", str(root), "--json"])
    assert res.exit_code == 0, res.output
    d = last_json(res.output)
    rows = {(x["kind"], x["symbol"]): x["rows"] for x in d["datasets"]}
    assert rows == {("trades", "BTCUSDT"): 500, ("funding", "BTCUSDT"): 3}


def test_validate_reports_missing_funding_and_strict_fails(root: Path) -> None:
    res = runner.invoke(app, ["data", "validate", "--root", str(root), "--json"])
    assert res.exit_code == 0, res.output
    d = last_json(res.output)
    assert d["audit"]["files_ok"] == d["audit"]["files_total"] == 2
    fund = next(c for c in d["coverage"] if c["kind"] == "funding")["funding"]
    assert (fund["expected"], fund["present"], fund["missing"], fund["off_grid"]) == (3, 3, 0, 0)
    (root / "trades" / "venue=binance-usdm" / "symbol=BTCUSDT" / "date=2023-11-14" / ".tmp-x.parquet").write_bytes(b"x")
    res = runner.invoke(app, ["data", "validate", "--root", str(root), "--json"])
    assert res.exit_code == 1 and last_json(res.output)["audit"]["stray_files"]


def test_query_json(root: Path) -> None:
    res = runner.invoke(app, ["data", "query", "--root", str(root), "SELECT count(*) AS n FROM trades", "--json"])
    assert res.exit_code == 0, res.output
    assert last_json(res.output)["rows"] == [[500]]


def test_errors_are_clear_and_json(tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "import", "binance-rawx", str(tmp_path), "--root", str(tmp_path), "--json"])
    assert res.exit_code == 2
    d = last_json(res.output)
    assert d["ok"] is False and "did you mean 'binance-raw'" in d["error"]
    res = runner.invoke(app, ["data", "ls", "--root", str(tmp_path / "nope"), "--json"])
    assert res.exit_code == 1 and "_manifest.json" in last_json(res.output)["error"]
    res = runner.invoke(app, ["data", "import", "bars-csv", str(tmp_path), "--root", str(tmp_path), "-o", "novalue"])
    assert res.exit_code == 2 and "KEY=VALUE" in res.output


def test_demo_builds_then_reuses_then_force_rebuilds(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    args = ["data", "demo", "--root", str(root), "--days", "1", "--seed", "3", "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    d1 = last_json(first.output)
    assert d1["reused"] is False and d1["write"]["balanced"]
    manifest = (root / "_manifest.json").read_bytes()
    again = last_json(runner.invoke(app, args).output)
    assert again["reused"] is True and (root / "_manifest.json").read_bytes() == manifest
    other = runner.invoke(app, ["data", "demo", "--root", str(root), "--days", "1", "--seed", "4", "--json"])
    assert other.exit_code == 2 and "already holds demo data" in last_json(other.output)["error"]
    forced = last_json(runner.invoke(app, [*args, "--force"]).output)
    assert forced["reused"] is False and (root / "_manifest.json").read_bytes() == manifest  # same seed, same bytes
    res = runner.invoke(app, ["data", "validate", "--root", str(root), "--json"])
    assert res.exit_code == 0 and last_json(res.output)["audit"]["stray_files"] == []
