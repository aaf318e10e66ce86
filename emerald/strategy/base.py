"""A strategy: a decision kernel, its declared parameters and signals, loaded from a TOML config.

A strategy module (``strategies/<name>.py``) defines ``STRATEGY = StrategyDef(...)``:

* ``params``: declared :class:`~emerald.signals.base.Param` s (units, defaults from the design
  documents, bounds); the config's ``[params]`` table is checked against them (unknown keys get a
  did-you-mean message);
* ``signals(params, instruments)``: the metrics the kernel reads, as ``(column, Metric)`` pairs;
  their outputs become the columns of the ``sig`` row, in that order;
* ``decide_nb``: the decision kernel (see :mod:`emerald.strategy.builtin` for the contract);
* ``decide_kinds``: the event kinds on which the kernel runs (event mode).

The config (``strategies/<name>.toml``) names the strategy and holds everything else of a run::

    strategy = "ema_cross"              # strategies/ema_cross.py, or a path to a .py file
    instruments = ["demo-perp:BTCUSDT"]
    mode = "event"                      # "event" (every event) or "bars" (decisions on bar closes)
    bar = "5m"                          # bars mode: bar length (bars are built from the trades)
    start = "2024-03-01"                # optional window [start, end)
    end = "2024-03-08"

    [params]                            # the strategy's parameters
    fast = 10

    [execution]                         # fill model, sizing, exits, risk (emerald.backtest.config)
    latency_ms = 100
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import numpy as np

from emerald.errors import ConfigError
from emerald.signals.base import Metric, Param, Params

REPO_STRATEGIES = Path(__file__).resolve().parents[2] / "strategies"


@dataclass(frozen=True)
class StrategyDef:
    """Registry entry of one strategy (see module docstring)."""

    name: str
    description: str
    params: tuple[Param, ...]
    decide_nb: Any
    signals: Callable[[Params, list[tuple[str, str]]], list[tuple[str, Metric]]]
    decide_kinds: tuple[str, ...] = ("trades",)
    signal_names: tuple[str, ...] = ("signal",)
    kinds: tuple[str, ...] | None = None  # tape kinds to load; None: every kind present
    n_instruments: int = 1
    execution: dict[str, Any] = field(default_factory=dict)  # execution defaults of this strategy
    validate: Callable[[dict[str, Any]], None] | None = None
    fitted_size: int = 0
    score_labels: tuple[str, ...] = ()  # weighted-score strategies: one short label per trigger (explanations)
    score_max: float = 100.0  # the score's scale in explanations ("score 87/100", "score 5.5/8")
    # what explanations print per trigger: "signals" (each trigger column's raw value at the decision)
    # or "contrib" (what the kernel wrote to intent.contrib, e.g. values it scaled to its own units)
    explain_from: str = "signals"
    counters: tuple[str, ...] = ()  # names of the acct[0].mem slots the kernel counts in (reported per run)
    # scored conditions (emerald.strategy.score.Trigger) from (params, signal column names): the
    # weighted score, the signal firings the recorder logs and the fitter's weights/thresholds
    triggers: Callable[[Params, list[str]], list[Any]] | None = None
    source: str = ""
    params_dtype: np.dtype = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.params_dtype is None:
            fields_ = [(p.name, np.int64 if p.integer else np.float64) for p in self.params]
            object.__setattr__(self, "params_dtype", np.dtype(fields_ or [("_unused", np.int64)], align=True))

    def make_params(self, **values: Any) -> Params:
        return Params(self, values)  # type: ignore[arg-type]  (Params reads name/params/validate/params_dtype)


def _did_you_mean(key: str, known: list[str], where: str) -> ConfigError:
    hint = get_close_matches(key, known, n=1)
    extra = f"; did you mean {hint[0]!r}?" if hint else f"; known: {', '.join(sorted(known))}"
    return ConfigError(f"{where}: unknown key {key!r}{extra}")


def load_strategy(ref: str, base: Path | None = None) -> tuple[StrategyDef, Path]:
    """The :class:`StrategyDef` named ``ref``: a module in ``strategies/`` or a path to a ``.py`` file
    (relative to ``base``, the config's folder)."""
    if ref.endswith(".py"):
        path = (base / ref if base is not None and not Path(ref).is_absolute() else Path(ref)).resolve()
        if not path.exists():
            raise ConfigError(f"strategy file {path} does not exist")
        modname = f"emerald_user_strategy_{path.stem}"
        spec = importlib.util.spec_from_file_location(modname, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[modname] = module
        spec.loader.exec_module(module)
    else:
        path = REPO_STRATEGIES / f"{ref}.py"
        if not path.exists():
            known = sorted(p.stem for p in REPO_STRATEGIES.glob("*.py") if not p.stem.startswith("_"))
            hint = get_close_matches(ref, known, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f"; strategies: {', '.join(known)}"
            raise ConfigError(f"unknown strategy {ref!r}{extra}")
        module = importlib.import_module(f"strategies.{ref}")
    strategy = getattr(module, "STRATEGY", None)
    if not isinstance(strategy, StrategyDef):
        raise ConfigError(f"{path} defines no `STRATEGY = StrategyDef(...)`")
    return strategy, path


CONFIG_KEYS = ("strategy", "instruments", "mode", "bar", "start", "end", "seed", "params", "execution", "title",
               "description")


@dataclass(frozen=True)
class StrategyConfig:
    """A resolved, frozen strategy config."""

    path: Path | None
    strategy: StrategyDef
    module_path: Path
    instruments: list[tuple[str, str]]
    mode: str
    bar: str | None
    start: str | None
    end: str | None
    seed: int
    params: Params
    execution: dict[str, Any]
    raw: dict[str, Any]

    def resolved(self) -> dict[str, Any]:
        """The config with every default filled in (what the run manifest records)."""
        return {"strategy": self.strategy.name, "instruments": [f"{v}:{s}" for v, s in self.instruments],
                "mode": self.mode, "bar": self.bar, "start": self.start, "end": self.end, "seed": self.seed,
                "params": self.params.as_dict(), "execution": dict(self.execution)}

    def with_params(self, **values: Any) -> StrategyConfig:
        merged = {**self.params.as_dict(), **values}
        return StrategyConfig(self.path, self.strategy, self.module_path, self.instruments, self.mode, self.bar,
                              self.start, self.end, self.seed, self.strategy.make_params(**merged),
                              self.execution, self.raw)

    def with_window(self, start: str | None, end: str | None) -> StrategyConfig:
        return StrategyConfig(self.path, self.strategy, self.module_path, self.instruments, self.mode, self.bar,
                              start, end, self.seed, self.params, self.execution, self.raw)


def parse_instrument(text: str, where: str) -> tuple[str, str]:
    if not isinstance(text, str) or text.count(":") != 1 or not all(text.split(":")):
        raise ConfigError(f"{where}: instruments are 'venue:SYMBOL', was {text!r}")
    venue, symbol = text.split(":")
    return venue, symbol


def load_config(source: str | Path | dict[str, Any], **overrides: Any) -> StrategyConfig:
    """Read and check a strategy TOML (or an equivalent dict); ``overrides`` replace top-level keys."""
    from emerald.backtest.config import check_execution

    path: Path | None = None
    if isinstance(source, dict):
        raw = dict(source)
        where = "strategy config"
    else:
        path = Path(source)
        where = str(path)
        if not path.exists():
            raise ConfigError(f"strategy config {path} does not exist")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    raw.update({k: v for k, v in overrides.items() if v is not None})
    for key in raw:
        if key not in CONFIG_KEYS:
            raise _did_you_mean(key, list(CONFIG_KEYS), where)
    if "strategy" not in raw:
        raise ConfigError(f"{where}: missing `strategy` (the strategy module's name)")
    strategy, module_path = load_strategy(raw["strategy"], path.parent if path else None)
    insts = raw.get("instruments")
    if not isinstance(insts, list) or not insts:
        raise ConfigError(f"{where}: `instruments` must be a non-empty list of 'venue:SYMBOL', was {insts!r}")
    instruments = [parse_instrument(x, where) for x in insts]
    mode = raw.get("mode", "event")
    if mode not in ("event", "bars"):
        raise ConfigError(f"{where}: `mode` must be 'event' or 'bars', was {mode!r}")
    bar = raw.get("bar")
    if mode == "bars" and not bar:
        raise ConfigError(f"{where}: mode 'bars' needs `bar` (e.g. '5m')")
    params_raw = raw.get("params", {})
    if not isinstance(params_raw, dict):
        raise ConfigError(f"{where}: [params] must be a table, was {params_raw!r}")
    params = strategy.make_params(**params_raw)
    execution = check_execution({**strategy.execution, **raw.get("execution", {})}, where)
    seed = raw.get("seed", 0)
    if not isinstance(seed, int):
        raise ConfigError(f"{where}: `seed` must be an integer, was {seed!r}")
    return StrategyConfig(path, strategy, module_path, instruments, mode, bar, _opt_str(raw.get("start")),
                          _opt_str(raw.get("end")), seed, params, execution, raw)


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)
