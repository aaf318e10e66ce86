"""The ``[execution]`` table of a strategy config: fill model, sizing, exits and risk limits.

Every key has a unit, a default (from the design documents where they give one) and bounds;
:func:`check_execution` rejects unknown keys (did-you-mean) and out-of-range values, naming the
key and the value. :func:`exec_params` turns the checked table into the kernels' parameter record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import numpy as np

from emerald.errors import ConfigError
from emerald.execution import kernels as K

MS = 1_000_000
SECOND = 1_000_000_000


@dataclass(frozen=True)
class Key:
    name: str
    unit: str
    default: Any
    low: float | None = None
    high: float | None = None
    doc: str = ""
    choices: tuple[str, ...] = ()


KEYS: tuple[Key, ...] = (
    Key("initial_equity", "USD", 100_000.0, 1.0, 1e12, "starting cash"),
    Key("latency_ms", "ms", 100.0, 0.0, 60_000.0, "decision to eligible-for-fill delay"),
    Key("slippage_bps", "bps", 1.0, 0.0, 1000.0, "market orders pay this against the reference price"),
    Key("book_levels", "levels", 0, 0, 100, "walk the top N levels of a book snapshot (0: touch only)"),
    Key("maker_bps", "bps", None, -10.0, 100.0, "override every instrument's maker fee"),
    Key("taker_bps", "bps", None, -10.0, 100.0, "override every instrument's taker fee"),
    Key("leverage", "x", 1.0, 0.01, 125.0, "maximum leverage of a position (isolated margin = notional / leverage)"),
    Key("maint_margin_pct", "%", 0.5, 0.0, 50.0, "maintenance margin rate (isolated-margin liquidation)"),
    Key("sizing", "mode", "fraction", doc="fraction: notional = fraction x equity; risk: risk_pct of equity lost at "
        "the stop (fee-adjusted); all_cash: all equity (vectorbt size=inf); qty: the intent's size is the quantity",
        choices=("fraction", "risk", "all_cash", "qty")),
    Key("fraction", "x equity", 0.25, 0.0, 100.0, "notional per position, as a multiple of equity (sizing=fraction)"),
    Key("risk_pct", "% equity", 1.0, 0.0, 100.0, "equity lost at the stop (sizing=risk)"),
    Key("conf_high", "x", 1.0, 0.0, 10.0, "size multiplier for HIGH confidence"),
    Key("conf_medium", "x", 0.7, 0.0, 10.0, "size multiplier for MEDIUM confidence"),
    Key("conf_low", "x", 0.4, 0.0, 10.0, "size multiplier for LOW confidence"),
    Key("min_notional", "USD", 10.0, 0.0, 1e12, "refuse smaller orders"),
    Key("max_notional_pct", "% equity", 50.0, 0.0, 1e6, "refuse larger orders"),
    Key("min_stop_pct", "%", 0.5, 0.0, 100.0, "refuse stops closer than this (sizing=risk)"),
    Key("max_stop_pct", "%", 5.0, 0.0, 100.0, "refuse stops farther than this (sizing=risk)"),
    Key("stop_pct", "%", None, 0.0, 100.0, "initial stop distance when the strategy gives none"),
    Key("trail_pct", "%", 0.5, 0.0, 100.0, "trailing stop, active from entry, only tightens (none: off)"),
    Key("atr_high", "ATR", 2.5, 0.0, 20.0, "stop distance for HIGH conviction"),
    Key("atr_medium", "ATR", 2.0, 0.0, 20.0, "stop distance for MEDIUM conviction"),
    Key("atr_low", "ATR", 1.5, 0.0, 20.0, "stop distance for LOW conviction"),
    Key("adverse_exits", "bool", False, doc="exit after consecutive adverse ticks (5/3/2/1 by profit 0.3/1/2 %)"),
    Key("adverse_window_s", "s", 15.0, 0.0, 86_400.0, "ticks counted within this window"),
    Key("expiry_s", "s", 120.0, 0.0, 86_400.0, "entry orders expire this long after their signal (0: never)"),
    Key("decay", "bool", True, doc="entry size decays linearly over the signal's age"),
    Key("max_hold_s", "s", 0.0, 0.0, 1e9, "exit after this long (0: off)"),
    Key("session_close", "bool", True, doc="forex: close Friday 23:30 UTC, no entries until Sunday 22:00 UTC"),
    Key("max_positions", "count", 5, 1, 10_000, "open positions at most"),
    Key("max_gross", "x equity", 3.0, 0.0, 1000.0, "gross notional at most"),
    Key("corr_limit", "x equity", None, 0.0, 1000.0, "notional of positions correlated above corr_threshold "
        "(same direction; or anti-correlated, opposite) at most (none: off)"),
    Key("corr_threshold", "rho", 0.7, 0.0, 1.0, "correlation that counts as correlated"),
    Key("corr_window", "samples", 60, 3, 100_000, "equity samples in the rolling correlation"),
    Key("breaker", "bool", True, doc="daily drawdown breaker against the 00:00 UTC equity"),
    Key("dd_alert_pct", "%", 2.0, 0.0, 100.0, "breaker level 1: alert"),
    Key("dd_half_pct", "%", 3.0, 0.0, 100.0, "breaker level 2: close the worse half"),
    Key("dd_all_pct", "%", 4.0, 0.0, 100.0, "breaker level 3: close all"),
    Key("dd_halt_pct", "%", 5.0, 0.0, 100.0, "breaker level 4: close all and halt for the day"),
    Key("health_floor", "score", 0.0, 0.0, 100.0, "no new entries below this portfolio health score (0: off)"),
    Key("allow_spot_short", "bool", False, doc="allow short spot positions (borrow cost not modelled)"),
    Key("allow_missing_funding", "bool", False, doc="run even when funding settlements are missing from the tape"),
    Key("equity_interval_s", "s", 60.0, 0.001, 86_400.0, "equity sampling interval (event mode)"),
    Key("cascade_long_col", "column", None, doc="signal column flagging a reversal against longs"),
    Key("cascade_short_col", "column", None, doc="signal column flagging a reversal against shorts"),
)
BY_NAME = {k.name: k for k in KEYS}


def check_execution(values: dict[str, Any], where: str = "[execution]") -> dict[str, Any]:
    """Checked ``[execution]`` table with every default filled in."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [execution] must be a table, was {values!r}")
    out: dict[str, Any] = {}
    for name in values:
        if name not in BY_NAME:
            hint = get_close_matches(name, list(BY_NAME), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{where}: unknown [execution] key {name!r}{extra}")
    for key in KEYS:
        value = values.get(key.name, key.default)
        if value is not None:
            if key.choices:
                if value not in key.choices:
                    raise ConfigError(f"{where}: [execution] `{key.name}` must be one of {key.choices}, was {value!r}")
            elif key.unit == "bool":
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}: [execution] `{key.name}` must be true or false, was {value!r}")
            elif key.unit == "column":
                if not isinstance(value, str):
                    raise ConfigError(f"{where}: [execution] `{key.name}` must be a signal column name, was {value!r}")
            else:
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    raise ConfigError(f"{where}: [execution] `{key.name}` must be a number ({key.unit}), was {value!r}")
                if key.low is not None and value < key.low or key.high is not None and value > key.high:
                    raise ConfigError(f"{where}: [execution] `{key.name}` must be in [{key.low}, {key.high}] "
                                      f"{key.unit}, was {value!r}")
        out[key.name] = value
    levels = [out["dd_alert_pct"], out["dd_half_pct"], out["dd_all_pct"], out["dd_halt_pct"]]
    if levels != sorted(levels):
        raise ConfigError(f"{where}: breaker levels must increase (alert <= half <= all <= halt), were {levels}")
    return out


