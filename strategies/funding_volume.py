"""Funding + volume: extreme funding is faded on falling volume and followed on surging volume.

cto-review-revised-direction.md (*Strategy B: Funding + Volume Profile*, ``funding_edge``):
"High funding + declining volume = exhaustion (contrarian); high funding + increasing volume =
momentum (trend-following)": with |funding| > 10 (annualised %), a volume ratio below 0.8 fades
the crowded side, above 1.5 follows it. The crowded side is the one paying: positive funding =
crowded longs, so the fade is SHORT and the momentum play LONG (negative funding mirrored).

Signals: ``funding_annualized`` (the as-of published rate and its annualised %) and
``volume_filter`` (ratio = volume of the last closed ``recent_h`` candle / mean volume of the
candles of the last ``long_h``, that one included: the design's recent / average volume, 1 h and
24 h by default). The candles are built from the perp's trades (``volume_source = 0``) or read
from the tape's bars (``1``, e.g. 8-hour funding histories with OHLCV). Scored triggers:

=====================  ======================  ======  ===========================================
trigger                column                  weight  fires
=====================  ======================  ======  ===========================================
``funding_extreme``    funding.annualized_pct  50      |annualised funding| > extreme_pct (10 %/yr)
``volume_falling``     vol.ratio               50      ratio < falling (0.8)
``volume_surging``     vol.ratio               50      ratio > surging (1.5)
=====================  ======================  ======  ===========================================

Entry (flat, no working order): fade score (extreme + falling) or follow score (extreme +
surging) >= ``min_score`` (100). Exits: the funding is no longer extreme (the edge is gone), or
the other setup now points the other way (the next decision may enter it), then the ``[execution]``
stops and maximum hold.

Note: 0.01 % per 8 h, the usual baseline rate, is 10.95 %/yr, above the design's 10: with the
default threshold any positive baseline funding counts as extreme. Configs that want only
elevated funding raise ``extreme_pct``.

Counters (``acct[0].mem``): 0 ``fades``, 1 ``follows``, 2 ``funding_exits``, 3 ``opposite_exits``.
Event mode; decisions on funding events and trades (or bars).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import HOUR_NS, Metric, Param, get_spec
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

PERP = 0
# signal columns: funding.rate, funding.annualized_pct, vol.passed, vol.ratio
C_RATE, C_ANNUAL, C_PASSED, C_RATIO = range(4)
W_EXTREME, W_FALLING, W_SURGING = 50.0, 50.0, 50.0


@njit(cache=True)
def weights_nb(sp, fitted):
    """``[w_extreme, w_falling, w_surging, extreme_pct, falling, surging]``: the engine's vector,
    else the params."""
    if fitted.shape[0] == 6:
        return fitted
    s = sp[0]
    wt = np.empty(6)
    wt[0], wt[1], wt[2] = W_EXTREME, W_FALLING, W_SURGING
    wt[3], wt[4], wt[5] = s.extreme_pct, s.falling, s.surging
    return wt


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != PERP or ords[PERP].active:
        return 0
    ann = sig[C_ANNUAL]
    ratio = sig[C_RATIO]
    if ann != ann:
        return 0
    wt = weights_nb(sp, fitted)
    extreme = abs(ann) > wt[3]
    crowd = 1 if ann > 0.0 else -1  # the side paying the funding
    fade = (wt[0] if extreme else 0.0) + (wt[1] if ratio < wt[4] else 0.0)
    follow = (wt[0] if extreme else 0.0) + (wt[2] if ratio > wt[5] else 0.0)
    side = 0
    score = 0.0
    if extreme and fade >= sp[0].min_score and fade >= follow:
        side = -crowd
        score = fade
    elif extreme and follow >= sp[0].min_score:
        side = crowd
        score = follow
    p = pos[PERP]
    c = acct[0].mem
    if p.qty != 0.0:
        if not extreme:
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[2] += 1.0
            return 1
        if side != 0 and (side > 0) != (p.qty > 0.0):
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[3] += 1.0
            return 1
        return 0
    if side == 0:
        return 0
    fading = side == -crowd
    set_intent_nb(intents, 0, PERP, LONG if side > 0 else SHORT, signal=0 if fading else 1)
    c[0 if fading else 1] += 1.0
    it = intents[0]
    it.score = score
    it.contrib[0] = side * wt[0]  # the triggers' signed contributions (+ long, - short)
    it.contrib[1] = side * wt[1] if fading and ratio < wt[4] else 0.0
    it.contrib[2] = side * wt[2] if not fading and ratio > wt[5] else 0.0
    return 1


def _volume_values(v):
    """The ``volume_filter`` parameters: candles of ``recent_h``, averaged over ``long_h``."""
    return dict(inst=PERP, bar_ns=v["recent_h"] * HOUR_NS, source=v["volume_source"],
                n_bars=v["long_h"] // v["recent_h"], multiple=v["surging"])


def signals(p, ctx):
    if ctx.mode != "event":
        raise ConfigError(f"funding_volume: runs in event mode only (it reads funding events), was mode {ctx.mode!r}")
    return [("funding", Metric("funding_annualized", inst=PERP, settled_only=p.settled_only,
                               interval_ns=p.interval_h * HOUR_NS)),
            ("vol", Metric("volume_filter", **_volume_values(p.as_dict())))]


def triggers(p, columns):
    """Three scored conditions: extreme funding (direction: its sign), falling and surging volume."""
    ratio = columns.index("vol.ratio")
    return [Trigger("funding_extreme", "funding %/yr", columns.index("funding.annualized_pct"), "sign", p.extreme_pct,
                    W_EXTREME, inst=PERP),
            Trigger("volume_falling", "volume falling x", ratio, "lt", p.falling, W_FALLING, inst=PERP),
            Trigger("volume_surging", "volume surging x", ratio, "gt", p.surging, W_SURGING, inst=PERP)]


def _validate(v):
    if v["falling"] >= v["surging"]:
        raise ConfigError(f"funding_volume: `falling` must be below `surging` ({v['surging']}), was {v['falling']}")
    if v["long_h"] % v["recent_h"] or v["long_h"] <= v["recent_h"]:
        raise ConfigError(f"funding_volume: `long_h` must be a larger multiple of `recent_h`, were {v['long_h']} and "
                          f"{v['recent_h']}")
    try:
        get_spec("volume_filter").make_params(**_volume_values(v))
    except ConfigError as exc:
        raise ConfigError(f"funding_volume: recent_h = {v['recent_h']} h, long_h = {v['long_h']} h do not fit "
                          f"volume_filter: {exc}") from None


STRATEGY = StrategyDef(
    name="funding_volume",
    description="|Annualised funding| > 10 %: fade the paying side on falling volume (< 0.8 x), follow it on "
                "surging volume (> 1.5 x); exit when funding is no longer extreme.",
    params=(
        Param("extreme_pct", "%/yr", 10.0, 0.0, 10_000.0, "|annualised funding| above which it is extreme "
              "(design: 10)"),
        Param("falling", "x average", 0.8, 0.0, 100.0, "volume ratio below which volume is falling (design: 0.8)"),
        Param("surging", "x average", 1.5, 0.0, 100.0, "volume ratio above which volume is surging (design: 1.5)"),
        Param("recent_h", "h", 1, 1, 24, "recent volume: one candle of this length (must divide 24 h)", integer=True),
        Param("long_h", "h", 24, 2, 1000, "average volume over this many hours (a multiple of recent_h)",
              integer=True),
        Param("volume_source", "code", 0, 0, 1, "candles: 0 built from the perp's trades, 1 the tape's bars "
              "(interval = recent_h)", integer=True),
        Param("min_score", "points", 100.0, 0.0, 1000.0, "entry score (100: extreme funding and a volume condition)"),
        Param("settled_only", "bool", 0, 0, 1, "1: settled rates only; 0: every published (predicted) rate",
              integer=True),
        Param("interval_h", "h", 8, 1, 24, "funding interval when the tape's rows carry none", integer=True),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("funding", "trades", "bars"),
    signal_names=("fade_extreme_funding", "follow_extreme_funding"),
    kinds=("funding", "trades", "bars", "prices"),
    execution={"trail_pct": None},
    validate=_validate,
    score_labels=("funding %/yr", "volume falling x", "volume surging x"),
    counters=("fades", "follows", "funding_exits", "opposite_exits"),
    triggers=triggers,
    source="cto-review-revised-direction.md II.2 Strategy B (funding_edge: |funding| > 10, volume ratio < 0.8 "
           "fade, > 1.5 momentum)",
)
