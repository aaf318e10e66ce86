"""EMERALD: research-first backtesting and paper trading for crypto perpetual futures.

One set of numba kernels computes every metric, decision and fill in the backtester, the
forward-test recorder, the paper runner and the live runner.
"""

from __future__ import annotations

__version__ = "0.1.0"
