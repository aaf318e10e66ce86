from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from emerald.errors import ConfigError, DataError
from emerald.model.dtypes import TRADE_DTYPE
from emerald.tape.reader import Tape, parse_time, read_tape
from emerald.tape.writer import TapeWriter
from emerald.testing.tapes import T0, make_trades

V = "binance-usdm"


@pytest.fixture()
def tape_root(tmp_path: Path) -> Path:
    with TapeWriter(tmp_path) as w:
        for i, sym in enumerate(["BTCUSDT", "ETHUSDT"]):
            w.write("trades", V, sym, make_trades(3000, seed=i, mean_gap_ns=60 * 10**9))  # ~2 days
        ts = T0 + np.arange(10) * 3600 * 10**9
        w.write("prices", V, "BTCUSDT", {"ts_event": ts, "mark": np.full(10, 100.0), "index": np.full(10, 99.0),
                                        "spot_ref": np.full(10, np.nan)})
    return tmp_path


def test_polars_arrow_numpy_and_pandas_agree(tape_root: Path) -> None:
    tape = Tape(tape_root)
    lf = tape.scan("trades", venue=V, symbol="BTCUSDT")
    assert isinstance(lf, pl.LazyFrame)
    df = lf.collect()
    arrow = tape.read_arrow("trades", V, "BTCUSDT")
    rec = tape.read_numpy("trades", V, "BTCUSDT")
    expected = make_trades(3000, seed=0, mean_gap_ns=60 * 10**9)
    assert rec.dtype == TRADE_DTYPE
    np.testing.assert_array_equal(rec["ts_event"], expected["ts_event"])
    np.testing.assert_array_equal(rec["price"], expected["price"])
    np.testing.assert_array_equal(df["trade_id"].to_numpy(), expected["trade_id"])
    np.testing.assert_array_equal(arrow.column("qty").to_numpy(), expected["qty"])
    assert set(df["venue"].unique()) == {V} and set(df["symbol"].unique()) == {"BTCUSDT"}
    pdf = read_tape(tape_root, "trades", V, "ETHUSDT", as_="pandas")
    assert len(pdf) == 3000


def test_time_range_is_half_open_and_prunes_files(tape_root: Path) -> None:
    tape = Tape(tape_root)
    expected = make_trades(3000, seed=0, mean_gap_ns=60 * 10**9)["ts_event"]
    lo, hi = int(expected[100]), int(expected[2500])
    got = tape.read_numpy("trades", V, "BTCUSDT", lo, hi)["ts_event"]
    np.testing.assert_array_equal(got, expected[100:2500])
    got_pl = tape.scan("trades", V, "BTCUSDT", lo, hi).collect()["ts_event"].to_numpy()
    np.testing.assert_array_equal(got_pl, expected[100:2500])
    day = str(np.datetime64(int(expected[-1]), "ns").astype("datetime64[D]"))
    entries = tape.entries("trades", V, "BTCUSDT", start=day)
    assert [e.date for e in entries] == [day]


def test_numpy_needs_one_instrument(tape_root: Path) -> None:
    with pytest.raises(ConfigError, match="one instrument"):
        Tape(tape_root).read_numpy("trades")


def test_duckdb_views_per_kind(tape_root: Path) -> None:
    tape = Tape(tape_root)
    df = tape.sql("SELECT symbol, count(*) AS n, min(ts_event) AS lo FROM trades GROUP BY symbol ORDER BY symbol")
    assert df["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"] and df["n"].to_list() == [3000, 3000]
    assert tape.sql("SELECT count(*) AS n FROM prices")["n"][0] == 10
    with pytest.raises(ConfigError, match="SQL failed"):
        tape.sql("SELECT * FROM nosuchkind")


def test_times_must_carry_a_zone() -> None:
    assert parse_time("2024-03-01") == int(np.datetime64("2024-03-01", "ns").astype(np.int64))
    assert parse_time("2024-03-01T01:00:00+01:00") == parse_time("2024-03-01T00:00:00Z")
    with pytest.raises(ConfigError, match="no zone"):
        parse_time("2024-03-01T00:00:00")


def test_not_a_tape(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="_manifest.json"):
        Tape(tmp_path)
