"""The merged, time-ordered event stream (see :mod:`emerald.events.table`)."""

from __future__ import annotations

from emerald.events.table import (
    FIELDS,
    N_FIELDS,
    Book,
    Event,
    EventTable,
    asof_index,
    field_index,
    iter_events,
)

__all__ = ["FIELDS", "N_FIELDS", "Book", "Event", "EventTable", "asof_index", "field_index", "iter_events"]
