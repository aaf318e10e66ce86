"""Cross-venue arbitrage: one asset on two venues, sell the dear venue and buy the cheap one when
the gap pays both venues' fees plus a margin; flat again when the prices have converged.

``gap = (price A − price B) / price B × 10,000`` bps (metric ``cross_venue_spread``, the mid of
each venue's touch by default). The trade must pay a round trip on both venues, so the entry
threshold is ``2 × (fee_a_bps + fee_b_bps) + margin_bps`` (algo-engine-design.md 2.7.3, "gap >
0.5 % (fees)?" with the fees made explicit; emerald-gameplan.md 2.3 and 9.8 Strategy 3, "LONG on
the cheap venue, SHORT on the dear one, ... spread captured at convergence"):

* gap > +threshold: SHORT A, LONG B;  gap < −threshold: LONG A, SHORT B.

Exit at convergence: both legs close once the gap is back inside ``exit_bps`` of zero (or beyond
it on the other side). ``fee_a_bps`` / ``fee_b_bps`` are the venues' taker fees (defaults: a
Binance-style USD-M perp, 5 bps, and spot, 10 bps, the demo's and the registry's values); keep them
equal to the run's fees. When a leg is a spot market its short side needs ``[execution]
allow_spot_short = true`` (borrow not modelled); two perps need nothing. When both legs are perps,
both legs' funding is settled by the engine.

Legs: instrument 0 is venue A, 1 venue B, each sized by the ``[execution]`` sizing rule. The
kernel decides nothing while a leg's order is working and closes a leg whose partner was closed by
the engine or refused (``unhedged_closes``).

State: ``pos[0].mem[0]`` = the pair's side (+1 long A / short B, −1 short A / long B, 0 flat);
``mem[1]`` = a side not re-entered after an unhedged close until the gap has left the entry zone.
Counters (``acct[0].mem``): 0 ``entries``, 1 ``convergence_exits``, 2 ``unhedged_closes``.
"""

from __future__ import annotations

import math

from numba import njit

from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import Metric, Param
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

A, B = 0, 1


def entry_bps(p) -> float:
    """The entry threshold: a round trip on both venues plus the margin, in bps."""
    return 2.0 * (p.fee_a_bps + p.fee_b_bps) + p.margin_bps


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    g = sig[0]  # gap, bps
    if g != g or ords[A].active or ords[B].active:
        return 0
    m = pos[A].mem
    c = acct[0].mem
    qa = pos[A].qty
    qb = pos[B].qty
    side = m[0]
    if side != 0.0 and qa == 0.0 and qb == 0.0:
        side = 0.0  # both legs gone (closed together by the engine, or never filled): flat
        m[0] = 0.0
    if side != 0.0 or qa != 0.0 or qb != 0.0:
        if side == 0.0 or (qa == 0.0) != (qb == 0.0):
            n = 0
            if qa != 0.0:
                set_intent_nb(intents, n, A, CLOSE)
                n += 1
            if qb != 0.0:
                set_intent_nb(intents, n, B, CLOSE)
                n += 1
            if n > 0:
                c[2] += 1.0
                m[1] = side  # no new pair this way until the signal has left the entry zone
            m[0] = 0.0
            return n
        if (side < 0.0 and g <= sp[0].exit_bps) or (side > 0.0 and g >= -sp[0].exit_bps):
            set_intent_nb(intents, 0, A, CLOSE)
            set_intent_nb(intents, 1, B, CLOSE)
            m[0] = 0.0
            c[1] += 1.0
            return 2
        return 0
    if fitted.shape[0] >= 2:
        th = fitted[1]
        w = fitted[0]
    else:
        th = 2.0 * (sp[0].fee_a_bps + sp[0].fee_b_bps) + sp[0].margin_bps
        w = 100.0
    if g > th:
        if m[1] < 0.0:
            return 0
        set_intent_nb(intents, 0, A, SHORT, signal=0)
        set_intent_nb(intents, 1, B, LONG, signal=0)
        m[0] = -1.0
    elif g < -th and sp[0].mirror:
        if m[1] > 0.0:
            return 0
        set_intent_nb(intents, 0, A, LONG, signal=1)
        set_intent_nb(intents, 1, B, SHORT, signal=1)
        m[0] = 1.0
    else:
        m[1] = 0.0
        return 0
    for k in range(2):
        intents[k].score = w
        intents[k].contrib[0] = g
        intents[k].contrib[1] = th
    c[0] += 1.0
    return 2


def signals(p, ctx):
    return [("gap", Metric("cross_venue_spread", inst=A, ref_inst=B, price_source=p.price_source))]


def triggers(p, columns):
    """One scored condition: the gap beyond ± the fee-covering threshold, faded (short the dear venue)."""
    return [Trigger("gap", "gap", columns.index("gap.spread_bps"), "band", entry_bps(p), 100.0, upper=math.inf,
                    inst=A)]


def _validate(v):
    from emerald.errors import ConfigError

    th = 2.0 * (v["fee_a_bps"] + v["fee_b_bps"]) + v["margin_bps"]
    if v["exit_bps"] >= th:
        raise ConfigError(f"cross_venue_arb: `exit_bps` must be below the entry threshold 2 x (fees) + margin = "
                          f"{th:g} bps, was {v['exit_bps']}")


STRATEGY = StrategyDef(
    explain_from="contrib",  # the kernel writes the signal values (in the labels' units) to contrib
    name="cross_venue_arb",
    description="One asset on two venues: short the dear, long the cheap when the gap > both venues' fees + margin.",
    params=(
        Param("fee_a_bps", "bps", 5.0, 0.0, 100.0, "venue A taker fee (paid on entry and exit)"),
        Param("fee_b_bps", "bps", 10.0, 0.0, 100.0, "venue B taker fee (paid on entry and exit)"),
        Param("margin_bps", "bps", 5.0, 0.0, 1000.0, "profit margin required above the round-trip fees"),
        Param("exit_bps", "bps", 0.0, -500.0, 1000.0, "exit when the gap is back inside this distance of zero"),
        Param("mirror", "bool", 1, 0, 1, "1: trade both signs of the gap", integer=True),
        Param("price_source", "code", 2, 0, 2, "price of each venue: 0 mark, 1 last trade, 2 mid of the touch",
              integer=True),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("quotes",),
    signal_names=("a_dear", "b_dear"),
    kinds=("funding", "prices", "quotes"),
    n_instruments=2,
    execution={"sizing": "fraction", "fraction": 0.5, "trail_pct": None, "decay": False, "max_notional_pct": 100.0},
    validate=_validate,
    score_labels=("gap bps", "threshold bps"),
    counters=("entries", "convergence_exits", "unhedged_closes"),
    triggers=triggers,
    source="algo-engine-design.md 2.7.3 and 9.8 Strategy 3 (cross-venue arbitrage); emerald-gameplan.md 2.3",
)
