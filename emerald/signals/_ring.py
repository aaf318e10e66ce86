"""Bucketed time windows shared by the windowed kernels.

A window of ``window_ns`` at event time ``t`` covers the bucket that holds ``t`` (``t // bucket_ns``)
and the ``window_ns // bucket_ns - 1`` buckets before it, so its resolution is ``bucket_ns``
(1 s by default): the same definition in every driver and in the oracles. Each ring slot holds
``K`` sums (e.g. buy and sell volume); the window totals are kept as running sums.
"""

from __future__ import annotations

import numpy as np
from numba import njit

RING_CAPACITY = 4096  # most buckets a window may span (e.g. 68 min at 1 s, 68 h at 1 min)


def ring_fields(prefix: str, k: int) -> list[tuple]:
    """dtype fields of one ring with ``k`` sums per bucket."""
    return [(f"{prefix}_head", np.int64), (f"{prefix}_slots", np.float64, (RING_CAPACITY, k)),
            (f"{prefix}_sum", np.float64, (k,))]


@njit(cache=True)
def ring_advance_nb(slots, sums, head, bucket, n_buckets, count_j):
    """Move the ring's newest bucket from ``head`` to ``bucket``; buckets leaving the window are
    subtracted from ``sums``. ``count_j`` is the index of a per-bucket event count (or -1): when
    the window's count reaches zero, every sum is reset to exactly 0 so rounding residue of the
    running sums never survives an empty window. Returns the new head. A bucket older than ``head`` (out-of-order
    input) is treated as ``head``: the tape is sorted, so this only guards against misuse."""
    if bucket <= head:
        return head
    k = sums.shape[0]
    if bucket - head >= n_buckets or head < 0:
        for s in range(n_buckets):
            for j in range(k):
                slots[s, j] = 0.0
        for j in range(k):
            sums[j] = 0.0
        return bucket
    for b in range(head + 1, bucket + 1):
        s = b % n_buckets
        for j in range(k):
            sums[j] -= slots[s, j]
            slots[s, j] = 0.0
    if count_j >= 0 and sums[count_j] == 0.0:
        for j in range(k):
            sums[j] = 0.0
    return bucket


@njit(cache=True)
def ring_add_nb(slots, sums, head, j, value, n_buckets):
    """Add ``value`` to sum ``j`` of the newest bucket."""
    slots[head % n_buckets, j] += value
    sums[j] += value
