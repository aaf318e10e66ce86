"""VWAP reversion: fade a stretched price back to the session VWAP, only when the filters allow.

cto-review-revised-direction.md (*VWAP Criticism is Overstated*, ``vwap_edge``): VWAP reversion
works intraday (VWAP reset at 00:00 UTC), in the high-liquidity hours 12:00-20:00 UTC, when volume
is not surging (the last candle's volume below 1.3 x the average of the last 20 candles, the last
one included), and for a deviation between 1.5 and 2.5 sigma ("stretched, not extreme"):
above the VWAP => SHORT, below => LONG.

Signals (1-minute candles built from the perp's trades): ``vwap_session`` (z-score of the last
close against the session VWAP, sigma = the volume-weighted dispersion of the candles' VWAPs) and
``volume_filter`` (the volume ratio). Scored triggers:

==============  =====================  ======  ==========================================
trigger         column                 weight  fires
==============  =====================  ======  ==========================================
``vwap_z``      vwap.z_score           60      z_min < |z| < z_max, direction -sign(z)
``volume_calm`` vol.ratio              40      ratio < volume_max (1.3)
==============  =====================  ======  ==========================================

Entry (flat, no working order, the event's UTC hour in [start_hour, end_hour)): the side's score
>= ``min_score`` (100: both). Exits: the price is back at the VWAP (z at or beyond ``-exit_z``
for a short, ``exit_z`` for a long; 0: the VWAP itself), the session ends (first event of the next
UTC day: the VWAP resets), or the ``[execution]`` stops and maximum hold.

Counters (``acct[0].mem``): 0 ``entries_long``, 1 ``entries_short``, 2 ``vwap_exits``,
3 ``session_exits``. Event mode (trades).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import DAY_NS, HOUR_NS, SECOND_NS, Metric, Param, get_spec
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

PERP = 0
# signal columns: vwap.vwap, vwap.deviation_pct, vwap.z_score, vol.passed, vol.ratio
C_VWAP, C_DEV, C_Z, C_PASSED, C_RATIO = range(5)
W_Z, W_VOLUME = 60.0, 40.0


@njit(cache=True)
def weights_nb(sp, fitted):
    """``[w_z, w_volume, z_min, volume_max]``: the engine's vector, else the params."""
    if fitted.shape[0] == 4:
        return fitted
    wt = np.empty(4)
    wt[0] = W_Z
    wt[1] = W_VOLUME
    wt[2] = sp[0].z_min
    wt[3] = sp[0].volume_max
    return wt


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != PERP or ords[PERP].active:
        return 0
    s = sp[0]
    p = pos[PERP]
    c = acct[0].mem
    z = sig[C_Z]
    t = ts[i]
    if p.qty != 0.0:
        if t // DAY_NS != p.entry_ts // DAY_NS:
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[3] += 1.0
            return 1
        if z == z and ((p.qty < 0.0 and z <= -s.exit_z) or (p.qty > 0.0 and z >= s.exit_z)):
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[2] += 1.0
            return 1
        return 0
    if not (z == z):
        return 0
    wt = weights_nb(sp, fitted)
    stretched = wt[2] < abs(z) < s.z_max
    calm = sig[C_RATIO] < wt[3]
    score = (wt[0] if stretched else 0.0) + (wt[1] if calm else 0.0)
    if not stretched:
        return 0
    hour = (t % DAY_NS) // HOUR_NS
    in_hours = s.start_hour <= hour < s.end_hour
    if score < s.min_score or not in_hours:
        return 0
    side = 1.0 if z < 0.0 else -1.0  # fade the deviation
    set_intent_nb(intents, 0, PERP, LONG if side > 0.0 else SHORT, signal=0 if side > 0.0 else 1)
    c[0 if side > 0.0 else 1] += 1.0
    it = intents[0]
    it.score = score
    it.contrib[0] = side * wt[0]  # the triggers' signed contributions (+ long, - short)
    it.contrib[1] = side * wt[1] if calm else 0.0
    return 1


