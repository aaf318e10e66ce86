"""EMA cross: long while the fast EMA of bar closes is above the slow one, short while below.

The reference strategy of the demo and of the event-mode benchmark (EMA 10/50). It is
deliberately plain: its job is to exercise the whole path (metrics -> decisions -> fills ->
report), not to make money.
"""

from __future__ import annotations

from numba import njit

from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb
from emerald.signals.base import MINUTE_NS, SECOND_NS, Metric, Param
from emerald.strategy.base import StrategyDef


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    fast = sig[0]
    slow = sig[1]
    if not (fast == fast and slow == slow) or inst[i] != 0:
        return 0
    q = pos[0].qty
    if fast > slow and q <= 0.0:
        set_intent_nb(intents, 0, 0, LONG, signal=0)
        return 1
    if fast < slow and q >= 0.0:
        if sp[0].long_only:
            if q > 0.0:
                set_intent_nb(intents, 0, 0, CLOSE)
                return 1
            return 0
        set_intent_nb(intents, 0, 0, SHORT, signal=1)
        return 1
    return 0


def signals(p, ctx):
    source = 1 if ctx.mode == "bars" else 0
    bar_ns = ctx.bar_ns if ctx.mode == "bars" else p.bar_s * SECOND_NS
    return [("fast", Metric("ema", inst=0, n=p.fast, bar_ns=bar_ns, source=source)),
            ("slow", Metric("ema", inst=0, n=p.slow, bar_ns=bar_ns, source=source))]


def _validate(v):
    from emerald.errors import ConfigError

    if v["fast"] >= v["slow"]:
        raise ConfigError(f"ema_cross: `fast` must be below `slow`, were {v['fast']} and {v['slow']}")


STRATEGY = StrategyDef(
    name="ema_cross",
    description="Long while EMA(fast) > EMA(slow) of bar closes, short (or flat) while below.",
    params=(
        Param("fast", "bars", 10, 1, 500, "fast EMA span", integer=True),
        Param("slow", "bars", 50, 2, 1000, "slow EMA span", integer=True),
        Param("bar_s", "s", MINUTE_NS // SECOND_NS, 1, 86_400, "bar length in event mode (bars built from trades)",
              integer=True),
        Param("long_only", "bool", 0, 0, 1, "1: exit instead of going short", integer=True),
    ),
    decide_nb=decide_nb,
    signals=signals,
    decide_kinds=("trades",),
    signal_names=("ema_long", "ema_short"),
    kinds=("trades", "funding", "prices"),
    validate=_validate,
    source="reference strategy (EMA(10/50) cross, the NautilusTrader example the issue compares against)",
)
