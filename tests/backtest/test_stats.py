"""emerald.backtest.stats against hand-built curves and first-principles numpy / quantstats-style formulas."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from emerald.backtest.stats import (
    compute_stats,
    daily_table,
    default_period_ns,
    drawdown_series,
    go_live_table,
    monthly_returns,
)
from emerald.errors import ConfigError

S = 10**9
MIN, HOUR, DAY = 60 * S, 3600 * S, 86_400 * S
T0 = int(np.datetime64("2024-03-09T00:00:00", "ns").astype(np.int64))
KEYS = {"total_return_pct", "cagr_pct", "sharpe", "sortino", "volatility_ann_pct", "max_drawdown_pct",
        "max_drawdown_duration_s", "calmar", "trades", "win_rate_pct", "profit_factor", "avg_r", "expectancy",
        "avg_return_pct", "exposure_time_pct", "turnover", "trades_per_day", "funding_share_pct", "fees_total",
        "funding_total", "start", "end", "days"}
PNL = {"price": 0.0, "fees": 0.0, "funding": 0.0, "slippage": 0.0, "total": 0.0}


def ns(iso: str) -> int:
    return int(np.datetime64(iso, "ns").astype(np.int64))


def curve(ts: list[int] | np.ndarray, eq: list[float] | np.ndarray, positions: list[int] | None = None) -> pl.DataFrame:
    n = len(eq)
    return pl.DataFrame({"ts": np.asarray(ts, dtype=np.int64), "equity": np.asarray(eq, dtype=np.float64),
                         "positions": np.asarray(positions if positions is not None else [0] * n, dtype=np.int64)})


def trades_frame(pnl: list[float], exit_ts: list[int] | None = None, return_pct: list[float] | None = None,
                 r_multiple: list[float] | None = None) -> pl.DataFrame:
    n = len(pnl)
    return pl.DataFrame({"exit_ts": np.asarray(exit_ts if exit_ts is not None else [T0] * n, dtype=np.int64),
                         "pnl": np.asarray(pnl, dtype=np.float64),
                         "return_pct": np.asarray(return_pct if return_pct is not None else [0.0] * n, dtype=np.float64),
                         "r_multiple": np.asarray(r_multiple if r_multiple is not None else [np.nan] * n,
                                                  dtype=np.float64)})


def stats_of(eq: pl.DataFrame, trades: pl.DataFrame | None = None, **kw: object) -> dict:
    args: dict = {"start_ns": int(eq["ts"][0]), "end_ns": int(eq["ts"][-1]), "initial_equity": float(eq["equity"][0]),
                  "pnl": PNL}
    args.update(kw)
    return compute_stats(eq, trades if trades is not None else trades_frame([]), **args)


# -- drawdown ---------------------------------------------------------------------------------------------------


def test_drawdown_of_a_hand_built_curve_peak_110_trough_88() -> None:
    eq = curve(T0 + np.arange(7) * HOUR, [100, 110, 99, 88, 95, 110, 120])
    s = stats_of(eq)
    assert s["max_drawdown_pct"] == pytest.approx(20.0, abs=1e-12)
    assert s["max_drawdown_duration_s"] == 4 * 3600  # peak at 1 h, back to 110 at 5 h
    dd = drawdown_series(eq)
    assert dd["ts"].to_list() == eq["ts"].to_list()
    assert dd["drawdown_pct"].to_list() == pytest.approx([0, 0, -10, -20, (95 / 110 - 1) * 100, 0, 0], abs=1e-12)
    # calmar is cagr over the drawdown, both as percentages
    assert s["calmar"] == pytest.approx(s["cagr_pct"] / 20.0, rel=1e-12)


def test_unrecovered_drawdown_lasts_until_the_end_of_the_run_and_start_equity_counts_as_a_peak() -> None:
    eq = curve(T0 + np.array([1, 2, 3, 4]) * HOUR, [110, 100, 88, 90])
    s = stats_of(eq, start_ns=T0, end_ns=T0 + 10 * HOUR, initial_equity=100.0)
    assert s["max_drawdown_pct"] == pytest.approx(20.0, abs=1e-12)
    assert s["max_drawdown_duration_s"] == 9 * 3600  # from the 110 peak at 1 h to the end at 10 h
    # the curve begins below the initial equity: the start (120) is the first peak
    s = stats_of(eq, start_ns=T0, end_ns=T0 + 4 * HOUR, initial_equity=120.0)
    assert s["max_drawdown_pct"] == pytest.approx((1 - 88 / 120) * 100, abs=1e-12)
    assert s["max_drawdown_duration_s"] == 4 * 3600


# -- returns ----------------------------------------------------------------------------------------------------


def test_cagr_of_constant_growth_doubling_in_two_crypto_years() -> None:
    d = np.arange(731)
    eq = curve(T0 + d * DAY, 100.0 * 2.0 ** (d / 730))
    s = stats_of(eq)
    assert s["total_return_pct"] == pytest.approx(100.0, rel=1e-12)
    assert s["cagr_pct"] == pytest.approx((math.sqrt(2) - 1) * 100, rel=1e-12)
    assert s["days"] == 730
    assert s["start"] == "2024-03-09T00:00:00Z" and s["end"] == "2026-03-09T00:00:00Z"
    assert s["max_drawdown_pct"] == 0.0 and math.copysign(1, s["max_drawdown_pct"]) == 1 and math.isnan(s["calmar"])
    # every daily return is the same: no volatility, so Sharpe is undefined rather than ~1e14
    assert s["volatility_ann_pct"] < 1e-9 and math.isnan(s["sharpe"]) and math.isnan(s["sortino"])


def test_sharpe_sortino_volatility_match_numpy_and_quantstats_formulas() -> None:
    rng = np.random.default_rng(7)
    log_r = rng.normal(2e-4, 5e-3, 24 * 60)  # 60 days of hourly returns
    eq_values = 1000.0 * np.exp(np.concatenate(([0.0], np.cumsum(log_r))))
    eq = curve(T0 + np.arange(eq_values.size) * HOUR, eq_values)
    s = stats_of(eq)  # default period: the 1 h spacing

    r = eq_values[1:] / eq_values[:-1] - 1
    periods = 365 * 24
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(periods), rel=1e-10)
    assert s["volatility_ann_pct"] == pytest.approx(r.std(ddof=1) * math.sqrt(periods) * 100, rel=1e-10)
    # quantstats.stats.sharpe / sortino (rf=0), written out with pandas
    ret = pd.Series(r)
    qs_sharpe = ret.mean() / ret.std(ddof=1) * np.sqrt(periods)
    qs_downside = np.sqrt((ret[ret < 0] ** 2).sum() / len(ret))
    qs_sortino = ret.mean() / qs_downside * np.sqrt(periods)
    assert s["sharpe"] == pytest.approx(qs_sharpe, rel=1e-10)
    assert s["sortino"] == pytest.approx(qs_sortino, rel=1e-10)


def test_resampling_takes_the_last_equity_at_or_before_each_period_end() -> None:
    rng = np.random.default_rng(3)
    n_hours = 96
    # irregular rows: random times, plus rows exactly on some hour ends and 1 ns after others
    ts = np.sort(np.concatenate([T0 + rng.integers(1, n_hours * HOUR, 400),
                                 T0 + np.arange(1, n_hours, 7) * HOUR,
                                 T0 + np.arange(3, n_hours, 11) * HOUR + 1]))
    values = 1000.0 * np.exp(np.cumsum(rng.normal(0, 2e-3, ts.size)))
    eq = curve(ts, values)
    s = compute_stats(eq, trades_frame([]), start_ns=T0, end_ns=T0 + n_hours * HOUR + 5 * MIN,
                      initial_equity=1000.0, pnl=PNL, period_ns=HOUR)

    sampled = []
    for k in range(n_hours + 1):  # the last 5 min are a partial period: dropped
        end = T0 + k * HOUR
        seen = [v for t, v in zip(ts.tolist(), values.tolist(), strict=True) if t <= end]
        sampled.append(seen[-1] if seen else 1000.0)
    r = np.diff(sampled) / np.array(sampled[:-1])
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(8760), rel=1e-10)

    # a spike 1 ns after an hour end, gone 1 ns later, is invisible to the hourly returns
    k = 40
    spike = curve(np.concatenate([ts, [T0 + k * HOUR + 1, T0 + k * HOUR + 2]]),
                  np.concatenate([values, [1e9, values[np.searchsorted(ts, T0 + k * HOUR + 2, "right") - 1]]]))
    spike = spike.sort("ts", maintain_order=True)
    s2 = compute_stats(spike, trades_frame([]), start_ns=T0, end_ns=T0 + n_hours * HOUR + 5 * MIN,
                       initial_equity=1000.0, pnl=PNL, period_ns=HOUR)
    assert s2["sharpe"] == s["sharpe"]


def test_annualisation_gives_the_same_sharpe_at_1_min_and_1_h() -> None:
    """Minute log returns ``mu + a*H_h + b*(-1)^m`` (H_h = (-1)^hour, m = minute of the hour): hourly log
    returns are ``60 mu + 60 a H_h`` (the alternating term sums to 0 over an hour) and the minute variance is
    ``a^2 + b^2``. With ``b^2 = 59 a^2`` both samplings have annualised log-Sharpe exactly ``mu / a * sqrt(8760)``."""
    a = 1e-6
    mu, b = a * 3.0 / math.sqrt(8760), a * math.sqrt(59)
    hours = 24 * 30
    minute = np.arange(hours * 60)
    log_r = mu + a * (-1.0) ** (minute // 60) + b * (-1.0) ** (minute % 60)
    values = 10_000.0 * np.exp(np.concatenate(([0.0], np.cumsum(log_r))))
    ts = T0 + np.arange(values.size) * MIN
    by_minute = curve(ts, values)
    by_hour = curve(ts[::60], values[::60])
    assert ts[-1] - T0 == hours * HOUR

    def sharpe(eq: pl.DataFrame, period: int | None) -> float:
        return compute_stats(eq, trades_frame([]), start_ns=T0, end_ns=int(ts[-1]), initial_equity=10_000.0,
                             pnl=PNL, period_ns=period)["sharpe"]

    s_min, s_hour = sharpe(by_minute, None), sharpe(by_hour, None)
    assert s_min == sharpe(by_minute, MIN)  # default period = the 1 min spacing
    assert s_hour == sharpe(by_minute, HOUR)  # the hourly table = the minute curve sampled as of each hour
    # exact in log returns; simple returns and ddof=1 move it by well under 0.5 %
    assert s_min == pytest.approx(3.0, rel=5e-3)
    assert s_hour == pytest.approx(3.0, rel=5e-3)
    assert s_min == pytest.approx(s_hour, rel=5e-3)


@pytest.mark.parametrize(("spacing_s", "expected_s"), [
    (60, 60), (61, 60), (50 * 60, 3600), (3600, 3600), (3 * 3600, 4 * 3600), (86_400, 86_400),
    (3 * 86_400, 3600),  # sparse: only fill rows
])
def test_default_period_is_the_rounded_median_spacing(spacing_s: int, expected_s: int) -> None:
    ts = T0 + np.arange(50) * spacing_s * S
    # extra rows at fills (fewer than the samples) do not move the median
    fills = ts[::5][:8] + 7 * S
    assert default_period_ns(np.sort(np.concatenate([ts, fills]))) == expected_s * S


def test_default_period_of_a_curve_with_two_rows_is_one_hour() -> None:
    assert default_period_ns(np.array([T0, T0 + 5 * DAY])) == HOUR


def test_a_non_positive_period_is_refused() -> None:
    with pytest.raises(ConfigError, match="`period_ns`.*was 0"):
        stats_of(curve([T0, T0 + DAY], [1.0, 2.0]), period_ns=0)


# -- trades, exposure, turnover, funding --------------------------------------------------------------------------


def test_trade_statistics_from_a_hand_list() -> None:
    pnl = [10.0, -5.0, 20.0, -10.0, 0.0, 15.0]
    eq = curve([T0, T0 + 2 * DAY], [1000.0, 1030.0])
    s = stats_of(eq, trades_frame(pnl, return_pct=[1.0, -0.5, 2.0, -1.0, 0.0, 1.5],
                                  r_multiple=[1.0, -0.5, 2.0, np.nan, 0.0, 1.5]))
    assert s["trades"] == 6
    assert s["win_rate_pct"] == pytest.approx(50.0)  # 10, 20, 15; the 0 is not a win
    assert s["profit_factor"] == pytest.approx(45.0 / 15.0)
    assert s["expectancy"] == pytest.approx(30.0 / 6)
    assert s["avg_r"] == pytest.approx((1.0 - 0.5 + 2.0 + 0.0 + 1.5) / 5)  # NaN r (no stop) left out
    assert s["avg_return_pct"] == pytest.approx(3.0 / 6)
    assert s["trades_per_day"] == pytest.approx(3.0)


def test_all_winning_trades_have_an_undefined_profit_factor() -> None:
    s = stats_of(curve([T0, T0 + DAY], [1000.0, 1010.0]), trades_frame([4.0, 6.0]))
    assert s["win_rate_pct"] == 100.0 and math.isnan(s["profit_factor"])


@pytest.mark.parametrize("trades", [trades_frame([]), pl.DataFrame()])
def test_no_trades_give_nan_never_an_exception(trades: pl.DataFrame) -> None:
    eq = curve(T0 + np.arange(3) * HOUR, [1000.0, 990.0, 1000.0])
    s = compute_stats(eq, trades, start_ns=T0, end_ns=T0 + 2 * HOUR, initial_equity=1000.0, pnl=PNL)
    assert set(s) == KEYS
    assert s["trades"] == 0 and s["trades_per_day"] == 0.0
    for key in ("win_rate_pct", "profit_factor", "avg_r", "expectancy", "avg_return_pct", "turnover",
                "funding_share_pct"):
        assert math.isnan(s[key]), key
    assert s["max_drawdown_pct"] == pytest.approx(1.0)
    daily = daily_table(eq, trades)
    assert daily["trades"].to_list() == [0] and daily["pnl"].to_list() == [0.0]


def test_an_empty_run_has_every_key() -> None:
    s = compute_stats(curve([], []), trades_frame([]), start_ns=T0, end_ns=T0 + DAY, initial_equity=1000.0, pnl=PNL,
                      fills=pl.DataFrame({"qty": [], "price": []}, schema={"qty": pl.Float64, "price": pl.Float64}))
    assert set(s) == KEYS
    assert math.isnan(s["total_return_pct"]) and math.isnan(s["sharpe"]) and math.isnan(s["max_drawdown_pct"])
    assert daily_table(curve([], []), trades_frame([])).height == 0
    assert monthly_returns(curve([], [])).height == 0


def test_exposure_is_time_weighted_and_turnover_uses_the_time_weighted_mean_equity() -> None:
    # 1000 for 12 h then 2000 for 12 h: time-weighted mean 1500 (the row mean would be 1750)
    ts = T0 + np.array([0, 12, 18, 20, 24]) * HOUR
    eq = curve(ts, [1000.0, 2000.0, 2000.0, 2000.0, 2000.0], positions=[1, 0, 2, 0, 0])
    fills = pl.DataFrame({"qty": [1.0, -2.0, 0.5], "price": [100.0, 110.0, 120.0]})
    s = compute_stats(eq, trades_frame([]), start_ns=T0, end_ns=T0 + DAY, initial_equity=1000.0, pnl=PNL, fills=fills)
    assert s["exposure_time_pct"] == pytest.approx((12 + 2) / 24 * 100)
    assert s["turnover"] == pytest.approx((100 + 220 + 60) / 1500)


@pytest.mark.parametrize(("funding", "total", "expected"), [(10.0, -50.0, 20.0), (-5.0, 100.0, -5.0),
                                                             (3.0, 0.0, math.nan)])
def test_funding_share_keeps_the_sign(funding: float, total: float, expected: float) -> None:
    pnl = {"price": total + funding + 2.0, "fees": 2.0, "funding": funding, "slippage": 0.5, "total": total}
    s = stats_of(curve([T0, T0 + DAY], [1000.0, 1000.0 + total]), pnl=pnl)
    assert s["funding_share_pct"] == pytest.approx(expected, nan_ok=True)
    assert s["fees_total"] == 2.0 and s["funding_total"] == funding


# -- go-live table ------------------------------------------------------------------------------------------------

PASSING = {"win_rate_pct": 60.0, "profit_factor": 2.0, "sharpe": 2.0, "max_drawdown_pct": 5.0, "trades": 30}


def test_go_live_table_rows_and_overall_pass() -> None:
    rows = go_live_table(PASSING)
    assert [r["criterion"] for r in rows] == ["win rate", "profit factor", "Sharpe", "max drawdown", "trades",
                                              "overall"]
    assert [r["threshold"] for r in rows[:5]] == ["> 55 %", "> 1.5", "> 1.5", "< 10 %", ">= 30"]
    assert all(set(r) == {"criterion", "threshold", "value", "pass"} for r in rows)
    assert all(r["pass"] for r in rows)
    assert [r["value"] for r in rows[:5]] == [60.0, 2.0, 2.0, 5.0, 30]


@pytest.mark.parametrize(("key", "value", "passes"), [
    ("win_rate_pct", 55.0, False), ("win_rate_pct", 55.000001, True),
    ("profit_factor", 1.5, False), ("profit_factor", 1.500001, True),
    ("sharpe", 1.5, False), ("sharpe", 1.51, True), ("sharpe", math.nan, False),
    ("max_drawdown_pct", 10.0, False), ("max_drawdown_pct", 9.999, True), ("max_drawdown_pct", math.nan, False),
    ("trades", 29, False), ("trades", 30, True),
])
def test_go_live_boundaries(key: str, value: float, passes: bool) -> None:
    rows = {r["criterion"]: r for r in go_live_table({**PASSING, key: value})}
    label = {"win_rate_pct": "win rate", "profit_factor": "profit factor", "sharpe": "Sharpe",
             "max_drawdown_pct": "max drawdown", "trades": "trades"}[key]
    assert rows[label]["pass"] is passes
    assert rows["overall"]["pass"] is passes
    assert rows["overall"]["value"] == ("5/5" if passes else "4/5")


# -- daily and monthly tables -------------------------------------------------------------------------------------


def test_daily_table_cuts_at_utc_midnight() -> None:
    d0, d1, d2 = T0, T0 + DAY, T0 + 2 * DAY
    ts = [d0, d0 + 12 * HOUR, d0 + 23 * HOUR + 30 * MIN, d1, d1 + 6 * HOUR, d2 - 1, d2 + HOUR, d2 + 3 * HOUR,
          d2 + 5 * HOUR]
    eq = curve(ts, [1000, 1050, 900, 950, 1100, 1000, 1200, 980, 1150])
    trades = trades_frame([5.0, -3.0, 7.0, 1.0], exit_ts=[d1 - 1, d1, d2 + 4 * HOUR, d2 + 4 * HOUR + 30 * MIN])
    t = daily_table(eq, trades)
    assert t.columns == ["date", "start_equity", "end_equity", "return_pct", "max_intraday_drawdown_pct", "trades",
                         "pnl"]
    assert t["date"].to_list() == ["2024-03-09", "2024-03-10", "2024-03-11"]
    assert t["start_equity"].to_list() == [1000, 950, 1000]  # the row at 00:00 opens its day
    assert t["end_equity"].to_list() == [950, 1000, 1150]  # ... and closes the previous one
    assert t["return_pct"].to_list() == pytest.approx([-5.0, (1000 / 950 - 1) * 100, 15.0])
    assert t["max_intraday_drawdown_pct"].to_list() == pytest.approx([10.0, 0.0, 2.0])
    assert t["trades"].to_list() == [1, 1, 2]
    assert t["pnl"].to_list() == pytest.approx([5.0, -3.0, 8.0])
    assert np.prod(1 + t["return_pct"].to_numpy() / 100) == pytest.approx(1150 / 1000)


def test_daily_table_fills_days_without_rows_as_of_midnight() -> None:
    eq = curve([T0 + 6 * HOUR, T0 + 2 * DAY + HOUR], [1000.0, 1100.0])
    t = daily_table(eq, trades_frame([]))
    assert t["date"].to_list() == ["2024-03-09", "2024-03-10", "2024-03-11"]
    assert t["start_equity"].to_list() == [1000.0, 1000.0, 1000.0]
    assert t["end_equity"].to_list() == [1000.0, 1000.0, 1100.0]


def test_monthly_returns_cut_at_utc_month_starts() -> None:
    rows = [("2023-12-20T00:00", 900.0), ("2024-01-15T00:00", 1000.0), ("2024-01-31T23:00", 1100.0),
            ("2024-02-01T00:00", 1210.0), ("2024-02-20T00:00", 1000.0), ("2024-03-01T00:00:00.000000001", 1200.0),
            ("2024-04-10T00:00", 1500.0)]
    eq = curve([ns(t) for t, _ in rows], [v for _, v in rows])
    m = monthly_returns(eq)
    assert list(zip(m["year"].to_list(), m["month"].to_list(), strict=True)) == [
        (2023, 12), (2024, 1), (2024, 2), (2024, 3), (2024, 4)]
    assert m["return_pct"].to_list() == pytest.approx(
        [0.0, (1210 / 900 - 1) * 100, (1000 / 1210 - 1) * 100, 20.0, 25.0])
