from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from emerald.errors import ConfigError
from emerald.model import (
    DTYPES,
    InstrumentKind,
    InstrumentRegistry,
    Kind,
    book_dtype,
    get_instrument,
    load_instruments,
)
from emerald.tape.schema import KINDS, arrow_schema

ARROW_FOR = {np.dtype(np.int64): pa.int64(), np.dtype(np.float64): pa.float64(), np.dtype(np.int8): pa.int8(),
             np.dtype(np.bool_): pa.bool_()}


@pytest.mark.parametrize("kind", KINDS)
def test_record_dtypes_match_parquet_schema(kind: str) -> None:
    schema = arrow_schema(kind, 7)
    dtype = book_dtype(7) if kind == "book" else DTYPES[kind]
    assert list(dtype.names) == schema.names
    for name in dtype.names:
        sub = dtype.fields[name][0]
        f = schema.field(name)
        if sub.shape:
            assert f.type == pa.list_(ARROW_FOR[sub.base], 7)
        else:
            assert f.type == ARROW_FOR[sub]
    assert all(n.startswith("ts") is False or schema.field(n).type == pa.int64() for n in schema.names)
    assert dtype.isalignedstruct


def test_nine_kinds_and_priorities() -> None:
    assert len(KINDS) == 9 and set(KINDS) == {k.table for k in Kind}
    assert Kind.FUNDING < Kind.TRADES  # state before trades at equal ts
    with pytest.raises(ConfigError, match="did you mean 'trades'"):
        Kind.parse("trade")


def test_builtin_registry_covers_samples_and_demo() -> None:
    reg = InstrumentRegistry()
    for venue, sym in [("binance-usdm", "BTCUSDT"), ("binance-spot", "BTCUSDT"), ("hyperliquid", "BTC"),
                       ("demo-perp", "SOLUSDT"), ("demo-spot", "ETHUSDT"), ("demo-fx", "EURUSD"), ("bitmex", "XBTUSD")]:
        assert (venue, sym) in reg
    btc = get_instrument("binance-usdm", "BTCUSDT")
    assert btc.kind is InstrumentKind.LINEAR_PERP and btc.funding_interval_ns == 8 * 3600 * 10**9
    assert get_instrument("hyperliquid", "BTC").funding_interval_ns == 3600 * 10**9
    assert get_instrument("bitmex", "XBTUSD").kind is InstrumentKind.INVERSE_PERP
    with pytest.raises(ConfigError, match="binance-usdm:BTCUSDT"):
        get_instrument("binance-usdm", "BTCUSDTT")


def test_instruments_from_toml(tmp_path) -> None:
    p = tmp_path / "inst.toml"
    p.write_text('[okx.BTC-USDT-SWAP]\nkind = "linear_perp"\nbase = "BTC"\nquote = "USDT"\n'
                 'tick_size = 0.1\nlot_size = 0.01\nfunding_interval_hours = 8\ntaker_fee_bps = 5\n')
    specs = load_instruments(p)
    spec = specs[("okx", "BTC-USDT-SWAP")]
    assert spec.normalized == "BTC-USDT-PERP" and spec.taker_fee_bps == 5
    p.write_text('[okx.X]\nkind = "linear_perp"\nbase = "B"\nquote = "Q"\ntick_size = 0.1\nlot_size = 1\n'
                 'funding_interval_hour = 8\n')
    with pytest.raises(ConfigError, match="did you mean 'funding_interval_hours'"):
        load_instruments(p)
    p.write_text('[okx.X]\nkind = "spot"\nbase = "B"\nquote = "Q"\ntick_size = -1\nlot_size = 1\n')
    with pytest.raises(ConfigError, match="tick_size.*was -1"):
        load_instruments(p)
    p.write_text('[okx.X]\nkind = "linear_perp"\nbase = "B"\nquote = "Q"\ntick_size = 1\nlot_size = 1\n')
    with pytest.raises(ConfigError, match="funding_interval_hours"):
        load_instruments(p)
