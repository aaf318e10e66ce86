"""Per-signal performance of a labelled signal log (``emerald signals report``).

Reads the signal log's ``signals``, ``outcomes``, ``outcome_trades`` and ``outcome_runs`` tables
(written by :mod:`emerald.forward.label`) and computes, per (strategy, kind, signal, horizon) —
``kind`` is ``firing`` or ``decision``; horizon ``trade`` is the would-be trade under the strategy's
exit rules (closed trades only) — and per (strategy, kind) over all its signals (signal
``(all)``, when it has more than one), the statistics below. Returns ``r`` are the outcome's
direction-signed returns (``outcomes.ret``, ``outcome_trades.ret``), fractions; the tables show
them in percent.

Definitions
-----------
- ``count``: outcomes in the group; ``win_rate_pct``: share with ``r > 0`` (a zero return is not a
  win); ``profit_factor = Σ r⁺ / |Σ r⁻|`` (NaN without a loss); ``mean_return_pct``,
  ``median_return_pct``.
- ``sharpe = mean(r) / std(r, ddof=1) × sqrt(N)``, ``N`` = signals per 365-day year: ``count`` over
  the recording span of the group's runs (``runs.end − runs.start``; the signals' own span when a
  run has no end). Each signal counts as a separate bet of equal notional; overlap is ignored
  here (the HAC t-statistic accounts for it).
- ``max_drawdown_pct``: of the curve ``1 + cumulative Σ r`` (one unit of notional per signal,
  returns booked at the outcome's end, ``ts + h`` or the trade's exit), ``max(1 − E / cummax(E))``
  with the curve starting at 1.
- ``t_stat_hac``: t-statistic of the mean return with Newey–West (HAC, Bartlett kernel) standard
  errors: ``statsmodels`` OLS of ``r`` on a constant, ``cov_type="HAC"``, ``maxlags = hac_lags``.
  ``hac_lags`` is the overlap in periods: with the outcomes sorted by start time, the number of
  later outcomes that start before each one ends, averaged and rounded up (``h / Δ − 1`` for
  signals every ``Δ``; at most ``count − 1``).
- ``ic``: Pearson correlation of the signal strength with ``r``; ``rank_ic``: Spearman (Pearson of
  average ranks). Strength is ``value × direction`` for a firing and the side's ``score`` for a
  decision. NaN with fewer than three outcomes or a constant input.
- Bootstrap: 95 % percentile intervals of the mean return and the win rate from ``n_boot`` (1000)
  resamples with replacement, seeded by ``seed`` and the group's key (the same log gives the same
  intervals whatever else it holds).
- ``mfe_mean_pct``, ``mae_mean_pct``, ``funding_mean_pct`` (positive: paid) and the barrier shares
  ``barrier_tp_pct``, ``barrier_sl_pct``, ``barrier_timeout_pct`` (horizon rows only).
- Decay curve: ``mean_return_pct`` by horizon (the fixed horizons, not ``trade``).
- Sessions, by the signal's UTC hour: ``asia`` [00, 08), ``europe`` [08, 16), ``us`` [16, 24).
- Volatility regimes: terciles of ``outcomes.realised_vol`` (trailing, as of the signal) over
  the distinct signals of the same instrument in the log: ``low`` (<= 1/3 quantile), ``mid``,
  ``high`` (> 2/3 quantile); ``unknown`` when the volatility is NaN. The cut points use the
  whole log: a breakdown for reading, not a tradable rule.
- Go-live table (:func:`emerald.backtest.stats.go_live_table`): win rate > 55 %, profit factor
  > 1.5, Sharpe > 1.5, max drawdown < 10 %, >= 30 outcomes (``count`` stands for trades).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from emerald.errors import ConfigError
from emerald.forward.log import SignalLog

YEAR_NS = 365 * 86_400_000_000_000
HOUR_NS = 3_600_000_000_000
SESSIONS = (("asia", 0, 8), ("europe", 8, 16), ("us", 16, 24))
REGIMES = ("low", "mid", "high", "unknown")
ALL = "(all)"
KEYS = ["strategy", "kind", "signal", "horizon"]


@dataclass
class SignalReport:
    """Per-signal performance tables (see the module docstring for every column).

    ``summary``: one row per (strategy, kind, signal, horizon); ``decay``: mean return by horizon;
    ``sessions`` / ``regimes``: the breakdowns (``count, win_rate_pct, mean_return_pct,
    profit_factor`` per session / regime); ``go_live``: the criteria per group, long form
    (``criterion, threshold, value, pass``; the ``overall`` row counts the passed criteria in
    ``tally``); ``runs``: the labelled runs (``outcome_runs`` with the strategy and window);
    ``meta``: log, seed, resamples.
    """

    summary: pl.DataFrame
    decay: pl.DataFrame
    sessions: pl.DataFrame
    regimes: pl.DataFrame
    go_live: pl.DataFrame
    runs: pl.DataFrame
    meta: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every table as a list of row dicts (NaN becomes null through orjson)."""
        return {"meta": self.meta, **{name: getattr(self, name).to_dicts() for name in
                                      ("summary", "decay", "sessions", "regimes", "go_live", "runs")}}


