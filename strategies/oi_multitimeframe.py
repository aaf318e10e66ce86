"""Multi-timeframe open interest: institutional accumulation / distribution, and the squeeze fade.

From cto-review-revised-direction.md (*Multi-Timeframe OI Divergence*, ``multi_timeframe_oi_signal``),
with OI and price changes from the metric ``open_interest_change`` (``now / then - 1`` over the
4 h, 24 h and 7 d lags, price over 24 h, at 5-minute resolution):

=====================  =====================================================  ======  ============
setup                  conditions (all of them)                               side    hold
=====================  =====================================================  ======  ============
accumulation           24 h OI > +3 %, 7 d OI > +5 %, 24 h price > +2 %       LONG    2-7 days
distribution           24 h OI > +3 %, 7 d OI > +5 %, 24 h price < -2 %       SHORT   2-7 days
short squeeze fade     4 h OI > +5 % while 24 h OI < 0, 24 h price > +1 %     SHORT   4-12 hours
=====================  =====================================================  ======  ============

Each condition is a scored trigger (weights below); a setup trades when the sum of its
conditions' weights reaches ``min_score`` (100: all of them), so a fitted artifact can move the
thresholds (and weights) without touching the rules. The trend setups are checked first.

=================  ====================  =======  ======  ============
trigger            column                op       weight  threshold
=================  ====================  =======  ======  ============
``oi_24h_rise``    oi.change_mid         gt       30      oi_mid_pct
``oi_7d_rise``     oi.change_long        gt       30      oi_long_pct
``price_24h``      oi.price_change       sign     40      price_pct (direction of the trend setups)
``oi_4h_spike``    oi.change_short       gt       40      spike_pct
``oi_24h_falling`` oi.change_mid         lt       30      0 (24 h OI below this)
``squeeze_price``  oi.price_change       gt       30      fade_price_pct
=================  ====================  =======  ======  ============

Exits: a position is held ``trend_hold_h`` (48 h, the design's 2 days minimum) or ``fade_hold_h``
(4 h) from its entry fill, then closed at the next open-interest event; it is closed earlier when
the opposite setup appears (the next event may then enter it), and by the ``[execution]`` stops.
After a hold exit the same setup is not re-entered until its score has dropped below ``min_score``.

Windows are parameters: the 7 d change needs 7 days of history before the first trade (the
design default); a shorter tape (the 7-day demo) sets ``long_h`` lower in its config.

State (``pos[0].mem``): 0 the open setup (+1 accumulation, -1 distribution, -2 squeeze fade, 0 none),
1 a blocked setup (same codes). Counters (``acct[0].mem``): 0 ``accumulation``, 1 ``distribution``,
2 ``squeeze_fades``, 3 ``hold_exits``, 4 ``opposite_exits``. Event mode; decisions on
open-interest events.
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
# signal columns: oi.change_short, oi.change_mid, oi.change_long, oi.price_change, oi.regime
C_SHORT, C_MID, C_LONG, C_PRICE, C_REGIME = range(5)
NAMES = ("oi_24h_rise", "oi_7d_rise", "price_24h", "oi_4h_spike", "oi_24h_falling", "squeeze_price")
LABELS = ("OI 24h", "OI 7d", "price 24h", "OI 4h", "OI 24h falling", "price 24h up")
WEIGHTS = (30.0, 30.0, 40.0, 40.0, 30.0, 30.0)
N = len(NAMES)
ACCUMULATION, DISTRIBUTION, FADE = 1.0, -1.0, -2.0


@njit(cache=True)
def weights_nb(sp, fitted):
    """``[weights..., thresholds...]`` in the order of :func:`triggers`: the engine's vector, else
    the params and the declared weights."""
    if fitted.shape[0] == 2 * N:
        return fitted
    s = sp[0]
    wt = np.empty(2 * N)
    for k in range(N):
        wt[k] = WEIGHTS[k]
    wt[6] = s.oi_mid_pct / 100.0
    wt[7] = s.oi_long_pct / 100.0
    wt[8] = s.price_pct / 100.0
    wt[9] = s.spike_pct / 100.0
    wt[10] = 0.0
    wt[11] = s.fade_price_pct / 100.0
    return wt


@njit(cache=True)
def scores_nb(sig, wt, contrib):
    """Trend score and direction (+1 / -1 / 0 from the price trigger), and the squeeze-fade score;
    each trigger's weight when it holds goes to ``contrib``."""
    cs, cm, cl, pc = sig[C_SHORT], sig[C_MID], sig[C_LONG], sig[C_PRICE]
    for k in range(N):
        contrib[k] = 0.0
    if cm > wt[N + 0]:
        contrib[0] = wt[0]
    if cl > wt[N + 1]:
        contrib[1] = wt[1]
    direction = 0
    if pc > wt[N + 2]:
        direction = 1
    elif pc < -wt[N + 2]:
        direction = -1
    if direction != 0:
        contrib[2] = wt[2]
    if cs > wt[N + 3]:
        contrib[3] = wt[3]
    if cm < wt[N + 4]:
        contrib[4] = wt[4]
    if pc > wt[N + 5]:
        contrib[5] = wt[5]
    trend = contrib[0] + contrib[1] + contrib[2]
    fade = contrib[3] + contrib[4] + contrib[5]
    return trend, direction, fade


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != PERP or ords[PERP].active:
        return 0
    s = sp[0]
    p = pos[PERP]
    m = p.mem
    c = acct[0].mem
    it = intents[0]
    trend, direction, fade = scores_nb(sig, weights_nb(sp, fitted), it.contrib)
    setup = 0.0
    score = 0.0
    if direction != 0 and trend >= s.min_score:
        setup = ACCUMULATION if direction > 0 else DISTRIBUTION
        score = trend
    elif fade >= s.min_score:
        setup = FADE
        score = fade
    if m[1] != 0.0 and setup != m[1]:
        m[1] = 0.0  # the blocked setup's conditions have lapsed
    if p.qty != 0.0:
        hold = s.fade_hold_h if m[0] == FADE else s.trend_hold_h
        if ts[i] - p.entry_ts >= hold * HOUR_NS:
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[3] += 1.0
            m[1] = m[0]
            m[0] = 0.0
            return 1
        if setup != 0.0 and (setup > 0.0) != (p.qty > 0.0):
            set_intent_nb(intents, 0, PERP, CLOSE)
            c[4] += 1.0
            m[0] = 0.0
            return 1
        return 0
    m[0] = 0.0
    if setup == 0.0 or setup == m[1]:
        return 0
    if setup > 0.0:
        set_intent_nb(intents, 0, PERP, LONG, signal=0)
        c[0] += 1.0
    elif setup == DISTRIBUTION:
        set_intent_nb(intents, 0, PERP, SHORT, signal=1)
        c[1] += 1.0
    else:
        set_intent_nb(intents, 0, PERP, SHORT, signal=2)
        c[2] += 1.0
    it.score = score
    side = 1.0 if setup > 0.0 else -1.0
    for k in range(N):  # the signed contributions (+ long, - short) of the setup's conditions that held
        on = it.contrib[k] != 0.0 and (k < 3) == (setup != FADE)
        it.contrib[k] = side * it.contrib[k] if on else 0.0
    m[0] = setup
    return 1


