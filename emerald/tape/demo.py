"""The seeded demo tape: three crypto assets on a perp and a spot venue, plus EURUSD.

:func:`build_demo` simulates a latent fair price per asset (BTC, ETH, SOL) and derives from it
everything a strategy reads: trades, top-20 books, quotes, mark/index prices, funding, open
interest and liquidations for ``demo-perp``; trades, books (BTC) and quotes for ``demo-spot``;
forex-hours quotes for ``demo-fx`` EURUSD. It plants, at scheduled times, the conditions the
seed strategies trade on (basis excursions, funding regimes, order-flow bursts, trends and
ranges, VWAP stretches, open-interest accumulation and distribution, liquidation cascades) and
returns a summary whose ``conditions`` section says where each one is, measured on the rows
written. The model, the schedule and the measurement rules are in ``datasets/demo.md``.

Determinism: every random stream is ``Generator(PCG64(SeedSequence(seed, spawn_key=key)))``,
the child :meth:`numpy.random.SeedSequence.spawn` would make, with a key derived from the
stream's name (blake2b, not Python's salted ``hash``) and the day index. Adding an asset or a
stream leaves the others unchanged, day ``d`` depends only on the seed, on ``d`` and on the
state carried from day ``d - 1``, and nothing reads the clock: one seed gives byte-identical
files, manifest included.

Examples
--------
>>> from emerald.tape.demo import build_demo
>>> summary = build_demo("demo-tape", days=1)             # doctest: +SKIP
>>> summary["conditions"]["basis_excursions"][0]["peak_basis_pct"]  # doctest: +SKIP
0.4113
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.model.instruments import get_instrument
from emerald.tape.manifest import load_manifest
from emerald.tape.timeutil import MAX_TS_NS, MIN_TS_NS, ns_to_iso
from emerald.tape.writer import TapeWriter

NS = 1_000_000_000
DAY_S = 86_400
DAY_NS = DAY_S * NS
DAY_MIN = 1_440
HOUR_NS = 3_600 * NS
FUNDING_INTERVAL_NS = 8 * HOUR_NS
OI_STEP_S = 300
BOOK_DEPTH = 20
SOURCE = "emerald.tape.demo"

ProgressFn = Callable[[str, int, int], None]


# --------------------------------------------------------------------------------------------
# instruments and their parameters


@dataclass(frozen=True, slots=True)
class _Asset:
    """A latent fair price and what hangs off it."""

    base: str
    symbol: str
    price: float            # fair price at the start
    vol_day: float          # daily standard deviation of log returns at vol multiplier 1
    beta: float             # loading on the common market shock (correlation of returns)
    scale: float            # planted moves are BTC's move times this
    open_interest: float    # perp open interest at the start, base units
    liq_size: float         # median liquidation size, base units
    basis_elevated: float   # mean perp/spot basis in elevated-funding intervals
    basis_negative: float   # mean basis in negative-funding intervals


@dataclass(frozen=True, slots=True)
class _Market:
    """One crypto instrument (perp or spot) of one asset."""

    venue: str
    asset: int              # index into _ASSETS
    rate: float             # mean trades per second at activity 1
    trade_size: float       # median trade size, base units
    spread_ticks: int       # quoted spread in ticks at vol multiplier 1
    occupancy: float        # probability that a price tick holds resting size
    touch_qty: float        # median size at the touch, base units
    book: bool              # write top-20 books (quotes are written for every market)

    @property
    def is_perp(self) -> bool:
        return self.venue == "demo-perp"


_ASSETS: tuple[_Asset, ...] = (
    _Asset("BTC", "BTCUSDT", 60_000.0, 0.028, 0.92, 1.00, 80_000.0, 0.15, 0.0014, -0.0009),
    _Asset("ETH", "ETHUSDT", 3_000.0, 0.034, 0.85, 1.25, 900_000.0, 3.0, 0.0015, -0.0010),
    _Asset("SOL", "SOLUSDT", 100.0, 0.048, 0.72, 1.60, 9_000_000.0, 100.0, 0.0017, -0.0012),
)
_MARKETS: tuple[_Market, ...] = (
    _Market("demo-perp", 0, 0.50, 0.006, 1, 0.90, 1.2, True),
    _Market("demo-perp", 1, 0.36, 0.12, 1, 0.80, 20.0, True),
    _Market("demo-perp", 2, 0.27, 4.0, 3, 0.40, 500.0, True),
    _Market("demo-spot", 0, 0.18, 0.003, 2, 0.25, 0.3, True),
    _Market("demo-spot", 1, 0.10, 0.06, 1, 0.60, 5.0, False),
    _Market("demo-spot", 2, 0.08, 2.0, 1, 0.90, 150.0, False),
)
FX_VENUE, FX_SYMBOL = "demo-fx", "EURUSD"

DEMO_INSTRUMENTS: tuple[tuple[str, str], ...] = (
    *((m.venue, _ASSETS[m.asset].symbol) for m in _MARKETS), (FX_VENUE, FX_SYMBOL),
)
"""``(venue, symbol)`` of every instrument in the demo tape (specs in ``emerald/model/instruments.toml``)."""

# --------------------------------------------------------------------------------------------
# the weekly schedule (day index modulo 7; documented in datasets/demo.md)

# (day, start hour, end hour, kind, BTC move in %, volatility multiplier). Moves of ETH and SOL
# are BTC's times their `scale`. kinds: range = mean reversion to an anchor, trend = anchor
# moving linearly by `move`, walk = random walk, shock = fast forced move with a liquidation
# cascade on the side the move hurts.
_REGIMES: tuple[tuple[int, float, float, str, float, float], ...] = (
    (0, 0, 6, "range", 0.0, 0.8), (0, 6, 10, "trend", 1.2, 1.0), (0, 10, 12, "walk", 0.0, 1.0),
    (0, 12, 20, "range", 0.0, 0.9), (0, 20, 20.5, "walk", 0.0, 1.3), (0, 20.5, 20.75, "shock", -3.5, 3.0),
    (0, 20.75, 22, "trend", 1.2, 1.8), (0, 22, 24, "range", 0.0, 1.2),
    (1, 0, 4, "range", 0.0, 0.8), (1, 4, 12, "trend", 3.0, 1.0), (1, 12, 20, "range", 0.0, 0.9),
    (1, 20, 24, "trend", 1.5, 1.0),
    (2, 0, 2, "walk", 0.0, 0.8), (2, 2, 2 + 1 / 6, "shock", -2.0, 2.5), (2, 2 + 1 / 6, 8, "range", 0.0, 1.3),
    (2, 8, 12, "trend", 1.0, 0.9), (2, 12, 20, "range", 0.0, 0.8), (2, 20, 24, "walk", 0.0, 0.8),
    (3, 0, 2, "range", 0.0, 0.9), (3, 2, 11, "trend", -3.0, 1.1), (3, 11, 20, "range", 0.0, 1.0),
    (3, 20, 24, "trend", -2.0, 1.1),
    (4, 0, 6, "range", 0.0, 0.9), (4, 6, 6.25, "shock", 3.0, 3.0), (4, 6.25, 12, "walk", 0.0, 1.5),
    (4, 12, 20, "range", 0.0, 1.0), (4, 20, 24, "walk", 0.0, 0.9),
    (5, 0, 8, "range", 0.0, 0.8), (5, 8, 12, "walk", 0.0, 0.9), (5, 12, 14, "range", 0.0, 0.9),
    (5, 14, 18, "trend", 1.5, 1.1), (5, 18, 24, "range", 0.0, 1.0),
    (6, 0, 8, "trend", -1.5, 1.0), (6, 8, 12, "range", 0.0, 0.9), (6, 12, 20, "range", 0.0, 0.9),
    (6, 20, 24, "trend", 1.0, 1.0),
)
_KAPPA = {"range": 0.012, "trend": 0.03, "walk": 0.0, "shock": 0.25}  # pull to the anchor per minute

# (day, start hour, end hour, open-interest change in %), the same for the three perps.
_OI_PLAN: tuple[tuple[int, float, float, float], ...] = (
    (0, 0, 20.5, 1.0), (0, 20.5, 20.75, -4.0), (0, 20.75, 24, 0.5),
    (1, 0, 24, 5.5),
    (2, 2, 2 + 1 / 6, -2.5), (2, 2 + 1 / 6, 24, -0.5),
    (3, 0, 24, 4.5),
    (4, 6, 6.25, -3.0), (4, 6.25, 18, -0.5), (4, 18, 24, -1.5),
    (5, 0, 14, -7.0), (5, 14, 18, 6.5), (5, 18, 24, -1.0),
    (6, 0, 24, 0.5),
)
# Open-interest conditions: (kind, day, start hour, end hour); accumulation / distribution are
# measured over the 24 h ending at the day's last 5-minute sample.
_OI_CONDITIONS: tuple[tuple[str, int, float, float], ...] = (
    ("accumulation", 1, -1 / 12, 24 - 1 / 12), ("distribution", 3, -1 / 12, 24 - 1 / 12), ("oi_spike", 5, 14, 18),
)
# Funding regime of each 8-hour interval of the week (21 intervals); absent means normal.
_FUNDING_REGIMES: dict[int, str] = {4: "elevated", 5: "elevated", 6: "elevated", 7: "elevated",
                                    10: "negative", 11: "negative", 12: "negative", 13: "negative",
                                    17: "elevated"}
BASIS_NORMAL = 0.00003        # mean basis in normal intervals (funding settles at the 0.01 % interest rate)
BASIS_NOISE_SD = 0.0002       # stationary sd of the basis around its regime mean
FUNDING_INTEREST = 0.0001     # Binance-style interest component I per 8 h
FUNDING_CLAMP = 0.0005        # clamp of (I - P)
FUNDING_CAP = 0.0075          # cap of |rate|

BASIS_SHAPE_MIN = (4, 8, 6)           # basis excursion: rise, hold, decay (minutes)
BURST_BEFORE_MIN, BURST_AFTER_MIN, BURST_MOVE_MIN = 4, 3, 6
BURST_MOVE_PCT = 0.8                  # BTC; times the asset's scale
VWAP_RISE_MIN, VWAP_FALL_MIN = 45, 60
VWAP_TARGET_Z = 2.0


def _basis_excursion(day: int, a: int) -> tuple[int, int, float]:
    """(start minute, sign, peak |basis|) of asset ``a``'s basis excursion on ``day``."""
    return 180 + 150 * a + 37 * (day % 7), (1 if (day + a) % 2 == 0 else -1), 0.0040 + 0.0005 * ((day + a) % 3)


