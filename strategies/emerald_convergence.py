"""EMERALD convergence: a 0-100 conviction score from the order book, the trade flow, multi-timeframe
VWAP and funding-basis agreement; size and stop scale with the conviction.

The score (emerald-gameplan.md 1.3, ``analyze_timeframe_convergence``) is the weighted sum of five
triggers, computed for the long and the short side separately with
:func:`emerald.strategy.score.score_nb`:

=============  ======  ===================================================================  ==========
trigger        weight  fires long (short mirrored)                                         label
=============  ======  ===================================================================  ==========
order book     25      top-10-level book imbalance > +0.4                                  ``OB``
trade flow     25      trade-flow imbalance of the last 60 s > +0.4                        ``flow``
VWAP           30      last price > 1 % above the rolling VWAP of 60 candles of 1 m, 5 m   ``VWAP
                       and 15 m (windows 1 h, 5 h, 15 h), all three                        1m/5m/15m``
funding-basis  20      annualised funding > 10 %/yr and basis > 0.2 % (convergence)       ``funding+basis``
divergence     -15     funding > 10 %/yr with basis < -0.1 % or the mirror: a penalty on   ``divergence``
                       either side
=============  ======  ===================================================================  ==========

Conviction: score >= 85 max size (conviction 2: ``conf_high``, 2.5 ATR stop), >= 70 standard (1:
``conf_medium``, 2.0 ATR), >= 50 reduced (0: ``conf_low``, 1.5 ATR), else no trade (gameplan 3.1
``calculate_position_size`` and 3.2 ``calculate_stop_loss``; the engine applies the multipliers of
``[execution]``). Position size comes from the account risk (``sizing = "risk"``): the equity share
``risk_pct`` is lost at the ATR stop. The ATR is Wilder's of 15-minute bars (the longest of the
three timeframes; the gameplan does not name one).

Exits: the ATR stop (engine); a take-profit at ``target_r`` times the initial risk (the gameplan's
"Average R:R 2.5:1 minimum"); a reversal when the opposite side's score reaches the entry threshold
(the engine closes the position and opens the other side). The divergence trigger is direction-free:
:func:`score_nb` counts a ``gt`` trigger on the long side only, so the kernel subtracts it from the
short side too (its contribution is then shown with the short side's sign convention, +15).

Basis: perp mark against the perp's published index (``prices.index``) by default, so one
instrument suffices; ``basis_ref = 0`` (spot mid) or ``2`` (spot last trade) reads the spot market
as the config's second instrument. Event mode only (the order book is read).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import SECOND_NS, Metric, Param, get_spec
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger, pack, score_nb

# signal columns: (column prefix, metric); the sig row is every metric's outputs in this order
SIGNALS = (("ob", "book_imbalance"), ("flow", "trade_flow_imbalance"), ("vwap", "vwap_alignment"),
           ("fb", "funding_basis_convergence"), ("atr", "atr"))
COLUMNS = [f"{name}.{out}" for name, metric in SIGNALS for out in get_spec(metric).outputs]
C_OB = COLUMNS.index("ob.imbalance")
C_FLOW = COLUMNS.index("flow.imbalance")
C_VWAP = COLUMNS.index("vwap.alignment")
C_CONV = COLUMNS.index("fb.convergence")
C_DIV = COLUMNS.index("fb.divergence")
C_ATR = COLUMNS.index("atr.atr")

LABELS = ("OB", "flow", "VWAP 1m/5m/15m", "funding+basis", "divergence")
N_TRIGGERS = len(LABELS)
I_DIV = 4


def triggers(p) -> list[Trigger]:
    """The scored conditions with this config's weights and thresholds (names for fitted artifacts)."""
    return [
        Trigger("order_book", "OB", C_OB, "sign", p.ob_threshold, p.w_order_book),
        Trigger("trade_flow", "flow", C_FLOW, "sign", p.flow_threshold, p.w_trade_flow),
        Trigger("vwap_alignment", "VWAP 1m/5m/15m", C_VWAP, "sign", 0.5, p.w_vwap),
        Trigger("funding_basis", "funding+basis", C_CONV, "sign", 0.5, p.w_funding_basis),
        Trigger("divergence", "divergence", C_DIV, "gt", 0.5, p.w_divergence),
    ]


class _Defaults:
    """Attribute access to the declared defaults (for the module-level trigger table)."""

    def __getattr__(self, name: str) -> float:
        return next(p.default for p in PARAMS if p.name == name)