def _metric_values(v):
    """The ``open_interest_change`` parameters from the strategy's (hours, %)."""
    return dict(inst=PERP, oi_field=v["oi_field"], price_source=0, short_ns=v["short_h"] * HOUR_NS,
                mid_ns=v["mid_h"] * HOUR_NS, long_ns=v["long_h"] * HOUR_NS, price_ns=v["price_h"] * HOUR_NS,
                bucket_ns=v["bucket_min"] * MINUTE_NS, oi_mid_pct=v["oi_mid_pct"] / 100.0,
                oi_long_pct=v["oi_long_pct"] / 100.0, price_pct=v["price_pct"] / 100.0,
                noise_pct=v["spike_pct"] / 100.0)


def signals(p, ctx):
    if ctx.mode != "event":
        raise ConfigError(f"oi_multitimeframe: runs in event mode only (it reads open interest), was mode {ctx.mode!r}")
    return [("oi", Metric("open_interest_change", **_metric_values(p.as_dict())))]


def triggers(p, columns):
    """The six scored conditions (see the module docstring), thresholds as fractions."""
    cm, cl = columns.index("oi.change_mid"), columns.index("oi.change_long")
    cs, pc = columns.index("oi.change_short"), columns.index("oi.price_change")
    spec = ((cm, "gt", p.oi_mid_pct / 100.0), (cl, "gt", p.oi_long_pct / 100.0), (pc, "sign", p.price_pct / 100.0),
            (cs, "gt", p.spike_pct / 100.0), (cm, "lt", 0.0), (pc, "gt", p.fade_price_pct / 100.0))
    return [Trigger(name, label, col, op, th, w, inst=PERP)
            for name, label, w, (col, op, th) in zip(NAMES, LABELS, WEIGHTS, spec, strict=True)]