def _bursts(a: int) -> tuple[tuple[int, int], ...]:
    """(minute of the move start, sign) of asset ``a``'s order-flow bursts, every day (net move 0)."""
    return (40 + 20 * a, 1), (1140 + 20 * a, -1), (1300 + 20 * a, 1), (1380 + 15 * a, -1)


def _vwap_peak(a: int) -> int:
    """Minute whose close is stretched to ``VWAP_TARGET_Z`` sigma from the session VWAP."""
    return 810 + 120 * a


# --------------------------------------------------------------------------------------------
# seeded streams


def _key(name: str | int) -> int:
    if isinstance(name, int):
        return name
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")


def _stream(seed: int, *names: str | int) -> np.random.Generator:
    """The generator of one named stream (a SeedSequence child keyed by the names)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=tuple(map(_key, names)))))


def _salt(seed: int, *names: str) -> np.uint64:
    """A 64-bit key for the counter-based hashes of one named stream."""
    return np.random.SeedSequence(seed, spawn_key=tuple(map(_key, names))).generate_state(1, np.uint64)[0]


# --------------------------------------------------------------------------------------------
# kernels (sequential recursions; numpy draws the randomness)

_GARCH_ALPHA, _GARCH_BETA = 0.07, 0.90
_GARCH_OMEGA = 1.0 - _GARCH_ALPHA - _GARCH_BETA
_GARCH_CAP = 16.0


@njit(cache=True)
def _fair_minutes_nb(x0, anchor0, h0, z, kappa, drift, vol, sigma):  # type: ignore[no-untyped-def]
    """Minute log-price path: an anchored Ornstein-Uhlenbeck process with GARCH(1,1) shocks.

    ``x[m+1] = x[m] + kappa[m] (anchor - x[m]) + drift[m] + sigma vol[m] sqrt(h[m]) z[m]``; the
    anchor moves by ``drift`` and follows the price where ``kappa == 0`` (random walk);
    ``h[m+1] = omega + (alpha z[m]^2 + beta) h[m]`` (unit unconditional variance, capped).
    """
    n = z.size
    x = np.empty(n + 1)
    sig = np.empty(n)
    x[0] = x0
    a = anchor0
    h = h0
    for m in range(n):
        if kappa[m] == 0.0:
            a = x[m]
        s = sigma * vol[m] * np.sqrt(h)
        sig[m] = s
        x[m + 1] = x[m] + kappa[m] * (a - x[m]) + drift[m] + s * z[m]
        a += drift[m]
        h = min(_GARCH_OMEGA + (_GARCH_ALPHA * z[m] * z[m] + _GARCH_BETA) * h, _GARCH_CAP)
    return x, sig, a, h


@njit(cache=True)
def _ar1_nb(eps, phi, y0):  # type: ignore[no-untyped-def]
    """``y[i] = phi * y[i-1] + eps[i]`` with ``y[-1] = y0``."""
    out = np.empty(eps.size)
    y = y0
    for i in range(eps.size):
        y = phi * y + eps[i]
        out[i] = y
    return out


def _ar1(rng: np.random.Generator, n: int, tau: float, sd: float, y0: float) -> np.ndarray:
    """AR(1) noise with e-folding time ``tau`` steps and stationary standard deviation ``sd``."""
    phi = math.exp(-1.0 / tau)
    return _ar1_nb(rng.standard_normal(n) * (sd * math.sqrt(1.0 - phi * phi)), phi, y0)


def _smooth(target: np.ndarray, tau: float, y0: float) -> np.ndarray:
    """Exponential smoothing of ``target`` with e-folding time ``tau`` steps."""
    phi = math.exp(-1.0 / tau)
    return _ar1_nb(target * (1.0 - phi), phi, y0)


@njit(cache=True)
def _mix_nb(x):  # type: ignore[no-untyped-def]
    """splitmix64 finaliser (uint64, wraps on purpose)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _unit_nb(h):  # type: ignore[no-untyped-def]
    """uint64 hash -> float in [0, 1)."""
    return np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _book_side_nb(touch, direction, secs, salt, occupancy, depth):  # type: ignore[no-untyped-def]
    """Ticks and uniform size draws of the first ``depth`` resting levels from the touch outwards.

    Whether a tick (other than the touch) holds size, and how much, is a hash of the tick and an
    epoch, so levels persist while the book slides: presence refreshes every 64 s, sizes every
    3 s for the first three levels and every 20 s deeper, each tick with its own phase.
    """
    n = touch.size
    ticks = np.empty((n, depth), dtype=np.int64)
    u = np.empty((n, depth))
    for i in range(n):
        k = 0
        j = 0
        while k < depth:
            t = touch[i] + direction * j
            h = _mix_nb(np.uint64(t) ^ salt)
            j += 1
            if j > 1:
                epoch = (secs[i] + (h & np.uint64(63))) >> np.uint64(6)
                if _unit_nb(_mix_nb(h ^ (epoch * np.uint64(0xBF58476D1CE4E5B9)))) >= occupancy:
                    continue
            life = np.uint64(3) if k < 3 else np.uint64(20)
            q_epoch = (secs[i] + h % life) // life
            ticks[i, k] = t
            u[i, k] = _unit_nb(_mix_nb(h ^ np.uint64(0x94D049BB133111EB) ^ (q_epoch * np.uint64(0x9E3779B97F4A7C15))))
            k += 1
    return ticks, u


