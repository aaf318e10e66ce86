"""The kernel contract, the metric registry and the facade every metric shares.

A metric module (``emerald/signals/<name>.py``) defines, for each metric:

* ``STATE``: a numpy record dtype (``align=True``) holding everything the metric remembers;
* a params dataclass (frozen, keyword-only) whose ``__post_init__`` rejects bad values with a
  message naming the field and the value, and a numba record dtype it converts to;
* ``step_nb(state, p, ts, kind, inst, row, f, i, out)``: advance by event ``i`` of the event
  arrays and write the metric's value(s) at that event to ``out[i, :]``. ``state`` and ``p`` are
  1-element record arrays; ``f`` is the ``(8, n)`` field array of :mod:`emerald.events.table`.
  No allocation, no clock, no I/O. Events the metric does not use leave its state unchanged and
  repeat its current value (as-of semantics);
* ``batch_nb(state, p, ts, kind, inst, row, f, out)``: ``for i in range(n): step_nb(...)``, nothing else.

Both drivers call these two kernels: batch over a whole :class:`~emerald.events.table.EventTable`,
stream over length-1 buffers filled one event at a time, so they agree bit for bit. Book metrics
receive the full-depth arrays of their instrument as four extra arguments
``(bid_px, bid_qty, ask_px, ask_qty)`` indexed by ``row``.

The registry (:data:`REGISTRY`) records for each metric its inputs (event kinds), parameters
(units, defaults, bounds), outputs, warm-up and a one-line definition with its source; the
``emerald signals list`` command and ``docs/signals.md`` are generated from it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

import numpy as np

from emerald.errors import ConfigError
from emerald.events.table import N_FIELDS, EventTable

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS


@dataclass(frozen=True)
class Param:
    """Declared parameter: name, unit, default, inclusive bounds, one-line doc."""

    name: str
    unit: str
    default: Any
    low: float | None = None
    high: float | None = None
    doc: str = ""
    integer: bool = False

    def check(self, value: Any, metric: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ConfigError(f"{metric}: `{self.name}` must be a number ({self.unit}), was {value!r}")
        if self.integer and float(value) != int(value):
            raise ConfigError(f"{metric}: `{self.name}` must be an integer ({self.unit}), was {value!r}")
        if not math.isfinite(float(value)):
            raise ConfigError(f"{metric}: `{self.name}` must be finite, was {value!r}")
        if self.low is not None and value < self.low:
            raise ConfigError(f"{metric}: `{self.name}` must be >= {self.low} {self.unit}, was {value!r}")
        if self.high is not None and value > self.high:
            raise ConfigError(f"{metric}: `{self.name}` must be <= {self.high} {self.unit}, was {value!r}")
        return int(value) if self.integer else value

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "default": self.default, "low": self.low, "high": self.high,
                "doc": self.doc}


class Params:
    """Frozen, keyword-only parameter set checked against the metric's declared :class:`Param` list.

    Instances are created by :meth:`MetricSpec.params`; unknown names get a did-you-mean message.
    """

    __slots__ = ("_metric", "_values", "_record")

    def __init__(self, spec: MetricSpec, values: dict[str, Any]) -> None:
        known = {p.name: p for p in spec.params}
        for key in values:
            if key not in known:
                hint = get_close_matches(key, list(known), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else f"; parameters: {', '.join(known) or 'none'}"
                raise ConfigError(f"{spec.name}: unknown parameter {key!r}{extra}")
        resolved = {name: p.check(values.get(name, p.default), spec.name) for name, p in known.items()}
        if spec.validate is not None:
            spec.validate(resolved)
        object.__setattr__(self, "_metric", spec.name)
        object.__setattr__(self, "_values", resolved)
        rec = np.zeros(1, dtype=spec.params_dtype)
        for name in spec.params_dtype.names:
            if name in resolved:  # a metric without parameters has one placeholder field
                rec[name] = resolved[name]
        object.__setattr__(self, "_record", rec)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"{self._metric} params are frozen")

    def __repr__(self) -> str:
        return f"{self._metric}.Params({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Params) and (self._metric, self._values) == (other._metric, other._values)

    def __hash__(self) -> int:
        return hash((self._metric, tuple(sorted(self._values.items()))))

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    @property
    def record(self) -> np.ndarray:
        """The 1-element numba record array the kernels read."""
        return self._record


@dataclass(frozen=True)
class MetricSpec:
    """Registry entry of one metric (see module docstring)."""

    name: str
    family: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: tuple[Param, ...]
    state_dtype: np.dtype
    step_nb: Any
    batch_nb: Any
    definition: str
    source: str
    warmup: str
    params_dtype: np.dtype = field(default=None)  # type: ignore[assignment]
    init_state: Callable[[np.ndarray, Params], None] | None = None
    validate: Callable[[dict[str, Any]], None] | None = None
    oracle: Callable[[EventTable, Params], np.ndarray] | None = None
    oracle_tolerance: float = 1e-9
    needs_book: bool = False
    instruments: int = 1  # how many instruments the metric reads (inst, ref_inst, ...)
    canary: bool = False  # deliberately broken metrics used to prove the harness catches leaks

    def __post_init__(self) -> None:
        if self.params_dtype is None:
            fields_ = [(p.name, np.int64 if p.integer else np.float64) for p in self.params]
            object.__setattr__(self, "params_dtype", np.dtype(fields_ or [("_unused", np.int64)], align=True))

    def make_params(self, **values: Any) -> Params:
        return Params(self, values)

    def new_state(self, params: Params | None = None) -> np.ndarray:
        state = np.zeros(1, dtype=self.state_dtype)
        if self.init_state is not None:
            self.init_state(state, params or self.make_params())
        return state

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "params": [p.to_dict() for p in self.params], "warmup": self.warmup, "definition": self.definition,
                "source": self.source, "needs_book": self.needs_book, "instruments": self.instruments}


REGISTRY: dict[str, MetricSpec] = {}


def register(spec: MetricSpec) -> MetricSpec:
    if spec.name in REGISTRY and REGISTRY[spec.name] is not spec:
        raise ValueError(f"metric {spec.name!r} registered twice")
    if not spec.canary:
        REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> MetricSpec:
    from emerald import signals  # noqa: F401  (imports every metric module, filling the registry)

    if name not in REGISTRY:
        hint = get_close_matches(name, list(REGISTRY), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"unknown metric, was {name!r}{extra} (see `emerald signals list`)")
    return REGISTRY[name]


# ---------------------------------------------------------------------------------------------
# facade


class Metric:
    """Stream and batch facade over one metric's kernels; it holds params and state, no arithmetic.

    Examples
    --------
    >>> from emerald.signals import Metric
    >>> m = Metric("trade_flow_imbalance", window_ns=60_000_000_000)   # doctest: +SKIP
    >>> values = m.run(events)          # batch: (n_events, n_outputs)     # doctest: +SKIP
    >>> m.update(ts, kind, inst, row, fields)   # stream: one event         # doctest: +SKIP
    """

    def __init__(self, spec: MetricSpec | str, params: Params | None = None, **values: Any) -> None:
        self.spec = get_spec(spec) if isinstance(spec, str) else spec
        if params is not None and values:
            raise ConfigError("pass either a Params object or keyword values, not both")
        self.params = params if params is not None else self.spec.make_params(**values)
        self.state = self.spec.new_state(self.params)
        n_out = len(self.spec.outputs)
        self._ts = np.zeros(1, np.int64)
        self._kind = np.zeros(1, np.int8)
        self._inst = np.zeros(1, np.int32)
        self._row = np.zeros(1, np.int64)
        self._f = np.full((N_FIELDS, 1), np.nan)
        self._out = np.full((1, n_out), np.nan)
        self._books: tuple[np.ndarray, ...] | None = None

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.spec.outputs

    def reset(self) -> None:
        self.state = self.spec.new_state(self.params)

    def _book_args(self, events: EventTable | None) -> tuple[np.ndarray, ...]:
        if not self.spec.needs_book:
            return ()
        if events is not None:
            inst = int(self.params.inst)
            if inst not in events.books:
                empty = np.full((1, 1), np.nan)
                return (empty, empty, empty, empty)
            b = events.books[inst]
            self._books = (b.bid_px, b.bid_qty, b.ask_px, b.ask_qty)
        if self._books is None:
            raise ConfigError(f"{self.spec.name} needs book depth: call bind_books() before update()")
        return self._books

    def bind_books(self, bid_px: np.ndarray, bid_qty: np.ndarray, ask_px: np.ndarray, ask_qty: np.ndarray) -> None:
        """Give a book metric the depth arrays that event ``row`` values index (stream mode)."""
        self._books = (bid_px, bid_qty, ask_px, ask_qty)

    def run(self, events: EventTable) -> np.ndarray:
        """Batch driver: advance over every event; returns ``(n_events, n_outputs)`` values."""
        out = np.empty((len(events), len(self.spec.outputs)))
        self.spec.batch_nb(self.state, self.params.record, events.ts, events.kind, events.inst, events.row, events.f,
                           out, *self._book_args(events))
        return out

    def update(self, ts: int, kind: int, inst: int, row: int, fields: tuple[float, ...] | np.ndarray) -> np.ndarray:
        """Stream driver: advance by one event; returns the ``n_outputs`` values at that event."""
        self._ts[0], self._kind[0], self._inst[0], self._row[0] = ts, kind, inst, row
        self._f[:, 0] = fields
        self.spec.step_nb(self.state, self.params.record, self._ts, self._kind, self._inst, self._row, self._f, 0,
                          self._out, *self._book_args(None))
        return self._out[0].copy()

    def stream(self, events: EventTable) -> np.ndarray:
        """Run the stream driver over a whole table (for parity checks)."""
        if self.spec.needs_book:
            self._book_args(events)
        out = np.empty((len(events), len(self.spec.outputs)))
        for i, ev in enumerate(events):
            out[i] = self.update(ev.ts, ev.kind, ev.inst, ev.row, ev.f)
        return out