PARAMS = (
    Param("ob_levels", "levels", 10, 1, 50, "book levels per side in the imbalance (gameplan: depth=10)",
          integer=True),
    Param("ob_threshold", "ratio", 0.4, 0.0, 1.0, "|book imbalance| that counts (gameplan: 0.4)"),
    Param("flow_window_s", "s", 60, 1, 4096, "trade-flow window (gameplan: lookback_seconds=60)", integer=True),
    Param("flow_threshold", "ratio", 0.4, 0.0, 1.0, "|trade-flow imbalance| that counts (gameplan: 0.4)"),
    Param("vwap_fast_s", "s", 3600, 60, 86_400, "VWAP window of the 1 m timeframe (60 candles)", integer=True),
    Param("vwap_mid_s", "s", 18_000, 60, 86_400, "VWAP window of the 5 m timeframe (60 candles)", integer=True),
    Param("vwap_slow_s", "s", 54_000, 60, 86_400, "VWAP window of the 15 m timeframe (60 candles)", integer=True),
    Param("vwap_bucket_s", "s", 15, 1, 3600, "VWAP window resolution (a window holds at most 4096 buckets)",
          integer=True),
    Param("vwap_pct", "%", 1.0, 0.01, 100.0, "deviation from every VWAP that counts as aligned (gameplan: 1 %)"),
    Param("funding_pct", "%/yr", 10.0, 0.0, 10_000.0, "|annualised funding| that counts (gameplan: 10)"),
    Param("basis_pct", "%", 0.2, 0.0, 100.0, "|basis| confirming the funding (gameplan: 0.2)"),
    Param("divergence_pct", "%", 0.1, 0.0, 100.0, "opposite-sign |basis| that makes a divergence (gameplan: 0.1)"),
    Param("basis_ref", "code", 1, 0, 2, "basis reference: 0 spot mid, 1 perp index, 2 spot last trade "
          "(0 and 2 read the config's second instrument)", integer=True),
    Param("w_order_book", "points", 25.0, -100.0, 100.0, "weight of the order-book trigger"),
    Param("w_trade_flow", "points", 25.0, -100.0, 100.0, "weight of the trade-flow trigger"),
    Param("w_vwap", "points", 30.0, -100.0, 100.0, "weight of the VWAP-alignment trigger"),
    Param("w_funding_basis", "points", 20.0, -100.0, 100.0, "weight of the funding-basis convergence"),
    Param("w_divergence", "points", -15.0, -100.0, 100.0, "weight of the funding-basis divergence (a penalty)"),
    Param("score_max_size", "points", 85.0, 0.0, 100.0, "score for maximum size (conviction 2)"),
    Param("score_standard", "points", 70.0, 0.0, 100.0, "score for standard size (conviction 1)"),
    Param("score_reduced", "points", 50.0, 0.0, 100.0, "lowest score that trades, reduced size (conviction 0)"),
    Param("atr_bar_s", "s", 900, 1, 86_400, "ATR bar length (15 m: the longest timeframe)", integer=True),
    Param("atr_n", "bars", 14, 1, 500, "ATR Wilder period", integer=True),
    Param("target_r", "R", 2.5, 0.0, 100.0, "take profit at this multiple of the initial risk (gameplan: R:R "
          "2.5:1 minimum); 0: off"),
)

TABLE = pack(triggers(_Defaults()))  # columns and ops only; weights and thresholds come from params or fitted


@njit(cache=True)
def weights_nb(sp, fitted):
    """``[weights..., thresholds...]``: the fitted vector when one is given, else the params."""
    if fitted.shape[0] == 2 * N_TRIGGERS:
        return fitted
    wt = np.empty(2 * N_TRIGGERS)
    s = sp[0]
    wt[0] = s.w_order_book
    wt[1] = s.w_trade_flow
    wt[2] = s.w_vwap
    wt[3] = s.w_funding_basis
    wt[4] = s.w_divergence
    wt[5] = s.ob_threshold
    wt[6] = s.flow_threshold
    wt[7] = 0.5
    wt[8] = 0.5
    wt[9] = 0.5
    return wt


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    j = inst[i]
    if j != 0 or ords[0].active:
        return 0
    s = sp[0]
    it = intents[0]
    long_s, short_s = score_nb(sig, TABLE, weights_nb(sp, fitted), it.contrib)
    if it.contrib[I_DIV] != 0.0:  # the divergence penalty counts against either side
        short_s += it.contrib[I_DIV]
    side = 0
    score = 0.0
    if long_s >= s.score_reduced and long_s > short_s:
        side = 1
        score = long_s
    elif short_s >= s.score_reduced and short_s > long_s:
        side = -1
        score = short_s
    p = pos[0]
    q = p.qty
    if q != 0.0:
        px = f[0, i]
        risk = abs(p.entry_px - p.stop)
        if s.target_r > 0.0 and risk > 0.0 and px > 0.0:
            if (q > 0.0 and px >= p.entry_px + s.target_r * risk) or (q < 0.0 and px <= p.entry_px
                                                                     - s.target_r * risk):
                set_intent_nb(intents, 0, 0, CLOSE)
                return 1
        if side == 0 or (side > 0) == (q > 0.0):
            return 0
    elif side == 0:
        return 0
    atr = sig[C_ATR]
    if not (atr > 0.0):
        return 0  # no stop distance yet (ATR warm-up)
    conviction = 2 if score >= s.score_max_size else (1 if score >= s.score_standard else 0)
    set_intent_nb(intents, 0, 0, LONG if side > 0 else SHORT, atr=atr, conviction=conviction,
                  signal=0 if side > 0 else 1)
    it.score = score
    if side < 0:
        it.contrib[I_DIV] = -it.contrib[I_DIV]
    return 1