SIZING = {"fraction": K.SIZE_FRACTION, "risk": K.SIZE_RISK, "all_cash": K.SIZE_ALL_CASH, "qty": K.SIZE_QTY}


def exec_params(ex: dict[str, Any], columns: list[str]) -> np.ndarray:
    """The kernels' parameter record from a checked ``[execution]`` table; ``columns`` are the
    strategy's signal columns (for the cascade-reversal flags)."""
    p = np.zeros(1, K.EXEC_PARAMS)
    r = p[0]
    r["latency_ns"] = int(round(ex["latency_ms"] * MS))
    r["slippage_bps"] = ex["slippage_bps"]
    r["book_levels"] = ex["book_levels"]
    r["sizing"] = SIZING[ex["sizing"]]
    r["fraction"] = ex["fraction"]
    r["risk_fraction"] = ex["risk_pct"] / 100.0
    r["conf_low"], r["conf_med"], r["conf_high"] = ex["conf_low"], ex["conf_medium"], ex["conf_high"]
    r["min_notional"] = ex["min_notional"]
    r["max_notional_frac"] = ex["max_notional_pct"] / 100.0
    r["min_stop_pct"], r["max_stop_pct"] = ex["min_stop_pct"], ex["max_stop_pct"]
    r["stop_pct"] = np.nan if ex["stop_pct"] is None else ex["stop_pct"]
    r["trail_pct"] = np.nan if ex["trail_pct"] is None else ex["trail_pct"]
    r["atr_low"], r["atr_med"], r["atr_high"] = ex["atr_low"], ex["atr_medium"], ex["atr_high"]
    r["adverse_exits"] = ex["adverse_exits"]
    r["adverse_window_ns"] = int(round(ex["adverse_window_s"] * SECOND))
    for key, field_ in (("cascade_long_col", "cascade_long_col"), ("cascade_short_col", "cascade_short_col")):
        col = ex[key]
        if col is None:
            r[field_] = -1
        elif col not in columns:
            hint = get_close_matches(col, columns, n=1)
            raise ConfigError(f"[execution] `{key}` names no signal column, was {col!r}"
                              + (f"; did you mean {hint[0]!r}?" if hint else f"; columns: {columns}"))
        else:
            r[field_] = columns.index(col)
    r["expiry_ns"] = int(round(ex["expiry_s"] * SECOND))
    r["decay"] = ex["decay"]
    r["max_hold_ns"] = int(round(ex["max_hold_s"] * SECOND))
    r["session_close"] = ex["session_close"]
    r["max_positions"] = ex["max_positions"]
    r["max_gross"] = ex["max_gross"]
    r["corr_limit"] = math.inf if ex["corr_limit"] is None else ex["corr_limit"]
    r["corr_threshold"] = ex["corr_threshold"]
    r["corr_window"] = ex["corr_window"]
    r["breaker"] = ex["breaker"]
    r["dd_alert"], r["dd_half"] = ex["dd_alert_pct"] / 100.0, ex["dd_half_pct"] / 100.0
    r["dd_all"], r["dd_halt"] = ex["dd_all_pct"] / 100.0, ex["dd_halt_pct"] / 100.0
    r["health_floor"] = ex["health_floor"]
    r["allow_spot_short"] = ex["allow_spot_short"]
    r["equity_interval_ns"] = int(round(ex["equity_interval_s"] * SECOND))
    r["initial_equity"] = ex["initial_equity"]
    return p


