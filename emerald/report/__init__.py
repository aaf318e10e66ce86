"""HTML reports from backtest results (never recomputes a metric): :func:`write_report` for one
run, :func:`write_sweep_report` for a parameter sweep / walk-forward."""

from __future__ import annotations

from emerald.report.html import write_report, write_sweep_report

__all__ = ["write_report", "write_sweep_report"]
