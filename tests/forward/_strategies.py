"""A small weighted-score strategy for the recorder tests: trade-flow imbalance and price z-score
triggers, entry when the side's score reaches ``entry_score``."""

from __future__ import annotations

from numba import njit

from emerald.execution.kernels import LONG, SHORT, set_intent_nb
from emerald.signals.base import SECOND_NS, Metric, Param
from emerald.strategy.base import StrategyDef
from emerald.strategy.score import Trigger


@njit(cache=True)
def decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    if inst[i] != 0:
        return 0
    flow = sig[0]
    z = sig[1]
    w_flow, w_z, th_flow, th_z = fitted[0], fitted[1], fitted[2], fitted[3]
    long_s = 0.0
    short_s = 0.0
    c_flow = 0.0
    c_z = 0.0
    if flow == flow:
        if flow > th_flow:
            long_s += w_flow
            c_flow = w_flow
        elif flow < -th_flow:
            short_s += w_flow
            c_flow = -w_flow
    if z == z:
        if z > th_z:
            long_s += w_z
            c_z = w_z
        elif z < -th_z:
            short_s += w_z
            c_z = -w_z
    q = pos[0].qty
    if long_s >= sp[0].entry_score and q <= 0.0:
        set_intent_nb(intents, 0, 0, LONG, signal=0)
        intents[0].score = long_s
    elif short_s >= sp[0].entry_score and q >= 0.0:
        set_intent_nb(intents, 0, 0, SHORT, signal=1)
        intents[0].score = short_s
    else:
        return 0
    intents[0].contrib[0] = c_flow
    intents[0].contrib[1] = c_z
    return 1


def signals(p, ctx):
    return [("flow", Metric("trade_flow_imbalance", inst=0, window_ns=p.window_s * SECOND_NS)),
            ("z", Metric("price_zscore", inst=0, window_ns=p.window_s * SECOND_NS))]


def triggers(p, columns):
    return [Trigger("flow", "flow", columns.index("flow.imbalance"), "sign", p.flow_threshold, 60.0),
            Trigger("zscore", "z", columns.index("z.z_score"), "sign", p.z_threshold, 40.0)]


FLOW_SCORE = StrategyDef(
    name="flow_score_test",
    description="test strategy: flow imbalance + z-score, weighted",
    params=(Param("window_s", "s", 60, 1, 3600, integer=True), Param("flow_threshold", "", 0.3, 0, 1),
            Param("z_threshold", "", 1.5, 0, 10), Param("entry_score", "", 100.0, 0, 100)),
    decide_nb=decide_nb, signals=signals, triggers=triggers, decide_kinds=("trades",),
    signal_names=("flow_long", "flow_short"), kinds=("trades", "funding", "prices"), score_labels=("flow", "z"),
)
STRATEGY = FLOW_SCORE