def assumptions(ex: dict[str, Any], mode: str) -> list[str]:
    """The list of the backtester's assumptions every report prints, with this run's values."""
    fill = ("Orders decided at an event fill at the first event of the instrument strictly after the decision and "
            f"at or after decision + {ex['latency_ms']:g} ms that carries a tradable price: a trade (its price), a "
            "quote or book snapshot (ask to buy, bid to sell"
            + (f", walking the top {ex['book_levels']} levels" if ex["book_levels"] else "")
            + "), or a bar (its open when it opened after the order became eligible, else its close).")
    out = [
        fill,
        f"Market orders pay the taker fee and {ex['slippage_bps']:g} bps slippage; limit orders fill at their price, "
        "maker fee, only when a trade goes strictly through it (no queue position, no partial fills).",
        "Fees: " + ("maker/taker from each instrument's spec" if ex["maker_bps"] is None and ex["taker_bps"] is None
                    else f"overridden: maker {ex['maker_bps']} bps, taker {ex['taker_bps']} bps") + ".",
        "Funding is settled at each settlement event of the tape on the position's notional at the mark price "
        "(positive rate: longs pay shorts); a missing settlement stops the run"
        + (" (allowed in this run: see coverage)" if ex["allow_missing_funding"] else "") + ".",
        f"Entry orders expire {ex['expiry_s']:g} s after their signal"
        + (" and their size decays linearly with the signal's age." if ex["decay"] else "."),
    ]
    if mode == "bars":
        out.append("Bar mode: decisions on bar closes; stops rest at the venue and fill at the stop level, or at the "
                   "open when a bar opens through it; the trailing level moves with each bar's high (longs) / low.")
    else:
        out.append("Event mode: stops, trailing stop, adverse moves, cascade reversal, max hold and session close are "
                   "checked at each price event; the first that holds sends a market exit (latency and slippage apply).")
    out += [
        f"Isolated margin at {ex['leverage']:g}x maximum leverage; liquidation when margin + unrealised PnL falls to "
        f"{ex['maint_margin_pct']:g} % of notional, filled at that event's price.",
        "Daily drawdown breaker against the 00:00 UTC equity (unrealised PnL and funding included): "
        f"{ex['dd_alert_pct']:g} % alert, {ex['dd_half_pct']:g} % close the worse half, {ex['dd_all_pct']:g} % close "
        f"all, {ex['dd_halt_pct']:g} % close all and halt for the day." if ex["breaker"] else "No drawdown breaker.",
        "Not modelled: market impact beyond the walked levels, queue position, borrow costs of short spot, forex "
        "swaps, venue outages and rate limits.",
    ]
    return out
