"""Per-signal performance on a hand-made labelled log: every statistic recomputed here another way
(numpy loops, a hand Newey–West, scipy's correlations), the breakdowns counted by hand, the
go-live table, the HTML report in headless Chromium, and the two CLI functions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest
import scipy.stats
import typer
from typer.testing import CliRunner

from emerald.errors import ConfigError
from emerald.forward.label import OUTCOME_SCHEMA
from emerald.forward.log import SIGNAL_COLUMNS, SignalLog
from emerald.forward.performance import hac_lags, signal_performance

S = 1_000_000_000
M = 60 * S
H = 60 * M
T0 = 1_709_251_200 * S  # 2024-03-01 00:00 UTC
N = 72  # signals per firing series: every 20 minutes for 24 h
RUN, RUN_SPAN = "run-perf", 2 * 24 * H  # the run recorded for two days
INST = "demo-perp:BTCUSDT"
YEAR_NS = 365 * 24 * H
HORIZONS = {"5m": 5 * M, "1h": H}


def _signal_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = {c: pl.Utf8 for c in SIGNAL_COLUMNS} | {
        "ts_event": pl.Int64, "ts_recorded": pl.Int64, "event_index": pl.Int64, "direction": pl.Int32,
        "value": pl.Float64, "threshold": pl.Float64, "weight": pl.Float64, "score": pl.Float64,
        "score_long": pl.Float64, "score_short": pl.Float64, "price": pl.Float64}
    full = [{c: r.get(c) for c in SIGNAL_COLUMNS} for r in rows]
    return pl.DataFrame(full, schema=schema)


def synthetic() -> dict[str, object]:
    """Signals, outcomes and trades with seeded random returns; returns the arrays the tests use."""
    rng = np.random.default_rng(11)
    sig, out, trades = [], [], []
    truth: dict[str, object] = {}
    for name, shift in (("a", 0), ("b", 7 * M)):
        ts = T0 + shift + np.arange(N, dtype=np.int64) * 20 * M
        direction = np.where(rng.random(N) < 0.5, 1, -1)
        value = direction * rng.uniform(0.3, 1.0, N)  # a sign trigger: the value has the firing's sign
        vol = rng.uniform(0.2, 0.8, N)
        vol[3] = np.nan  # unknown volatility for one signal
        rets = {}
        for h, h_ns in HORIZONS.items():
            # returns that grow with the strength, plus noise (a positive IC)
            r = 0.01 * (np.abs(value) - 0.6) + rng.normal(0.0004, 0.002, N) * math.sqrt(h_ns / H)
            rets[h] = r
            for k in range(N):
                out.append({"signal_id": f"{name}{k:03d}", "run_id": RUN, "horizon": h, "horizon_ns": h_ns,
                            "ts_event": int(ts[k]), "direction": int(direction[k]), "entry_ts": int(ts[k]),
                            "entry_px": 100.0, "exit_px": 100.0 * (1 + direction[k] * r[k]), "ret": float(r[k]),
                            "mfe": float(max(r[k], 0.0) + 0.001), "mae": float(min(r[k], 0.0) - 0.001),
                            "barrier": int(np.sign(r[k])) if abs(r[k]) > 0.002 else 0,
                            "barrier_ts": int(ts[k] + M) if abs(r[k]) > 0.002 else None,
                            "funding": 0.0001 * direction[k] if h == "1h" else 0.0, "realised_vol": float(vol[k])})
        for k in range(N):
            sig.append({"signal_id": f"{name}{k:03d}", "run_id": RUN, "kind": "firing", "ts_event": int(ts[k]),
                        "event_index": k, "strategy": "strat", "instrument": INST, "signal": name,
                        "direction": int(direction[k]), "value": float(value[k]), "score": 50.0})
        truth[name] = {"ts": ts, "direction": direction, "value": value, "vol": vol, "ret": rets}
    # decisions: 40 with a closed trade, 2 not filled
    d_ts = T0 + np.arange(42, dtype=np.int64) * 30 * M + 3 * M
    score = rng.uniform(60, 100, 42)
    d_ret = rng.normal(0.001, 0.004, 42)
    for k in range(42):
        sid = f"d{k:03d}"
        sig.append({"signal_id": sid, "run_id": RUN, "kind": "decision", "ts_event": int(d_ts[k]), "event_index": k,
                    "strategy": "strat", "instrument": INST, "signal": "entry", "direction": 1,
                    "score": float(score[k])})
        closed = k < 40
        trades.append({"signal_id": sid, "run_id": RUN, "order_id": k, "status": "closed" if closed else "expired",
                       "trade_id": k if closed else None, "entry_ts": int(d_ts[k] + S) if closed else None,
                       "exit_ts": int(d_ts[k] + 20 * M) if closed else None, "entry_px": 100.0, "exit_px": 101.0,
                       "qty": 1.0, "pnl": float(d_ret[k] * 100), "ret": float(d_ret[k]), "fees": 0.0,
                       "funding": 0.0, "exit_reason": "trailing_stop"})
    truth["decision"] = {"ts": d_ts[:40], "score": score[:40], "ret": d_ret[:40]}
    return {"signals": sig, "outcomes": out, "trades": trades, "truth": truth}


@pytest.fixture(scope="module")
def log_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    from emerald.forward.label import OUTCOME_SCHEMA_PL, TRADE_SCHEMA_PL

    data = synthetic()
    path = tmp_path_factory.mktemp("perf") / "log.duckdb"
    with SignalLog(path) as log:
        log.start_run({"run_id": RUN, "strategy": "strat", "config": "{}", "code_hash": "c", "config_hash": "k",
                       "fitted_hash": "none", "data_hash": "d", "source": "hand", "start": T0,
                       "end": T0 + RUN_SPAN, "started_at": 0})
        rows = _signal_frame(data["signals"])  # type: ignore[arg-type]
        log.commit(RUN, rows, rows.height, rows.height)
        log.finish_run(RUN, rows.height, 0)
        log.con.execute(OUTCOME_SCHEMA)
        log.con.register("o", pl.DataFrame(data["outcomes"], schema=OUTCOME_SCHEMA_PL))
        log.con.execute("INSERT INTO outcomes SELECT * FROM o")
        log.con.register("t", pl.DataFrame(data["trades"], schema=TRADE_SCHEMA_PL))
        log.con.execute("INSERT INTO outcome_trades SELECT * FROM t")
        log.con.execute("INSERT INTO outcome_runs VALUES (?, '[\"5m\",\"1h\"]', 0.5, 0.5, 3600000000000, 'tape', ?, "
                        "?, 3, '{\"5m\":1,\"1h\":2}', 0, 0, '{\"closed\":40,\"expired\":2}', '{}')",
                        [RUN, rows.height, len(data["outcomes"])])  # type: ignore[arg-type]
    return path, data["truth"]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def report(log_data):
    return signal_performance(log_data[0])


def row_of(report, signal: str, horizon: str, kind: str = "firing") -> dict[str, object]:
    rows = report.summary.filter((pl.col("signal") == signal) & (pl.col("horizon") == horizon)
                                 & (pl.col("kind") == kind))
    assert rows.height == 1
    return rows.row(0, named=True)


def newey_west_t(r: np.ndarray, lags: int) -> float:
    """t = mean / sqrt(S / n), S = γ0 + 2 Σ_l (1 − l / (L + 1)) γ_l, γ_l = Σ_t e_t e_{t−l} / n."""
    n = r.size
    e = r - r.mean()
    s = float(e @ e) / n
    for lag in range(1, lags + 1):
        s += 2 * (1 - lag / (lags + 1)) * float(e[lag:] @ e[:-lag]) / n
    return r.mean() / math.sqrt(s / n)


def test_core_statistics(report, log_data):
    truth = log_data[1]["a"]
    for h in HORIZONS:
        r = truth["ret"][h]
        row = row_of(report, "a", h)
        assert row["count"] == N
        assert row["win_rate_pct"] == pytest.approx(100.0 * sum(x > 0 for x in r) / N)
        assert row["profit_factor"] == pytest.approx(sum(x for x in r if x > 0) / -sum(x for x in r if x < 0))
        assert row["mean_return_pct"] == pytest.approx(100 * sum(r) / N)
        assert row["median_return_pct"] == pytest.approx(100 * float(np.median(r)))
        sd = math.sqrt(sum((x - r.mean()) ** 2 for x in r) / (N - 1))
        assert row["sharpe"] == pytest.approx(r.mean() / sd * math.sqrt(N / (RUN_SPAN / YEAR_NS)))
        equity, peak, dd = 1.0, 1.0, 0.0  # returns booked at ts + h: same order as the signals here
        for x in r:
            equity += x
            peak = max(peak, equity)
            dd = max(dd, 1 - equity / peak)
        assert row["max_drawdown_pct"] == pytest.approx(100 * dd)
        x = truth["value"] * truth["direction"]
        assert row["ic"] == pytest.approx(scipy.stats.pearsonr(x, r).statistic, abs=1e-12)
        assert row["rank_ic"] == pytest.approx(scipy.stats.spearmanr(x, r).statistic, abs=1e-12)
        assert row["mfe_mean_pct"] == pytest.approx(100 * float(np.mean(np.maximum(r, 0) + 0.001)))
        assert row["barrier_timeout_pct"] == pytest.approx(100 * float(np.mean(np.abs(r) <= 0.002)))
    assert row_of(report, "a", "1h")["ic"] > 0.2  # the returns were built to grow with the strength
    assert row_of(report, "a", "1h")["funding_mean_pct"] == pytest.approx(
        100 * 0.0001 * float(np.mean(truth["direction"])))


def test_hac_t_stat_equals_a_hand_newey_west(report, log_data):
    truth = log_data[1]["a"]
    # signals every 20 min: a 1 h outcome overlaps the next two (starting 20 and 40 min later)
    assert row_of(report, "a", "1h")["hac_lags"] == 2
    assert row_of(report, "a", "5m")["hac_lags"] == 0
    for h, lags in (("1h", 2), ("5m", 0)):
        assert row_of(report, "a", h)["t_stat_hac"] == pytest.approx(newey_west_t(truth["ret"][h], lags), rel=1e-9)
    ts = np.arange(10, dtype=np.int64) * 10
    assert hac_lags(ts, ts + 35) == 3  # 3 later starts inside for most, fewer at the end: mean 2.4 -> 3
    assert hac_lags(ts, ts + 5) == 0


def test_decay_sessions_regimes(report, log_data):
    truth = log_data[1]
    decay = report.decay.filter((pl.col("signal") == "b") & (pl.col("kind") == "firing")).sort("horizon_ns")
    assert decay["horizon"].to_list() == ["5m", "1h"]
    assert decay["mean_return_pct"].to_list() == pytest.approx([100 * truth["b"]["ret"][h].mean() for h in HORIZONS])
    # sessions by UTC hour of the signal: 00-08 asia, 08-16 europe, 16-24 us
    hours = [int((t - T0) // H) % 24 for t in truth["a"]["ts"]]
    s = report.sessions.filter((pl.col("signal") == "a") & (pl.col("horizon") == "1h"))
    want = {"asia": sum(h < 8 for h in hours), "europe": sum(8 <= h < 16 for h in hours),
            "us": sum(h >= 16 for h in hours)}
    assert dict(zip(s["session"], s["count"], strict=True)) == want
    us = [r for r, h in zip(truth["a"]["ret"]["1h"], hours, strict=True) if h >= 16]
    assert s.filter(pl.col("session") == "us")["mean_return_pct"][0] == pytest.approx(100 * np.mean(us))
    # regimes: terciles over the distinct signals of the instrument (a and b), NaN -> unknown
    vols = np.concatenate([truth["a"]["vol"], truth["b"]["vol"]])
    q1, q2 = np.quantile(vols[~np.isnan(vols)], [1 / 3, 2 / 3])
    va = truth["a"]["vol"]
    want = {"low": int(np.sum(va <= q1)), "mid": int(np.sum((va > q1) & (va <= q2))), "high": int(np.sum(va > q2)),
            "unknown": int(np.sum(np.isnan(va)))}
    g = report.regimes.filter((pl.col("signal") == "a") & (pl.col("horizon") == "5m"))
    assert dict(zip(g["regime"], g["count"], strict=True)) == want


def test_trades_pooled_rows_and_go_live(report, log_data):
    d = log_data[1]["decision"]
    trade = row_of(report, "entry", "trade", kind="decision")
    assert trade["count"] == 40  # the two expired orders have no trade
    assert trade["mean_return_pct"] == pytest.approx(100 * d["ret"].mean())
    assert trade["ic"] == pytest.approx(scipy.stats.pearsonr(d["score"], d["ret"]).statistic, abs=1e-12)
    assert trade["hac_lags"] == 0  # 20-minute trades, 30 minutes apart
    pooled = row_of(report, "(all)", "1h")
    assert pooled["count"] == 2 * N
    both = np.concatenate([log_data[1]["a"]["ret"]["1h"], log_data[1]["b"]["ret"]["1h"]])
    assert pooled["mean_return_pct"] == pytest.approx(100 * both.mean())
    assert report.summary.filter(pl.col("kind") == "decision")["signal"].unique().to_list() == ["entry"]
    # go-live: criteria re-evaluated here from the summary's values
    for row in report.summary.iter_rows(named=True):
        checks = [row["win_rate_pct"] > 55, row["profit_factor"] > 1.5, row["sharpe"] > 1.5,
                  row["max_drawdown_pct"] < 10, row["count"] >= 30]
        assert row["go_live"] == f"{sum(checks)}/5" and row["go_live_pass"] == all(checks)
        g = report.go_live.filter((pl.col("signal") == row["signal"]) & (pl.col("horizon") == row["horizon"])
                                  & (pl.col("kind") == row["kind"]))
        assert g["pass"].to_list() == [*checks, all(checks)]


def test_bootstrap_intervals(log_data, report):
    row = row_of(report, "a", "1h")
    r = log_data[1]["a"]["ret"]["1h"]
    assert row["mean_return_ci_low_pct"] < row["mean_return_pct"] < row["mean_return_ci_high_pct"]
    half = 1.96 * r.std(ddof=1) / math.sqrt(r.size) * 100  # the normal approximation of the interval
    assert (row["mean_return_ci_high_pct"] - row["mean_return_ci_low_pct"]) / 2 == pytest.approx(half, rel=0.2)
    assert row["win_rate_ci_low_pct"] <= row["win_rate_pct"] <= row["win_rate_ci_high_pct"]
    again = signal_performance(log_data[0])
    assert again.summary.equals(report.summary)  # seeded
    other = signal_performance(log_data[0], seed=1)
    assert other.summary["mean_return_ci_low_pct"].to_list() != report.summary["mean_return_ci_low_pct"].to_list()


def test_unlabelled_log_is_refused(tmp_path):
    with SignalLog(tmp_path / "empty.duckdb"):
        pass
    with pytest.raises(ConfigError, match="emerald label"):
        signal_performance(tmp_path / "empty.duckdb")


def test_html_report_in_chromium(report, tmp_path):
    from emerald.report.signals import write_signal_report
    from emerald.testing.browser import check_page, find_chromium

    path = write_signal_report(report, tmp_path / "signals.html")
    text = path.read_text(encoding="utf-8")
    assert write_signal_report(report, tmp_path / "again.html").read_text(encoding="utf-8") == text
    if find_chromium() is None:
        pytest.fail("Chromium not found: `apt-get install -y chromium` (Debian) or set EMERALD_CHROMIUM")
    page = check_page(path)
    assert page.problems() == []
    charts = {c.name: c.traces for c in page.charts}
    assert set(charts) == {"decay", "ic", "mean-ci", "sessions", "regimes"}
    groups = report.summary.select("strategy", "kind", "signal").unique().height
    n_decay = report.decay.select("strategy", "kind", "signal").unique().height
    assert len(charts["decay"]) == n_decay and len(charts["ic"]) == 2 * n_decay
    assert charts["mean-ci"] == [report.summary.height] and groups >= 4


def test_cli_functions(log_data, tmp_path):
    from emerald.cli.signal_report import label, signals_report
    from tests.forward.test_label import N_TRADES, SIGNALS, build_tape, write_log
    from tests.forward.test_label import T0 as T_LABEL

    app = typer.Typer()
    app.command("label")(label)
    app.command("report")(signals_report)
    runner = CliRunner()
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--log", str(log_data[0]), "--report", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert payload["ok"] and out.is_file() and len(payload["summary"]) == signal_performance(log_data[0]).summary.height
    root, log = tmp_path / "tape", tmp_path / "log.duckdb"
    build_tape(root)
    write_log(log, SIGNALS)
    res = runner.invoke(app, ["label", "--log", str(log), "--root", str(root), "--horizons", "1m,1h", "--no-trades",
                              "--json"])
    assert res.exit_code == 0, res.output
    payload = orjson.loads(res.stdout.strip().splitlines()[-1])
    data_end = T_LABEL + (N_TRADES - 1) * 10 * S  # the hand tape's last trade
    past = sum(t0 + h > data_end for t0, _, _ in SIGNALS for h in (M, H))
    assert past == 2 and payload["uncovered"] == past and payload["rows"] == 2 * len(SIGNALS) - past
    res = runner.invoke(app, ["label", "--log", str(log), "--root", str(root), "--horizons", "1x", "--json"])
    assert res.exit_code == 2 and "horizon" in orjson.loads(res.stdout.strip().splitlines()[-1])["error"]
