"""Funding arbitrage: delta-neutral spot/perp pair held while the funding rate pays it.

While the perp's funding rate exceeds ``entry_pct`` (per funding interval) the strategy is LONG
the spot and SHORT the perp (shorts receive a positive rate); with ``mirror = 1`` and a rate below
``−entry_pct`` it holds the mirror, LONG perp / SHORT spot (needs ``[execution] allow_spot_short =
true``; borrow costs are not modelled). The pair closes when the rate falls below ``exit_pct``
(mirror: rises above ``−exit_pct``), which includes the rate flipping sign (algo-engine-design.md
9.8 Strategy 1: "earn 0.01-0.1 % per 8 hours while market-neutral ... set auto-close if funding
rate drops below threshold (e.g. 0.01 %)", "monitor funding rate changes (can flip negative)").

Defaults: ``entry_pct`` 0.03 %/8 h (three times the 0.01 % baseline rate, inside the design's
0.01–0.1 % range: the 0.3 % round trip of both legs' taker fees is earned back in ten intervals),
``exit_pct`` 0.01 % (the design's auto-close level). The rate is the as-of published funding rate
(``settled_only = 0``: the venue's predicted rate between settlements, which is what a desk watches;
1: only settled rates). The engine settles every payment on the perp leg, so PnL = both legs'
price PnL − fees + funding received.

Legs: instrument 0 is the perp, 1 the spot, each sized by the ``[execution]`` sizing rule
(``fraction`` of equity per leg: equal notionals). The kernel decides nothing while a leg's order
is working and closes a leg whose partner was closed by the engine or refused
(``unhedged_closes``).

State: ``pos[0].mem[0]`` = the pair's side (−1 short perp / long spot, +1 the mirror, 0 flat);
``mem[1]`` = a side not re-entered after an unhedged close until the rate has left the entry zone.
Counters (``acct[0].mem``): 0 ``entries``, 1 ``rate_exits``, 2 ``unhedged_closes``.
"""

from __future__ import annotations

import math

from numba import njit

from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import HOUR_NS, Metric, Param
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger

PERP, SPOT = 0, 1


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    r = sig[0]  # funding rate, fraction per interval
    if r != r or ords[PERP].active or ords[SPOT].active:
        return 0
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
        ex = sp[0].exit_pct / 100.0
        if (side < 0.0 and r < ex) or (side > 0.0 and r > -ex):
            set_intent_nb(intents, 0, PERP, CLOSE)
            set_intent_nb(intents, 1, SPOT, CLOSE)
            m[0] = 0.0
            c[1] += 1.0
            return 2
        return 0
    th = fitted[1] if fitted.shape[0] >= 2 else sp[0].entry_pct / 100.0
    w = fitted[0] if fitted.shape[0] >= 2 else 100.0
    if r > th:
        if m[1] < 0.0:
            return 0
        set_intent_nb(intents, 0, PERP, SHORT, signal=0)
        set_intent_nb(intents, 1, SPOT, LONG, signal=0)
        m[0] = -1.0
    elif r < -th and sp[0].mirror:
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
        intents[k].contrib[0] = r * 100.0
        intents[k].contrib[1] = sig[1]
    c[0] += 1.0
    return 2


def signals(p, ctx):
    return [("funding", Metric("funding_annualized", inst=PERP, settled_only=p.settled_only,
                               interval_ns=p.interval_h * HOUR_NS))]


def triggers(p, columns):
    """One scored condition: the rate beyond ±entry_pct, faded (``band``: short the perp above)."""
    return [Trigger("funding", "funding", columns.index("funding.rate"), "band", p.entry_pct / 100.0, 100.0,
                    upper=math.inf, inst=PERP)]


def _validate(v):
    from emerald.errors import ConfigError

    if v["exit_pct"] >= v["entry_pct"]:
        raise ConfigError(f"funding_arb: `exit_pct` must be below `entry_pct`, were {v['exit_pct']} and "
                          f"{v['entry_pct']}")


STRATEGY = StrategyDef(
    explain_from="contrib",  # the kernel writes the signal values (in the labels' units) to contrib
    name="funding_arb",
    description="Delta-neutral spot long / perp short (or the mirror) while |funding| > entry; close below exit.",
    params=(
        Param("entry_pct", "% / interval", 0.03, 0.0, 5.0, "enter when the funding rate exceeds this"),
        Param("exit_pct", "% / interval", 0.01, -5.0, 5.0, "close when the rate falls below this (mirror: above -x)"),
        Param("mirror", "bool", 1, 0, 1, "1: also hold long perp / short spot while the rate < -entry_pct",
              integer=True),
        Param("settled_only", "bool", 0, 0, 1, "1: decide on settled rates only; 0: every published rate",
              integer=True),
        Param("interval_h", "h", 8, 1, 24, "funding interval when the tape's rows carry none", integer=True),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("funding",),
    signal_names=("funding_positive", "funding_negative"),
    kinds=("funding", "prices", "quotes", "bars"),
    n_instruments=2,
    execution={"sizing": "fraction", "fraction": 0.5, "trail_pct": None, "decay": False, "max_notional_pct": 100.0},
    validate=_validate,
    score_labels=("funding %", "funding %/yr"),
    counters=("entries", "rate_exits", "unhedged_closes"),
    triggers=triggers,
    source="algo-engine-design.md 9.8 Strategy 1 (funding rate arbitrage, delta-neutral, auto-close at 0.01 %)",
)
