"""Enumerations. Inside kernels they are plain ints; outside, ``IntEnum``."""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    """Aggressor side of a trade, or side of an order. Stored as int8 +1 / -1."""

    BUY = 1
    SELL = -1


class BookSide(IntEnum):
    """Side of a book level in ``book_delta`` rows."""

    BID = 1
    ASK = -1


class Kind(IntEnum):
    """Tape kinds. The value is the kind priority used to break ties at equal ``ts_event``
    in the merged event stream (lower first): state that a decision reads (funding, prices,
    book) is applied before the trades of the same nanosecond."""

    FUNDING = 0
    OPEN_INTEREST = 1
    PRICES = 2
    BOOK_DELTA = 3
    BOOK = 4
    QUOTES = 5
    TRADES = 6
    LIQUIDATIONS = 7
    BARS = 8

    @property
    def table(self) -> str:
        """The tape folder name of this kind (``trades``, ``book``, ...)."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Kind:
        try:
            return cls[name.upper()]
        except KeyError:
            from difflib import get_close_matches

            from emerald.errors import ConfigError

            names = [k.table for k in cls]
            hint = get_close_matches(name.lower(), names, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else f"; known kinds: {', '.join(names)}"
            raise ConfigError(f"unknown tape kind, was {name!r}{extra}") from None


class InstrumentKind(IntEnum):
    SPOT = 0
    LINEAR_PERP = 1
    INVERSE_PERP = 2
    FOREX = 3


KIND_NAMES: tuple[str, ...] = tuple(k.table for k in sorted(Kind, key=lambda k: k.table))
