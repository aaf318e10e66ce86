"""Exceptions grouped by remedy (see STYLE.md section 6).

Messages name the file, the field and the value received: ``..., was 1.5``.
"""

from __future__ import annotations


class EmeraldError(Exception):
    """Base class of every error EMERALD raises on purpose."""


class ConfigError(EmeraldError, ValueError):
    """Fix the config or the arguments; raised before anything runs."""


class DataError(EmeraldError):
    """Input data breaks a schema, order or gap rule; never silently repaired.

    ``path``, ``field`` and ``value`` are kept as attributes so callers (the CLI, reports)
    can show them without parsing the message.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        field: str | None = None,
        value: object = None,
        line: int | None = None,
    ) -> None:
        parts = [message]
        if path is not None:
            parts.append(f"file {path}" + (f", line {line}" if line is not None else ""))
        if field is not None:
            parts.append(f"field `{field}`")
        if value is not None:
            parts.append(f"was {value!r}")
        super().__init__(": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else message)
        self.path, self.field, self.value, self.line = path, field, value, line


class CorruptFileError(DataError):
    """A tape file cannot be read or does not match its manifest entry."""


class StrategyError(EmeraldError):
    """User strategy code failed (raised ``from`` the original error)."""


class ExchangeError(EmeraldError):
    """A venue answered with an error."""


class TransientExchangeError(ExchangeError):
    """Retry with backoff: timeout, 5xx, rate limit."""


class OrderRejectedError(ExchangeError):
    """Do not retry; record and surface."""