# --------------------------------------------------------------------------------------------
# small helpers


def _decimals(step: float) -> int:
    return max(0, round(-math.log10(step)))


def _round_step(k: np.ndarray, step: float) -> np.ndarray:
    """Integer multiples of a tick or lot as clean floats."""
    return np.round(k * step, _decimals(step))


def _lots(qty: np.ndarray, lot: float) -> np.ndarray:
    return _round_step(np.maximum(1.0, np.rint(qty / lot)), lot)


def _resting(qty: np.ndarray, lot: float) -> np.ndarray:
    """Resting sizes with two significant digits (as posted by people, and compact), in lots."""
    step = 10.0 ** (np.floor(np.log10(qty)) - 1.0)
    return _lots(np.rint(qty / step) * step, lot)


def _shape(n: int, start: float, rise: float, hold: float, fall: float) -> np.ndarray:
    """Raised-cosine bump on ``0..n-1``: 0 before ``start``, 1 on the hold, 0 after the fall."""
    t = np.arange(n, dtype=np.float64) - start
    out = np.zeros(n)
    up = (t >= 0) & (t < rise)
    out[up] = 0.5 - 0.5 * np.cos(np.pi * t[up] / rise)
    out[(t >= rise) & (t < rise + hold)] = 1.0
    down = (t >= rise + hold) & (t < rise + hold + fall)
    out[down] = 0.5 + 0.5 * np.cos(np.pi * (t[down] - rise - hold) / fall)
    return out


def _latency(rng: np.random.Generator, n: int) -> np.ndarray:
    """Receive latency in ns: 1 ms plus a lognormal with a 4 ms median."""
    return (1_000_000 + 4_000_000 * rng.lognormal(0.0, 0.6, n)).astype(np.int64)


def _strictly_increasing(ts: np.ndarray) -> np.ndarray:
    """Nudge sorted int64 times by whole ns so that no two are equal."""
    idx = np.arange(ts.size, dtype=np.int64)
    return np.maximum.accumulate(ts - idx) + idx


def _hawkes(rng: np.random.Generator, rate: np.ndarray, p_up: np.ndarray, *, branching: float, tau: float,
            inherit: float) -> tuple[np.ndarray, np.ndarray]:
    """Self-exciting arrivals over seconds ``0..rate.size`` (cluster representation).

    Immigrants arrive as a Poisson process of rate ``rate * (1 - branching)`` per second; every
    event has Poisson(``branching``) children after Exp(``tau``) seconds, so the mean rate is
    ``rate``. Each event gets a side (+1 with probability ``p_up`` of its second); a child keeps
    its parent's side with probability ``inherit``. Children after the last second are dropped.
    Returns sorted times (float seconds) and sides (int8).
    """
    n = rate.size
    counts = rng.poisson(rate * (1.0 - branching))
    t = np.repeat(np.arange(n, dtype=np.float64), counts) + rng.random(int(counts.sum()))
    side = np.where(rng.random(t.size) < p_up[t.astype(np.int64)], 1, -1).astype(np.int8)
    times, sides = [t], [side]
    while t.size:
        k = rng.poisson(branching, t.size)
        t = np.repeat(t, k) + rng.exponential(tau, int(k.sum()))
        side = np.repeat(side, k)
        keep = t < n
        t, side = t[keep], side[keep]
        fresh = rng.random(t.size) >= inherit
        drawn = np.where(rng.random(t.size) < p_up[t.astype(np.int64)], 1, -1).astype(np.int8)
        side = np.where(fresh, drawn, side)
        times.append(t)
        sides.append(side)
    t_all, s_all = np.concatenate(times), np.concatenate(sides)
    order = np.argsort(t_all, kind="stable")
    return t_all[order], s_all[order]


def _segments(table: tuple[tuple[Any, ...], ...], day: int) -> list[tuple[Any, ...]]:
    return [row for row in table if row[0] == day % 7]


def _minutes(h: float) -> int:
    return round(h * 60)


# --------------------------------------------------------------------------------------------
# state carried from one day to the next


@dataclass
class _AssetState:
    x: float                # log fair price at the start of the day
    anchor: float
    h: float                # GARCH variance
    basis_mu: float         # smoothed regime mean of the basis
    basis_noise: float
    flow: float             # AR state of the background order-flow noise
    oi_plan: float          # planned log open interest
    oi_noise: float
    funding_settle: float   # rate to settle at the next interval start


