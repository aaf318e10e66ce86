"""Every registered metric passes the four contract checks on hypothesis-generated streams."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from emerald.events.table import EventTable
from emerald.signals import REGISTRY
from emerald.signals.base import MetricSpec, Param, Params
from emerald.testing.contract import ContractError, check_contract, check_no_lookahead
from emerald.testing.strategies import event_tables, make_event_table


@pytest.mark.parametrize("name", sorted(REGISTRY))
@settings(max_examples=40)
@given(events=event_tables(), cut=st.floats(0.05, 0.95))
def test_contract(name: str, events: EventTable, cut: float) -> None:
    spec = REGISTRY[name]
    check_contract(spec, events, cuts=(cut,))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_entry_is_complete(name: str) -> None:
    spec = REGISTRY[name]
    assert spec.inputs and spec.outputs and spec.definition and spec.source and spec.warmup
    assert spec.oracle is not None
    for p in spec.params:
        assert p.unit and p.doc, f"{name}.{p.name} lacks unit or doc"
        p.check(p.default, name)


# ---------------------------------------------------------------- the leaky canary must be caught

CANARY_STATE = np.dtype([("x", np.float64)], align=True)


@njit(cache=True)
def _leaky_step_nb(state, p, ts, kind, inst, row, f, i, out):
    j = i + 1 if i + 1 < ts.shape[0] else i  # peeks at the next event: look-ahead
    out[i, 0] = f[0, j]


@njit(cache=True)
def _leaky_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        _leaky_step_nb(state, p, ts, kind, inst, row, f, i, out)


LEAKY = MetricSpec(name="canary_shift_minus_one", family="canary", inputs=("trades",), outputs=("next_price",),
                   params=(Param("inst", "index", 0, 0, 10, "instrument", integer=True),), state_dtype=CANARY_STATE,
                   step_nb=_leaky_step_nb, batch_nb=_leaky_batch_nb, definition="price of the NEXT event (leaks)",
                   source="RELIABILITY.md TB1 canary", warmup="none", oracle=lambda ev, p: ev.f[0][:, None].copy(),
                   canary=True)


def test_canary_is_not_registered() -> None:
    assert LEAKY.name not in REGISTRY


def test_truncation_check_catches_the_canary() -> None:
    events = make_event_table(1, n_events=200, kinds=("trades",))
    params: Params = LEAKY.make_params()
    from emerald.signals.base import Metric

    full = Metric(LEAKY, params).run(events)
    with pytest.raises(ContractError, match="look-ahead"):
        check_no_lookahead(LEAKY, events, params, len(events) // 2, full)
    with pytest.raises(ContractError):
        check_contract(LEAKY, events)
