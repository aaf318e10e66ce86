"""Fitted artifacts: the versioned JSON a fit writes and strategies load through the weighted-score
block (:func:`emerald.strategy.score.resolve`).

Document (``format = "emerald-fit/1"``; keys sorted, written with two-space indentation)::

    {
      "format": "emerald-fit/1",
      "strategy": "flow_score_test",
      "hashes": {"log_slice": "...", "strategy_code": "...", "config": "...", "data": ["..."]},
      "params": {"horizon": "1h", "horizon_ns": ..., "min_samples": 100, "percentile": 90.0,
                 "lookback": null, "validation": 0.3, "calibration": null, "history": "tape"},
      "window": {"start": ns, "split": ns, "before": ns, "runs": ["<run_id>", ...]},
      "signals": {
        "flow": {"weight": 61.8, "weight_source": "fitted", "default_weight": 60.0,
                 "threshold": 0.42, "threshold_source": "fitted", "default_threshold": 0.3,
                 "op": "sign", "column": "flow.imbalance", "history_count": 80412,
                 "notes": [], "in_sample": {...}, "out_of_sample": {...}},
        "zscore": {..., "weight_source": "default", "notes": ["37 validation outcomes < min_samples 100: ..."]}
      },
      "calibration": null | {"method": "logistic", "coef": ..., "intercept": ..., "count": ...}
                          | {"method": "isotonic", "x": [...], "y": [...], "count": ...},
      "stats": {"in_sample": {...}, "out_of_sample": {...}},
      "notes": [...]
    }

``window``: outcomes were used only when their horizon ended strictly before ``before`` (ns); the
in-sample part is the outcomes ended before ``split``, the out-of-sample (validation) part the
signals at or after ``split``. Each signal's ``in_sample`` / ``out_of_sample`` hold ``count,
mean_ret, std_ret, win_rate, sharpe, t_stat, ic`` (see :mod:`emerald.fit.fitter`). A value whose
``*_source`` is ``"default"`` is the strategy's declared default and is *not* in
:meth:`Artifact.scoring` (the ``notes`` say why). The artifact's :attr:`~Artifact.hash` is the sha256
(32 hex digits) of the canonical JSON (sorted keys, no whitespace) of the whole document; it is
what the signal log and the run manifests record (``fitted_hash``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from emerald.errors import ConfigError
from emerald.forward.log import digest

FORMAT = "emerald-fit/1"
REQUIRED = ("format", "strategy", "hashes", "params", "window", "signals", "calibration", "stats")
SIGNAL_KEYS = ("weight", "weight_source", "default_weight", "threshold", "threshold_source", "default_threshold")


@dataclass(frozen=True)
class Artifact:
    """A fitted artifact (see the module docstring); ``doc`` is the JSON document."""

    doc: dict[str, Any]

    @property
    def hash(self) -> str:
        return digest(self.doc)

    @property
    def strategy(self) -> str:
        return str(self.doc["strategy"])

    @property
    def signals(self) -> dict[str, dict[str, Any]]:
        return self.doc["signals"]

    def scoring(self) -> dict[str, dict[str, float]]:
        """``{"weights": {name: w}, "thresholds": {name: θ}}`` with only the fitted values (a value
        kept at its declared default is omitted, so the strategy's own default applies)."""
        weights = {n: float(s["weight"]) for n, s in self.signals.items() if s["weight_source"] == "fitted"}
        thresholds = {n: float(s["threshold"]) for n, s in self.signals.items() if s["threshold_source"] == "fitted"}
        return {"weights": weights, "thresholds": thresholds}

    def win_probability(self, score: Any) -> np.ndarray:
        """Calibrated win probability of an entry score (the artifact's weights); ConfigError when
        the artifact has no calibration."""
        cal = self.doc.get("calibration")
        if not cal:
            raise ConfigError("this fitted artifact has no calibration (fit with --calibration logistic|isotonic)")
        x = np.asarray(score, dtype=np.float64)
        if cal["method"] == "logistic":
            return 1.0 / (1.0 + np.exp(-(cal["coef"] * x + cal["intercept"])))
        return np.interp(x, np.asarray(cal["x"], dtype=np.float64), np.asarray(cal["y"], dtype=np.float64))

    def to_json(self) -> bytes:
        """The document as written to disk (sorted keys, indented; NaN becomes null)."""
        return orjson.dumps(self.doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"

    def write(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(self.to_json())
        return p


def load_artifact(path: str | Path) -> Artifact:
    """Read and check a fitted artifact.

    Raises
    ------
    ConfigError
        The file is missing, not JSON, of another format, or a signal's entry is incomplete or
        not a finite number (the message names the file, the field and the value).
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"fitted artifact {p} does not exist")
    try:
        doc = orjson.loads(p.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"fitted artifact {p}: not valid JSON ({exc})") from None
    return Artifact(check_document(doc, str(p)))


def check_document(doc: Any, where: str = "fitted artifact") -> dict[str, Any]:
    """``doc`` if it is a well-formed artifact document, else ConfigError naming field and value."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: an artifact is a JSON object, was {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise ConfigError(f"{where}: field `format` must be {FORMAT!r}, was {doc.get('format')!r}")
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {missing}")
    if not isinstance(doc["signals"], dict):
        raise ConfigError(f"{where}: field `signals` must be an object, was {doc['signals']!r}")
    for name, s in doc["signals"].items():
        for key in SIGNAL_KEYS:
            if not isinstance(s, dict) or key not in s:
                raise ConfigError(f"{where}: field `signals.{name}.{key}` is missing")
        for key in ("weight", "threshold"):
            v = s[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError(f"{where}: field `signals.{name}.{key}` must be a finite number, was {v!r}")
            if s[f"{key}_source"] not in ("fitted", "default"):
                raise ConfigError(f"{where}: field `signals.{name}.{key}_source` must be 'fitted' or 'default', "
                                  f"was {s[f'{key}_source']!r}")
    cal = doc["calibration"]
    if cal is not None and (not isinstance(cal, dict) or cal.get("method") not in ("logistic", "isotonic")):
        raise ConfigError(f"{where}: field `calibration.method` must be 'logistic' or 'isotonic', was "
                          f"{cal.get('method') if isinstance(cal, dict) else cal!r}")
    return doc
