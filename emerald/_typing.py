"""Type aliases shared across EMERALD."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

F64Array = npt.NDArray[np.float64]
I64Array = npt.NDArray[np.int64]
I8Array = npt.NDArray[np.int8]
BoolArray = npt.NDArray[np.bool_]
TsNs = int  # int64 nanoseconds since the Unix epoch, UTC

KindName = Literal[
    "trades", "book", "book_delta", "quotes", "prices", "funding", "open_interest", "liquidations", "bars"
]
ReadFormat = Literal["polars", "arrow", "numpy", "pandas"]
