"""Order-flow scalper: the four-level hierarchy of algo-engine-design.md 2.3, a secondary confluence
score (2.2.2) and the dynamic exits of 2.6.

Every trade of the instrument while flat (no position, no working order) is one *decision*; it
passes down the levels and the first that fails rejects it (the counts per level are kept in
``acct[0].mem`` and reported as the run's ``strategy_counters``):

1. **Regime** on the longest timeframe (``regime_bar_s``, 15 m): ADX > 25, directional persistence
   (share of same-sign consecutive returns of the last 100 bars) > 0.55, mean-reversion strength
   < 0.6 (no resolved 2-sigma displacement yet counts as no reversion), higher highs and higher lows
   (or lower and lower) on the last three bars, ATR >= ``atr_min_pct`` of the price. Anything else
   is ranging: stop. The structure's direction is the only side considered. Decisions before every
   regime input exists are counted as ``warmup``.
2. **Zone**: long at the value-area low of the 15-minute market profile, inside a demand zone or
   inside a bullish fair-value gap; short at the value-area high, a supply zone or a bearish gap.
3. **Order-flow cascade**: buy/sell volume ratios 1 m > 5 m > 15 m with 1 m > 2 (short: 1 m < 5 m <
   15 m with 1 m < 0.5), the ``flow_cascade`` metric.
4. **Bounce with volume**: the volume of the last minute > 1.5 x the mean of the 20 minutes before
   it (``volume_spike``) while the price moves away from the zone: at least ``bounce_ticks``
   consecutive trade-price moves in the trade's direction (the design names bounce strength, volume
   spike and "price bouncing" without a number for the bounce; consecutive ticks is the price
   action measure the design uses for exits, 2.6.2).

**Confluence** (secondary filters, weighted with :func:`emerald.strategy.score.score_nb` on the
side's columns): market profile at the zone edge 1.5, mean reversion 1.5 (0.75 beyond 1 sigma of
the 15-minute trade prices, 0.75 more beyond 2 sigma), autocorrelation of 1-minute returns 1.0
(|r| > 0.6 or < 0.3; 0.5 in between), inside a demand zone 2.0 (short: supply), a supply zone
ahead as the target 0.5 (short: demand), inside a fair-value gap 1.5. Below 3 no trade; 3 low
conviction, 5 medium, 7 high (the size multipliers ``conf_low`` / ``conf_medium`` / ``conf_high``
of ``[execution]``). Simplifications: the design's half credits inside the value area and for a
zone tested once or twice are not scored (the zone metric counts the current entry as a test, so
no zone is fresh while the price is in it).

Exits (engine, ``[execution]``): cascade reversal (``cascade.reversal_of_long`` /
``cascade.reversal_of_short``), consecutive adverse ticks (5 / 3 / 2 / 1 by profit), a 0.5 %
trailing stop active from entry. No take-profit. Event mode on trades only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.execution.kernels import LONG, SHORT, set_intent_nb
from emerald.signals.base import SECOND_NS, Metric, Param, get_spec
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger, pack, score_nb

SIGNALS = (("adx", "adx"), ("persistence", "directional_persistence"), ("reversion", "mean_reversion_strength"),
           ("structure", "hh_hl_structure"), ("atr", "atr"), ("profile", "market_profile"),
           ("zones", "supply_demand_zones"), ("fvg", "fair_value_gaps"), ("cascade", "flow_cascade"),
           ("volume", "volume_spike"), ("moves", "consecutive_price_moves"), ("zscore", "price_zscore"),
           ("autocorr", "return_autocorr"))
COLUMNS = [f"{name}.{out}" for name, metric in SIGNALS for out in get_spec(metric).outputs]
C_ADX, C_PERS, C_MRS, C_HH, C_ATR = (COLUMNS.index(c) for c in (
    "adx.adx", "persistence.persistence", "reversion.strength", "structure.structure", "atr.atr"))
C_AT_VAL, C_AT_VAH = COLUMNS.index("profile.at_val"), COLUMNS.index("profile.at_vah")
C_IN_DEMAND, C_IN_SUPPLY = COLUMNS.index("zones.in_demand_zone"), COLUMNS.index("zones.in_supply_zone")
C_DEMAND_STR, C_SUPPLY_STR = COLUMNS.index("zones.demand_strength"), COLUMNS.index("zones.supply_strength")
C_IN_FVG, C_FVG_SIDE = COLUMNS.index("fvg.in_fvg"), COLUMNS.index("fvg.nearest_side")
C_CASCADE = COLUMNS.index("cascade.cascade")
C_VOLUME = COLUMNS.index("volume.multiplier")
C_DOWN, C_UP = COLUMNS.index("moves.down_ticks"), COLUMNS.index("moves.up_ticks")
C_Z = COLUMNS.index("zscore.z_score")
C_AC = COLUMNS.index("autocorr.autocorr")

# acct[0].mem slots (StrategyDef.counters): every decision lands in exactly one of slots 1-7
COUNTERS = ("decisions", "warmup", "rejected_level1_regime", "rejected_level2_zone", "rejected_level3_cascade",
            "rejected_level4_bounce", "rejected_confluence", "signals")
M_DECISIONS, M_WARMUP, M_L1, M_L2, M_L3, M_L4, M_CONF, M_SIGNALS = range(len(COUNTERS))

LABELS = ("MP edge", "z 2σ", "z 1σ", "AC trend", "AC random", "AC mixed", "zone", "target zone", "FVG")
N_TRIGGERS = len(LABELS)
THRESHOLDS = (0.5, 2.0, 1.0, 0.6, -1.0, 0.3, 0.5, 0.0, 0.5)


def triggers(p, side: int = 1) -> list[Trigger]:
    """The confluence triggers with this config's weights (long side; ``side=-1``: the short side's
    columns: value-area high, supply zone, demand zone as the target)."""
    long_ = side > 0
    w = (p.w_market_profile, 0.5 * p.w_mean_reversion, 0.5 * p.w_mean_reversion, p.w_autocorr, p.w_autocorr,
         0.5 * p.w_autocorr, p.w_demand_zone, p.w_supply_zone, p.w_fvg)
    spec = (("market_profile", C_AT_VAL if long_ else C_AT_VAH, "gt", np.inf),
            ("mean_reversion_2sigma", C_Z, "sign", np.inf),
            ("mean_reversion_1sigma", C_Z, "sign", np.inf),
            ("autocorr_trend", C_AC, "sign", np.inf),
            ("autocorr_random", C_AC, "band", 0.3),
            ("autocorr_mixed", C_AC, "band", 0.6),
            ("demand_zone", C_IN_DEMAND if long_ else C_IN_SUPPLY, "gt", np.inf),
            ("supply_zone", C_SUPPLY_STR if long_ else C_DEMAND_STR, "gt", np.inf),
            ("fair_value_gap", C_IN_FVG, "gt", np.inf))
    return [Trigger(name, LABELS[k], col, op, THRESHOLDS[k], w[k], upper=upper)
            for k, (name, col, op, upper) in enumerate(spec)]


PARAMS = (
    Param("regime_bar_s", "s", 900, 1, 86_400, "bar of the longest timeframe (regime, zones; design: 15 m)",
          integer=True),
    Param("adx_n", "bars", 14, 1, 500, "Wilder period of the ADX and the ATR", integer=True),
    Param("adx_min", "ADX", 25.0, 0.0, 100.0, "trending above this ADX (design: 25)"),
    Param("persist_n", "bars", 100, 2, 1000, "returns in the directional persistence (design: 50-100 candles)",
          integer=True),
    Param("persist_min", "share", 0.55, 0.0, 1.0, "directional persistence above this (design: 0.55)"),
    Param("mr_max", "share", 0.6, 0.0, 1.0, "mean-reversion strength below this (design: 0.6)"),
    Param("atr_min_pct", "% of price", 0.1, 0.0, 100.0, "enough volatility: ATR at least this (design: no "
          "number)"),
    Param("profile_window_s", "s", 900, 1, 86_400, "market-profile window (design: 15 minutes)", integer=True),
    Param("profile_edge_pct", "%", 0.1, 0.0, 10.0, "at VAH / VAL within this distance (design: 0.1 %)"),
    Param("fvg_min_gap_pct", "%", 0.2, 0.0, 100.0, "smallest fair-value gap (design: 0.2 %)"),
    Param("cascade_fast_s", "s", 60, 1, 4096, "fastest order-flow window (design: 1 m)", integer=True),
    Param("cascade_mid_s", "s", 300, 1, 4096, "middle order-flow window (design: 5 m)", integer=True),
    Param("cascade_slow_s", "s", 900, 1, 4096, "slowest order-flow window (design: 15 m)", integer=True),
    Param("cascade_ratio", "ratio", 2.0, 1.0, 1000.0, "fastest buy/sell ratio above this (short: below its "
          "inverse; design: 2.0 / 0.5)"),
    Param("vol_window_s", "s", 60, 1, 3600, "volume-spike window (design: 1M)", integer=True),
    Param("vol_periods", "windows", 20, 1, 4095, "windows averaged before it (design: 20 periods)", integer=True),
    Param("vol_mult", "x average", 1.5, 0.0, 1000.0, "volume spike above this (design: 1.5)"),
    Param("bounce_ticks", "ticks", 2, 1, 100, "consecutive price moves away from the zone", integer=True),
    Param("zscore_window_s", "s", 900, 1, 86_400, "mean-reversion window of trade prices (design: 15 m)",
          integer=True),
    Param("autocorr_bar_s", "s", 60, 1, 86_400, "autocorrelation bars (design: 1M)", integer=True),
    Param("autocorr_n", "returns", 10, 3, 1000, "autocorrelation returns (design: last 10 candles)", integer=True),
    Param("w_market_profile", "points", 1.5, -100.0, 100.0, "confluence weight: at the value-area edge"),
    Param("w_mean_reversion", "points", 1.5, -100.0, 100.0, "confluence weight: beyond 2 sigma (half beyond 1)"),
    Param("w_autocorr", "points", 1.0, -100.0, 100.0, "confluence weight: |autocorrelation| > 0.6 or < 0.3 "
          "(half in between)"),
    Param("w_demand_zone", "points", 2.0, -100.0, 100.0, "confluence weight: inside a demand (short: supply) zone"),
    Param("w_supply_zone", "points", 0.5, -100.0, 100.0, "confluence weight: a supply (short: demand) zone as "
          "the target"),
    Param("w_fvg", "points", 1.5, -100.0, 100.0, "confluence weight: inside a fair-value gap"),
    Param("score_min", "points", 3.0, 0.0, 100.0, "lowest confluence that trades, low conviction (design: 3)"),
    Param("score_standard", "points", 5.0, 0.0, 100.0, "confluence for medium conviction (design: 5)"),
    Param("score_high", "points", 7.0, 0.0, 100.0, "confluence for high conviction (design: 7)"),
)


class _Defaults:
    def __getattr__(self, name: str) -> float:
        return next(p.default for p in PARAMS if p.name == name)


TABLE_LONG = pack(triggers(_Defaults(), 1))
TABLE_SHORT = pack(triggers(_Defaults(), -1))


@njit(cache=True)
def weights_nb(sp, fitted):
    """``[weights..., thresholds...]``: the fitted vector when one is given, else the params."""
    if fitted.shape[0] == 2 * N_TRIGGERS:
        return fitted
    s = sp[0]
    wt = np.empty(2 * N_TRIGGERS)
    wt[0] = s.w_market_profile
    wt[1] = 0.5 * s.w_mean_reversion
    wt[2] = 0.5 * s.w_mean_reversion
    wt[3] = s.w_autocorr
    wt[4] = s.w_autocorr
    wt[5] = 0.5 * s.w_autocorr
    wt[6] = s.w_demand_zone
    wt[7] = s.w_supply_zone
    wt[8] = s.w_fvg
    for k in range(N_TRIGGERS):
        wt[N_TRIGGERS + k] = THRESHOLDS[k]
    return wt


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != 0 or pos[0].qty != 0.0 or ords[0].active:
        return 0
    s = sp[0]
    mem = acct[0].mem
    mem[M_DECISIONS] += 1
    px = f[0, i]
    adx = sig[C_ADX]
    pers = sig[C_PERS]
    structure = sig[C_HH]
    atr = sig[C_ATR]
    # level 1: trending regime on the longest timeframe, its direction the only side
    if not (adx == adx and pers == pers and structure == structure and atr == atr and px > 0.0):
        mem[M_WARMUP] += 1
        return 0
    mrs = sig[C_MRS]
    if not (adx > s.adx_min and pers > s.persist_min and not (mrs >= s.mr_max) and structure != 0.0
            and atr / px * 100.0 >= s.atr_min_pct):
        mem[M_L1] += 1
        return 0
    d = 1 if structure > 0.0 else -1
    # level 2: at a zone of that side
    fvg = sig[C_IN_FVG] > 0.0 and sig[C_FVG_SIDE] == d
    if d > 0:
        zone = sig[C_AT_VAL] > 0.0 or sig[C_IN_DEMAND] > 0.0 or fvg
    else:
        zone = sig[C_AT_VAH] > 0.0 or sig[C_IN_SUPPLY] > 0.0 or fvg
    if not zone:
        mem[M_L2] += 1
        return 0
    # level 3: the order-flow cascade confirms
    if sig[C_CASCADE] != d:
        mem[M_L3] += 1
        return 0
    # level 4: bounce away from the zone with a volume spike
    moves = sig[C_UP] if d > 0 else sig[C_DOWN]
    if not (sig[C_VOLUME] > s.vol_mult and moves >= s.bounce_ticks):
        mem[M_L4] += 1
        return 0
    it = intents[0]
    long_s, short_s = score_nb(sig, TABLE_LONG if d > 0 else TABLE_SHORT, weights_nb(sp, fitted), it.contrib)
    score = long_s + short_s  # every trigger of the side's table backs the side (sign only tells |x|)
    if score < s.score_min:
        mem[M_CONF] += 1
        return 0
    conviction = 2 if score >= s.score_high else (1 if score >= s.score_standard else 0)
    set_intent_nb(intents, 0, 0, LONG if d > 0 else SHORT, conviction=conviction, signal=0 if d > 0 else 1)
    it.score = score
    for k in range(N_TRIGGERS):
        it.contrib[k] = d * abs(it.contrib[k])
    mem[M_SIGNALS] += 1
    return 1


def signals(p, ctx):
    if ctx.mode != "event":
        raise ConfigError(f"orderflow_scalper: runs in event mode only (it reads trade sides), was mode {ctx.mode!r}")
    sec = SECOND_NS
    bar = p.regime_bar_s * sec
    metrics = {
        "adx": Metric("adx", inst=0, bar_ns=bar, n=p.adx_n),
        "persistence": Metric("directional_persistence", inst=0, bar_ns=bar, n_returns=p.persist_n),
        "reversion": Metric("mean_reversion_strength", inst=0, bar_ns=bar),
        "structure": Metric("hh_hl_structure", inst=0, bar_ns=bar),
        "atr": Metric("atr", inst=0, bar_ns=bar, n=p.adx_n),
        "profile": Metric("market_profile", inst=0, window_ns=p.profile_window_s * sec,
                          edge_tol=p.profile_edge_pct / 100.0),
        "zones": Metric("supply_demand_zones", inst=0, bar_ns=bar),
        "fvg": Metric("fair_value_gaps", inst=0, bar_ns=bar, min_gap_pct=p.fvg_min_gap_pct),
        "cascade": Metric("flow_cascade", inst=0, fast_ns=p.cascade_fast_s * sec, mid_ns=p.cascade_mid_s * sec,
                          slow_ns=p.cascade_slow_s * sec, long_ratio=p.cascade_ratio,
                          short_ratio=1.0 / p.cascade_ratio),
        "volume": Metric("volume_spike", inst=0, window_ns=p.vol_window_s * sec, periods=p.vol_periods),
        "moves": Metric("consecutive_price_moves", inst=0),
        "zscore": Metric("price_zscore", inst=0, window_ns=p.zscore_window_s * sec),
        "autocorr": Metric("return_autocorr", inst=0, bar_ns=p.autocorr_bar_s * sec, n_returns=p.autocorr_n),
    }
    return [(name, metrics[name]) for name, _ in SIGNALS]


def _validate(v):
    if not v["score_min"] <= v["score_standard"] <= v["score_high"]:
        raise ConfigError("orderflow_scalper: confluence thresholds must satisfy score_min <= score_standard <= "
                          f"score_high, were {v['score_min']}, {v['score_standard']}, {v['score_high']}")
    if not v["cascade_fast_s"] < v["cascade_mid_s"] < v["cascade_slow_s"]:
        raise ConfigError("orderflow_scalper: order-flow windows must increase (fast < mid < slow), were "
                          f"{v['cascade_fast_s']}, {v['cascade_mid_s']}, {v['cascade_slow_s']} s")
    for key in ("regime_bar_s", "autocorr_bar_s"):
        if 86_400 % v[key]:
            raise ConfigError(f"orderflow_scalper: `{key}` must divide 24 h, was {v[key]} s")


STRATEGY = StrategyDef(
    name="orderflow_scalper",
    description="Four-level order-flow scalper: trending regime, price at a zone, order-flow cascade, bounce with "
                "volume; confluence score 3 / 5 / 7; exits on cascade reversal, adverse ticks, 0.5 % trailing stop.",
    params=PARAMS,
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("trades",),
    signal_names=("scalp_long", "scalp_short"),
    kinds=("trades",),
    execution={"cascade_long_col": "cascade.reversal_of_long", "cascade_short_col": "cascade.reversal_of_short",
               "adverse_exits": True, "trail_pct": 0.5},
    validate=_validate,
    score_labels=LABELS,
    triggers=lambda p, columns: triggers(p, 1),  # firings and fitting: the long-side table (weights are shared)
    score_max=8.0,
    counters=COUNTERS,
    source="algo-engine-design.md 2.3 (four-level hierarchy), 2.2.2 (secondary filters, confluence 3.0), 2.5 "
           "(0.5 % trailing stop), 2.6 (cascade reversal, consecutive adverse moves)",
)
