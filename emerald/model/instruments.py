"""Instrument specifications and a small registry loadable from TOML.

Examples
--------
>>> spec = get_instrument("binance-usdm", "BTCUSDT")
>>> spec.kind.name, spec.base, spec.quote, spec.tick_size
('LINEAR_PERP', 'BTC', 'USDT', 0.1)
>>> spec.normalized
'BTC-USDT-PERP'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from difflib import get_close_matches
from importlib import resources
from pathlib import Path
from typing import Any

from emerald.errors import ConfigError
from emerald.model.enums import InstrumentKind

HOUR_NS = 3_600_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentSpec:
    """What EMERALD needs to know about one tradable instrument.

    Parameters
    ----------
    venue, symbol
        Venue name (``binance-usdm``) and the venue's raw symbol (``BTCUSDT``).
    kind
        spot, linear perp (margined and settled in the quote currency), inverse perp
        (coin-margined: contract value in quote, PnL in base) or forex.
    base, quote
        Currencies; ``qty`` in the tape is in base units (contracts for inverse perps are
        converted with ``contract_size``).
    tick_size, lot_size
        Minimum price and quantity increments.
    contract_size
        Quote value of one contract for inverse perps (e.g. 100 USD), 1.0 otherwise.
    funding_interval_ns
        Funding period for perps (8 h on Binance, 1 h on Hyperliquid); 0 for non-perps.
    maker_fee_bps, taker_fee_bps
        Default fees in basis points; runs may override them.
    """

    venue: str
    symbol: str
    kind: InstrumentKind
    base: str
    quote: str
    tick_size: float
    lot_size: float
    contract_size: float = 1.0
    funding_interval_ns: int = 0
    maker_fee_bps: float = 0.0
    taker_fee_bps: float = 0.0

    def __post_init__(self) -> None:
        where = f"instrument {self.venue}:{self.symbol}"
        for name in ("tick_size", "lot_size", "contract_size"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"{where}: `{name}` must be > 0, was {value!r}")
        if self.funding_interval_ns < 0:
            raise ConfigError(f"{where}: `funding_interval_ns` must be >= 0, was {self.funding_interval_ns!r}")
        is_perp = self.kind in (InstrumentKind.LINEAR_PERP, InstrumentKind.INVERSE_PERP)
        if is_perp and self.funding_interval_ns == 0:
            raise ConfigError(f"{where}: a perp needs `funding_interval_hours` > 0, was 0")
        for name in ("maker_fee_bps", "taker_fee_bps"):
            value = getattr(self, name)
            if not -10.0 <= value <= 100.0:
                raise ConfigError(f"{where}: `{name}` must be in [-10, 100] bps, was {value!r}")

    @property
    def is_perp(self) -> bool:
        return self.kind in (InstrumentKind.LINEAR_PERP, InstrumentKind.INVERSE_PERP)

    @property
    def normalized(self) -> str:
        """Normalised name, ``BASE-QUOTE`` plus ``-PERP`` for perps (cryptofeed style)."""
        return f"{self.base}-{self.quote}" + ("-PERP" if self.is_perp else "")


_KIND_NAMES = {"spot": InstrumentKind.SPOT, "linear_perp": InstrumentKind.LINEAR_PERP,
               "inverse_perp": InstrumentKind.INVERSE_PERP, "forex": InstrumentKind.FOREX}
_TOML_KEYS = {f.name for f in fields(InstrumentSpec)} - {"kind", "funding_interval_ns"} | {
    "kind", "funding_interval_hours"}


def _spec_from_mapping(venue: str, symbol: str, entry: dict[str, Any], source: str) -> InstrumentSpec:
    unknown = set(entry) - _TOML_KEYS
    if unknown:
        key = sorted(unknown)[0]
        hint = get_close_matches(key, sorted(_TOML_KEYS), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(f"{source}: [{venue}.{symbol}] unknown key {key!r}{extra}")
    kind_name = entry.get("kind")
    if kind_name not in _KIND_NAMES:
        raise ConfigError(
            f"{source}: [{venue}.{symbol}] `kind` must be one of {sorted(_KIND_NAMES)}, was {kind_name!r}"
        )
    values = {k: v for k, v in entry.items() if k not in ("kind", "funding_interval_hours")}
    values.setdefault("venue", venue)
    values.setdefault("symbol", symbol)
    hours = entry.get("funding_interval_hours", 0)
    try:
        return InstrumentSpec(
            kind=_KIND_NAMES[kind_name], funding_interval_ns=int(round(float(hours) * HOUR_NS)), **values
        )
    except TypeError as e:
        raise ConfigError(f"{source}: [{venue}.{symbol}] {e}") from None


def load_instruments(path: str | Path) -> dict[tuple[str, str], InstrumentSpec]:
    """Read instruments from a TOML file laid out as ``[venue.SYMBOL]`` tables."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read instruments file {path}: {e}") from None
    return _parse_instruments(data, str(path))


def _parse_instruments(data: dict[str, Any], source: str) -> dict[tuple[str, str], InstrumentSpec]:
    out: dict[tuple[str, str], InstrumentSpec] = {}
    for venue, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: top-level key {venue!r} must be a table of symbols")
        for symbol, entry in table.items():
            if not isinstance(entry, dict):
                raise ConfigError(f"{source}: [{venue}.{symbol}] must be a table")
            out[(venue, symbol)] = _spec_from_mapping(venue, symbol, entry, source)
    return out


def builtin_instruments() -> dict[tuple[str, str], InstrumentSpec]:
    """The packaged registry: the instruments of the real samples and of the demo tape."""
    text = resources.files("emerald.model").joinpath("instruments.toml").read_text(encoding="utf-8")
    return _parse_instruments(tomllib.loads(text), "emerald/model/instruments.toml")


class InstrumentRegistry:
    """Lookup of instrument specs by ``(venue, symbol)``; starts from the built-in table."""

    def __init__(self, specs: dict[tuple[str, str], InstrumentSpec] | None = None) -> None:
        self._specs = dict(builtin_instruments() if specs is None else specs)

    def add(self, spec: InstrumentSpec) -> None:
        self._specs[(spec.venue, spec.symbol)] = spec

    def update_from_toml(self, path: str | Path) -> None:
        self._specs.update(load_instruments(path))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._specs

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._specs.values(), key=lambda s: (s.venue, s.symbol)))

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, venue: str, symbol: str) -> InstrumentSpec:
        try:
            return self._specs[(venue, symbol)]
        except KeyError:
            names = [f"{v}:{s}" for v, s in self._specs]
            hint = get_close_matches(f"{venue}:{symbol}", names, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(
                f"unknown instrument, was {venue}:{symbol}{extra} (add it with a TOML file: "
                "[venue.SYMBOL] kind=..., base=..., quote=..., tick_size=..., lot_size=...)"
            ) from None


_DEFAULT: InstrumentRegistry | None = None


def get_instrument(venue: str, symbol: str) -> InstrumentSpec:
    """Look an instrument up in the built-in registry."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = InstrumentRegistry()
    return _DEFAULT.get(venue, symbol)
