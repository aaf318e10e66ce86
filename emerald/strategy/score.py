"""The weighted-score building block every scoring strategy uses, and decision explanations.

``score = Σ weightᵢ × triggerᵢ`` where trigger *i* is a condition on one signal column:

=========  ===============================================  =======================================
op         fires long when                                  fires short when
=========  ===============================================  =======================================
``GT``     ``x > θ``                                        never (a long-only condition)
``LT``     ``x < θ``                                        never
``SIGN``   ``x > θ``                                        ``x < −θ``
``ABS``    ``|x| > θ`` (direction from the move column)     same, the other direction
``BAND``   ``θ < |x| < θ₂`` with ``x < 0`` (fade: long)     ``θ < |x| < θ₂`` with ``x > 0``
=========  ===============================================  =======================================

A negative weight makes a condition count against the score (e.g. "divergence −15"). The
long and short scores are computed separately; the breakdown (each trigger's signed
contribution) is written to ``contrib`` so reports and the recorder can show which signals made
the decision.

Weights and thresholds come from the config's declared defaults or, when a fitted artifact is
given, from it: :func:`resolve` packs them into the ``fitted`` vector the decision kernel
receives (``[w₀..wₙ₋₁, θ₀..θₙ₋₁]``), so a strategy never branches on where they came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from emerald.errors import ConfigError

GT, LT, SIGN, ABS, BAND = 0, 1, 2, 3, 4
OPS = {"gt": GT, "lt": LT, "sign": SIGN, "abs": ABS, "band": BAND}


@dataclass(frozen=True)
class Trigger:
    """One scored condition: ``column`` (index into the strategy's signal row), ``op``, threshold,
    optional upper band, weight, and a short ``label`` for explanations (``OB``, ``flow``)."""

    name: str
    label: str
    column: int
    op: str
    threshold: float
    weight: float
    upper: float = math.inf
    move_column: int = -1  # ABS: the column whose sign gives the direction
    inst: int = 0  # the instrument the condition is about (signal firings are logged on it)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ConfigError(f"trigger {self.name!r}: op must be one of {sorted(OPS)}, was {self.op!r}")


def pack(triggers: list[Trigger]) -> np.ndarray:
    """The triggers as a float64 ``(n, 5)`` table: column, op, upper, move column, instrument."""
    if len(triggers) > 16:
        raise ConfigError(f"at most 16 scored triggers per strategy, got {len(triggers)}")
    t = np.zeros((len(triggers), 5))
    for i, tr in enumerate(triggers):
        t[i] = (tr.column, OPS[tr.op], tr.upper, tr.move_column, tr.inst)
    return t


def resolve(triggers: list[Trigger], fitted: dict[str, Any] | None = None) -> tuple[np.ndarray, list[str]]:
    """The ``fitted`` vector ``[weights..., thresholds...]`` for the kernel, and the source of each
    value ("config" or "fitted"). ``fitted``: ``{"weights": {name: w}, "thresholds": {name: θ}}``;
    a name missing there keeps the declared default."""
    n = len(triggers)
    vec = np.zeros(2 * n)
    sources = []
    fw = (fitted or {}).get("weights", {})
    ft = (fitted or {}).get("thresholds", {})
    for i, tr in enumerate(triggers):
        vec[i] = float(fw.get(tr.name, tr.weight))
        vec[n + i] = float(ft.get(tr.name, tr.threshold))
        sources.append("fitted" if tr.name in fw or tr.name in ft else "config")
    unknown = (set(fw) | set(ft)) - {t.name for t in triggers}
    if unknown:
        raise ConfigError(f"fitted artifact names unknown signals {sorted(unknown)}; "
                          f"this strategy scores {[t.name for t in triggers]}")
    return vec, sources


@njit(cache=True, inline="always")
def direction_nb(sig, table, wt, i):
    """Direction (+1 long, -1 short, 0 none) trigger ``i`` gives for the signal row ``sig``."""
    n = table.shape[0]
    c = int(table[i, 0])
    op = int(table[i, 1])
    x = sig[c]
    th = wt[n + i]
    if x != x:
        return 0.0
    if op == 0:
        return 1.0 if x > th else 0.0
    if op == 1:
        return 1.0 if x < th else 0.0
    if op == 2:
        return 1.0 if x > th else (-1.0 if x < -th else 0.0)
    if op == 3:
        m = int(table[i, 3])
        if abs(x) > th and m >= 0 and sig[m] == sig[m] and sig[m] != 0.0:
            return 1.0 if sig[m] > 0 else -1.0
        return 0.0
    if th < abs(x) < table[i, 2]:
        return -1.0 if x > 0 else 1.0
    return 0.0


@njit(cache=True)
def score_nb(sig, table, wt, contrib):
    """Long and short scores of the signal row ``sig``; ``wt`` = ``[weights, thresholds]``;
    writes each trigger's signed contribution (+ long, − short) to ``contrib``."""
    n = table.shape[0]
    long_s = 0.0
    short_s = 0.0
    for i in range(n):
        d = direction_nb(sig, table, wt, i)
        w = wt[i]
        if i < contrib.shape[0]:
            contrib[i] = d * w
        if d > 0:
            long_s += w
        elif d < 0:
            short_s += w
    return long_s, short_s


def fmt_value(x: float) -> str:
    """``+0.68``, ``+6e-04`` (3 significant digits below 0.01, so small rates do not read as zero),
    ``+1,250``."""
    if not math.isfinite(x):
        return "n/a"
    if x != 0 and abs(x) < 0.01:
        return f"{x:+.3g}"
    return f"{x:+.2f}" if abs(x) < 100 else f"{x:+,.0f}"


def explain(inst: str, action: int, price: float, score: float, contrib: np.ndarray, labels: list[str],
            values: list[float] | None = None, stop: float = math.nan, target: float = math.nan,
            max_score: float = 100.0, reason: str = "") -> str:
    """A terse decision line in the style of the EMERALD gameplan, e.g.
    ``BTC LONG 67845 · score 87/100 · OB +0.68 · flow +0.71 · stop 67320 · R:R 3.1`` or
    ``ETH NO TRADE · score 42/100 · mixed signals``."""
    base = inst.split(":")[-1].replace("USDT", "").replace("USD", "") or inst
    side = {1: "LONG", -1: "SHORT"}.get(int(action), "NO TRADE")
    parts = [f"{base} {side}" + (f" {price:,.{_decimals(price)}f}" if side != "NO TRADE" and math.isfinite(price)
                                 else "")]
    if math.isfinite(score):
        parts.append(f"score {score:.0f}/{max_score:.0f}" if max_score > 10 else f"score {score:.1f}/{max_score:g}")
    for k, label in enumerate(labels):
        if k < len(contrib) and contrib[k] != 0:
            v = values[k] if values is not None and k < len(values) else contrib[k]
            parts.append(f"{label} {fmt_value(v)}")
    if side == "NO TRADE":
        parts.append(reason or "mixed signals")
    elif math.isfinite(stop):
        parts.append(f"stop {stop:,.{_decimals(stop)}f}")
        if math.isfinite(target) and abs(price - stop) > 0:
            parts.append(f"R:R {abs(target - price) / abs(price - stop):.1f}")
    return " · ".join(parts)


def _decimals(px: float) -> int:
    if px >= 1000:
        return 0
    if px >= 10:
        return 2
    return 4


@njit(cache=True)
def fire_nb(acct, out, table, wt, sig, ts, event):
    """Signal firings: each time a trigger's direction changes to long or short (an edge, not a
    level), append a row to ``out[8]`` with the value, threshold, weight and both scores. The
    backtester and the recorder both call this from the same loop step, so their logs agree."""
    n = table.shape[0]
    if n == 0 or wt.shape[0] < 2 * n:
        return
    a = acct[0]
    long_s = 0.0
    short_s = 0.0
    for i in range(n):
        d = direction_nb(sig, table, wt, i)
        if d > 0:
            long_s += wt[i]
        elif d < 0:
            short_s += wt[i]
    f = out[8]
    for i in range(n):
        d = direction_nb(sig, table, wt, i)
        if d != 0.0 and d != a.fire[i]:
            k = a.n_firings
            f[k].ts = ts
            f[k].event = event
            f[k].inst = int(table[i, 4])
            f[k].trigger = i
            f[k].direction = int(d)
            f[k].value = sig[int(table[i, 0])]
            f[k].threshold = wt[n + i]
            f[k].weight = wt[i]
            f[k].score_long = long_s
            f[k].score_short = short_s
            a.n_firings = k + 1
        a.fire[i] = d