@dataclass
class _State:
    assets: list[_AssetState]
    fx_mid: float
    trade_id: list[int]
    summary: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    marks: list[list[np.ndarray]] = field(default_factory=list)      # per asset, per day: mark per second
    oi: list[list[np.ndarray]] = field(default_factory=list)         # per asset, per day: oi per 5 min
    settlements: list[list[tuple[int, float]]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# one day


@dataclass
class _DayPlan:
    kappa: np.ndarray       # (1440,)
    drift: np.ndarray       # (1440,) BTC log drift per minute (regimes only)
    vol: np.ndarray         # (1440,)
    shocks: list[tuple[int, int, int]]   # (start minute, end minute, side of the liquidations)


def _day_plan(day: int) -> _DayPlan:
    kappa = np.zeros(DAY_MIN)
    drift = np.zeros(DAY_MIN)
    vol = np.ones(DAY_MIN)
    shocks = []
    for _, h0, h1, kind, move, v in _segments(_REGIMES, day):
        m0, m1 = _minutes(h0), _minutes(h1)
        kappa[m0:m1] = _KAPPA[kind]
        drift[m0:m1] = math.log1p(move / 100.0) / (m1 - m0)
        vol[m0:m1] = v
        if kind == "shock":
            shocks.append((m0, m1, -1 if move < 0 else 1))
    return _DayPlan(kappa, drift, vol, shocks)


def _activity(day_start_ns: int) -> np.ndarray:
    """Intraday seasonality of trading activity per second (peak 14:00 UTC, quieter weekends)."""
    hours = np.arange(DAY_S) / 3600.0
    weekday = (day_start_ns // DAY_NS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    weekend = 0.7 if weekday >= 5 else 1.0
    return weekend * (1.0 + 0.35 * np.sin(2 * np.pi * (hours - 8.0) / 24.0))


def _session_z(x_min: np.ndarray, volume: np.ndarray, peak: int) -> float:
    """z of the close of minute ``peak`` against the VWAP and volume-weighted sd since 00:00."""
    p = np.exp(0.5 * (x_min[: peak + 1] + x_min[1: peak + 2]))
    v = volume[: peak + 1]
    vwap = (p * v).sum() / v.sum()
    sd = math.sqrt((v * (p - vwap) ** 2).sum() / v.sum())
    return (math.exp(x_min[peak + 1]) - vwap) / sd


def _vwap_bump(x_min: np.ndarray, volume: np.ndarray, peak: int, sign: int) -> tuple[float, np.ndarray]:
    """Amplitude (log) and shape of the temporary bump that puts minute ``peak`` at ``sign * 2`` sigma."""
    shape = _shape(DAY_MIN + 1, peak + 1 - VWAP_RISE_MIN, VWAP_RISE_MIN, 0, VWAP_FALL_MIN)
    amps = np.linspace(-0.08, 0.08, 1601)
    xs = x_min[None, : peak + 2] + amps[:, None] * shape[None, : peak + 2]
    p = np.exp(0.5 * (xs[:, :-1] + xs[:, 1:]))
    v = volume[: peak + 1]
    vwap = (p * v).sum(axis=1) / v.sum()
    sd = np.sqrt((v * (p - vwap[:, None]) ** 2).sum(axis=1) / v.sum())
    f = (np.exp(xs[:, -1]) - vwap) / sd - sign * VWAP_TARGET_Z
    cross = np.flatnonzero(np.sign(f[:-1]) != np.sign(f[1:]))
    if cross.size == 0:
        i = int(np.argmin(np.abs(f)))
        return float(amps[i]), shape
    i = int(cross[np.argmin(np.abs(amps[cross]))])
    amp = amps[i] - f[i] * (amps[i + 1] - amps[i]) / (f[i + 1] - f[i])
    return float(amp), shape


@dataclass
class _AssetDay:
    x: np.ndarray           # log fair price per second (86401 values: the last is the next day's start)
    sig: np.ndarray         # minute shock sd (1440)
    basis: np.ndarray       # perp/spot basis per second
    flow: np.ndarray        # order-flow pressure per second in [-1, 1] (perp)
    activity: np.ndarray    # trading activity multiplier per second
    burst_mult: np.ndarray  # extra trade rate in bursts (perp; spot uses half of the excess)
    burst_side: np.ndarray  # +1/-1 inside a burst window, else 0
    vwap_sign: int
    vwap_amp: float


def _asset_day(seed: int, day: int, a: int, plan: _DayPlan, z_market: np.ndarray, st: _AssetState,
               season: np.ndarray) -> _AssetDay:
    asset = _ASSETS[a]
    rng = _stream(seed, "fair", asset.base, day)
    sigma = asset.vol_day / math.sqrt(DAY_MIN)
    z = asset.beta * z_market + math.sqrt(1.0 - asset.beta**2) * rng.standard_normal(DAY_MIN)
    drift = plan.drift * asset.scale
    burst_side_min = np.zeros(DAY_MIN, dtype=np.int8)
    for m, sign in _bursts(a):
        drift[m: m + BURST_MOVE_MIN] += sign * math.log1p(BURST_MOVE_PCT * asset.scale / 100.0) / BURST_MOVE_MIN
        burst_side_min[m - BURST_BEFORE_MIN: m + BURST_AFTER_MIN] = sign
    x_min, sig, st.anchor, st.h = _fair_minutes_nb(st.x, st.anchor, st.h, z, plan.kappa, drift, plan.vol, sigma)

    # trading activity follows volatility; the VWAP stretch fades volume towards its peak
    vol_act = np.clip(sig / sigma, 0.5, 4.0) ** 0.8
    peak = _vwap_peak(a)
    stretch = _shape(DAY_MIN, peak + 1 - VWAP_RISE_MIN, VWAP_RISE_MIN, 0, VWAP_FALL_MIN)
    burst_mult_min = np.where(burst_side_min != 0, 4.0, 1.0)
    act_min = season.reshape(DAY_MIN, 60).mean(axis=1) * vol_act * (1.0 - 0.4 * stretch)
    z0 = _session_z(x_min, act_min * burst_mult_min, peak)
    sign = 1 if z0 >= 0 else -1  # stretch the way the session already leans
    amp, bump = _vwap_bump(x_min, act_min * burst_mult_min, peak, sign)
    x_min = x_min + amp * bump
    st.x = float(x_min[-1])

    # seconds: Brownian bridge between the minute points
    w = rng.standard_normal((DAY_MIN, 60)) * (sig[:, None] / math.sqrt(60.0))
    walk = np.concatenate([np.zeros((DAY_MIN, 1)), np.cumsum(w, axis=1)[:, :-1]], axis=1)
    frac = np.arange(60) / 60.0
    end = walk[:, -1:] + w[:, -1:]
    xs = x_min[:-1, None] + frac * (x_min[1:] - x_min[:-1])[:, None] + walk - frac * end
    x = np.concatenate([xs.ravel(), x_min[-1:]])

    # basis: regime mean (smoothed over 30 min) + OU noise + the planted excursion
    brng = _stream(seed, "basis", asset.base, day)
    interval = (day * 3 + np.arange(DAY_S) // (8 * 3600)) % 21
    regime = np.array([_FUNDING_REGIMES.get(int(k), "normal") for k in range(21)])[interval]
    target = np.where(regime == "elevated", asset.basis_elevated,
                      np.where(regime == "negative", asset.basis_negative, BASIS_NORMAL))
    mu = _smooth(target, 1800.0, st.basis_mu)
    noise = _ar1(brng, DAY_S, 600.0, BASIS_NOISE_SD, st.basis_noise)
    st.basis_mu, st.basis_noise = float(mu[-1]), float(noise[-1])
    start, bsign, peak_basis = _basis_excursion(day, a)
    rise, hold, fall = (60 * m for m in BASIS_SHAPE_MIN)
    exc = _shape(DAY_S, start * 60, rise, hold, fall)
    held = slice(start * 60 + rise, start * 60 + rise + hold)
    basis = mu + noise
    basis = basis + (bsign * peak_basis - basis[held].mean()) * exc

    # order-flow pressure: informed flow leads the next minute's return; bursts dominate
    frng = _stream(seed, "flow", asset.base, day)
    ahead = x[np.minimum(np.arange(DAY_S) + 60, DAY_S)] - x[:DAY_S]
    sig_s = np.repeat(sig, 60)
    bg = _ar1(frng, DAY_S, 15.0, 0.2, st.flow)
    st.flow = float(bg[-1])
    flow = 0.35 * np.tanh(ahead / sig_s) + bg
    burst_side = np.repeat(burst_side_min, 60)
    flow = np.where(burst_side != 0, 0.72 * burst_side + 0.3 * bg, flow)
    flow = np.clip(flow, -0.94, 0.94)
    activity = season * np.repeat(vol_act * (1.0 - 0.4 * stretch), 60)
    return _AssetDay(x, sig, basis, flow, activity, np.repeat(burst_mult_min, 60), burst_side, sign, amp)


def _spread_ticks(market: _Market, sig_s: np.ndarray, sigma: float) -> np.ndarray:
    """Quoted spread in ticks, widening with volatility."""
    return np.maximum(1, np.rint(market.spread_ticks * (0.75 + 0.25 * sig_s / sigma))).astype(np.int64)


@dataclass
class _Touch:
    """Touch of one market per second: tick indices and prices."""

    kb: np.ndarray
    ka: np.ndarray
    bid: np.ndarray
    ask: np.ndarray


def _touch(market: _Market, ad: _AssetDay) -> _Touch:
    """Best bid and ask around the mid (fair price, times 1 + basis for the perp) per second."""
    asset = _ASSETS[market.asset]
    tick = get_instrument(market.venue, asset.symbol).tick_size
    fair = np.exp(ad.x[:DAY_S])
    mid = fair * (1.0 + ad.basis) if market.is_perp else fair
    spread = _spread_ticks(market, np.repeat(ad.sig, 60), asset.vol_day / math.sqrt(DAY_MIN))
    kb = np.floor(mid / tick - 0.5 * spread).astype(np.int64)
    ka = kb + spread
    return _Touch(kb, ka, _round_step(kb, tick), _round_step(ka, tick))


def _market_day(seed: int, day: int, market: _Market, ad: _AssetDay, touch: _Touch, day_ns: int,
                writer: TapeWriter, liq: tuple[np.ndarray, np.ndarray, np.ndarray] | None, state: _State,
                mi: int) -> dict[str, np.ndarray]:
    """Write the book (if any), quotes and trades of one market for one day; return the trades."""
    asset = _ASSETS[market.asset]
    spec = get_instrument(market.venue, asset.symbol)
    tick, lot = spec.tick_size, spec.lot_size
    rng = _stream(seed, "market", market.venue, asset.symbol, day)
    kb, ka = touch.kb, touch.ka
    flow = ad.flow if market.is_perp else np.clip(0.7 * ad.flow + _ar1(rng, DAY_S, 20.0, 0.15, 0.0), -0.94, 0.94)

    # book: persistent levels, sizes growing away from the touch, near-touch imbalance following the flow
    secs = (day * DAY_S + np.arange(DAY_S, dtype=np.int64)).astype(np.uint64)
    depth = BOOK_DEPTH if market.book else 1
    salt_b = _salt(seed, "book", market.venue, asset.symbol, "bid")
    salt_a = _salt(seed, "book", market.venue, asset.symbol, "ask")
    bt, bu = _book_side_nb(kb, -1, secs, salt_b, market.occupancy, depth)
    at, au = _book_side_nb(ka, 1, secs, salt_a, market.occupancy, depth)
    ranks = np.arange(depth)
    profile = ((1.0 + 0.15 * ranks) ** 1.3)[None, :]
    tilt = np.clip(1.0 - ranks / 10.0, 0.0, 1.0)[None, :] * (1.6 * flow)[:, None]
    bq = _resting(market.touch_qty * profile * (0.3 - np.log1p(-bu)) * np.exp(tilt), lot)
    aq = _resting(market.touch_qty * profile * (0.3 - np.log1p(-au)) * np.exp(-tilt), lot)
    bp, ap = _round_step(bt, tick), _round_step(at, tick)
    ts = day_ns + np.arange(DAY_S, dtype=np.int64) * NS
    recv = ts + _latency(rng, DAY_S)
    sym = asset.symbol
    if market.book:
        writer.write("book", market.venue, sym, {"ts_event": ts, "ts_recv": recv, "bid_px": bp, "bid_qty": bq,
                                                 "ask_px": ap, "ask_qty": aq}, source=SOURCE, depth=BOOK_DEPTH)
    writer.write("quotes", market.venue, sym, {"ts_event": ts, "ts_recv": recv, "bid_px": bp[:, 0],
                                               "bid_qty": bq[:, 0], "ask_px": ap[:, 0], "ask_qty": aq[:, 0]},
                 source=SOURCE)

    # trades: Hawkes arrivals, sides from the flow, heavy-tailed sizes, printed at the touch
    burst = ad.burst_mult if market.is_perp else 1.0 + 0.5 * (ad.burst_mult - 1.0)
    rate = market.rate * ad.activity * burst
    t, side = _hawkes(rng, rate, 0.5 + 0.5 * flow, branching=0.6, tau=1.5, inherit=0.5)
    sec = t.astype(np.int64)
    n = t.size
    size = market.trade_size * rng.lognormal(0.0, 1.3, n)
    in_burst = ad.burst_side[sec] == side
    against = ad.burst_side[sec] == -side  # nobody large trades against a burst
    tail = (rng.random(n) < 0.02) & ~against
    size = np.where(tail, size * (1.0 + rng.pareto(1.4, n)) * 8.0, size)
    informed = np.exp(0.35 * flow[sec] * side)
    size = np.minimum(size * informed * np.where(in_burst, 2.0, 1.0), 3000.0 * market.trade_size)
    trade_ts = day_ns + (t * NS).astype(np.int64)
    qty = _lots(size, lot)
    if liq is not None:  # forced orders of liquidations print as trades too
        trade_ts = np.concatenate([trade_ts, liq[0]])
        side = np.concatenate([side, liq[1]])
        qty = np.concatenate([qty, liq[2]])
        order = np.argsort(trade_ts, kind="stable")
        trade_ts, side, qty = trade_ts[order], side[order], qty[order]
        sec = (trade_ts - day_ns) // NS
    price = np.where(side > 0, ap[sec, 0], bp[sec, 0])
    ids = state.trade_id[mi] + np.arange(trade_ts.size, dtype=np.int64)
    state.trade_id[mi] += int(trade_ts.size)
    trades = {"ts_event": trade_ts, "ts_recv": trade_ts + _latency(rng, trade_ts.size), "price": price,
              "qty": qty, "side": side, "trade_id": ids}
    writer.write("trades", market.venue, sym, trades, source=SOURCE)
    return trades


def _liquidations(seed: int, day: int, a: int, ad: _AssetDay, plan: _DayPlan,
                  day_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Liquidation times, sides and sizes of one perp for one day (priced at the touch later).

    Background liquidations follow sharp minutes (standardised return beyond 2 sigma, on the side
    the move hurts), none against an order-flow burst; each planted shock adds a cascade of 8
    forced orders per minute (plus self-excited followers) decaying over 3 minutes after it.
    """
    asset = _ASSETS[a]
    spec = get_instrument("demo-perp", asset.symbol)
    rng = _stream(seed, "liquidations", asset.base, day)
    ret = (ad.x[60::60] - ad.x[:-1:60]) / ad.sig  # standardised minute returns
    burst = ad.burst_side[::60]  # nobody on the burst's side is forced out during it
    long_rate = np.where(burst > 0, 0.0, 0.02 + 0.5 * np.maximum(0.0, -ret - 2.0))  # per minute
    short_rate = np.where(burst < 0, 0.0, 0.02 + 0.5 * np.maximum(0.0, ret - 2.0))
    for m0, m1, hurt in plan.shocks:
        cascade = np.zeros(DAY_MIN)
        cascade[m0:m1] = 8.0
        cascade[m1:] = 8.0 * np.exp(-np.arange(DAY_MIN - m1) / 3.0)
        if hurt < 0:
            long_rate = long_rate + cascade
        else:
            short_rate = short_rate + cascade
    total = long_rate + short_rate
    rate = np.repeat(total / 60.0, 60)
    p_short = np.repeat(short_rate / total, 60)
    t, side = _hawkes(rng, rate, p_short, branching=0.5, tau=2.0, inherit=0.9)
    size = asset.liq_size * rng.lognormal(0.0, 1.1, t.size)
    size = np.where(rng.random(t.size) < 0.03, size * (1.0 + rng.pareto(1.5, t.size)) * 5.0, size)
    size = np.minimum(size, 100.0 * asset.liq_size)
    ts = _strictly_increasing(day_ns + (t * NS).astype(np.int64))
    return ts, side, _lots(size, spec.lot_size)


# --------------------------------------------------------------------------------------------
# perps: prices, funding, open interest


def _funding_rate(premium: np.ndarray) -> np.ndarray:
    """Binance-style rate from the average premium P: P + clamp(I - P), capped."""
    f = premium + np.clip(FUNDING_INTEREST - premium, -FUNDING_CLAMP, FUNDING_CLAMP)
    return np.round(np.clip(f, -FUNDING_CAP, FUNDING_CAP), 8)


def _mark_index(a: int, perp: _Touch, spot: _Touch) -> tuple[np.ndarray, np.ndarray]:
    """Mark = perp mid, index = spot mid (the demo's single spot venue), at tick / 100 precision."""
    dec = _decimals(get_instrument("demo-perp", _ASSETS[a].symbol).tick_size) + 2
    return np.round(0.5 * (perp.bid + perp.ask), dec), np.round(0.5 * (spot.bid + spot.ask), dec)


def _perp_extras(seed: int, day: int, a: int, mark: np.ndarray, index: np.ndarray, day_ns: int,
                 writer: TapeWriter, st: _AssetState, state: _State) -> None:
    """Write mark/index prices, funding and open interest of one perp."""
    asset = _ASSETS[a]
    spec = get_instrument("demo-perp", asset.symbol)
    ts = day_ns + np.arange(DAY_S, dtype=np.int64) * NS
    writer.write("prices", "demo-perp", asset.symbol, {"ts_event": ts, "mark": mark, "index": index,
                                                       "spot_ref": np.full(DAY_S, np.nan)}, source=SOURCE)
    # funding: predicted every minute from the average premium so far; settles every 8 h
    premium = (mark / index - 1.0).reshape(DAY_MIN, 60).mean(axis=1).reshape(3, 480)
    avg_before = np.cumsum(premium, axis=1) / np.arange(1, 481)
    predicted = _funding_rate(avg_before)
    starts = day_ns + np.arange(3, dtype=np.int64) * FUNDING_INTERVAL_NS
    settle = np.concatenate([[st.funding_settle], predicted[:, -1]])  # rate settled at each start
    rate = np.concatenate([settle[:3, None], predicted[:, :-1]], axis=1)  # minute 0: no premium yet
    pts = (starts[:, None] + np.arange(480, dtype=np.int64) * 60 * NS).ravel()
    nxt = np.repeat(starts + FUNDING_INTERVAL_NS, 480)
    st.funding_settle = float(settle[3])
    f_ts = np.concatenate([starts, pts])
    f_rate = np.concatenate([settle[:3], rate.ravel()])
    f_next = np.concatenate([starts + FUNDING_INTERVAL_NS, nxt])
    f_settle = np.concatenate([np.ones(3, dtype=bool), np.zeros(pts.size, dtype=bool)])
    order = np.argsort(f_ts, kind="stable")
    writer.write("funding", "demo-perp", asset.symbol, {
        "ts_event": f_ts[order], "rate": f_rate[order], "interval_ns": np.full(f_ts.size, FUNDING_INTERVAL_NS),
        "next_funding_ts": f_next[order], "is_settlement": f_settle[order]}, source=SOURCE)
    state.settlements[a].extend((int(s), float(r)) for s, r in zip(starts, settle[:3], strict=True))

    # open interest every 5 minutes: the planned path plus AR noise
    rng = _stream(seed, "open_interest", asset.base, day)
    steps = DAY_S // OI_STEP_S
    inc = np.zeros(steps)
    for _, h0, h1, pct in _segments(_OI_PLAN, day):
        k0, k1 = round(h0 * 12), round(h1 * 12)
        inc[k0:k1] = math.log1p(pct / 100.0) / (k1 - k0)
    plan = st.oi_plan + np.concatenate([[0.0], np.cumsum(inc)[:-1]])
    st.oi_plan = float(plan[-1] + inc[-1])
    noise = _ar1(rng, steps, 6.0, 0.0012, st.oi_noise)
    st.oi_noise = float(noise[-1])
    oi = _lots(asset.open_interest * np.exp(plan + noise), spec.lot_size)
    oi_idx = np.arange(steps) * OI_STEP_S
    writer.write("open_interest", "demo-perp", asset.symbol, {
        "ts_event": day_ns + oi_idx.astype(np.int64) * NS, "oi_qty": oi,
        "oi_notional": np.round(oi * mark[oi_idx], 2)}, source=SOURCE)
    state.oi[a].append(oi)


# --------------------------------------------------------------------------------------------
# EURUSD


def _fx_day(seed: int, day: int, day_ns: int, state: _State, writer: TapeWriter) -> int:
    """EURUSD quotes at irregular times during forex hours (closed Fri 22:00 -> Sun 22:00 UTC)."""
    spec = get_instrument(FX_VENUE, FX_SYMBOL)
    rng = _stream(seed, "fx", day)
    steps = rng.standard_normal(DAY_S) * (0.005 / math.sqrt(DAY_S))
    x = math.log(state.fx_mid) + np.cumsum(steps)
    state.fx_mid = float(math.exp(x[-1]))
    hours = np.arange(DAY_S) // 3600
    rate = np.select([hours < 7, hours < 12, hours < 16, hours < 21], [0.4, 1.5, 2.2, 1.0], 0.4)
    weekday = (day_ns // DAY_NS + 3) % 7
    closed = (weekday == 5) | ((weekday == 4) & (hours >= 22)) | ((weekday == 6) & (hours < 22))
    rate = np.where(closed, 0.0, rate)
    t, _ = _hawkes(rng, rate, np.full(DAY_S, 0.5), branching=0.3, tau=0.5, inherit=0.0)
    if t.size == 0:
        return 0
    sec = t.astype(np.int64)
    mid = np.exp(x[sec])
    asia = (hours[sec] >= 21) | (hours[sec] < 7)
    spread = np.where(asia, 8, 5) + rng.integers(0, 3, t.size)
    kb = np.floor(mid / spec.tick_size - 0.5 * spread).astype(np.int64)
    ts = _strictly_increasing(day_ns + (t * NS).astype(np.int64))
    writer.write("quotes", FX_VENUE, FX_SYMBOL, {
        "ts_event": ts, "ts_recv": ts + _latency(rng, t.size),
        "bid_px": _round_step(kb, spec.tick_size), "ask_px": _round_step(kb + spread, spec.tick_size),
        "bid_qty": _round_step(rng.integers(500, 5001, t.size), spec.lot_size),
        "ask_qty": _round_step(rng.integers(500, 5001, t.size), spec.lot_size)}, source=SOURCE)
    return int(t.size)


# --------------------------------------------------------------------------------------------
# measuring the planted conditions on the rows written


def _iso(ts: int) -> str:
    return ns_to_iso(int(ts)) or ""


def _pct(x: float) -> float:
    return round(100.0 * float(x), 4)


def _window(start_ns: int, end_ns: int) -> dict[str, Any]:
    return {"start": _iso(start_ns), "end": _iso(end_ns), "start_ts": int(start_ns), "end_ts": int(end_ns)}


@dataclass
class _PerpDay:
    """What the measurements need of one written perp for one day."""

    trades: dict[str, np.ndarray]
    liquidations: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # ts, side, price, qty
    mark: np.ndarray        # per second
    index: np.ndarray


def _measure_day(day: int, day_ns: int, plan: _DayPlan, asset_days: list[_AssetDay], perps: dict[int, _PerpDay],
                 state: _State) -> None:
    c = state.summary
    minute = 60 * NS
    for _, h0, h1, kind, move, v in _segments(_REGIMES, day):
        s0, s1 = _minutes(h0) * 60, _minutes(h1) * 60
        entry = {**_window(day_ns + s0 * NS, day_ns + s1 * NS), "kind": kind, "vol_multiplier": v,
                 "planned_btc_move_pct": move, "assets": {}}
        for a, perp in perps.items():
            mk = perp.mark[s0:s1]
            entry["assets"][_ASSETS[a].symbol] = {"change_pct": _pct(mk[-1] / mk[0] - 1.0),
                                                  "range_pct": _pct((mk.max() - mk.min()) / mk[0])}
        c["regimes"].append(entry)
    for a, perp in perps.items():
        asset, ad, tr, mk = _ASSETS[a], asset_days[a], perp.trades, perp.mark
        # basis excursion
        start, sign, peak = _basis_excursion(day, a)
        s0 = start * 60
        s1 = s0 + 60 * sum(BASIS_SHAPE_MIN)
        basis = mk[s0:s1] / perp.index[s0:s1] - 1.0
        i = int(np.argmax(sign * basis))
        over = np.flatnonzero(np.abs(basis) > 0.003)
        c["basis_excursions"].append({
            "venue": "demo-perp", "symbol": asset.symbol, **_window(day_ns + s0 * NS, day_ns + s1 * NS),
            "sign": sign, "planned_peak_pct": _pct(sign * peak), "peak_basis_pct": _pct(basis[i]),
            "peak": _iso(day_ns + (s0 + i) * NS), "seconds_beyond_0.3pct": int(over.size)})
        # order-flow bursts and the move after them
        for m, sign in _bursts(a):
            w0, w1 = day_ns + (m - BURST_BEFORE_MIN) * minute, day_ns + (m + BURST_AFTER_MIN) * minute
            sel = (tr["ts_event"] >= w0) & (tr["ts_event"] < w1)
            buy = float(tr["qty"][sel & (tr["side"] > 0)].sum())
            sell = float(tr["qty"][sel & (tr["side"] < 0)].sum())
            m1 = min(m + BURST_MOVE_MIN, DAY_MIN - 1)
            c["flow_bursts"].append({
                "venue": "demo-perp", "symbol": asset.symbol, **_window(w0, w1), "side": sign,
                "buy_qty": round(buy, 6), "sell_qty": round(sell, 6),
                "buy_sell_ratio": round(buy / sell, 3) if sell else None,
                "move_start": _iso(day_ns + m * minute), "move_end": _iso(day_ns + m1 * minute),
                "move_pct": _pct(mk[m1 * 60] / mk[m * 60] - 1.0)})
        # VWAP stretch, measured on the perp trades exactly as datasets/demo.md defines it
        peak_m = _vwap_peak(a)
        end = day_ns + (peak_m + 1) * minute
        sel = tr["ts_event"] < end
        p, q = tr["price"][sel], tr["qty"][sel]
        vwap = float((p * q).sum() / q.sum())
        sd = math.sqrt(float((q * (p - vwap) ** 2).sum() / q.sum()))
        c["vwap_stretches"].append({
            "venue": "demo-perp", "symbol": asset.symbol, "minute": _iso(end - minute), "minute_end": _iso(end),
            "minute_end_ts": int(end), "sign": ad.vwap_sign, "target_z": ad.vwap_sign * VWAP_TARGET_Z,
            "z": round((float(p[-1]) - vwap) / sd, 4), "close": float(p[-1]), "vwap": round(vwap, 6),
            "sd": round(sd, 6), "bump_pct": _pct(math.expm1(ad.vwap_amp))})
        # liquidation cascades
        lts, lside, lprice, lqty = perp.liquidations
        for m0, m1, side in plan.shocks:
            w0, w1 = day_ns + m0 * minute, day_ns + (m1 + 10) * minute
            sel = (lts >= w0) & (lts < w1) & (lside == side)
            c["liquidation_cascades"].append({
                "venue": "demo-perp", "symbol": asset.symbol, **_window(w0, w1), "side": side,
                "count": int(sel.sum()), "qty": round(float(lqty[sel].sum()), 6),
                "notional": round(float((lqty[sel] * lprice[sel]).sum()), 2),
                "price_change_pct": _pct(mk[m1 * 60] / mk[m0 * 60] - 1.0)})


def _measure_span(day_ns0: int, days: int, state: _State) -> None:
    """Conditions that span days: open-interest windows and funding regimes."""
    c = state.summary
    step_ns = OI_STEP_S * NS
    for a, asset in enumerate(_ASSETS):
        if not state.oi[a]:
            continue  # perp not written
        oi = np.concatenate(state.oi[a])
        mk = np.concatenate(state.marks[a])[:: OI_STEP_S]
        for week in range(0, days, 7):
            for kind, day, h0, h1 in _OI_CONDITIONS:
                d = week + day
                k0, k1 = round((d * 24 + h0) * 12), round((d * 24 + h1) * 12)
                if k0 < 0 or k1 >= oi.size:
                    continue
                entry = {"venue": "demo-perp", "symbol": asset.symbol, "kind": kind,
                         **_window(day_ns0 + k0 * step_ns, day_ns0 + k1 * step_ns),
                         "oi_change_pct": _pct(oi[k1] / oi[k0] - 1.0), "price_change_pct": _pct(mk[k1] / mk[k0] - 1.0)}
                if kind == "oi_spike":
                    k24 = k1 - 24 * 12
                    entry["oi_change_24h_pct"] = _pct(oi[k1] / oi[k24] - 1.0) if k24 >= 0 else None
                c["open_interest"].append(entry)
        # funding: consecutive settlements of the same planned regime
        rates = state.settlements[a]
        runs: list[dict[str, Any]] = []
        for k, (ts, r) in enumerate(rates):
            # the rate settled at interval k's start accrued over interval k - 1
            regime = _FUNDING_REGIMES.get((k - 1) % 21, "normal") if k else "normal"
            if runs and runs[-1]["regime"] == regime:
                runs[-1]["rates"].append(r)
                runs[-1]["last_ts"] = ts
            else:
                runs.append({"regime": regime, "first_ts": ts, "last_ts": ts, "rates": [r]})
        for run in runs:
            rr = run.pop("rates")
            c["funding_regimes"].append({
                "venue": "demo-perp", "symbol": asset.symbol, "regime": run["regime"],
                "first_settlement": _iso(run["first_ts"]), "last_settlement": _iso(run["last_ts"]),
                "first_settlement_ts": run["first_ts"], "last_settlement_ts": run["last_ts"],
                "settlements": len(rr), "min_rate_pct": _pct(min(rr)), "max_rate_pct": _pct(max(rr)),
                "mean_rate_pct": _pct(sum(rr) / len(rr))})


# --------------------------------------------------------------------------------------------
# the builder


def _parse_start(start: str) -> int:
    try:
        day = np.datetime64(start, "D")
    except ValueError:
        raise ConfigError(f"`start` must be a date like 2024-03-01, was {start!r}") from None
    if str(day) != start:
        raise ConfigError(f"`start` must be a date like 2024-03-01, was {start!r}")
    return int(day.astype("datetime64[ns]").astype(np.int64))


def build_demo(root: str | Path, *, seed: int = 7, days: int = 7, start: str = "2024-03-01",
               instruments: Sequence[tuple[str, str]] | None = None,
               progress: ProgressFn | None = None) -> dict[str, Any]:
    """Build the demo tape under ``root`` and return its summary.

    Parameters
    ----------
    root
        Tape folder; created if missing. It must not already hold demo-venue data.
    seed
        Non-negative integer; the same seed gives byte-identical files.
    days
        Whole UTC days to generate, starting at ``start`` 00:00 UTC.
    start
        First date, ``YYYY-MM-DD``. Forex weekends follow the real weekdays of the dates; the
        crypto schedule follows the day index (see ``datasets/demo.md``).
    instruments
        ``(venue, symbol)`` pairs of :data:`DEMO_INSTRUMENTS` to write (default: all). Their
        rows are exactly those of a full build; conditions are listed for the perps written.
    progress
        Optional ``callback(step, done, total)``.

    Returns
    -------
    dict
        ``seed``, ``days``, ``start``, ``end``; ``rows[kind][venue][symbol]`` with ``rows``,
        ``first_ts``, ``last_ts``; ``write`` (the :class:`WriteReport` dict); ``conditions``.

    Raises
    ------
    ConfigError
        Bad arguments, or ``root`` already holds demo data.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"`seed` must be a non-negative integer, was {seed!r}")
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ConfigError(f"`days` must be a positive integer, was {days!r}")
    seed, days = int(seed), int(days)
    start_ns = _parse_start(start)
    if start_ns < MIN_TS_NS or start_ns + days * DAY_NS > MAX_TS_NS:
        raise ConfigError(f"the demo must lie within 2000-01-01 .. 2100-01-01, was start={start!r}, days={days}")
    wanted = DEMO_INSTRUMENTS if instruments is None else tuple(tuple(i) for i in instruments)
    for pair in wanted:
        if pair not in DEMO_INSTRUMENTS:
            names = [f"{v}:{s}" for v, s in DEMO_INSTRUMENTS]
            raise ConfigError(f"`instruments` must be (venue, symbol) pairs of the demo ({', '.join(names)}), "
                              f"was {pair!r}")
    chosen = {i for i, m in enumerate(_MARKETS) if (m.venue, _ASSETS[m.asset].symbol) in wanted}
    fx = (FX_VENUE, FX_SYMBOL) in wanted
    root = Path(root)
    venues = {v for v, _ in DEMO_INSTRUMENTS}
    taken = sorted({e["venue"] for e in load_manifest(root)["files"].values()} & venues)
    if taken:
        raise ConfigError(f"{root} already holds demo data (venues {taken}); build into an empty folder, was {root}")

    state = _State(
        assets=[_AssetState(x=math.log(s.price), anchor=math.log(s.price), h=1.0, basis_mu=BASIS_NORMAL,
                            basis_noise=0.0, flow=0.0, oi_plan=0.0, oi_noise=0.0, funding_settle=FUNDING_INTEREST)
                for s in _ASSETS],
        fx_mid=1.08, trade_id=[1_000_000 * (i + 1) for i in range(len(_MARKETS))],
        summary={k: [] for k in ("regimes", "basis_excursions", "funding_regimes", "flow_bursts",
                                 "vwap_stretches", "open_interest", "liquidation_cascades")},
        marks=[[] for _ in _ASSETS], oi=[[] for _ in _ASSETS], settlements=[[] for _ in _ASSETS])
    writer = TapeWriter(root)
    stages = ("prices", "markets", "write")
    total = days * len(stages) + 1
    done = 0

    def tick(step: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(step, done, total)

    for day in range(days):
        day_ns = start_ns + day * DAY_NS
        date = str(np.datetime64(day_ns, "ns").astype("datetime64[D]"))
        plan = _day_plan(day)
        season = _activity(day_ns)
        z_market = _stream(seed, "market-shock", day).standard_normal(DAY_MIN)
        asset_days = [_asset_day(seed, day, a, plan, z_market, state.assets[a], season) for a in range(len(_ASSETS))]
        touches = [_touch(m, asset_days[m.asset]) for m in _MARKETS]
        tick(f"{date}: fair prices")
        perps: dict[int, _PerpDay] = {}
        for mi, market in enumerate(_MARKETS):
            if mi not in chosen:
                continue
            a, touch = market.asset, touches[mi]
            if not market.is_perp:
                _market_day(seed, day, market, asset_days[a], touch, day_ns, writer, None, state, mi)
                continue
            lts, lside, lqty = _liquidations(seed, day, a, asset_days[a], plan, day_ns)
            trades = _market_day(seed, day, market, asset_days[a], touch, day_ns, writer, (lts, lside, lqty),
                                 state, mi)
            sec = (lts - day_ns) // NS
            lprice = np.where(lside > 0, touch.ask[sec], touch.bid[sec])  # forced orders fill at the touch
            writer.write("liquidations", market.venue, _ASSETS[a].symbol,
                         {"ts_event": lts, "side": lside, "price": lprice, "qty": lqty}, source=SOURCE)
            spot = next(i for i, m in enumerate(_MARKETS) if m.asset == a and not m.is_perp)
            mark, index = _mark_index(a, touch, touches[spot])
            _perp_extras(seed, day, a, mark, index, day_ns, writer, state.assets[a], state)
            state.marks[a].append(mark)
            perps[a] = _PerpDay(trades, (lts, lside, lprice, lqty), mark, index)
        if fx:
            _fx_day(seed, day, day_ns, state, writer)
        tick(f"{date}: markets")
        _measure_day(day, day_ns, plan, asset_days, perps, state)
        writer.commit()
        tick(f"{date}: write")
    _measure_span(start_ns, days, state)
    report = writer.report
    rows: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (kind, venue, symbol), e in sorted(report.entries.items()):
        rows.setdefault(kind, {}).setdefault(venue, {})[symbol] = {
            "rows": e.rows_written, "first_ts": e.first_ts, "last_ts": e.last_ts,
            "first": ns_to_iso(e.first_ts), "last": ns_to_iso(e.last_ts)}
    tick("summary")
    return {"seed": seed, "days": days, "start": _iso(start_ns), "end": _iso(start_ns + days * DAY_NS),
            "instruments": [f"{v}:{s}" for v, s in DEMO_INSTRUMENTS if (v, s) in wanted], "rows": rows, "write": report.to_dict(),
            "conditions": state.summary}