def signal_performance(log_path: str | Path, *, run_id: str | None = None, seed: int = 0, n_boot: int = 1000
                       ) -> SignalReport:
    """The per-signal performance of the labelled runs in the signal log at ``log_path``.

    Parameters
    ----------
    run_id
        Only this run (default: every labelled run).
    seed, n_boot
        Bootstrap seed and number of resamples.

    Raises
    ------
    ConfigError
        The log has no outcomes (run ``emerald label`` first) or no such run.
    """
    if n_boot < 10:
        raise ConfigError(f"`n_boot` must be at least 10, was {n_boot!r}")
    with SignalLog(log_path, read_only=True) as log:
        tables = set(log.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list())
        if "outcome_runs" not in tables:
            raise ConfigError(f"signal log {log_path} has no outcomes; run `emerald label` on it first")
        where = "" if run_id is None else "WHERE o.run_id = ?"
        params = None if run_id is None else [run_id]
        runs = log.query(f"SELECT o.*, r.strategy, r.\"start\", r.\"end\" FROM outcome_runs o JOIN runs r "
                         f"USING (run_id) {where} ORDER BY o.run_id", params)
        if not runs.height:
            raise ConfigError(f"run {run_id!r} of {log_path} is not labelled" if run_id else
                              f"signal log {log_path} has no labelled run")
        cols = ("s.signal_id, s.run_id, s.strategy, s.kind, s.signal, s.instrument, s.direction, s.value, "
                "s.score, s.ts_event")
        where_s = "" if run_id is None else "WHERE s.run_id = ?"
        horizon_rows = log.query(
            f"SELECT {cols}, o.horizon, o.horizon_ns, o.ts_event + o.horizon_ns AS ts_end, o.ret, o.mfe, o.mae, "
            f"o.barrier, o.funding, o.realised_vol FROM outcomes o JOIN signals s USING (signal_id) {where_s}", params)
        trade_rows = log.query(
            f"SELECT {cols}, 'trade' AS horizon, NULL::BIGINT AS horizon_ns, t.exit_ts AS ts_end, t.ret, "
            f"NULL::DOUBLE AS mfe, NULL::DOUBLE AS mae, NULL::INTEGER AS barrier, NULL::DOUBLE AS funding, "
            f"v.realised_vol FROM outcome_trades t JOIN signals s USING (signal_id) LEFT JOIN "
            f"(SELECT signal_id, any_value(realised_vol) AS realised_vol FROM outcomes GROUP BY signal_id) v "
            f"USING (signal_id) {where_s + ' AND' if where_s else 'WHERE'} t.status = 'closed'", params)
    obs = pl.concat([horizon_rows, trade_rows.cast(horizon_rows.schema)])  # type: ignore[arg-type]
    obs = _annotate(obs)
    spans = _spans(runs, obs)
    groups = _with_all(obs)
    summary_rows: list[dict[str, Any]] = []
    session_rows: list[dict[str, Any]] = []
    regime_rows: list[dict[str, Any]] = []
    go_rows: list[dict[str, Any]] = []
    for key, g in groups.group_by(KEYS, maintain_order=True):
        g = g.sort("ts_event", "signal_id")
        ident = dict(zip(KEYS, key, strict=True))
        row = {**ident, "horizon_ns": g["horizon_ns"][0], **_stats(g, spans, seed, n_boot)}
        go = _go_live(row)
        row["go_live"] = go[-1]["value"]
        row["go_live_pass"] = bool(go[-1]["pass"])
        summary_rows.append(row)
        go_rows.extend({**ident, **r, "value": None if isinstance(r["value"], str) else float(r["value"]),
                        "tally": r["value"] if isinstance(r["value"], str) else None} for r in go)
        for name, part in (("session", session_rows), ("regime", regime_rows)):
            for (label,), sub in g.group_by(name, maintain_order=True):
                part.append({**ident, name: label, **_basic(sub["ret"].to_numpy())})
    summary = pl.DataFrame(summary_rows, infer_schema_length=None)
    order = {"firing": 0, "decision": 1}
    summary = summary.with_columns(pl.col("kind").replace_strict(order, default=2).alias("_k"),
                                   pl.col("horizon_ns").fill_null(2**62).alias("_h")).sort(
        "strategy", "_k", pl.col("signal") == ALL, "signal", "_h").drop("_k", "_h")
    decay = summary.filter(pl.col("horizon") != "trade").select(
        "strategy", "kind", "signal", "horizon", "horizon_ns", "count", "mean_return_pct", "ic", "rank_ic")
    sessions = _ordered(pl.DataFrame(session_rows, infer_schema_length=None), "session", [s for s, _, _ in SESSIONS],
                        summary)
    regimes = _ordered(pl.DataFrame(regime_rows, infer_schema_length=None), "regime", list(REGIMES), summary)
    go_live = pl.DataFrame(go_rows, infer_schema_length=None)
    meta = {"log": str(log_path), "run_id": run_id, "seed": seed, "n_boot": n_boot, "runs": runs.height,
            "outcomes": horizon_rows.height, "closed_trades": trade_rows.height}
    return SignalReport(summary, decay, sessions, regimes, go_live, runs, meta)


