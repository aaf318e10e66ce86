"""RELIABILITY.md TB6: daily drawdown and daily reports cut at 00:00 UTC whatever the machine time zone or DST.

The statistics run in subprocesses under the TD2 zones (UTC, America/New_York, Asia/Kolkata, Pacific/Chatham);
the hourly curve spans New York's DST start (2024-03-10 07:00 UTC), a UTC month end that is already April in
Chatham (UTC+13:45) and Chatham's DST end (2024-04-06 14:00 UTC). A dip at 02:00-03:00 UTC on 2024-03-10 lies on
the UTC day 2024-03-10 but on the New York day 2024-03-09, so a local-midnight cut gives a different table.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import orjson
import pandas as pd
import pytest

ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")
HOUR = 3600 * 10**9

SCRIPT = r"""
import time, numpy as np, orjson, polars as pl
from emerald.backtest.stats import compute_stats, daily_table, drawdown_series, go_live_table, monthly_returns

HOUR = 3600 * 10**9
t0 = int(np.datetime64("2024-03-08T00:00:00", "ns").astype(np.int64))
h = np.arange(32 * 24 + 1)
ts = t0 + h * HOUR
eq = 1000.0 + 0.5 * h
eq[[50, 51]] = 900.0  # 2024-03-10 02:00 and 03:00 UTC
equity = pl.DataFrame({"ts": ts, "equity": eq, "positions": (h % 5 > 1).astype(np.int64)})
exits = np.array(["2024-03-09T23:30", "2024-03-10T03:30", "2024-03-31T11:00", "2024-04-06T14:30"],
                 dtype="datetime64[ns]").astype(np.int64)
trades = pl.DataFrame({"exit_ts": exits, "pnl": [12.0, -50.0, 30.0, 8.0], "return_pct": [1.2, -5.0, 3.0, 0.8],
                       "r_multiple": [1.0, -1.0, 2.5, np.nan]})
fills = pl.DataFrame({"qty": [1.0, -1.0, 2.0, -2.0], "price": [100.0, 101.0, 99.0, 103.0]})
pnl = {"price": 12.0, "fees": 3.0, "funding": 1.5, "slippage": 0.4, "total": 7.5}
stats = compute_stats(equity, trades, start_ns=int(ts[0]), end_ns=int(ts[-1]), initial_equity=1000.0, pnl=pnl,
                      fills=fills)
out = {"daily": daily_table(equity, trades).to_dicts(), "monthly": monthly_returns(equity).to_dicts(),
       "drawdown": drawdown_series(equity).to_dicts(), "stats": stats, "go_live": go_live_table(stats)}
print(orjson.dumps(out).decode())
print(time.strftime("%z", time.localtime(int(ts[30]) // 10**9)))  # proves the zone took effect
"""


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[bytes, str]]:
    procs = {tz: subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env={**os.environ, "TZ": tz}) for tz in ZONES}
    out = {}
    for tz, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr.decode()
        payload, offset = stdout.strip().split(b"\n")
        out[tz] = (payload, offset.decode())
    return out


def test_tb6_outputs_are_identical_under_every_zone(runs: dict[str, tuple[bytes, str]]) -> None:
    # the subprocesses really ran in different zones (2024-03-09 06:00 UTC)
    assert [runs[tz][1] for tz in ZONES] == ["+0000", "-0500", "+0530", "+1345"]
    assert len({payload for payload, _ in runs.values()}) == 1


def test_tb6_days_and_months_are_cut_at_utc_midnight(runs: dict[str, tuple[bytes, str]]) -> None:
    out = orjson.loads(runs["America/New_York"][0])
    t0 = int(np.datetime64("2024-03-08T00:00:00", "ns").astype(np.int64))

    def e(iso: str) -> float:  # the generating formula, the dips aside
        return 1000.0 + 0.5 * (int(np.datetime64(iso, "ns").astype(np.int64)) - t0) / HOUR

    daily = {row["date"]: row for row in out["daily"]}
    assert list(daily) == [str(d) for d in np.arange("2024-03-08", "2024-04-10", dtype="datetime64[D]")]
    for d in list(daily)[:-1]:
        nxt = str(np.datetime64(d) + 1)
        assert daily[d]["start_equity"] == e(d) and daily[d]["end_equity"] == e(nxt), d
        assert daily[d]["return_pct"] == pytest.approx((e(nxt) / e(d) - 1) * 100, rel=1e-12)
    assert daily["2024-03-10"]["max_intraday_drawdown_pct"] == pytest.approx((1 - 900 / e("2024-03-10")) * 100)
    assert {d for d, row in daily.items() if row["max_intraday_drawdown_pct"] > 0} == {"2024-03-10"}
    assert {d: (row["trades"], row["pnl"]) for d, row in daily.items() if row["trades"]} == {
        "2024-03-09": (1, 12.0), "2024-03-10": (1, -50.0), "2024-03-31": (1, 30.0), "2024-04-06": (1, 8.0)}
    assert [(m["year"], m["month"]) for m in out["monthly"]] == [(2024, 3), (2024, 4)]
    assert out["monthly"][0]["return_pct"] == pytest.approx((e("2024-04-01") / e("2024-03-08") - 1) * 100)
    assert out["monthly"][1]["return_pct"] == pytest.approx((e("2024-04-09") / e("2024-04-01") - 1) * 100)
    assert out["stats"]["start"] == "2024-03-08T00:00:00Z" and out["stats"]["end"] == "2024-04-09T00:00:00Z"

    # the fixture discriminates: cut at New York midnight, the dip and the -50 trade fall on 2024-03-09
    ts = t0 + np.arange(32 * 24 + 1) * HOUR
    local_day = pd.to_datetime(ts, utc=True).tz_convert("America/New_York").strftime("%Y-%m-%d")
    assert local_day[50] == local_day[51] == "2024-03-09"
    # and in Chatham 2024-03-31 11:00 UTC (the 30.0 trade) is already April
    assert pd.Timestamp("2024-03-31T11:00", tz="UTC").tz_convert("Pacific/Chatham").month == 4
