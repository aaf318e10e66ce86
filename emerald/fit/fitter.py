"""Fitting (``emerald fit``): per-signal weights and thresholds, and optionally a calibration of the
score into a win probability, from a labelled signal log (:mod:`emerald.forward.label`).

A *signal* is a scored trigger of the strategy (``StrategyDef.triggers``), identified by name: its
firings are the log's ``kind = 'firing'`` rows with ``signal = name``; its outcome is the labelled
forward return at the fit horizon (``outcomes.ret``, direction-signed, default horizon 1 h).

Which outcomes a fit may use
----------------------------
A fit has a window ``[start, before)``: an outcome is used only when its horizon ended strictly
before ``before`` (``ts_event + horizon < before``) and its signal is at or after ``start``. The
window is split by time at ``split = start + (1 - validation) × (before - start)``:

- in-sample (fit) part: the outcomes that ended before ``split``;
- out-of-sample (validation) part: the signals at or after ``split`` (whose outcomes ended before
  ``before``). Signals before ``split`` whose outcome ends after it are in neither part (a purge:
  the two parts share no price move).

Per signal and part: ``count``, ``mean_ret`` and ``std_ret`` (fractions), ``win_rate`` (share of
``ret > 0``), ``sharpe`` = ``mean / std × sqrt(count × year / span)`` (span: the part's length; the
outcomes overlap when signals come faster than the horizon, so this is optimistic — it ranks
signals, it is not a trading Sharpe), ``t_stat`` = ``mean / std × sqrt(count)`` and ``ic``: the
Pearson correlation of the strength ``value × direction`` with ``ret``.

Weights
-------
Proportional to each signal's out-of-sample Sharpe clipped at zero, normalised so that the weights
add up to 100: ``wᵢ = B × max(Sharpeᵢ, 0) / Σⱼ max(Sharpeⱼ, 0)`` over the fitted signals, where the
budget ``B = 100 − Σ`` (declared positive weights of the signals that keep their default), floored
at 0. A signal keeps its declared weight (``weight_source = "default"``, with a note) when it has
fewer than ``min_samples`` validation outcomes, or when its declared weight is negative (a veto,
"counts against": its sign is a design choice, not a fit), or when no fitted signal has a positive
Sharpe (nothing to be proportional to; then the fitted ones all keep their defaults, noted).

Thresholds
----------
The ``percentile``-th percentile (90 by default) of the metric's own history over the last
``lookback`` of the window (default: the whole window), ``[max(start, before − lookback), before)``:
of ``|x|`` for the symmetric operators (``sign``, ``abs``, and the lower edge of ``band``), of
``x`` for ``gt``, and the ``100 − percentile``-th percentile of ``x`` for ``lt``. *The metric's
own history* is the value of the trigger's signal column at every event of the strategy, computed
from the tape (``history = "tape"``: the metric kernels run over the window's events — causal, so
values before ``before`` never see later data). The log alone is a biased sample of that history:
firing rows are recorded when a trigger *crosses* its threshold, so their values pile up just
above it; without a tape (a live log) the fitter falls back to the ``inputs`` of every row of the
window (``history = "log inputs"``: the signal columns at every firing and decision of any
trigger, one sample per event) and says so in the artifact. Fewer than ``min_samples`` finite
values: the declared threshold is kept.

Calibration (optional)
----------------------
``logistic`` (scikit-learn ``LogisticRegression``) or ``isotonic`` (``IsotonicRegression``,
clipped to [0, 1]) of the win indicator ``ret > 0`` on the entry score of the strategy's decisions
(``kind = 'decision'``) in the window, the score recomputed with the fitted weights from the
decision's breakdown (the triggers that agreed with its direction); at least ``min_samples``
decisions with both wins and losses, else no calibration (noted).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from emerald._codegen import sources_digest
from emerald.backtest.engine import SignalContext, parse_duration
from emerald.errors import ConfigError
from emerald.fit.artifact import FORMAT, Artifact, check_document
from emerald.forward.log import SignalLog, digest
from emerald.strategy.base import StrategyConfig

YEAR_NS = 365 * 86_400_000_000_000
CALIBRATIONS = (None, "logistic", "isotonic")
OBS_SCHEMA = {"signal_id": pl.Utf8, "run_id": pl.Utf8, "kind": pl.Utf8, "signal": pl.Utf8, "instrument": pl.Utf8,
              "direction": pl.Int32, "value": pl.Float64, "score": pl.Float64, "breakdown": pl.Utf8,
              "ts_event": pl.Int64, "ret": pl.Float64}


@dataclass(frozen=True)
class FitParams:
    """Fit parameters (see the module docstring): ``horizon`` of the outcomes, ``min_samples``,
    threshold ``percentile`` and ``lookback`` (None: the whole window), ``validation`` (share of
    the window, by time, that is out-of-sample), ``calibration`` (None, "logistic", "isotonic")."""

    horizon: str = "1h"
    min_samples: int = 100
    percentile: float = 90.0
    lookback: str | None = None
    validation: float = 0.3
    calibration: str | None = None

    def __post_init__(self) -> None:
        parse_duration(self.horizon, "horizon")
        if self.lookback is not None:
            parse_duration(self.lookback, "lookback")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) or self.min_samples < 2:
            raise ConfigError(f"`min_samples` must be an integer >= 2, was {self.min_samples!r}")
        if not (isinstance(self.percentile, int | float) and 0 < self.percentile < 100):
            raise ConfigError(f"`percentile` must be in (0, 100), was {self.percentile!r}")
        if not (isinstance(self.validation, int | float) and 0 < self.validation < 1):
            raise ConfigError(f"`validation` must be a share in (0, 1), was {self.validation!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(f"`calibration` must be logistic or isotonic, was {self.calibration!r}")

    @property
    def horizon_ns(self) -> int:
        return parse_duration(self.horizon, "horizon")


@dataclass(frozen=True)
class History:
    """The metric history thresholds are fitted on: event times and, per signal column, values."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]
    source: str  # "tape" or "log inputs"


