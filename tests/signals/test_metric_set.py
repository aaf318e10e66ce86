from __future__ import annotations

import numpy as np
import pytest

from emerald.signals import REGISTRY, Metric
from emerald.signals.metric_set import MetricSet
from emerald.testing.strategies import make_event_table


def test_metric_set_equals_single_metrics_in_batch_and_stream(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EMERALD_CACHE_DIR", str(tmp_path))
    events = make_event_table(5, n_instruments=2, n_events=400)
    names = sorted(REGISTRY)
    singles = np.hstack([Metric(n).run(events) for n in names])
    batch = MetricSet([Metric(n) for n in names]).run(events)
    stream = MetricSet([Metric(n) for n in names]).stream(events)
    np.testing.assert_array_equal(batch, singles)
    np.testing.assert_array_equal(stream, singles)


def test_metric_set_layouts_and_threads_give_the_same_values(tmp_path, monkeypatch) -> None:
    """Column-major output and two threads change where and when members run, not their values;
    a small RUN_CHUNK makes every member carry its state across many slices."""
    from emerald.errors import ConfigError
    from emerald.signals import metric_set

    monkeypatch.setenv("EMERALD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(metric_set, "RUN_CHUNK", 97)
    monkeypatch.setattr(metric_set, "F_SLICES", 3)
    events = make_event_table(9, n_instruments=2, n_events=1500)
    names = sorted(REGISTRY)
    singles = np.hstack([Metric(n).run(events) for n in names])
    for order, threads in (("C", 1), ("C", 2), ("F", 1), ("F", 2)):
        got = MetricSet([Metric(n) for n in names]).run(events, order=order, threads=threads)
        assert got.flags.f_contiguous if order == "F" else got.flags.c_contiguous
        np.testing.assert_array_equal(got, singles, err_msg=f"order={order} threads={threads}")
    for bad in ({"order": "K"}, {"threads": 0}, {"threads": 1.5}):
        with pytest.raises(ConfigError, match="order|threads"):
            MetricSet([Metric(names[0])]).run(events, **bad)
