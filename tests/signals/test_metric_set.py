from __future__ import annotations

import numpy as np

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
