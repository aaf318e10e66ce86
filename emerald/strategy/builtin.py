"""Decision kernels that ship with the engine.

``decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents) -> n`` is the
kernel contract of ARCHITECTURE §6: it reads event ``i`` (arrays in the event layout), the row
``sig`` of signal values at that event, the positions and account, its parameter record ``sp``
and the fitted values; it writes up to ``len(intents)`` intents (with
:func:`~emerald.execution.kernels.set_intent_nb`) and returns how many. No I/O, no clock, no
allocation. A kernel that must remember something between events keeps it in ``pos[j].mem``
(8 float slots per instrument) and ``acct[0].mem`` (32 slots; the strategy's ``counters`` names
the slots it counts in, reported in the run manifest); both start at zero and are part of the
explicit state, so a resumed or streamed run sees them as a batch run does.
"""

from __future__ import annotations

from numba import njit

from emerald.execution.kernels import CLOSE, LONG, SHORT, set_intent_nb


@njit(cache=True)
def hold_decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    """Never trades."""
    return 0


@njit(cache=True)
def signals_decide_nb(i, ts, kind, inst, f, sig, pos, ords, acct, sp, fitted, intents):
    """Trade precomputed signals (vectorbt ``from_signals`` style): columns ``sig[0]`` long
    entry, ``sig[1]`` long exit, ``sig[2]`` short entry, ``sig[3]`` short exit (> 0 = on; absent
    columns are off). An exit is acted on before an entry of the same event."""
    j = inst[i]
    q = pos[j].qty
    n = sig.shape[0]
    if q > 0 and n > 1 and sig[1] > 0:
        set_intent_nb(intents, 0, j, CLOSE)
        return 1
    if q < 0 and n > 3 and sig[3] > 0:
        set_intent_nb(intents, 0, j, CLOSE)
        return 1
    if q <= 0 and n > 0 and sig[0] > 0:
        set_intent_nb(intents, 0, j, LONG, signal=0)
        return 1
    if q >= 0 and n > 2 and sig[2] > 0:
        set_intent_nb(intents, 0, j, SHORT, signal=1)
        return 1
    return 0
