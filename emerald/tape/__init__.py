"""The tape: Parquet schemas, the validating writer, the reader, coverage, importers."""

from __future__ import annotations

from emerald.tape.schema import KINDS, SCHEMA_VERSION, arrow_schema
from emerald.tape.writer import KindReport, TapeWriter, WriteReport, write_tape

__all__ = ["KINDS", "SCHEMA_VERSION", "KindReport", "TapeWriter", "WriteReport", "arrow_schema", "write_tape"]
