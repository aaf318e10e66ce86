"""Funding velocity: trade WITH the acceleration of the funding rate, not against its level.

cto-review-revised-direction.md (*Strategy A: Funding Rate Velocity*, ``calculate_funding_velocity``):
"Rising funding velocity = institutional FOMO (GO WITH IT)"; acceleration > 0.05 =>
momentum long, < -0.05 => momentum short; "Exit when velocity slows" (IV.5).

The metric ``funding_velocity`` gives, on the as-of published funding rate r (fraction per
interval), the velocity ``r(t) - r(t - 4 h)`` and the acceleration ``(r(t) - r(t - 4 h)) -
(r(t - 4 h) - r(t - 8 h))``: the change of the 4-hour velocity (the design's own
``velocity_4h - velocity_8h`` reduces to ``r(t - 8 h) - r(t - 4 h)``, see docs/signals.md).
The design's 0.05 is read in percentage points of the rate as venues print it (0.0100 % = the
usual 8-hour rate), so the default threshold ``accel_pct`` is 0.05 % per interval (5e-4).

Entry (flat, no working order): acceleration above ``accel_pct`` => LONG, below ``-accel_pct``
=> SHORT (the strategy's one scored trigger, ``sign``). Exit "when velocity slows": a long
closes when the acceleration falls below ``-exit_accel_pct`` (0: as soon as the 4-hour velocity
is lower than 4 hours before), a short when it rises above ``exit_accel_pct``; then the
``[execution]`` stops and maximum hold. The next decision may enter the other side.

The lags are parameters: with settlement-only histories (one rate per 8 h) use 8 h / 16 h so
that every lag reads a different settlement. Decisions on funding events; fills on the next
trade, quote or bar of the perp. Counters (``acct[0].mem``): 0 ``entries_long``,
1 ``entries_short``, 2 ``slowdown_exits``. Event mode.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import HOUR_NS, MINUTE_NS, Metric, Param, get_spec
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

PERP = 0
# signal columns: fv.velocity_short, fv.velocity_long, fv.acceleration
C_VS, C_VL, C_ACC = 0, 1, 2
W_ACCEL = 100.0


@njit(cache=True)
def weights_nb(sp, fitted):
    """``[weight, threshold]`` of the acceleration trigger: the engine's vector, else the params."""
    if fitted.shape[0] == 2:
        return fitted
    wt = np.empty(2)
    wt[0] = W_ACCEL
    wt[1] = sp[0].accel_pct / 100.0
    return wt


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != PERP or ords[PERP].active:
        return 0
    acc = sig[C_ACC]
    if acc != acc:
        return 0
    p = pos[PERP]
    c = acct[0].mem
    if p.qty != 0.0:
        ex = sp[0].exit_accel_pct / 100.0
        if (p.qty > 0.0 and acc < -ex) or (p.qty < 0.0 and acc > ex):
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[2] += 1.0
            return 1
        return 0
    wt = weights_nb(sp, fitted)
    if wt[0] <= 0.0:
        return 0
    if acc > wt[1]:
        side = 1.0
    elif acc < -wt[1]:
        side = -1.0
    else:
        return 0
    set_intent_nb(intents, 0, PERP, LONG if side > 0.0 else SHORT, signal=0 if side > 0.0 else 1)
    c[0 if side > 0.0 else 1] += 1.0
    it = intents[0]
    it.score = wt[0]
    it.contrib[0] = side * wt[0]  # the trigger's signed contribution (+ long, - short)
    return 1


def _metric_values(v):
    """The ``funding_velocity`` parameters from the strategy's (hours, minutes)."""
    return dict(inst=PERP, settled_only=v["settled_only"], interval_ns=v["interval_h"] * HOUR_NS,
                short_ns=v["short_h"] * HOUR_NS, long_ns=v["long_h"] * HOUR_NS, bucket_ns=v["bucket_min"] * MINUTE_NS)


def signals(p, ctx):
    if ctx.mode != "event":
        raise ConfigError(f"funding_velocity: runs in event mode only (it reads funding events), was mode {ctx.mode!r}")
    return [("fv", Metric("funding_velocity", **_metric_values(p.as_dict())))]


def triggers(p, columns):
    """One scored condition: the acceleration beyond +/- accel_pct (a fraction per interval)."""
    return [Trigger("acceleration", "accel", columns.index("fv.acceleration"), "sign", p.accel_pct / 100.0,
                    W_ACCEL, inst=PERP)]


def _validate(v):
    if v["long_h"] <= v["short_h"]:
        raise ConfigError(f"funding_velocity: `long_h` must be above `short_h` ({v['short_h']}), was {v['long_h']}")
    try:
        get_spec("funding_velocity").make_params(**_metric_values(v))
    except ConfigError as exc:
        raise ConfigError(f"funding_velocity: lags short_h/long_h = {v['short_h']}/{v['long_h']} h at bucket_min "
                          f"{v['bucket_min']} do not fit the metric: {exc}") from None


STRATEGY = StrategyDef(
    name="funding_velocity",
    description="Funding acceleration ((r - r4h) - (r4h - r8h)) > +0.05 %: long, < -0.05 %: short; exit when the "
                "velocity slows.",
    params=(
        Param("accel_pct", "% / interval", 0.05, 0.0, 10.0, "enter beyond this acceleration (design: 0.05)"),
        Param("exit_accel_pct", "% / interval", 0.0, 0.0, 10.0, "close a long when the acceleration falls below "
              "-this (a short above +this): the velocity slows"),
        Param("short_h", "h", 4, 1, 168, "short lag (design: 4 h)", integer=True),
        Param("long_h", "h", 8, 2, 336, "long lag (design: 8 h)", integer=True),
        Param("bucket_min", "min", 1, 1, 60, "lag resolution", integer=True),
        Param("settled_only", "bool", 0, 0, 1, "1: settled rates only; 0: every published (predicted) rate",
              integer=True),
        Param("interval_h", "h", 8, 1, 24, "funding interval when the tape's rows carry none", integer=True),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("funding",),
    signal_names=("funding_accelerating", "funding_decelerating"),
    kinds=("funding", "trades", "bars", "prices"),
    execution={"trail_pct": None},
    validate=_validate,
    score_labels=("accel",),
    counters=("entries_long", "entries_short", "slowdown_exits"),
    triggers=triggers,
    source="cto-review-revised-direction.md II.2 Strategy A (calculate_funding_velocity, acceleration > 0.05: "
           "momentum) and IV.5 (trade with funding acceleration, exit when velocity slows)",
)
