"""The shared signal library: one numba kernel per metric, batch == stream bit for bit.

Importing this package registers every metric in :data:`REGISTRY`.
"""

from __future__ import annotations

from emerald.signals import trade_flow  # noqa: F401  (registers)
from emerald.signals.base import REGISTRY, Metric, MetricSpec, Param, Params, get_spec, register

__all__ = ["REGISTRY", "Metric", "MetricSpec", "Param", "Params", "get_spec", "register"]