# ------------------------------------------------------------------------------ entry points


def fit(log_path: str | Path, config: StrategyConfig, *, root: str | Path | None = None, run_id: str | None = None,
        start: int | None = None, before: int | None = None, params: FitParams | None = None) -> Artifact:
    """Fit ``config``'s signals on the labelled signal log at ``log_path``.

    Parameters
    ----------
    root
        The tape the metric history is computed from (default: the runs' replayed tape, when the
        log says ``replay:<root>`` and it exists; else the log's ``inputs`` are used).
    run_id
        Only this run (default: every labelled run of the strategy; they must not overlap in time).
    start, before
        The fit window in ns (default: the runs' start, and just after the last labelled outcome).

    Raises
    ------
    ConfigError
        No labelled run of the strategy, no outcome at the fit horizon, overlapping runs, an empty
        window, or bad parameters.
    """
    params = params or FitParams()
    h = params.horizon_ns
    runs, obs = load_observations(log_path, config.strategy.name, params.horizon, run_id=run_id)
    ids = runs["run_id"].to_list()
    first = int(obs["ts_event"].min())  # type: ignore[arg-type]
    lo = int(start if start is not None else min(runs["start"].drop_nulls().to_list() or [first]))
    hi = int(before if before is not None else int((obs["ts_event"] + h).max()) + 1)  # type: ignore[arg-type]
    tape = Path(root) if root is not None else _replayed_tape(runs["source"].to_list())
    inputs = None
    if tape is None:
        with SignalLog(log_path, read_only=True) as log:
            inputs = log.query(
                f"SELECT run_id, event_index, any_value(ts_event) AS ts_event, any_value(inputs) AS inputs FROM "
                f"signals WHERE run_id IN ({', '.join(['?'] * len(ids))}) AND ts_event >= ? AND ts_event < ? "
                "GROUP BY run_id, event_index ORDER BY ts_event, run_id, event_index", [*ids, lo, hi])
    columns = signal_columns(config)
    if tape is not None:
        history = tape_history(config.with_window(_iso(lo), _iso_ceil(hi)), tape)
    else:
        assert inputs is not None
        history = inputs_history(inputs, columns)
    data_hashes = sorted(set(runs["data_hash"].drop_nulls().to_list()))
    return fit_observations(obs, config, history, start=lo, before=hi, params=params, runs=ids,
                            data_hashes=data_hashes)


