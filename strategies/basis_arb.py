"""Basis arbitrage: perp vs spot of one asset, short the rich leg and long the cheap one while the
basis is stretched, flat again when it has converged.

``basis = (perp − spot) / spot × 100`` (metric ``basis``: perp price and reference declared by
``perp_price`` / ``reference``). Entry when ``|basis| > entry_pct`` (0.3 %, cto-review-revised-
direction.md "Basis Arbitrage", emerald-gameplan.md 1.1 "institutions arb when basis > 0.3 %"):

* basis > +entry_pct: SHORT the perp, LONG the spot (the design's ``arb_short_perp_long_spot``);
* basis < −entry_pct: LONG the perp, SHORT the spot (``arb_long_perp_short_spot``; a short spot
  leg needs ``[execution] allow_spot_short = true``; borrow costs are not modelled; ``mirror = 0``
  trades only the positive side).

Exit at convergence (the design's ``target_spread: 0.0``): both legs close when the basis is back
inside ``exit_pct`` of zero or beyond it on the other side. Funding is accounted: the engine settles
every funding payment of the perp leg (received while short a positive rate), so each trade's
PnL carries it; the explanation line shows the funding rate at entry. The expected hold is 4–8 h
(the design); the TOML caps it with ``[execution] max_hold_s``.

Legs: instrument 0 is the perp, 1 the spot; each leg is sized by the ``[execution]`` sizing rule
(``fraction`` of equity per leg gives equal notionals). The kernel keeps the pair together: it
decides nothing while a leg's order is working, and when one leg was closed by the engine (stop,
max hold, breaker) or refused it closes the other (counted as ``unhedged_closes``).

State: ``pos[0].mem[0]`` = the pair's side (+1 long perp / short spot, −1 short perp / long spot,
0 flat); ``mem[1]`` = a side not re-entered after an unhedged close until the basis has left the
entry zone. Counters (``acct[0].mem``): 0 ``entries``, 1 ``convergence_exits``, 2 ``unhedged_closes``.
"""

from __future__ import annotations

import math

from numba import njit

from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import Metric, Param
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

PERP, SPOT = 0, 1


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    x = sig[0]  # basis, %
    if x != x or ords[PERP].active or ords[SPOT].active:
        return 0  # no basis yet, or a leg is in flight
    m = pos[PERP].mem
    c = acct[0].mem
    qp = pos[PERP].qty
    qs = pos[SPOT].qty
    side = m[0]
    if side != 0.0 and qp == 0.0 and qs == 0.0:
        side = 0.0  # both legs gone (closed together by the engine, or never filled): flat
        m[0] = 0.0
    if side != 0.0 or qp != 0.0 or qs != 0.0:
        if side == 0.0 or (qp == 0.0) != (qs == 0.0):
            # one leg is gone (engine exit or refusal): close what is left, flat
            n = 0
            if qp != 0.0:
                set_intent_nb(intents, n, PERP, CLOSE)
                n += 1
            if qs != 0.0:
                set_intent_nb(intents, n, SPOT, CLOSE)
                n += 1
            if n > 0:
                c[2] += 1.0
                m[1] = side  # no new pair this way until the signal has left the entry zone
            m[0] = 0.0
            return n
        if (side < 0.0 and x <= sp[0].exit_pct) or (side > 0.0 and x >= -sp[0].exit_pct):
            set_intent_nb(intents, 0, PERP, CLOSE)
            set_intent_nb(intents, 1, SPOT, CLOSE)
            m[0] = 0.0
            c[1] += 1.0
            return 2
        return 0
    th = fitted[1] if fitted.shape[0] >= 2 else sp[0].entry_pct
    w = fitted[0] if fitted.shape[0] >= 2 else 100.0
    if x > th:
        if m[1] < 0.0:
            return 0
        set_intent_nb(intents, 0, PERP, SHORT, signal=0)
        set_intent_nb(intents, 1, SPOT, LONG, signal=0)
        m[0] = -1.0
    elif x < -th and sp[0].mirror:
        if m[1] > 0.0:
            return 0
        set_intent_nb(intents, 0, PERP, LONG, signal=1)
        set_intent_nb(intents, 1, SPOT, SHORT, signal=1)
        m[0] = 1.0
    else:
        m[1] = 0.0
        return 0
    for k in range(2):
        intents[k].score = w
        intents[k].contrib[0] = x
        intents[k].contrib[1] = sig[3] * 100.0  # funding rate, % per interval
    c[0] += 1.0
    return 2


def signals(p, ctx):
    return [("basis", Metric("basis", inst=PERP, ref_inst=SPOT, reference=p.reference, perp_price=p.perp_price)),
            ("funding", Metric("funding_annualized", inst=PERP))]


def triggers(p, columns):
    """One scored condition: the basis beyond ±entry_pct, faded (``band``: short the perp above)."""
    return [Trigger("basis", "basis", columns.index("basis.basis_pct"), "band", p.entry_pct, 100.0,
                    upper=math.inf, inst=PERP)]


def _validate(v):
    from emerald.errors import ConfigError

    if v["exit_pct"] >= v["entry_pct"]:
        raise ConfigError(f"basis_arb: `exit_pct` must be below `entry_pct`, were {v['exit_pct']} and {v['entry_pct']}")


STRATEGY = StrategyDef(
    explain_from="contrib",  # the kernel writes the signal values (in the labels' units) to contrib
    name="basis_arb",
    description="Perp vs spot: short the rich leg, long the cheap one when |basis| > 0.3 %; flat at convergence.",
    params=(
        Param("entry_pct", "%", 0.3, 0.0, 20.0, "enter when |basis| exceeds this (the scored trigger's default)"),
        Param("exit_pct", "%", 0.0, -5.0, 20.0, "exit when the basis is back inside this distance of zero"),
        Param("mirror", "bool", 1, 0, 1, "1: also trade a negative basis (long perp, short spot)", integer=True),
        Param("reference", "code", 0, 0, 2, "spot reference: 0 spot mid, 1 the perp's index, 2 spot last trade",
              integer=True),
        Param("perp_price", "code", 2, 0, 2, "perp price: 0 mark, 1 last trade, 2 mid of the touch", integer=True),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("prices", "quotes"),
    signal_names=("basis_rich", "basis_cheap"),
    kinds=("funding", "prices", "quotes"),
    n_instruments=2,
    execution={"sizing": "fraction", "fraction": 0.5, "trail_pct": None, "decay": False, "max_notional_pct": 100.0},
    validate=_validate,
    score_labels=("basis", "funding"),
    counters=("entries", "convergence_exits", "unhedged_closes"),
    triggers=triggers,
    source="cto-review-revised-direction.md IV.1 (basis_arb_signal, 0.3 %, target spread 0, 4-8 h hold); "
           "emerald-gameplan.md 1.1",
)