def signals(p, ctx):
    if ctx.mode != "event":
        raise ConfigError("emerald_convergence: runs in event mode only (it reads the order book), was mode "
                          f"{ctx.mode!r}")
    ref = 0
    if p.basis_ref != 1:
        if len(ctx.instruments) < 2:
            raise ConfigError(f"emerald_convergence: basis_ref = {p.basis_ref} reads the spot market as the second "
                              f"instrument; the config lists {len(ctx.instruments)}")
        ref = 1
    b = p.vwap_bucket_s * SECOND_NS
    metrics = {
        "ob": Metric("book_imbalance", inst=0, n_levels=p.ob_levels),
        "flow": Metric("trade_flow_imbalance", inst=0, window_ns=p.flow_window_s * SECOND_NS),
        "vwap": Metric("vwap_alignment", inst=0, fast_ns=p.vwap_fast_s * SECOND_NS, mid_ns=p.vwap_mid_s * SECOND_NS,
                       slow_ns=p.vwap_slow_s * SECOND_NS, bucket_ns=b, threshold_pct=p.vwap_pct),
        "fb": Metric("funding_basis_convergence", inst=0, ref_inst=ref, reference=p.basis_ref,
                     funding_pct=p.funding_pct, basis_pct=p.basis_pct, divergence_pct=p.divergence_pct),
        "atr": Metric("atr", inst=0, bar_ns=p.atr_bar_s * SECOND_NS, n=p.atr_n),
    }
    return [(name, metrics[name]) for name, _ in SIGNALS]


def _validate(v):
    if not v["score_reduced"] <= v["score_standard"] <= v["score_max_size"]:
        raise ConfigError("emerald_convergence: score thresholds must satisfy score_reduced <= score_standard <= "
                          f"score_max_size, were {v['score_reduced']}, {v['score_standard']}, {v['score_max_size']}")
    if not v["vwap_fast_s"] < v["vwap_mid_s"] < v["vwap_slow_s"]:
        raise ConfigError("emerald_convergence: VWAP windows must increase (fast < mid < slow), were "
                          f"{v['vwap_fast_s']}, {v['vwap_mid_s']}, {v['vwap_slow_s']} s")
    for key in ("vwap_fast_s", "vwap_mid_s", "vwap_slow_s"):
        if v[key] % v["vwap_bucket_s"] or v[key] // v["vwap_bucket_s"] > 4096:
            raise ConfigError(f"emerald_convergence: `{key}` must be a multiple of vwap_bucket_s "
                              f"({v['vwap_bucket_s']} s) and at most 4096 of them, was {v[key]}")


STRATEGY = StrategyDef(
    name="emerald_convergence",
    description="Conviction score 0-100 (order book 25, trade flow 25, VWAP 1m/5m/15m 30, funding-basis 20, "
                "divergence -15); >= 85 max size, >= 70 standard, >= 50 reduced; ATR stops by conviction.",
    params=PARAMS,
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("trades",),
    signal_names=("convergence_long", "convergence_short"),
    kinds=("trades", "book", "prices", "funding"),
    execution={"sizing": "risk", "trail_pct": None},
    validate=_validate,
    score_labels=LABELS,
    triggers=lambda p, columns: triggers(p),
    source="emerald-gameplan.md 1.3 (multi-timeframe convergence score), 3.1 (position sizing by conviction), "
           "3.2 (ATR stops by conviction)",
)
