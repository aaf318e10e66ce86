"""Fitting: per-signal weights and thresholds from the labelled signal log, versioned artifacts
(:mod:`emerald.fit.artifact`), and walk-forward fits and backtests (:mod:`emerald.fit.walkforward`)."""