def signals(p, ctx):
    if ctx.mode != "event":
        raise ConfigError(f"vwap_reversion: runs in event mode only (candles from trades), was mode {ctx.mode!r}")
    bar = p.bar_s * SECOND_NS
    return [("vwap", Metric("vwap_session", inst=PERP, bar_ns=bar)),
            ("vol", Metric("volume_filter", inst=PERP, bar_ns=bar, n_bars=p.volume_bars, multiple=p.volume_max))]


def triggers(p, columns):
    """Two scored conditions: the z-score in the band (faded), and calm volume."""
    return [Trigger("vwap_z", "VWAP z", columns.index("vwap.z_score"), "band", p.z_min, W_Z, upper=p.z_max,
                    inst=PERP),
            Trigger("volume_calm", "volume x avg", columns.index("vol.ratio"), "lt", p.volume_max, W_VOLUME,
                    inst=PERP)]


def _validate(v):
    if not v["z_min"] < v["z_max"]:
        raise ConfigError(f"vwap_reversion: `z_min` must be below `z_max`, were {v['z_min']} and {v['z_max']}")
    if not v["start_hour"] < v["end_hour"]:
        raise ConfigError(f"vwap_reversion: `start_hour` must be before `end_hour`, were {v['start_hour']} and "
                          f"{v['end_hour']}")
    if v["exit_z"] >= v["z_min"]:
        raise ConfigError(f"vwap_reversion: `exit_z` must be below `z_min` ({v['z_min']}), was {v['exit_z']}")
    try:
        get_spec("vwap_session").make_params(inst=PERP, bar_ns=v["bar_s"] * SECOND_NS)
    except ConfigError as exc:
        raise ConfigError(f"vwap_reversion: bar_s = {v['bar_s']} does not fit vwap_session: {exc}") from None


STRATEGY = StrategyDef(
    name="vwap_reversion",
    description="Fade 1.5-2.5 sigma deviations from the session VWAP, 12:00-20:00 UTC only, volume < 1.3 x the "
                "20-candle average; exit at the VWAP or at the session end.",
    params=(
        Param("bar_s", "s", 60, 1, 3600, "candle length (1-minute candles)", integer=True),
        Param("z_min", "sigma", 1.5, 0.0, 20.0, "smallest |z| faded (design: > 1.5 sigma)"),
        Param("z_max", "sigma", 2.5, 0.0, 20.0, "largest |z| faded (design: < 2.5 sigma, beyond is extreme)"),
        Param("volume_bars", "candles", 20, 1, 1000, "candles in the volume average (design: 20)", integer=True),
        Param("volume_max", "x average", 1.3, 0.0, 100.0, "skip when the last candle's volume is at or above this "
              "multiple of the average (design: 1.3)"),
        Param("start_hour", "hour UTC", 12, 0, 23, "first hour of the window (design: 12:00 UTC)", integer=True),
        Param("end_hour", "hour UTC", 20, 1, 24, "the window ends at this hour (design: 20:00 UTC)", integer=True),
        Param("exit_z", "sigma", 0.0, 0.0, 20.0, "close when |z| is back to this on the VWAP side (0: at the VWAP)"),
        Param("min_score", "points", 100.0, 0.0, 1000.0, "entry score (100: both conditions)"),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("trades",),
    signal_names=("fade_below_vwap", "fade_above_vwap"),
    kinds=("trades", "funding", "prices"),
    execution={"trail_pct": None},
    validate=_validate,
    score_labels=("VWAP z", "volume x avg"),
    counters=("entries_long", "entries_short", "vwap_exits", "session_exits"),
    triggers=triggers,
    source="cto-review-revised-direction.md II.3 (vwap_edge: 12-20 UTC, volume < 1.3 x 20-candle average, "
           "1.5 sigma < |z| < 2.5 sigma) and IV.4 (VWAP reversion with volume filter)",
)
