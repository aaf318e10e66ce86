"""The kernel contract, checked for every registered metric (ARCHITECTURE section 5).

1. stream == batch, bit for bit;
2. ``batch(x[:k])`` then ``batch(x[k:])`` on one state == ``batch(x)``;
3. truncating the future never changes a past value (``batch(x[:c]) == batch(x)[:c]``);
4. an independent slow oracle agrees within the metric's stated tolerance.
"""

from __future__ import annotations

import numpy as np

from emerald.events.table import EventTable
from emerald.signals.base import Metric, MetricSpec, Params


class ContractError(AssertionError):
    pass


def _equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _first_diff(a: np.ndarray, b: np.ndarray) -> str:
    both_nan = np.isnan(a) & np.isnan(b)
    bad = np.argwhere(~both_nan & (a != b))
    if bad.size == 0:
        return f"shapes {a.shape} vs {b.shape}"
    i, j = bad[0]
    return f"first difference at event {i}, output {j}: {a[i, j]!r} vs {b[i, j]!r}"


def check_stream_equals_batch(spec: MetricSpec, events: EventTable, params: Params) -> np.ndarray:
    batch = Metric(spec, params).run(events)
    stream = Metric(spec, params).stream(events)
    if not _equal(batch, stream):
        raise ContractError(f"{spec.name}: stream != batch; {_first_diff(batch, stream)}")
    return batch


def check_split(spec: MetricSpec, events: EventTable, params: Params, k: int, whole: np.ndarray) -> None:
    m = Metric(spec, params)
    parts = np.concatenate([m.run(events.slice(0, k)), m.run(events.slice(k, len(events)))])
    if not _equal(parts, whole):
        raise ContractError(f"{spec.name}: batch(x[:{k}]) + batch(x[{k}:]) != batch(x); {_first_diff(parts, whole)}")


def check_no_lookahead(spec: MetricSpec, events: EventTable, params: Params, cut: int, whole: np.ndarray) -> None:
    prefix = Metric(spec, params).run(events.slice(0, cut))
    if not _equal(prefix, whole[:cut]):
        raise ContractError(f"{spec.name}: look-ahead: values before event {cut} change when later events are "
                            f"removed; {_first_diff(prefix, whole[:cut])}")


def check_oracle(spec: MetricSpec, events: EventTable, params: Params, whole: np.ndarray) -> None:
    if spec.oracle is None:
        raise ContractError(f"{spec.name}: no oracle registered")
    expected = spec.oracle(events, params)
    nan_a, nan_b = np.isnan(whole), np.isnan(expected)
    if not np.array_equal(nan_a, nan_b):
        i, j = np.argwhere(nan_a != nan_b)[0]
        raise ContractError(f"{spec.name}: oracle disagrees on NaN at event {i}, output {j}: kernel {whole[i, j]!r}, "
                            f"oracle {expected[i, j]!r}")
    ok = ~nan_a
    if ok.any():
        tol = spec.oracle_tolerance
        err = np.abs(whole[ok] - expected[ok]) / np.maximum(1.0, np.abs(expected[ok]))
        if err.max() > tol:
            k = int(np.argmax(err))
            idx = np.argwhere(ok)[k]
            raise ContractError(f"{spec.name}: oracle differs by {err.max():.3g} (> {tol:g}) at event {idx[0]}, "
                                f"output {idx[1]}: kernel {whole[tuple(idx)]!r}, oracle {expected[tuple(idx)]!r}")


def check_contract(spec: MetricSpec, events: EventTable, params: Params | None = None, *,
                   cuts: tuple[float, ...] = (0.3, 0.7)) -> None:
    """Run all four checks; raises :class:`ContractError` naming the metric and the first difference."""
    params = params or spec.make_params()
    whole = check_stream_equals_batch(spec, events, params)
    n = len(events)
    for c in cuts:
        k = int(n * c)
        check_split(spec, events, params, k, whole)
        check_no_lookahead(spec, events, params, k, whole)
    check_oracle(spec, events, params, whole)
