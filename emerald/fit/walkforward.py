"""Backtests with fitted artifacts (``emerald backtest STRATEGY.toml --fitted ARTIFACT.json|walk-forward``),
in-sample and out-of-sample reported apart.

Walk-forward
------------
The run window ``[S, E)`` (the config's, else the instruments' trades, to whole seconds) is split
into ``folds`` equal periods ``[t_k, t_{k+1})``. The signals come from a signal log: the one given,
or one made here by backtesting the config over ``[S, E)`` with its declared weights and thresholds
and labelling its firings and decisions at the fit horizon (:func:`emerald.forward.label.label`, in
a temporary log). Then, for each period:

- period 0 runs with the **declared defaults** (no outcome has ended before it starts: nothing
  to fit on);
- period ``k >= 1`` runs with the artifact fitted on the window ``[S, t_k)`` — only outcomes whose
  horizon ended strictly before ``t_k`` (:func:`emerald.fit.fitter.fit_observations`), thresholds
  from the metric history before ``t_k``;
- in-sample for period ``k``: the fit window ``[S, t_k)`` backtested with that same artifact.

Out-of-sample is the periods' runs stitched into one run (:func:`emerald.backtest.sweep.stitch`,
period 0 included, with its defaults); in-sample is reported per fold (``is.<stat>``) and as the
last fold's in-sample run. Per signal and fold, ``signals`` holds the artifact's weight and
threshold and where they came from, the fit's own statistics (``is_*``: the log's outcomes inside
the fit window, as the artifact stores them) and the out-of-sample statistics of the period:
the firings of the period's backtest (with its artifact) labelled at the same horizon
(``oos_*``). The latter never read the log: a signal whose logged values leak its outcome (the
leakage canary of ``tests/fit``) looks good in ``is_*`` and shows what it is in ``oos_*``.

Fixed artifact
--------------
With an artifact file the config's window is cut at the artifact's fit window ``[start, before)``
(``window`` in the artifact): the part inside it is in-sample, the part from ``before`` on is
out-of-sample; a part before ``start`` is not reported (noted).
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from emerald.backtest.result import RunResult, SweepResult
from emerald.errors import ConfigError
from emerald.fit.artifact import Artifact, load_artifact
from emerald.fit.fitter import (
    OBS_SCHEMA,
    FitParams,
    fit_observations,
    load_observations,
    signal_stats,
    tape_history,
)
from emerald.forward.log import SIGNAL_COLUMNS, SignalLog, digest, signal_id
from emerald.strategy.base import StrategyConfig

SECOND_NS = 1_000_000_000
STAT_PREFIXES = ("count", "mean_ret", "std_ret", "win_rate", "sharpe", "t_stat", "ic")


@dataclass
class FittedBacktest:
    """A backtest with fitted artifacts, in- and out-of-sample apart.

    ``sweep``: a :class:`SweepResult` that :func:`emerald.report.html.write_sweep_report` renders:
    ``folds`` (``fold, is_start, is_end, oos_start, oos_end, artifact, w.<signal>, th.<signal>,
    is.<stat>, oos.<stat>, oos.digest``; the walk-forward panel), ``grid`` (one row per fold, the
    out-of-sample stats), ``oos`` (the stitched out-of-sample run). ``in_sample``: the (last)
    fit window backtested with its own artifact. ``signals``: per fold and signal (module
    docstring). ``artifacts``: per fold (None: declared defaults). ``oos_observations``: the
    periods' labelled firings and decisions (``OBS_SCHEMA`` plus ``fold``; walk-forward only).
    """

    kind: str
    sweep: SweepResult
    in_sample: RunResult | None
    signals: pl.DataFrame
    artifacts: list[Artifact | None] = field(default_factory=list)
    oos_observations: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def out_of_sample(self) -> RunResult | None:
        return self.sweep.oos

    def summary(self) -> dict[str, Any]:
        """JSON-ready: in-sample and out-of-sample run summaries, folds, per-signal table, notes."""
        return {"kind": self.kind,
                "in_sample": self.in_sample.summary() if self.in_sample is not None else None,
                "out_of_sample": self.sweep.oos.summary() if self.sweep.oos is not None else None,
                "folds": self.sweep.folds.to_dicts() if self.sweep.folds is not None else [],
                "signals": self.signals.to_dicts(), "artifacts": [a.hash if a else None for a in self.artifacts],
                "notes": self.sweep.manifest.get("notes", [])}


def backtest_fitted(config: StrategyConfig, root: str | Path, spec: str | Path, *, folds: int = 4,
                    params: FitParams | None = None, log: str | Path | None = None) -> FittedBacktest:
    """Backtest ``config`` on the tape at ``root`` with fitted artifacts: ``spec`` is an artifact
    path or ``"walk-forward"`` (``folds`` periods, fit ``params``, optional signal ``log``; see the
    module docstring)."""
    if str(spec) == "walk-forward":
        return walk_forward(config, root, folds=folds, params=params, log=log)
    return with_artifact(config, root, load_artifact(spec))


def walk_forward(config: StrategyConfig, root: str | Path, *, folds: int = 4, params: FitParams | None = None,
                 log: str | Path | None = None) -> FittedBacktest:
    """Walk-forward fit and backtest (module docstring)."""
    from emerald.backtest.engine import backtest, prepare

    params = params or FitParams()
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"walk-forward `folds` must be an integer >= 2, was {folds!r}")
    if config.mode != "event":
        raise ConfigError("fitting runs on event-mode strategies (the signal log is event mode); set mode = \"event\"")
    prep = prepare(config, root)
    s0 = prep.start_ns // SECOND_NS * SECOND_NS
    e0 = -(-prep.end_ns // SECOND_NS) * SECOND_NS
    bounds = [s0 + (e0 - s0) // SECOND_NS * k // folds * SECOND_NS for k in range(folds)] + [e0]
    if any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
        raise ConfigError(f"walk-forward: {folds} periods do not fit in the {(e0 - s0) / SECOND_NS:g} s window")
    full = config.with_window(_iso(s0), _iso(e0))
    history = tape_history(full, root)
    notes = ["period 0 runs with the strategy's declared weights and thresholds: no outcome has ended before "
             "it starts, so there is nothing to fit on"]
    with tempfile.TemporaryDirectory(prefix="emerald-fit-") as tmp:
        scratch = Path(tmp) / "labels.duckdb"
        if log is None:
            obs = label_result(backtest(full, root), full, root, scratch, "defaults", params)
            runs, data_hashes = ["defaults"], [_data_hash(prep)]
            notes.append("signals: the config backtested over the whole window with its declared defaults, "
                         f"labelled at {params.horizon}")
        else:
            run_rows, obs = load_observations(log, config.strategy.name, params.horizon)
            runs, data_hashes = run_rows["run_id"].to_list(), sorted(set(run_rows["data_hash"].drop_nulls()))
            notes.append(f"signals: the labelled runs of {config.strategy.name} in {log}")
        artifacts: list[Artifact | None] = []
        oos_runs: list[RunResult] = []
        is_runs: list[RunResult | None] = []
        sig_rows: list[dict[str, Any]] = []
        period_frames: list[pl.DataFrame] = []
        for k in range(folds):
            a, b = bounds[k], bounds[k + 1]
            art = None if k == 0 else fit_observations(obs, config, history, start=s0, before=a, params=params,
                                                       runs=runs, data_hashes=data_hashes)
            fitted = art.scoring() if art is not None else None
            period = config.with_window(_iso(a), _iso(b))
            run = backtest(period, root, fitted=fitted)
            is_runs.append(backtest(config.with_window(_iso(s0), _iso(a)), root, fitted=fitted) if art else None)
            period_obs = label_result(run, period, root, scratch, f"period-{k}", params)
            sig_rows += _signal_rows(k, art, run, period_obs, b - a, params)
            period_frames.append(period_obs.with_columns(pl.lit(k).alias("fold")))
            artifacts.append(art)
            oos_runs.append(run)
    windows = [(bounds[k], bounds[k + 1]) for k in range(folds)]
    res = _result("walk_forward_fit", config, root, windows, [(s0, a) for a, _ in windows], is_runs, oos_runs,
                  artifacts, sig_rows, notes, params)
    res.oos_observations = pl.concat(period_frames)
    return res


def with_artifact(config: StrategyConfig, root: str | Path, art: Artifact) -> FittedBacktest:
    """Backtest with one artifact: in-sample inside its fit window, out-of-sample after it."""
    from emerald.backtest.engine import backtest, prepare

    if art.strategy != config.strategy.name:
        raise ConfigError(f"fitted artifact is for strategy {art.strategy!r}, the config runs "
                          f"{config.strategy.name!r}")
    prep = prepare(config, root, art.scoring())
    a0, b0 = prep.start_ns // SECOND_NS * SECOND_NS, -(-prep.end_ns // SECOND_NS) * SECOND_NS
    w = art.doc["window"]
    fs, fb = -(-int(w["start"]) // SECOND_NS) * SECOND_NS, -(-int(w["before"]) // SECOND_NS) * SECOND_NS
    notes = []
    if a0 < fs:
        notes.append(f"{_iso(a0)} .. {_iso(min(fs, b0))} precedes the artifact's fit window: not reported")
    is_win = (max(a0, fs), min(b0, fb))
    oos_win = (max(a0, fb), b0)
    fitted = art.scoring()
    is_run = backtest(config.with_window(_iso(is_win[0]), _iso(is_win[1])), root, fitted=fitted) \
        if is_win[1] > is_win[0] else None
    if is_run is None:
        notes.append("the run window does not overlap the artifact's fit window: no in-sample part")
    if oos_win[1] <= oos_win[0]:
        notes.append("the run window ends inside the artifact's fit window: no out-of-sample part")
        if is_run is None:
            raise ConfigError("the run window is entirely before the artifact's fit window")
        res = _result("fitted_artifact", config, root, [], [], [], [], [], [], notes, None, is_run=is_run)
        res.artifacts = [art]
        return res
    oos = backtest(config.with_window(_iso(oos_win[0]), _iso(oos_win[1])), root, fitted=fitted)
    return _result("fitted_artifact", config, root, [oos_win], [is_win], [is_run], [oos], [art], [], notes, None)


# ------------------------------------------------------------------------------ labelling


def result_rows(result: RunResult, config: StrategyConfig, run_id: str) -> pl.DataFrame:
    """Signal-log rows (``SIGNAL_COLUMNS``) of a backtest's firings and decisions (no ``inputs``):
    what the fitter needs to label them."""
    f, d = result.firings, result.decisions
    labels = [c for c in d.columns if c.startswith("contrib.")] if d.width else []
    fir = pl.DataFrame({
        "signal_id": [signal_id(run_id, "firing", int(e), i, s, int(x)) for e, i, s, x in
                      f.select("event", "inst", "signal", "direction").iter_rows()],
        "kind": ["firing"] * f.height, "ts_event": f["ts"], "event_index": f["event"], "instrument": f["inst"],
        "signal": f["signal"], "direction": f["direction"].cast(pl.Int32), "value": f["value"],
        "threshold": f["threshold"], "weight": f["weight"]}) if f.height else None
    dec = pl.DataFrame({
        "signal_id": [signal_id(run_id, "decision", int(o), i, s, int(x)) for o, i, s, x in
                      d.select("order_id", "inst", "signal", "action").iter_rows()],
        "kind": ["decision"] * d.height, "ts_event": d["ts"], "event_index": d["order_id"], "instrument": d["inst"],
        "signal": d["signal"], "direction": d["action"].cast(pl.Int32), "score": d["score"], "price": d["price"],
        "breakdown": [orjson.dumps({c.removeprefix("contrib."): float(v) for c, v in zip(labels, row, strict=True)})
                      .decode() if labels else None for row in d.select(labels).iter_rows()] if labels
        else [None] * d.height}) if d.height else None
    schema = {"signal_id": pl.Utf8, "run_id": pl.Utf8, "kind": pl.Utf8, "ts_event": pl.Int64, "ts_recorded": pl.Int64,
              "event_index": pl.Int64, "strategy": pl.Utf8, "instrument": pl.Utf8, "signal": pl.Utf8,
              "direction": pl.Int32, "value": pl.Float64, "threshold": pl.Float64, "weight": pl.Float64,
              "score": pl.Float64, "score_long": pl.Float64, "score_short": pl.Float64, "breakdown": pl.Utf8,
              "inputs": pl.Utf8, "price": pl.Float64, "code_hash": pl.Utf8, "config_hash": pl.Utf8,
              "fitted_hash": pl.Utf8}
    frames = [x for x in (fir, dec) if x is not None]
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=schema)
    rows = rows.with_columns(pl.lit(run_id).alias("run_id"), pl.lit(config.strategy.name).alias("strategy"),
                             pl.lit(0).alias("ts_recorded"))
    return rows.select([pl.col(c).cast(t) if c in rows.columns else pl.lit(None, t).alias(c)
                        for c, t in schema.items()]).select(SIGNAL_COLUMNS)


def label_result(result: RunResult, config: StrategyConfig, root: str | Path, log_path: Path, run_id: str,
                 params: FitParams) -> pl.DataFrame:
    """Label a backtest's firings and decisions at the fit horizon (in the scratch log at
    ``log_path``, as run ``run_id``); returns them as fit observations (``OBS_SCHEMA``)."""
    from emerald.forward.label import label

    rows = result_rows(result, config, run_id)
    with SignalLog(log_path) as log:
        log.start_run({"run_id": run_id, "strategy": config.strategy.name, "config": orjson.dumps(
            config.resolved()).decode(), "code_hash": "", "config_hash": digest(config.resolved()),
            "fitted_hash": "none", "data_hash": result.manifest["data_hash"], "source": f"replay:{root}",
            "start": None, "end": None, "started_at": 0})
        log.commit(run_id, rows, 0, rows.height)
    label(log_path, root, horizons=[params.horizon], run_id=run_id, trades=False)
    with SignalLog(log_path, read_only=True) as log:
        obs = log.query("SELECT s.signal_id, s.run_id, s.kind, s.signal, s.instrument, s.direction, s.value, "
                        "s.score, s.breakdown, s.ts_event, o.ret FROM signals s JOIN outcomes o USING (signal_id) "
                        "WHERE s.run_id = ? ORDER BY s.ts_event, s.signal_id", [run_id])
    return obs.cast(OBS_SCHEMA)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ result


def _signal_rows(fold: int, art: Artifact | None, run: RunResult, period_obs: pl.DataFrame, span: int,
                 params: FitParams) -> list[dict[str, Any]]:
    scoring = run.manifest["scoring"]
    rows = []
    for s in scoring:
        name = s["name"]
        entry = art.signals[name] if art is not None else None
        fit_all = None
        if entry is not None:
            fit_all = {k: entry["in_sample"][k] for k in STAT_PREFIXES}
        oos = signal_stats(period_obs.filter((pl.col("kind") == "firing") & (pl.col("signal") == name)), span)
        rows.append({"fold": fold, "signal": name, "artifact": art.hash if art is not None else "defaults",
                     "weight": s["weight"], "weight_source": entry["weight_source"] if entry else "default",
                     "threshold": s["threshold"],
                     "threshold_source": entry["threshold_source"] if entry else "default",
                     **{f"is_{k}": (fit_all[k] if fit_all and fit_all[k] is not None else math.nan)
                        for k in STAT_PREFIXES},
                     **{f"val_{k}": (entry["out_of_sample"][k] if entry and entry["out_of_sample"][k] is not None
                                     else math.nan) for k in STAT_PREFIXES},
                     **{f"oos_{k}": oos[k] for k in STAT_PREFIXES}, "horizon": params.horizon})
    return rows


def _stats(run: RunResult | None) -> dict[str, Any]:
    if run is None:
        return {}
    return {k: v for k, v in run.stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _result(kind: str, config: StrategyConfig, root: str | Path, oos_windows: list[tuple[int, int]],
            is_windows: list[tuple[int, int]], is_runs: list[RunResult | None], oos_runs: list[RunResult],
            artifacts: list[Artifact | None], sig_rows: list[dict[str, Any]], notes: list[str],
            params: FitParams | None, *, is_run: RunResult | None = None) -> FittedBacktest:
    from dataclasses import asdict

    from emerald.backtest.engine import code_version
    from emerald.backtest.sweep import stitch

    keys = sorted(set().union(*(_stats(r).keys() for r in [*oos_runs, *is_runs])) if oos_runs else [])
    frows, grows = [], []
    for k, (ow, iw, ir, orun, art) in enumerate(zip(oos_windows, is_windows, is_runs, oos_runs, artifacts,
                                                     strict=True)):
        row: dict[str, Any] = {"fold": k, "is_start": iw[0], "is_end": iw[1] if ir is not None else iw[0],
                               "oos_start": ow[0], "oos_end": ow[1],
                               "artifact": art.hash if art is not None else "defaults"}
        for s in orun.manifest["scoring"]:
            row[f"w.{s['name']}"] = s["weight"]
            row[f"th.{s['name']}"] = s["threshold"]
        ist, ost = _stats(ir), _stats(orun)
        row.update({f"is.{s}": float(ist[s]) if s in ist else None for s in keys})
        row.update({f"oos.{s}": float(ost[s]) if s in ost else None for s in keys})
        row["oos.digest"] = orun.digest()
        frows.append(row)
        grows.append({"fold": k, **{s: float(ost[s]) if s in ost else None for s in keys}})
    folds = pl.DataFrame(frows, infer_schema_length=None) if frows else None
    oos = stitch(oos_runs, oos_windows) if oos_runs else None
    first = (oos_runs or [r for r in [is_run] if r is not None])[0].manifest
    last_art = next((a for a in reversed(artifacts) if a is not None), None)
    manifest = {
        "kind": kind, "strategy": config.strategy.name, "config": config.resolved(),
        "config_path": str(config.path) if config.path else None, "data_root": str(Path(root).resolve()),
        "data_hash": first["data_hash"], "code_version": code_version(),
        "fit": asdict(params) if params is not None else (last_art.doc["params"] if last_art else None),
        "artifacts": [a.hash if a is not None else None for a in artifacts],
        "folds": [{"fold": k, "is": [_iso(a), _iso(b)], "oos": [_iso(c), _iso(d)]}
                  for k, ((a, b), (c, d)) in enumerate(zip(is_windows, oos_windows, strict=True))],
        "start": _iso(oos_windows[0][0]) if oos_windows else first["start"],
        "end": _iso(oos_windows[-1][1]) if oos_windows else first["end"],
        "assumptions": first["assumptions"], "coverage": first["coverage"], "notes": notes,
    }
    best = {f"w.{n}": v for n, v in last_art.scoring()["weights"].items()} if last_art else {}
    sweep = SweepResult(manifest=manifest, grid=pl.DataFrame(grows, infer_schema_length=None), folds=folds, oos=oos,
                        n_configs=1, objective="sharpe", best=best)
    in_sample = is_run if is_run is not None else next((r for r in reversed(is_runs) if r is not None), None)
    signals = pl.DataFrame(sig_rows, infer_schema_length=None) if sig_rows else pl.DataFrame()
    return FittedBacktest(kind, sweep, in_sample, signals, artifacts)


def _data_hash(prep: Any) -> str:
    from emerald.backtest.engine import tape_hash

    return tape_hash(prep.tape, prep.config.instruments)


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(int(ns) // SECOND_NS, "s"), unit="s") + "Z"
