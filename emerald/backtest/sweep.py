"""Parameter sweeps and walk-forward analysis, run serially, on a local process pool or on Ray.

Grid
----
A grid maps strategy parameter names to lists of values (:func:`parse_grid` reads the command
line form ``name=v1,v2,...`` or ``name=start:stop:step``). The configurations are the Cartesian
product in the order the parameters were given, the first parameter varying slowest
(``itertools.product``); that order is the row order of every result table, whatever order the
runs finish in. Each configuration is one ``backtest(config.with_params(**combo).with_window(a, b),
root)``. A value outside a parameter's declared bounds is an error before anything runs; a
combination that the strategy's own check refuses (e.g. ``fast >= slow``) is skipped and listed
in the manifest (``skipped``), and is not counted in ``n_configs``.

Objective
---------
A numeric key of :func:`emerald.backtest.stats.compute_stats` (default ``sharpe``). Higher is
better, except for the keys in :data:`LOWER_IS_BETTER` (drawdown depth and duration, volatility,
fees, funding). A NaN objective (e.g. a Sharpe without any trade) ranks below every number; ties
go to the first configuration in grid order; when every value is NaN the first configuration is
chosen and the manifest says so (``notes``).

Walk-forward
------------
``[start, end)`` is the run window of the config (its ``start``/``end``, else the span of the
instruments' trades). When it comes from the data it is widened to the grain
``gcd(test, 1 day)`` (whole UTC days for a test window of whole days); a window the config gives
is narrowed to whole seconds instead, never widened. The out-of-sample (OOS) windows of the
``folds`` folds tile the end of that window::

    oos_k = [end - (folds - k) * test, end - (folds - k - 1) * test)      k = 0 .. folds - 1
    is_k  = [oos_k.start - train, oos_k.start)    rolling
    is_k  = [start, oos_k.start)                  anchored (every fold starts at the data start)

``train`` defaults to everything before the first OOS window (``end - start - folds * test``);
``folds`` defaults to as many as fit with ``train`` of in-sample data. Each fold runs the whole
grid in-sample, picks the best configuration by the objective, and runs it out-of-sample. In-
and out-of-sample windows of a fold never overlap (``is_k.end == oos_k.start``). Every run starts
flat with the initial equity and warms its metrics up inside its own window (no data before the
window is read).

The OOS runs are stitched into one :class:`~emerald.backtest.result.RunResult` (``SweepResult.oos``):
tables concatenated, ids renumbered so they stay unique (``order_id``, ``fill_id``, ``trade_id``
shifted by the previous folds' counts), ``equity`` and ``cash`` shifted by the PnL of the previous
folds (so the curve is continuous and the trades' PnL adds up), ``pnl`` summed, attribution and
statistics recomputed over ``[first OOS start, last OOS end)``. A position open at the end of a fold
is valued at its mark there, as at the end of any run, and the next fold starts flat.

Executors
---------
``serial`` runs in this process; ``local`` (default) on a ``ProcessPoolExecutor`` of ``workers``
processes started with the ``spawn`` method (numba and ``fork`` do not mix; a script that calls
:func:`sweep` with it needs the usual ``if __name__ == "__main__":`` guard); ``ray`` as Ray tasks, on
the cluster ``ray.init()`` finds (``RAY_ADDRESS``) or else on a local Ray instance of ``workers``
CPUs that is shut down afterwards; a Ray instance already initialised by the caller is used as is.
The tape root must be readable at the same path by every worker. Workers rebuild the config from
its source (path or dict) and load the compiled kernels from numba's disk cache; every numba
compilation that happens during a run is counted and listed in the manifest (``compiles``,
``compiled``), so a worker that recompiles shows. Results do not depend on the executor or on the
number of workers: every run is independent and deterministic, and results are gathered in grid
order (RELIABILITY.md TB4; ``digest`` column).

Command line syntax of :func:`parse_walk_forward`: comma-separated ``key=value`` items and flags,
``folds=<int>``, ``train=<duration>``, ``test=<duration>`` (required), ``anchored`` or ``rolling``
(default); durations as in strategy configs: ``30s``, ``15m``, ``4h``, ``7d``. Examples:
``folds=4,test=1d,anchored``; ``train=3d,test=1d``.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from difflib import get_close_matches
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import polars as pl

from emerald.backtest.result import TABLES, RunResult, SweepResult
from emerald.errors import ConfigError
from emerald.strategy.base import StrategyConfig

log = logging.getLogger(__name__)
SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS
EXECUTORS = ("serial", "local", "ray")
LOWER_IS_BETTER = frozenset({"max_drawdown_pct", "max_drawdown_duration_s", "volatility_ann_pct", "fees_total",
                             "funding_total", "funding_share_pct"})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_MAX_RANGE = 10_000


# ------------------------------------------------------------------------------ parsing


def _number(token: str, item: str) -> int | float:
    token = token.strip()
    if _INT.fullmatch(token):
        return int(token)
    if _FLOAT.fullmatch(token):
        return float(token)
    raise ConfigError(f"grid item {item!r}: {token!r} is not a number")


def _uniform(values: list[int | float]) -> list[int | float]:
    """All floats when any value is a float (one dtype per grid column)."""
    return [float(v) for v in values] if any(isinstance(v, float) for v in values) else values


def parse_grid(items: list[str]) -> dict[str, list[int | float]]:
    """Grid items of the command line -> ``{name: values}``.

    ``"fast=5,10,20"`` lists values; ``"fast=5:20:5"`` is the range ``start:stop:step`` with
    ``stop`` included when the steps reach it (``5, 10, 15, 20``). Values are ints when written
    as ints, else floats (a list mixing both becomes floats).

    Raises
    ------
    ConfigError
        naming the item: no ``=``, a bad name, a repeated name, a value that is not a number, a
        repeated value, an empty list, a step that is not positive, a range of more than 10 000 values.
    """
    grid: dict[str, list[int | float]] = {}
    for item in items:
        name, sep, rhs = str(item).partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"grid item {item!r} has no '=': write name=v1,v2 or name=start:stop:step")
        if not _NAME.fullmatch(name):
            raise ConfigError(f"grid item {item!r}: {name!r} is not a parameter name")
        if name in grid:
            raise ConfigError(f"grid item {item!r}: parameter {name!r} is given twice")
        if not rhs.strip():
            raise ConfigError(f"grid item {item!r} has no values")
        if ":" in rhs:
            parts = rhs.split(":")
            if len(parts) != 3:
                raise ConfigError(f"grid item {item!r}: a range is start:stop:step, was {rhs!r}")
            start, stop, step = (_number(p, item) for p in parts)
            if step <= 0:
                raise ConfigError(f"grid item {item!r}: the step must be positive, was {step!r}")
            n = int(math.floor((stop - start) / step + 1e-9)) + 1
            if n < 1:
                raise ConfigError(f"grid item {item!r}: empty range (stop {stop!r} is below start {start!r})")
            if n > _MAX_RANGE:
                raise ConfigError(f"grid item {item!r}: the range has {n} values, more than {_MAX_RANGE}")
            if all(isinstance(v, int) for v in (start, stop, step)):
                values: list[int | float] = [start + k * step for k in range(n)]
            else:
                values = [round(start + k * step, 12) for k in range(n)]
        else:
            values = [_number(tok, item) for tok in rhs.split(",")]
        values = _uniform(values)
        if len(set(values)) != len(values):
            raise ConfigError(f"grid item {item!r}: a value is repeated")
        grid[name] = values
    return grid


@dataclass(frozen=True)
class WalkForward:
    """Walk-forward layout (see module docstring): ``folds`` (None: as many as fit), ``train``
    (in-sample length, None: everything before the first test window), ``test`` (out-of-sample
    length per fold), ``anchored`` (in-sample windows all start at the data start)."""

    folds: int | None
    train: str | None
    test: str
    anchored: bool = False

    def windows(self, start_ns: int, end_ns: int) -> list[tuple[int, int, int, int]]:
        """``(is_start, is_end, oos_start, oos_end)`` of every fold over ``[start_ns, end_ns)``."""
        test = _whole_seconds(self.test, "test")
        span = end_ns - start_ns
        if self.folds is not None and (isinstance(self.folds, bool) or not isinstance(self.folds, int)
                                       or self.folds < 1):
            raise ConfigError(f"walk-forward `folds` must be a positive integer, was {self.folds!r}")
        if self.train is None:
            if self.folds is None:
                raise ConfigError("walk-forward needs `folds` or `train` (e.g. folds=4,test=1d)")
            folds, train = self.folds, span - self.folds * test
            if train <= 0:
                raise ConfigError(f"walk-forward: {self.folds} folds of test={self.test} leave no in-sample data in "
                                  f"the {span / DAY_NS:g}-day window")
        else:
            train = _whole_seconds(self.train, "train")
            folds = (span - train) // test if self.folds is None else self.folds
            if folds < 1 or train + folds * test > span:
                raise ConfigError(f"walk-forward: train={self.train} + {folds if folds >= 1 else 1} x test={self.test}"
                                  f" does not fit in the {span / DAY_NS:g}-day window")
        out = []
        for k in range(folds):
            oos_start = end_ns - (folds - k) * test
            out.append((start_ns if self.anchored else oos_start - train, oos_start, oos_start, oos_start + test))
        return out


def _whole_seconds(text: str, what: str) -> int:
    from emerald.backtest.engine import parse_duration

    ns = parse_duration(text, what)
    if ns <= 0 or ns % SECOND_NS:
        raise ConfigError(f"walk-forward `{what}` must be a positive whole number of seconds, was {text!r}")
    return ns


def parse_walk_forward(text: str) -> WalkForward:
    """``"folds=4,test=1d,anchored"`` -> :class:`WalkForward` (syntax in the module docstring)."""
    values: dict[str, Any] = {"folds": None, "train": None, "test": None, "anchored": False}
    seen: set[str] = set()
    for raw in str(text).split(","):
        item = raw.strip()
        key, sep, value = (s.strip() for s in item.partition("="))
        if not sep and key in ("anchored", "rolling"):
            key, value = "anchored", key
        if key not in values or (sep and key == "anchored") or (not sep and key != "anchored"):
            raise ConfigError(f"walk-forward item {item!r} in {text!r}: expected folds=N, train=DURATION, "
                              "test=DURATION, anchored or rolling")
        if key in seen:
            raise ConfigError(f"walk-forward item {item!r} in {text!r}: {key!r} is given twice")
        seen.add(key)
        if key == "folds":
            if not _INT.fullmatch(value) or int(value) < 1:
                raise ConfigError(f"walk-forward `folds` must be a positive integer, was {value!r}")
            values["folds"] = int(value)
        elif key == "anchored":
            values["anchored"] = value == "anchored"
        else:
            _whole_seconds(value, key)
            values[key] = value
    if values["test"] is None:
        raise ConfigError(f"walk-forward {text!r} has no test=DURATION (e.g. folds=4,test=1d)")
    return WalkForward(**values)


# ------------------------------------------------------------------------------ jobs and executors


@dataclass(frozen=True)
class _Job:
    """One backtest, in a form any process can rebuild (no compiled objects inside)."""

    source: str | None  # the config file, or None for a config given as a dict
    raw: dict[str, Any]
    params: dict[str, Any]
    start: str | None
    end: str | None
    root: str
    full: bool  # return the whole RunResult (out-of-sample runs), else a summary


def _job_config(job: _Job) -> StrategyConfig:
    from emerald.strategy.base import load_config

    base = load_config(job.source, **job.raw) if job.source else load_config(job.raw)
    return base.with_params(**job.params).with_window(job.start, job.end)


def _run(job: _Job) -> tuple[RunResult | dict[str, Any], list[str]]:
    """Run one job; also return the names of the functions numba compiled meanwhile (empty when
    everything came from the disk cache or was already compiled in this process)."""
    from numba.core.event import install_recorder

    from emerald.backtest.engine import backtest

    with install_recorder("numba:compile") as rec:
        result = backtest(_job_config(job), job.root)
    compiled = [ev.data["dispatcher"].py_func.__qualname__ for _, ev in rec.buffer if ev.is_start]
    if job.full:
        return result, compiled
    keep = ("data_hash", "code_version", "assumptions", "coverage", "start", "end")
    return {"stats": result.stats, "digest": result.digest(), "manifest": {k: result.manifest[k] for k in keep}}, \
        compiled


Mapper = Callable[[list[_Job]], list[tuple[Any, list[str]]]]


@contextmanager
def _executor(kind: str, workers: int | None) -> Iterator[tuple[Mapper, int]]:
    """A function mapping jobs to results in job order, and the number of workers it uses."""
    if kind == "serial":
        yield (lambda jobs: [_run(j) for j in jobs]), 1
    elif kind == "local":
        n = workers or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            yield (lambda jobs: list(pool.map(_run, jobs))), n
    else:
        import ray

        started = not ray.is_initialized()
        if started and os.environ.get("RAY_ADDRESS"):
            ray.init()
        elif started:
            _start_local_ray(ray, workers or os.cpu_count() or 1)
        try:
            task = ray.remote(num_cpus=1)(_run)
            yield (lambda jobs: ray.get([task.remote(j) for j in jobs])), int(ray.cluster_resources().get("CPU", 1))
        finally:
            if started:
                ray.shutdown()


def _start_local_ray(ray: Any, n: int, attempts: int = 3) -> None:
    """Start a local Ray instance. Ray's node gives up after a fixed 15 s when its helper process is
    slow to start (ray-project/ray#65983, seen on an overloaded 2-core machine): try again, then
    raise with the cause."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=n, include_dashboard=False)
            return
        except Exception as exc:  # ray raises a bare Exception on a startup timeout
            ray.shutdown()
            if attempt == attempts or "timed out" not in str(exc).lower():
                raise
            log.warning("local Ray did not start (attempt %d of %d): %s", attempt, attempts, exc)


# ------------------------------------------------------------------------------ sweep


def _stat_keys() -> list[str]:
    """The numeric keys of :func:`compute_stats` (asked of it, so the two cannot drift)."""
    from emerald.backtest.stats import compute_stats

    stats = compute_stats(pl.DataFrame({"ts": [0], "equity": [1.0]}), pl.DataFrame(), start_ns=0, end_ns=1,
                          initial_equity=1.0, pnl={})
    return [k for k, v in stats.items() if isinstance(v, int | float)]


def _combos(config: StrategyConfig, grid: dict[str, list]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The valid configurations in grid order, and the skipped ones with the reason."""
    declared = {p.name: p for p in config.strategy.params}
    for name, values in grid.items():
        if name not in declared:
            hint = get_close_matches(name, list(declared), n=1)
            extra = f"did you mean {hint[0]!r}?" if hint else f"parameters: {', '.join(declared)}"
            raise ConfigError(f"grid: {config.strategy.name} has no parameter {name!r}; {extra}")
        if not isinstance(values, list | tuple) or not values:
            raise ConfigError(f"grid: {name!r} needs a non-empty list of values, was {values!r}")
        for v in values:
            declared[name].check(v, config.strategy.name)
    keep, skipped = [], []
    for combo in itertools.product(*(_uniform(list(v)) for v in grid.values())):
        given = dict(zip(grid, combo, strict=True))
        try:
            resolved = config.with_params(**given).params.as_dict()
        except ConfigError as exc:
            skipped.append({"params": given, "reason": str(exc)})
            continue
        keep.append({k: resolved[k] for k in grid})  # as the strategy reads them (5.0 -> 5 for an integer)
    if not keep:
        raise ConfigError(f"grid: every one of the {len(skipped)} configurations is refused by "
                          f"{config.strategy.name}; first: {skipped[0]['reason']}")
    return keep, skipped


def _pick(values: list[float], objective: str) -> int | None:
    """Index of the best finite value (first on ties), None when none is finite."""
    sign = -1.0 if objective in LOWER_IS_BETTER else 1.0
    best = None
    for i, v in enumerate(values):
        if v is not None and math.isfinite(v) and (best is None or sign * v > sign * values[best]):
            best = i
    return best


def _iso(ns: int) -> str:
    import numpy as np

    return np.datetime_as_string(np.datetime64(int(ns), "ns"), unit="s") + "Z"


def _span(config: StrategyConfig, root: str | Path, grain: int) -> tuple[int, int]:
    """The walk-forward window: the config's own (narrowed to whole seconds) or the data's
    (widened to ``grain``)."""
    from emerald.backtest.engine import _window
    from emerald.tape.reader import Tape

    start, end = _window(Tape(root), config)
    start = -(-start // SECOND_NS) * SECOND_NS if config.start else (start // grain) * grain
    end = (end // SECOND_NS) * SECOND_NS if config.end else -(-end // grain) * grain
    if end <= start:
        raise ConfigError(f"walk-forward: the run window {_iso(start)} .. {_iso(end)} is empty")
    return start, end


def sweep(config: StrategyConfig, root: str | Path, grid: dict[str, list], *, executor: str = "local",
          workers: int | None = None, objective: str = "sharpe",
          walk_forward: WalkForward | None = None) -> SweepResult:
    """Run ``config`` over every configuration of ``grid`` (optionally walk-forward) on the tape at
    ``root``; see the module docstring for the order, the objective, the folds and the executors.

    Returns
    -------
    SweepResult
        ``grid``: one row per run in grid order (walk-forward: per fold, then grid order, with a
        ``fold`` column), ``p.<name>`` columns, the numeric stats and the run's ``digest``;
        ``folds`` (walk-forward): ``fold, is_start, is_end, oos_start, oos_end`` (int ns), the
        chosen ``p.*``, ``is.<stat>``, ``oos.<stat>`` and ``oos.digest``; ``oos``: the stitched
        out-of-sample run; ``best``: the chosen ``p.*`` and the objective (walk-forward: the last
        fold's choice, the one to trade next); ``n_configs``: runs chosen among (grid x folds).
    """
    from emerald.backtest.engine import code_version, tape_hash
    from emerald.tape.reader import Tape

    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, was {executor!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, was {workers!r}")
    keys = _stat_keys()
    if objective not in keys:
        raise ConfigError(f"objective {objective!r} is not a statistic; one of: {', '.join(keys)}")
    combos, skipped = _combos(config, grid)
    root = str(Path(root).resolve())
    source = str(config.path.resolve()) if config.path else None
    base = config.params.as_dict()

    def job(combo: dict[str, Any], start: str | None, end: str | None, full: bool = False) -> _Job:
        return _Job(source, dict(config.raw), {**base, **combo}, start, end, root, full)

    if walk_forward is None:
        windows: list[tuple[int, int, int, int]] = []
        phase1 = [job(c, config.start, config.end) for c in combos]
    else:
        grain = math.gcd(_whole_seconds(walk_forward.test, "test"), DAY_NS)
        windows = walk_forward.windows(*_span(config, root, grain))
        phase1 = [job(c, _iso(w[0]), _iso(w[1])) for w in windows for c in combos]

    notes: list[str] = []
    compiled: list[str] = []
    with _executor(executor, workers) as (run_all, n_workers):
        results = run_all(phase1)
        summaries = [r for r, _ in results]
        compiled += [name for _, names in results for name in names]
        rows = []
        for i, (s, jb) in enumerate(zip(summaries, phase1, strict=True)):
            row: dict[str, Any] = {"fold": i // len(combos)} if walk_forward else {}
            row.update({f"p.{k}": jb.params[k] for k in grid})
            row.update({k: s["stats"][k] for k in keys})
            row["digest"] = s["digest"]
            rows.append(row)
        table = pl.DataFrame(rows)
        chosen = []
        for f in range(max(len(windows), 1)):
            vals = [float(r[objective]) for r in rows[f * len(combos):(f + 1) * len(combos)]]
            k = _pick(vals, objective)
            if k is None:
                notes.append(f"{'fold ' + str(f) if walk_forward else 'grid'}: the objective {objective!r} is NaN for "
                             "every configuration; the first one is taken")
                k = 0
            chosen.append(k)
        oos_runs: list[RunResult] = []
        if walk_forward is not None:
            phase2 = [job(combos[k], _iso(w[2]), _iso(w[3]), full=True) for k, w in zip(chosen, windows, strict=True)]
            results2 = run_all(phase2)
            oos_runs = [r for r, _ in results2]
            compiled += [name for _, names in results2 for name in names]

    first = summaries[0]["manifest"]
    best_row = rows[(len(windows) - 1) * len(combos) + chosen[-1]] if walk_forward else rows[chosen[0]]
    best = {k: best_row[k] for k in best_row if k.startswith("p.")}
    best[objective] = best_row[objective]
    folds = oos = None
    if walk_forward is not None:
        frows = []
        for f, (w, k, run) in enumerate(zip(windows, chosen, oos_runs, strict=True)):
            is_row = rows[f * len(combos) + k]
            fr: dict[str, Any] = {"fold": f, "is_start": w[0], "is_end": w[1], "oos_start": w[2], "oos_end": w[3]}
            fr.update({c: is_row[c] for c in is_row if c.startswith("p.")})
            fr.update({f"is.{s}": is_row[s] for s in keys})
            fr.update({f"oos.{s}": run.stats[s] for s in keys})
            fr["oos.digest"] = run.digest()
            frows.append(fr)
        folds = pl.DataFrame(frows)
        oos = stitch(oos_runs, [w[2:] for w in windows])
    manifest = {
        "kind": "walk_forward" if walk_forward else "sweep", "strategy": config.strategy.name,
        "config": config.resolved(), "config_path": source, "grid": {k: list(v) for k, v in grid.items()},
        "objective": objective, "walk_forward": asdict(walk_forward) if walk_forward else None,
        "folds": [{"fold": f, "is": [_iso(w[0]), _iso(w[1])], "oos": [_iso(w[2]), _iso(w[3])]}
                  for f, w in enumerate(windows)],
        "n_configs": table.height, "skipped": skipped, "executor": executor, "workers": n_workers,
        "data_root": root, "data_hash": tape_hash(Tape(root), config.instruments), "code_version": code_version(),
        "start": _iso(windows[0][0]) if windows else first["start"],
        "end": _iso(windows[-1][3]) if windows else first["end"],
        "assumptions": first["assumptions"], "coverage": first["coverage"],
        "compiles": len(compiled), "compiled": sorted(set(compiled)), "notes": notes,
    }
    return SweepResult(manifest=manifest, grid=table, folds=folds, oos=oos, n_configs=table.height,
                       objective=objective, best=best)


# ------------------------------------------------------------------------------ stitching


def stitch(runs: list[RunResult], windows: list[tuple[int, int]]) -> RunResult:
    """Consecutive runs (``windows``: each run's ``[start, end)``) as one run (module docstring)."""
    from emerald.backtest.stats import compute_stats, go_live_table

    initial = float(runs[0].manifest["config"]["execution"]["initial_equity"])
    ids = {"order": 0, "fill": 0, "trade": 0}
    pnl_before = 0.0
    parts: dict[str, list[pl.DataFrame]] = {name: [] for name in (*TABLES, "decisions")}
    for run in runs:
        shifted = {
            "orders": run.orders.with_columns(pl.col("order_id") + ids["order"]),
            "fills": run.fills.with_columns(pl.col("fill_id") + ids["fill"], pl.col("order_id") + ids["order"]),
            "trades": run.trades.with_columns(pl.col("trade_id") + ids["trade"]),
            "equity": run.equity.with_columns(pl.col("equity") + pnl_before, pl.col("cash") + pnl_before),
            "decisions": (run.decisions.with_columns(pl.col("order_id") + ids["order"]) if run.decisions.width
                          else run.decisions),
        }
        for name in parts:
            parts[name].append(shifted.get(name, getattr(run, name)))
        for key, table, col in (("order", run.orders, "order_id"), ("fill", run.fills, "fill_id"),
                                ("trade", run.trades, "trade_id")):
            if table.height:
                ids[key] += int(table[col].to_numpy().max()) + 1
        pnl_before += run.pnl["total"]
    tables = {name: pl.concat([f for f in frames if f.width] or frames[:1]) for name, frames in parts.items()}
    trades = tables["trades"]
    tables["attribution"] = (trades.group_by("signal").agg(pl.len().alias("trades"), pl.col("pnl").sum().alias("pnl"),
                                                           (pl.col("pnl") > 0).mean().mul(100).alias("win_rate"))
                             .sort("signal")) if trades.height else runs[0].attribution.clear()
    pnl = {k: float(sum(r.pnl[k] for r in runs)) for k in runs[0].pnl}
    start, end = windows[0][0], windows[-1][1]
    manifest = {**runs[0].manifest, "kind": "walk_forward_oos", "start": _iso(start), "end": _iso(end),
                "events": sum(r.manifest["events"] for r in runs),
                "strategy_counters": {k: sum(r.manifest.get("strategy_counters", {}).get(k, 0.0) for r in runs)
                                      for k in runs[0].manifest.get("strategy_counters", {})},
                "coverage": {"funding": _merge_coverage([r.manifest["coverage"]["funding"] for r in runs])},
                "windows": [{"start": _iso(a), "end": _iso(b), "params": r.manifest["config"]["params"],
                             "digest": r.digest()} for (a, b), r in zip(windows, runs, strict=True)]}
    manifest["config"] = {**manifest["config"], "start": manifest["start"], "end": manifest["end"], "params": None}
    result = RunResult(manifest=manifest, orders=tables["orders"], fills=tables["fills"], trades=trades,
                       equity=tables["equity"], positions=tables["positions"], refusals=tables["refusals"],
                       prices=tables["prices"], attribution=tables["attribution"], pnl=pnl,
                       decisions=tables["decisions"])
    result.stats = compute_stats(tables["equity"], trades, start_ns=start, end_ns=end, initial_equity=initial, pnl=pnl,
                                 fills=tables["fills"])
    result.go_live = go_live_table(result.stats)
    return result


def _merge_coverage(items: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Funding coverage of consecutive windows added up per instrument."""
    out: dict[str, dict[str, Any]] = {}
    for cov in items:
        for inst, c in cov.items():
            acc = out.setdefault(inst, {"expected_settlements": 0, "present_settlements": 0, "missing": [],
                                        "n_missing": 0})
            for key in ("expected_settlements", "present_settlements", "n_missing"):
                acc[key] += c[key]
            acc["missing"] = (acc["missing"] + c["missing"])[:20]
    return out
