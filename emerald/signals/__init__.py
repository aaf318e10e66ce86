"""The shared signal library: one numba kernel per metric, batch == stream bit for bit.

Importing this package imports every metric module in it (``emerald/signals/<family>.py``),
which registers its metrics in :data:`REGISTRY`.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from emerald.signals.base import REGISTRY, Metric, MetricSpec, Param, Params, get_spec, register

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_") and _mod != "base":
        import_module(f"{__name__}.{_mod}")

__all__ = ["REGISTRY", "Metric", "MetricSpec", "Param", "Params", "get_spec", "register"]