# ------------------------------------------------------------------------------ preparation


def _annotate(obs: pl.DataFrame) -> pl.DataFrame:
    """Strength, session and volatility regime of every observation."""
    hour = (pl.col("ts_event") // HOUR_NS) % 24
    session = pl.when(hour < 8).then(pl.lit("asia")).when(hour < 16).then(pl.lit("europe")).otherwise(pl.lit("us"))
    strength = (pl.when(pl.col("kind") == "firing").then(pl.col("value") * pl.col("direction"))
                .otherwise(pl.col("score")))
    distinct = obs.filter(pl.col("realised_vol").is_not_nan()).unique("signal_id").select("instrument",
                                                                                          "realised_vol")
    cuts = distinct.group_by("instrument").agg(pl.col("realised_vol").quantile(1 / 3, "linear").alias("q1"),
                                               pl.col("realised_vol").quantile(2 / 3, "linear").alias("q2"))
    vol = pl.col("realised_vol")
    regime = (pl.when(vol.is_null() | vol.is_nan() | pl.col("q1").is_null()).then(pl.lit("unknown"))
              .when(vol <= pl.col("q1")).then(pl.lit("low")).when(vol <= pl.col("q2")).then(pl.lit("mid"))
              .otherwise(pl.lit("high")))
    return (obs.join(cuts, on="instrument", how="left")
            .with_columns(strength.alias("strength"), session.alias("session"), regime.alias("regime"))
            .drop("q1", "q2"))


def _with_all(obs: pl.DataFrame) -> pl.DataFrame:
    """The observations plus, for each (strategy, kind) with several signals, a copy as ``(all)``."""
    multi = obs.group_by("strategy", "kind").agg(pl.col("signal").n_unique().alias("n")).filter(pl.col("n") > 1)
    extra = obs.join(multi.select("strategy", "kind"), on=["strategy", "kind"]).with_columns(pl.lit(ALL).alias("signal"))
    return pl.concat([obs, extra])


def _spans(runs: pl.DataFrame, obs: pl.DataFrame) -> dict[str, int]:
    """Recording span per run (ns): ``end − start``, or the signals' span without an end."""
    first = dict(obs.group_by("run_id").agg((pl.col("ts_event").max() - pl.col("ts_event").min()).alias("s"))
                 .iter_rows())
    out = {}
    for r in runs.iter_rows(named=True):
        ok = r["start"] is not None and r["end"] is not None and r["end"] > r["start"]
        out[r["run_id"]] = int(r["end"] - r["start"]) if ok else int(first.get(r["run_id"]) or 0)
    return out


def _ordered(df: pl.DataFrame, col: str, labels: list[str], summary: pl.DataFrame) -> pl.DataFrame:
    """Breakdown rows in the summary's group order, then by label order."""
    if not df.height:
        return df
    rank = summary.select(KEYS).with_row_index("_g")
    return (df.join(rank, on=KEYS, how="left")
            .with_columns(pl.col(col).replace_strict({v: i for i, v in enumerate(labels)}).alias("_l"))
            .sort("_g", "_l").drop("_g", "_l"))


# ------------------------------------------------------------------------------ statistics


def _basic(r: np.ndarray) -> dict[str, Any]:
    wins, losses = r[r > 0].sum(), -r[r < 0].sum()
    return {"count": int(r.size), "win_rate_pct": float(np.mean(r > 0)) * 100.0 if r.size else math.nan,
            "mean_return_pct": float(np.mean(r)) * 100.0 if r.size else math.nan,
            "profit_factor": float(wins / losses) if losses > 0 else math.nan}


def _stats(g: pl.DataFrame, spans: dict[str, int], seed: int, n_boot: int) -> dict[str, Any]:
    r = g["ret"].to_numpy().astype(np.float64)
    n = r.size
    out = _basic(r)
    out["median_return_pct"] = float(np.median(r)) * 100.0
    span = sum(spans.get(run, 0) for run in g["run_id"].unique().to_list())
    std = float(np.std(r, ddof=1)) if n > 1 else math.nan
    flat = not std > 1e-12 * abs(float(np.mean(r)))
    out["sharpe"] = (float(np.mean(r)) / std * math.sqrt(n * YEAR_NS / span)
                     if n > 1 and span > 0 and not flat else math.nan)
    curve = np.concatenate(([1.0], 1.0 + np.cumsum(r[np.argsort(g["ts_end"].to_numpy(), kind="stable")])))
    out["max_drawdown_pct"] = float(np.max(1.0 - curve / np.maximum.accumulate(curve))) * 100.0
    lags = hac_lags(g["ts_event"].to_numpy(), g["ts_end"].to_numpy())
    out["t_stat_hac"] = hac_t_stat(r, lags) if not flat else math.nan
    out["hac_lags"] = lags
    x = g["strength"].to_numpy().astype(np.float64)
    out["ic"] = _corr(x, r)
    out["rank_ic"] = _corr(pl.Series(x).rank("average").to_numpy(), pl.Series(r).rank("average").to_numpy())
    key = "|".join(str(v) for v in g.select(KEYS).row(0))
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    (m_lo, m_hi), (w_lo, w_hi) = bootstrap_ci(r, rng, n_boot)
    out.update({"mean_return_ci_low_pct": m_lo * 100.0, "mean_return_ci_high_pct": m_hi * 100.0,
                "win_rate_ci_low_pct": w_lo * 100.0, "win_rate_ci_high_pct": w_hi * 100.0})
    barrier = g["barrier"].drop_nulls().to_numpy()
    nb = barrier.size
    out.update({
        "mfe_mean_pct": _mean_pct(g["mfe"]), "mae_mean_pct": _mean_pct(g["mae"]),
        "barrier_tp_pct": float(np.mean(barrier == 1)) * 100.0 if nb else math.nan,
        "barrier_sl_pct": float(np.mean(barrier == -1)) * 100.0 if nb else math.nan,
        "barrier_timeout_pct": float(np.mean(barrier == 0)) * 100.0 if nb else math.nan,
        "funding_mean_pct": _mean_pct(g["funding"]),
    })
    return out


def _mean_pct(s: pl.Series) -> float:
    v = s.drop_nulls().drop_nans().to_numpy() if s.dtype.is_float() else s.drop_nulls().to_numpy()
    return float(np.mean(v)) * 100.0 if v.size else math.nan


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    xd, yd = x - x.mean(), y - y.mean()
    return float(np.sum(xd * yd) / math.sqrt(float(np.sum(xd * xd)) * float(np.sum(yd * yd))))


def hac_lags(start: np.ndarray, end: np.ndarray) -> int:
    """Overlap in periods of outcomes spanning ``[start, end]`` sorted by ``start``: the mean number
    of later outcomes starting before each one ends, rounded up, at most ``n − 1``."""
    n = start.size
    if n < 2:
        return 0
    later = np.searchsorted(start, end, side="left") - np.arange(1, n + 1)
    return int(min(math.ceil(float(np.mean(np.maximum(later, 0)))), n - 1))


def hac_t_stat(r: np.ndarray, lags: int) -> float:
    """t-statistic of ``mean(r)`` with Newey–West standard errors (statsmodels OLS on a constant,
    ``cov_type="HAC"``, Bartlett kernel, ``maxlags=lags``, no small-sample correction)."""
    import statsmodels.api as sm

    if r.size < 3:
        return math.nan
    fit = sm.OLS(r, np.ones((r.size, 1))).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    return float(fit.tvalues[0])


def bootstrap_ci(r: np.ndarray, rng: np.random.Generator, n_boot: int, level: float = 0.95
                 ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile intervals of the mean and the win rate (share of ``r > 0``) from ``n_boot``
    resamples of ``r`` with replacement (drawn in chunks of about 2 M indices)."""
    n = r.size
    if n < 2:
        return (math.nan, math.nan), (math.nan, math.nan)
    means = np.empty(n_boot)
    wins = np.empty(n_boot)
    win = (r > 0).astype(np.float64)
    chunk = max(1, 2_000_000 // n)
    for a in range(0, n_boot, chunk):
        b = min(n_boot, a + chunk)
        idx = rng.integers(0, n, size=(b - a, n))
        means[a:b] = r[idx].mean(axis=1)
        wins[a:b] = win[idx].mean(axis=1)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    m = np.percentile(means, q)
    w = np.percentile(wins, q)
    return (float(m[0]), float(m[1])), (float(w[0]), float(w[1]))


def _go_live(row: dict[str, Any]) -> list[dict[str, Any]]:
    from emerald.backtest.stats import go_live_table

    return go_live_table({"win_rate_pct": row["win_rate_pct"], "profit_factor": row["profit_factor"],
                          "sharpe": row["sharpe"], "max_drawdown_pct": row["max_drawdown_pct"],
                          "trades": row["count"]})
