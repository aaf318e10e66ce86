"""Domain model: enums, record dtypes for tape kinds, instrument specs."""

from __future__ import annotations

from emerald.model.dtypes import DEFAULT_BOOK_DEPTH, DTYPES, book_dtype
from emerald.model.enums import BookSide, InstrumentKind, Kind, Side
from emerald.model.instruments import (
    InstrumentRegistry,
    InstrumentSpec,
    builtin_instruments,
    get_instrument,
    load_instruments,
)

__all__ = [
    "DEFAULT_BOOK_DEPTH", "DTYPES", "BookSide", "InstrumentKind", "InstrumentRegistry", "InstrumentSpec",
    "Kind", "Side", "book_dtype", "builtin_instruments", "get_instrument", "load_instruments",
]