def _validate(v):
    if not v["short_h"] < v["mid_h"] <= v["long_h"]:
        raise ConfigError("oi_multitimeframe: windows must satisfy short_h < mid_h <= long_h, were "
                          f"{v['short_h']}, {v['mid_h']}, {v['long_h']} h")
    try:
        get_spec("open_interest_change").make_params(**_metric_values(v))
    except ConfigError as exc:
        raise ConfigError(f"oi_multitimeframe: windows short_h/mid_h/long_h/price_h = {v['short_h']}/{v['mid_h']}/"
                          f"{v['long_h']}/{v['price_h']} h at bucket_min {v['bucket_min']} do not fit "
                          f"open_interest_change: {exc}") from None


STRATEGY = StrategyDef(
    name="oi_multitimeframe",
    description="OI 24 h > +3 % and 7 d > +5 % with price +/-2 %: follow (accumulation / distribution, 2 d hold); "
                "4 h OI spike > 5 % against a falling 24 h with price up: fade short (4 h hold).",
    params=(
        Param("short_h", "h", 4, 1, 720, "short OI window (design: 4 h, microstructure)", integer=True),
        Param("mid_h", "h", 24, 1, 720, "mid OI window (design: 24 h, daily flow)", integer=True),
        Param("long_h", "h", 168, 1, 720, "long OI window (design: 7 d, positional trend); needs this much "
              "history before the first trade", integer=True),
        Param("price_h", "h", 24, 1, 720, "price-change window", integer=True),
        Param("bucket_min", "min", 5, 1, 360, "lag resolution", integer=True),
        Param("oi_field", "code", 0, 0, 1, "open interest field: 0 oi_qty (base), 1 oi_notional", integer=True),
        Param("oi_mid_pct", "%", 3.0, 0.0, 1000.0, "24 h OI rise for accumulation / distribution (design: 3 %)"),
        Param("oi_long_pct", "%", 5.0, 0.0, 1000.0, "7 d OI rise for accumulation / distribution (design: 5 %)"),
        Param("price_pct", "%", 2.0, 0.0, 1000.0, "|24 h price change| of accumulation / distribution (design: 2 %)"),
        Param("spike_pct", "%", 5.0, 0.0, 1000.0, "4 h OI spike of the squeeze fade (design: 5 %)"),
        Param("fade_price_pct", "%", 1.0, 0.0, 1000.0, "24 h price rise of the squeeze fade (design: 1 %)"),
        Param("min_score", "points", 100.0, 0.0, 1000.0, "a setup trades when its conditions' weights sum to this "
              "(100: all of them)"),
        Param("trend_hold_h", "h", 48.0, 0.0, 10_000.0, "hold of accumulation / distribution (design: 2-7 days)"),
        Param("fade_hold_h", "h", 4.0, 0.0, 10_000.0, "hold of the squeeze fade (design: 4-12 hours)"),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("open_interest",),
    signal_names=("accumulation", "distribution", "squeeze_fade"),
    kinds=("open_interest", "prices", "trades", "funding"),
    execution={"trail_pct": None},
    validate=_validate,
    score_labels=LABELS,
    counters=("accumulation", "distribution", "squeeze_fades", "hold_exits", "opposite_exits"),
    triggers=triggers,
    source="cto-review-revised-direction.md II.4 (MultiTimeframeOI) and IV.3 (multi_timeframe_oi_signal: "
           "accumulation / distribution / short_squeeze_fade, expected holds)",
)