def load_observations(log_path: str | Path, strategy: str, horizon: str, *, run_id: str | None = None
                      ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The labelled runs of ``strategy`` in the log (``run_id, source, start, end, data_hash``) and
    their signals with the outcome at ``horizon`` (``OBS_SCHEMA``).

    Raises
    ------
    ConfigError
        The log is not labelled, has no run of the strategy, runs overlap in time, or nothing is
        labelled at ``horizon``.
    """
    h = parse_duration(horizon, "horizon")
    with SignalLog(log_path, read_only=True) as log:
        tables = set(log.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list())
        if "outcome_runs" not in tables:
            raise ConfigError(f"signal log {log_path} has no outcomes; run `emerald label` on it first")
        runs = log.query("SELECT r.run_id, r.source, r.\"start\", r.\"end\", r.data_hash FROM runs r JOIN "
                         "outcome_runs o USING (run_id) WHERE r.strategy = ? ORDER BY r.\"start\", r.run_id",
                         [strategy])
        if run_id is not None:
            runs = runs.filter(pl.col("run_id") == run_id)
        if not runs.height:
            raise ConfigError(f"signal log {log_path} has no labelled run of strategy {strategy!r}"
                              + (f" with id {run_id!r}" if run_id else ""))
        starts, ends = runs["start"].to_list(), runs["end"].to_list()
        for k in range(1, runs.height):
            if starts[k] is None or ends[k - 1] is None or starts[k] < ends[k - 1]:
                raise ConfigError(f"signal log {log_path}: runs {runs['run_id'][k - 1]} and {runs['run_id'][k]} of "
                                  f"{strategy} overlap in time (or have no window); choose one with --run")
        ids = runs["run_id"].to_list()
        obs = log.query(
            "SELECT s.signal_id, s.run_id, s.kind, s.signal, s.instrument, s.direction, s.value, s.score, "
            "s.breakdown, s.ts_event, o.ret FROM signals s JOIN outcomes o USING (signal_id) "
            f"WHERE o.horizon_ns = ? AND s.run_id IN ({', '.join(['?'] * len(ids))})", [h, *ids])
    if not obs.height:
        raise ConfigError(f"signal log {log_path}: no outcome at horizon {horizon} for {strategy}; label it "
                          f"with that horizon (emerald label --horizons ...,{horizon})")
    return runs, obs.cast(OBS_SCHEMA)  # type: ignore[arg-type]


def fit_observations(obs: pl.DataFrame, config: StrategyConfig, history: History, *, start: int, before: int,
                     params: FitParams, runs: list[str], data_hashes: list[str]) -> Artifact:
    """The artifact from labelled observations (``OBS_SCHEMA`` columns: one row per signal with its
    ``ret`` at the fit horizon) and the metric history; only what the window allows is used."""
    h = params.horizon_ns
    if before <= start:
        raise ConfigError(f"empty fit window: start {_iso(start)} is not before {_iso(before)}")
    split = start + int((1.0 - params.validation) * (before - start))
    end_ts = pl.col("ts_event") + h
    used = obs.filter((pl.col("ts_event") >= start) & (end_ts < before)).sort("ts_event", "signal_id")
    part_is = used.filter(end_ts < split)
    part_oos = used.filter(pl.col("ts_event") >= split)
    trigs = config.strategy.triggers(config.params, signal_columns(config)) if config.strategy.triggers else []
    if not trigs:
        raise ConfigError(f"strategy {config.strategy.name} has no scored triggers: there is nothing to fit")
    columns = signal_columns(config)
    entries: dict[str, dict[str, Any]] = {}
    for t in trigs:
        f_is = part_is.filter((pl.col("kind") == "firing") & (pl.col("signal") == t.name))
        f_oos = part_oos.filter((pl.col("kind") == "firing") & (pl.col("signal") == t.name))
        entries[t.name] = {
            "op": t.op, "column": columns[t.column], "default_weight": float(t.weight),
            "default_threshold": float(t.threshold), "notes": [],
            "in_sample": signal_stats(f_is, split - start), "out_of_sample": signal_stats(f_oos, before - split)}
    notes = _fit_weights(trigs, entries, params.min_samples)
    lb = before - parse_duration(params.lookback, "lookback") if params.lookback else start
    _fit_thresholds(trigs, entries, history, max(start, lb), before, params)
    weights = {n: e["weight"] for n, e in entries.items()}
    calibration = None
    if params.calibration is not None:
        calibration = _calibrate(used.filter(pl.col("kind") == "decision"), trigs, weights, params, notes)
    all_firings = used.filter(pl.col("kind") == "firing")
    doc = {
        "format": FORMAT, "strategy": config.strategy.name,
        "hashes": {"log_slice": _slice_hash(used), "strategy_code": sources_digest([config.module_path]),
                   "config": digest(config.resolved()), "data": data_hashes},
        "params": {**asdict(params), "horizon_ns": h, "history": history.source},
        "window": {"start": int(start), "split": int(split), "before": int(before), "runs": list(runs)},
        "signals": entries, "calibration": calibration,
        "stats": {"in_sample": signal_stats(all_firings.filter(end_ts < split), split - start),
                  "out_of_sample": signal_stats(all_firings.filter(pl.col("ts_event") >= split), before - split)},
        "notes": notes,
    }
    # NaN -> null, numpy scalars -> float: the document as it reads back from disk
    return Artifact(check_document(orjson.loads(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))))


# ------------------------------------------------------------------------------ statistics


def signal_stats(f: pl.DataFrame, span_ns: int) -> dict[str, Any]:
    """``count, mean_ret, std_ret, win_rate, sharpe, t_stat, ic`` of the observations ``f`` (module
    docstring); NaN where undefined (fewer than 2 outcomes, no dispersion)."""
    r = f["ret"].to_numpy().astype(np.float64)
    r = r[np.isfinite(r)]
    n = r.size
    out: dict[str, Any] = {"count": int(n), "mean_ret": float(np.mean(r)) if n else math.nan,
                           "std_ret": float(np.std(r, ddof=1)) if n > 1 else math.nan,
                           "win_rate": float(np.mean(r > 0)) if n else math.nan, "sharpe": math.nan,
                           "t_stat": math.nan, "ic": math.nan}
    if n > 1 and out["std_ret"] > 1e-12 * max(abs(out["mean_ret"]), 1e-300):
        z = out["mean_ret"] / out["std_ret"]
        out["t_stat"] = z * math.sqrt(n)
        out["sharpe"] = z * math.sqrt(n * YEAR_NS / span_ns) if span_ns > 0 else math.nan
    strength = (f["value"] * f["direction"]).to_numpy().astype(np.float64)
    rr = f["ret"].to_numpy().astype(np.float64)
    ok = np.isfinite(strength) & np.isfinite(rr)
    if ok.sum() > 2 and np.ptp(strength[ok]) > 0 and np.ptp(rr[ok]) > 0:
        out["ic"] = float(np.corrcoef(strength[ok], rr[ok])[0, 1])
    return out


def _fit_weights(trigs: list[Any], entries: dict[str, dict[str, Any]], min_samples: int) -> list[str]:
    notes: list[str] = []
    fitted = []
    for t in trigs:
        e = entries[t.name]
        e["weight"], e["weight_source"] = float(t.weight), "default"
        n = e["out_of_sample"]["count"]
        if t.weight < 0:
            e["notes"].append(f"declared weight {t.weight:g} is negative (counts against the score): kept")
        elif n < min_samples:
            e["notes"].append(f"{n} out-of-sample outcomes < min_samples {min_samples}: declared weight kept")
        else:
            fitted.append(t)
    budget = max(0.0, 100.0 - sum(t.weight for t in trigs if t not in fitted and t.weight > 0))
    pos = {t.name: max(entries[t.name]["out_of_sample"]["sharpe"], 0.0) for t in fitted
           if math.isfinite(entries[t.name]["out_of_sample"]["sharpe"])}
    total = sum(pos.values())
    if fitted and total <= 0:
        notes.append("no fitted signal has a positive out-of-sample Sharpe: declared weights kept")
        for t in fitted:
            entries[t.name]["notes"].append("out-of-sample Sharpe <= 0 for every signal: declared weight kept")
        return notes
    for t in fitted:
        entries[t.name]["weight"] = budget * pos.get(t.name, 0.0) / total
        entries[t.name]["weight_source"] = "fitted"
    return notes


def _fit_thresholds(trigs: list[Any], entries: dict[str, dict[str, Any]], history: History, lo: int, hi: int,
                    params: FitParams) -> None:
    a, b = np.searchsorted(history.ts, lo, side="left"), np.searchsorted(history.ts, hi, side="left")
    for t in trigs:
        e = entries[t.name]
        e["threshold"], e["threshold_source"] = float(t.threshold), "default"
        col = history.columns.get(e["column"])
        x = col[a:b] if col is not None else np.zeros(0)
        x = x[np.isfinite(x)]
        e["history_count"] = int(x.size)
        if x.size < params.min_samples:
            e["notes"].append(f"{x.size} history values < min_samples {params.min_samples}: declared threshold kept")
            continue
        if t.op == "gt":
            th = np.percentile(x, params.percentile)
        elif t.op == "lt":
            th = np.percentile(x, 100.0 - params.percentile)
        else:
            th = np.percentile(np.abs(x), params.percentile)
        e["threshold"], e["threshold_source"] = float(th), "fitted"


def _calibrate(decisions: pl.DataFrame, trigs: list[Any], weights: dict[str, float], params: FitParams,
               notes: list[str]) -> dict[str, Any] | None:
    by_label = {t.label: weights[t.name] for t in trigs}
    scores = []
    for d, score, breakdown in decisions.select("direction", "score", "breakdown").iter_rows():
        if breakdown is None:
            scores.append(score)
            continue
        contrib = orjson.loads(breakdown)
        scores.append(sum(by_label.get(k, 0.0) for k, c in contrib.items() if c * d > 0))
    x = np.asarray(scores, dtype=np.float64)
    y = (decisions["ret"].to_numpy() > 0).astype(np.int64)
    ok = np.isfinite(x)
    x, y = x[ok], y[ok]
    if x.size < params.min_samples or y.min(initial=0) == y.max(initial=0):
        notes.append(f"calibration skipped: {x.size} decisions with outcomes (need {params.min_samples}, with wins "
                     "and losses)")
        return None
    if params.calibration == "logistic":
        from sklearn.linear_model import LogisticRegression

        m = LogisticRegression().fit(x[:, None], y)
        return {"method": "logistic", "coef": float(m.coef_[0, 0]), "intercept": float(m.intercept_[0]),
                "count": int(x.size)}
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return {"method": "isotonic", "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_], "count": int(x.size)}


# ------------------------------------------------------------------------------ history


def signal_columns(config: StrategyConfig) -> list[str]:
    """The strategy's signal column names (as the engine names them), without reading a tape."""
    bar_ns = parse_duration(config.bar, "bar") if config.bar else None
    ctx = SignalContext(list(config.instruments), config.mode, bar_ns)
    metrics = config.strategy.signals(config.params, ctx)  # type: ignore[arg-type]
    return [f"{name}.{o}" for name, m in metrics for o in m.spec.outputs]


def tape_history(config: StrategyConfig, root: str | Path) -> History:
    """Every signal column at every event of ``config``'s window on the tape (event mode)."""
    from emerald.backtest.engine import prepare
    from emerald.signals.metric_set import MetricSet

    if config.mode != "event":
        raise ConfigError("thresholds are fitted on the event-mode metric history; set mode = \"event\"")
    prep = prepare(config, root)
    events = prep.events()
    sig = MetricSet([m for _, m in prep.metrics]).run(events) if prep.metrics else np.zeros((len(events), 0))
    return History(np.asarray(events.ts, dtype=np.int64), {c: sig[:, k] for k, c in enumerate(prep.columns)}, "tape")


def inputs_history(rows: pl.DataFrame, columns: list[str]) -> History:
    """The signal columns from the ``inputs`` JSON of log rows (one row per event, time-sorted)."""
    parsed = [orjson.loads(s) if s else {} for s in rows["inputs"].to_list()]
    cols = {c: np.array([p.get(c) if p.get(c) is not None else np.nan for p in parsed], dtype=np.float64)
            for c in columns}
    return History(rows["ts_event"].to_numpy().astype(np.int64), cols, "log inputs")


def _replayed_tape(sources: list[str | None]) -> Path | None:
    """The tape every run replayed, when they all name the same one and it is still there."""
    roots = {s.removeprefix("replay:") if s and s.startswith("replay:") else None for s in sources}
    if len(roots) != 1 or None in roots:
        return None
    p = Path(str(roots.pop()))
    return p if p.is_dir() else None


def _slice_hash(used: pl.DataFrame) -> str:
    s = used.sort("signal_id")
    return digest({"signal_id": s["signal_id"].to_list(), "ret": s["ret"].to_list(),
                   "value": s["value"].to_list(), "direction": s["direction"].to_list()})


def _iso(ns: int) -> str:
    """``ns`` as ISO time, rounded down to the second (config windows are read to the second)."""
    return np.datetime_as_string(np.datetime64(int(ns) // 1_000_000_000, "s"), unit="s") + "Z"


def _iso_ceil(ns: int) -> str:
    """``ns`` rounded up to a whole second, ISO."""
    return _iso(-(-int(ns) // 1_000_000_000) * 1_000_000_000)
