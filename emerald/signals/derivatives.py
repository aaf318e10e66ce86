"""Derivatives metrics: funding, basis, open interest and cross-venue spreads.

Sources: ``emerald-gameplan.md`` §1.1 (basis = (perp - spot) / spot x 100, strength classes at
±0.2 % / ±0.5 %, funding-basis convergence at ±10 %/yr funding and ±0.2 % basis, divergence at
±0.1 %), ``cto-review-revised-direction.md`` (funding velocity over 4 h / 8 h, funding + volume
context, multi-timeframe open interest over 4 h / 24 h / 7 d), ``algo-engine-design.md``
(annualised funding = rate x 3 x 365 for 8-hour funding).

Conventions shared by the metrics of this module:

* funding rates are fractions per funding interval (0.0001 = 0.01 %); **annualised** values are
  percent per year of 365 days, ``rate x (365 d / interval) x 100``, where the interval is the
  one the funding event carries (``f1``), or the ``interval_ns`` parameter when it carries none;
* a funding event of the instrument counts when ``settled_only`` is 0 (every published rate,
  predicted or settled) or when it is a settlement (``is_settlement``);
* prices come from a declared source (:data:`emerald.signals._asof.PRICE_SOURCES`), as of the
  event; NaN, infinite and non-positive inputs are skipped, so the previous as-of value stays;
* "the value h ago" is read at a bucket resolution from a lag ring (:mod:`emerald.signals._asof`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from emerald.errors import ConfigError
from emerald.events.table import EventTable
from emerald.signals._asof import (
    FUNDING,
    OPEN_INTEREST,
    PRICE_DOC,
    PX_INDEX,
    PX_MID,
    PX_TRADE,
    TRADES,
    AsofSeries,
    check_lags,
    check_window,
    lag_advance_nb,
    lag_fields,
    lag_init,
    lag_value_nb,
    price_at,
    price_update_nb,
)
from emerald.signals._ring import ring_add_nb, ring_advance_nb, ring_fields
from emerald.signals.base import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, MetricSpec, Param, Params, register

YEAR_NS = 365 * DAY_NS
F8 = np.float64

INST = Param("inst", "index", 0, 0, 1023, "perp instrument index in the event table", integer=True)
REF_INST = Param("ref_inst", "index", 1, 0, 1023, "reference (spot) instrument index in the event table",
                 integer=True)
SETTLED_ONLY = Param("settled_only", "flag", 0, 0, 1, "1: only settlement funding events count; 0: every "
                     "published rate (predicted or settled)", integer=True)
INTERVAL = Param("interval_ns", "ns", 8 * HOUR_NS, 60 * SECOND_NS, 7 * DAY_NS,
                 "funding interval used when a funding event carries none", integer=True)


def _annualise(rate: float, interval: float) -> float:
    return rate * YEAR_NS / interval * 100.0


@njit(cache=True, inline="always", error_model="numpy")
def _annualise_nb(rate, interval):
    return rate * YEAR_NS / interval * 100.0


@njit(cache=True, inline="always", error_model="numpy")
def _funding_event_nb(kind, inst, f, i, want_inst, settled_only, default_interval):
    """``(rate, interval)`` of event ``i`` when it is a counted funding event of ``want_inst``
    with a finite rate, else ``(nan, nan)``. (Kernels pass scalars, not records, to shared
    helpers: numba treats a record that extends another as an experimental subtype.)"""
    k, ins, r, iv, settled = kind[i], inst[i], f[0, i], f[1, i], f[3, i]  # read every array before a branch
    if ins != want_inst or k != FUNDING:
        return np.nan, np.nan
    if settled_only == 1 and not settled > 0.5:
        return np.nan, np.nan
    if not np.isfinite(r):
        return np.nan, np.nan
    return r, (iv if (np.isfinite(iv) and iv > 0.0) else float(default_interval))


class _FundingOracle:
    """Plain-Python as-of funding rate and interval (oracle side)."""

    def __init__(self, params: Params) -> None:
        self.p = params
        self.rate = math.nan
        self.interval = float(params.interval_ns)

    def apply(self, kind: int, inst: int, fields: np.ndarray) -> bool:
        if inst != self.p.inst or kind != FUNDING:
            return False
        if self.p.settled_only == 1 and not fields[3] > 0.5:
            return False
        if not math.isfinite(fields[0]):
            return False
        self.rate = float(fields[0])
        iv = fields[1]
        self.interval = float(iv) if math.isfinite(iv) and iv > 0 else float(self.p.interval_ns)
        return True

    @property
    def annualised(self) -> float:
        return _annualise(self.rate, self.interval)


def _rows(events: EventTable):
    """(ts, kind, inst, fields) per event as Python values, for the oracles."""
    f = events.f.T
    return zip(events.ts.tolist(), events.kind.tolist(), events.inst.tolist(), f, strict=True)


# ------------------------------------------------------------------------- funding annualised

FA_STATE = np.dtype([("rate", F8), ("interval", F8)], align=True)


def _fa_init(state: np.ndarray, params: Params) -> None:
    state["rate"] = np.nan
    state["interval"] = params.interval_ns


@njit(cache=True, inline="always", error_model="numpy")
def funding_annualized_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """As-of funding rate of ``inst`` and its annualised percent ``rate x 365 d / interval x 100``."""
    s = state[0]
    q = p[0]
    r, iv = _funding_event_nb(kind, inst, f, i, q.inst, q.settled_only, q.interval_ns)
    if not np.isnan(r):
        s.rate, s.interval = r, iv
    out[i, 0] = s.rate
    out[i, 1] = _annualise_nb(s.rate, s.interval)


@njit(cache=True, error_model="numpy", nogil=True)
def funding_annualized_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        funding_annualized_step_nb(state, p, ts, kind, inst, row, f, i, out)


def funding_annualized_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 2), np.nan)
    fo = _FundingOracle(params)
    for i, (_, k, ins, fields) in enumerate(_rows(events)):
        fo.apply(k, ins, fields)
        out[i] = fo.rate, fo.annualised
    return out


register(MetricSpec(
    name="funding_annualized",
    family="derivatives",
    inputs=("funding",),
    outputs=("rate", "annualized_pct"),
    params=(INST, SETTLED_ONLY, INTERVAL),
    state_dtype=FA_STATE,
    step_nb=funding_annualized_step_nb,
    batch_nb=funding_annualized_batch_nb,
    init_state=_fa_init,
    oracle=funding_annualized_oracle,
    definition="as-of funding rate (fraction per interval) and rate x (365 d / interval) x 100 "
               "(%/yr; 0.01 % per 8 h = 10.95 %/yr)",
    source="algo-engine-design.md: annualized_apy = funding_rate x 3 x 365; emerald-gameplan.md: annualized_pct",
    warmup="first counted funding event",
))

# ------------------------------------------------------------------------- 24 h average funding

FAVG_STATE = np.dtype(ring_fields("w", 2) + [("rate", F8), ("interval", F8)], align=True)  # sums: rate, count


def _favg_init(state: np.ndarray, params: Params) -> None:
    state["w_head"] = -1
    state["rate"] = np.nan
    state["interval"] = params.interval_ns


@njit(cache=True, inline="always", error_model="numpy")
def funding_average_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Per-settlement average: the plain mean of the counted funding rates published in the
    window (each settlement weighs the same, whatever its interval); annualised with the
    interval of the latest counted event. NaN while the window holds none."""
    s = state[0]
    q = p[0]
    nb = q.window_ns // q.bucket_ns
    s.w_head = ring_advance_nb(s.w_slots, s.w_sum, s.w_head, ts[i] // q.bucket_ns, nb, 1)
    r, iv = _funding_event_nb(kind, inst, f, i, q.inst, q.settled_only, q.interval_ns)
    if not np.isnan(r):
        s.rate, s.interval = r, iv
        ring_add_nb(s.w_slots, s.w_sum, s.w_head, 0, r, nb)
        ring_add_nb(s.w_slots, s.w_sum, s.w_head, 1, 1.0, nb)
    cnt = s.w_sum[1]
    if cnt > 0.0:
        avg = s.w_sum[0] / cnt
        out[i, 0] = avg
        out[i, 1] = _annualise_nb(avg, s.interval)
    else:
        out[i, 0] = np.nan
        out[i, 1] = np.nan
    out[i, 2] = cnt


@njit(cache=True, error_model="numpy", nogil=True)
def funding_average_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        funding_average_step_nb(state, p, ts, kind, inst, row, f, i, out)


def funding_average_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 3), np.nan)
    nbk = params.window_ns // params.bucket_ns
    fo = _FundingOracle(params)
    counted: list[tuple[int, float]] = []  # (bucket, rate)
    last = None
    for i, (t, k, ins, fields) in enumerate(_rows(events)):
        b = t // params.bucket_ns
        last = b if last is None else max(last, b)
        if fo.apply(k, ins, fields):
            counted.append((b, fo.rate))
        inside = [r for bb, r in counted if last - nbk < bb <= last]
        out[i, 2] = len(inside)
        if inside:
            avg = sum(inside) / len(inside)
            out[i, 0], out[i, 1] = avg, _annualise(avg, fo.interval)
    return out


register(MetricSpec(
    name="funding_average",
    family="derivatives",
    inputs=("funding",),
    outputs=("avg_rate", "avg_annualized_pct", "count"),
    params=(INST, Param("settled_only", "flag", 1, 0, 1, "1: average settled rates (per settlement); 0: every "
                        "published rate", integer=True), INTERVAL,
            Param("window_ns", "ns", 24 * HOUR_NS, MINUTE_NS, 7 * DAY_NS, "averaging window", integer=True),
            Param("bucket_ns", "ns", MINUTE_NS, SECOND_NS, HOUR_NS, "window resolution", integer=True)),
    state_dtype=FAVG_STATE,
    step_nb=funding_average_step_nb,
    batch_nb=funding_average_batch_nb,
    init_state=_favg_init,
    validate=lambda v: check_window(v, "window_ns", "bucket_ns"),
    oracle=funding_average_oracle,
    oracle_tolerance=1e-9,
    definition="mean of the settled funding rates in the window (per-settlement, not time-weighted: each "
               "settlement counts once), its annualised % (latest interval) and the count",
    source="emerald-gameplan.md: 'Use 24h avg, not snapshots' (funding manipulation)",
    warmup="first counted funding event in the window; NaN when the window holds none",
))

# ------------------------------------------------------------------------- funding velocity

FV_STATE = np.dtype(lag_fields("g", 1) + [("rate", F8), ("interval", F8)], align=True)


def _fv_init(state: np.ndarray, params: Params) -> None:
    lag_init(state, "g")
    state["rate"] = np.nan
    state["interval"] = params.interval_ns


@njit(cache=True, inline="always", error_model="numpy")
def funding_velocity_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """``v_s = r(t) - r(t - short)``, ``v_l = r(t) - r(t - long)``, acceleration
    ``(r(t) - r(t - short)) - (r(t - short) - r(t - long))`` on the as-of published rate; the
    lagged rates are as of the end of the bucket ``lag / bucket_ns`` buckets back."""
    s = state[0]
    q = p[0]
    s.g_head = lag_advance_nb(s.g_vals, s.g_head, ts[i] // q.bucket_ns, s.g_cur)
    r, iv = _funding_event_nb(kind, inst, f, i, q.inst, q.settled_only, q.interval_ns)
    if not np.isnan(r):
        s.g_cur[0] = r
    r = s.g_cur[0]
    r1 = lag_value_nb(s.g_vals, s.g_head, q.short_ns // q.bucket_ns, 0)
    r2 = lag_value_nb(s.g_vals, s.g_head, q.long_ns // q.bucket_ns, 0)
    out[i, 0] = r - r1
    out[i, 1] = r - r2
    out[i, 2] = (r - r1) - (r1 - r2)


@njit(cache=True, error_model="numpy", nogil=True)
def funding_velocity_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        funding_velocity_step_nb(state, p, ts, kind, inst, row, f, i, out)


def funding_velocity_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 3), np.nan)
    fo = _FundingOracle(params)
    series = AsofSeries()
    bk = params.bucket_ns
    first = last = None
    for i, (t, k, ins, fields) in enumerate(_rows(events)):
        b = t // bk
        first = b if first is None else first
        last = b if last is None else max(last, b)
        if fo.apply(k, ins, fields):
            series.add(t, fo.rate)
        r = fo.rate
        r1 = series.lagged(last, params.short_ns // bk, bk, first)
        r2 = series.lagged(last, params.long_ns // bk, bk, first)
        out[i] = r - r1, r - r2, (r - r1) - (r1 - r2)
    return out


def _fv_validate(v: dict) -> None:
    if v["long_ns"] <= v["short_ns"]:
        raise ConfigError(f"`long_ns` must be > `short_ns` ({v['short_ns']}), was {v['long_ns']}")
    check_lags(v, "bucket_ns", "short_ns", "long_ns")


register(MetricSpec(
    name="funding_velocity",
    family="derivatives",
    inputs=("funding",),
    outputs=("velocity_short", "velocity_long", "acceleration"),
    params=(INST, SETTLED_ONLY, INTERVAL,
            Param("short_ns", "ns", 4 * HOUR_NS, MINUTE_NS, 7 * DAY_NS, "short lag (4 h)", integer=True),
            Param("long_ns", "ns", 8 * HOUR_NS, MINUTE_NS, 14 * DAY_NS, "long lag (8 h)", integer=True),
            Param("bucket_ns", "ns", MINUTE_NS, SECOND_NS, HOUR_NS, "lag resolution", integer=True)),
    state_dtype=FV_STATE,
    step_nb=funding_velocity_step_nb,
    batch_nb=funding_velocity_batch_nb,
    init_state=_fv_init,
    validate=_fv_validate,
    oracle=funding_velocity_oracle,
    definition="on the as-of published funding rate r (fraction per interval): r(t) - r(t-4h), r(t) - r(t-8h) "
               "and the second difference (r(t) - r(t-4h)) - (r(t-4h) - r(t-8h)); lagged values at bucket "
               "resolution (the CTO review's v4 - v8 equals r(t-8h) - r(t-4h), minus the earlier velocity, "
               "so the second difference is used as the acceleration)",
    source="cto-review-revised-direction.md: calculate_funding_velocity",
    warmup="a funding rate known at t - long_ns (bucket resolution)",
))

# ------------------------------------------------------------------------- funding + volume context

FVC_STATE = np.dtype(ring_fields("r", 2) + ring_fields("l", 2)
                     + [("rate", F8), ("interval", F8), ("first_bucket", np.int64)], align=True)


def _fvc_init(state: np.ndarray, params: Params) -> None:
    state["r_head"] = -1
    state["l_head"] = -1
    state["first_bucket"] = -1
    state["rate"] = np.nan
    state["interval"] = params.interval_ns


@njit(cache=True, inline="always", error_model="numpy")
def funding_volume_context_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Volume ratio = (trade qty per bucket over ``recent_ns``) / (per bucket over ``long_ns``);
    signal +1 (surging, ratio > ``surging``) / -1 (falling, ratio < ``falling``) / 0 when
    |annualised funding| > ``extreme_pct``, else 0."""
    s = state[0]
    q = p[0]
    b = ts[i] // q.bucket_ns
    if s.first_bucket < 0:
        s.first_bucket = b
    nr = q.recent_ns // q.bucket_ns
    nl = q.long_ns // q.bucket_ns
    s.r_head = ring_advance_nb(s.r_slots, s.r_sum, s.r_head, b, nr, 1)
    s.l_head = ring_advance_nb(s.l_slots, s.l_sum, s.l_head, b, nl, 1)
    if inst[i] == q.inst:
        if kind[i] == TRADES:
            qty = f[1, i]
            if qty > 0.0 and np.isfinite(qty):  # zero-qty trades add no volume
                ring_add_nb(s.r_slots, s.r_sum, s.r_head, 0, qty, nr)
                ring_add_nb(s.r_slots, s.r_sum, s.r_head, 1, 1.0, nr)
                ring_add_nb(s.l_slots, s.l_sum, s.l_head, 0, qty, nl)
                ring_add_nb(s.l_slots, s.l_sum, s.l_head, 1, 1.0, nl)
        else:
            r, iv = _funding_event_nb(kind, inst, f, i, q.inst, q.settled_only, q.interval_ns)
            if not np.isnan(r):
                s.rate, s.interval = r, iv
    ratio = np.nan
    if s.l_head - s.first_bucket >= nl - 1 and s.l_sum[1] > 0.0:
        recent = s.r_sum[0] if s.r_sum[1] > 0.0 else 0.0
        ratio = (recent / nr) / (s.l_sum[0] / nl)
    annual = _annualise_nb(s.rate, s.interval)
    sig = np.nan
    if not (np.isnan(ratio) or np.isnan(annual)):
        sig = 0.0
        if abs(annual) > q.extreme_pct:
            if ratio > q.surging:
                sig = 1.0
            elif ratio < q.falling:
                sig = -1.0
    out[i, 0] = sig
    out[i, 1] = ratio


@njit(cache=True, error_model="numpy", nogil=True)
def funding_volume_context_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        funding_volume_context_step_nb(state, p, ts, kind, inst, row, f, i, out)


def funding_volume_context_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 2), np.nan)
    bk = params.bucket_ns
    nr, nl = params.recent_ns // bk, params.long_ns // bk
    fo = _FundingOracle(params)
    vol: dict[int, float] = {}
    first = last = None
    for i, (t, k, ins, fields) in enumerate(_rows(events)):
        b = t // bk
        first = b if first is None else first
        last = b if last is None else max(last, b)
        if ins == params.inst and k == TRADES and fields[1] > 0 and math.isfinite(fields[1]):
            vol[b] = vol.get(b, 0.0) + float(fields[1])
        else:
            fo.apply(k, ins, fields)
        long_b = [bb for bb in vol if last - nl < bb <= last]
        if last - first < nl - 1 or not long_b:
            continue
        recent = sum(v for bb, v in vol.items() if last - nr < bb <= last)
        ratio = (recent / nr) / (sum(vol[bb] for bb in long_b) / nl)
        out[i, 1] = ratio
        annual = fo.annualised
        if math.isnan(annual):
            continue
        out[i, 0] = 0.0
        if abs(annual) > params.extreme_pct:
            out[i, 0] = 1.0 if ratio > params.surging else (-1.0 if ratio < params.falling else 0.0)
    return out


def _fvc_validate(v: dict) -> None:
    check_window(v, "recent_ns", "bucket_ns")
    check_window(v, "long_ns", "bucket_ns")
    if v["recent_ns"] >= v["long_ns"]:
        raise ConfigError(f"`recent_ns` must be < `long_ns` ({v['long_ns']}), was {v['recent_ns']}")
    if v["falling"] >= v["surging"]:
        raise ConfigError(f"`falling` must be < `surging` ({v['surging']}), was {v['falling']}")


register(MetricSpec(
    name="funding_volume_context",
    family="derivatives",
    inputs=("funding", "trades"),
    outputs=("signal", "volume_ratio"),
    params=(INST, SETTLED_ONLY, INTERVAL,
            Param("extreme_pct", "%/yr", 10.0, 0.0, 1e4, "|annualised funding| above which funding is extreme"),
            Param("recent_ns", "ns", HOUR_NS, MINUTE_NS, DAY_NS, "recent volume window", integer=True),
            Param("long_ns", "ns", 24 * HOUR_NS, MINUTE_NS, 7 * DAY_NS, "average volume window", integer=True),
            Param("bucket_ns", "ns", MINUTE_NS, SECOND_NS, HOUR_NS, "window resolution", integer=True),
            Param("falling", "ratio", 0.8, 0.0, 1e3, "volume ratio below which volume is falling"),
            Param("surging", "ratio", 1.5, 0.0, 1e3, "volume ratio above which volume is surging")),
    state_dtype=FVC_STATE,
    step_nb=funding_volume_context_step_nb,
    batch_nb=funding_volume_context_batch_nb,
    init_state=_fvc_init,
    validate=_fvc_validate,
    oracle=funding_volume_context_oracle,
    definition="volume ratio = mean trade qty per bucket over recent_ns / over long_ns; signal when |annualised "
               "funding| > extreme_pct: +1 volume surging (ratio > 1.5, momentum), -1 falling (< 0.8, "
               "exhaustion/fade), 0 otherwise or when funding is not extreme",
    source="cto-review-revised-direction.md: funding_edge (funding + volume profile)",
    warmup="a funding rate, and a stream covering long_ns with volume in it",
))

# ------------------------------------------------------------------------- basis

REF_SPOT_MID = 0
REF_INDEX = 1
REF_SPOT_TRADE = 2
BASIS_STATE_FIELDS = [("perp_px", F8), ("ref_px", F8), ("b_interval", F8)]
BASIS_PARAMS = (
    INST, REF_INST,
    Param("reference", "code", REF_SPOT_MID, 0, 2, "reference price: 0 = spot mid (ref_inst quotes/book), "
          "1 = index (perp prices.index), 2 = spot last trade (ref_inst)", integer=True),
    Param("perp_price", "code", 0, 0, 2, "perp " + PRICE_DOC, integer=True),
)


def _basis_init(state: np.ndarray, params: Params) -> None:
    state["perp_px"] = np.nan
    state["ref_px"] = np.nan
    state["b_interval"] = params.interval_ns


def _basis_validate(v: dict) -> None:
    if v["reference"] != REF_INDEX and v["inst"] == v["ref_inst"]:
        raise ConfigError(f"`ref_inst` must differ from `inst` for a spot reference, was {v['ref_inst']}")


@njit(cache=True, inline="always", error_model="numpy")
def _basis_update_nb(kind, inst, f, i, q_inst, q_ref_inst, reference, perp_price, perp_px, ref_px, interval):
    """The as-of ``(perp_px, ref_px, interval)`` after event ``i``."""
    if inst[i] == q_inst:
        perp_px = price_update_nb(perp_price, kind, f, i, perp_px)
        if reference == REF_INDEX:
            ref_px = price_update_nb(PX_INDEX, kind, f, i, ref_px)
        if kind[i] == FUNDING:
            iv = f[1, i]
            if np.isfinite(iv) and iv > 0.0:
                interval = iv
    elif inst[i] == q_ref_inst and reference != REF_INDEX:
        ref_px = price_update_nb(PX_MID if reference == REF_SPOT_MID else PX_TRADE, kind, f, i, ref_px)
    return perp_px, ref_px, interval


@njit(cache=True, inline="always", error_model="numpy")
def _strength_nb(b, weak, strong):
    if np.isnan(b):
        return np.nan
    if b > strong:
        return 2.0
    if b > weak:
        return 1.0
    if b < -strong:
        return -2.0
    if b < -weak:
        return -1.0
    return 0.0


class _BasisOracle:
    def __init__(self, params: Params) -> None:
        self.p = params
        self.perp = self.ref = math.nan
        self.interval = float(params.interval_ns)

    def apply(self, kind: int, inst: int, fields: np.ndarray) -> float:
        p = self.p
        if inst == p.inst:
            x = price_at(kind, fields, p.perp_price)
            self.perp = x if not math.isnan(x) else self.perp
            if p.reference == REF_INDEX:
                x = price_at(kind, fields, PX_INDEX)
                self.ref = x if not math.isnan(x) else self.ref
            if kind == FUNDING and math.isfinite(fields[1]) and fields[1] > 0:
                self.interval = float(fields[1])
        elif inst == p.ref_inst and p.reference != REF_INDEX:
            x = price_at(kind, fields, PX_MID if p.reference == REF_SPOT_MID else PX_TRADE)
            self.ref = x if not math.isnan(x) else self.ref
        return (self.perp - self.ref) / self.ref * 100.0


def _strength(b: float, weak: float, strong: float) -> float:
    if math.isnan(b):
        return math.nan
    for cls, ok in ((2.0, b > strong), (1.0, b > weak), (-2.0, b < -strong), (-1.0, b < -weak)):
        if ok:
            return cls
    return 0.0


BASIS_STATE = np.dtype(BASIS_STATE_FIELDS, align=True)


@njit(cache=True, inline="always", error_model="numpy")
def basis_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Basis % ``(perp - ref) / ref x 100``, annualised over one funding interval
    (``basis x 365 d / interval``), and the strength class."""
    s = state[0]
    q = p[0]
    s.perp_px, s.ref_px, s.b_interval = _basis_update_nb(kind, inst, f, i, q.inst, q.ref_inst, q.reference,
                                                         q.perp_price, s.perp_px, s.ref_px, s.b_interval)
    b = (s.perp_px - s.ref_px) / s.ref_px * 100.0
    out[i, 0] = b
    out[i, 1] = b * YEAR_NS / s.b_interval
    out[i, 2] = _strength_nb(b, q.weak_pct, q.strong_pct)


@njit(cache=True, error_model="numpy", nogil=True)
def basis_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        basis_step_nb(state, p, ts, kind, inst, row, f, i, out)


def basis_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 3), np.nan)
    bo = _BasisOracle(params)
    for i, (_, k, ins, fields) in enumerate(_rows(events)):
        b = bo.apply(k, ins, fields)
        out[i] = b, b * YEAR_NS / bo.interval, _strength(b, params.weak_pct, params.strong_pct)
    return out


def _strength_validate(v: dict) -> None:
    _basis_validate(v)
    if v["weak_pct"] >= v["strong_pct"]:
        raise ConfigError(f"`weak_pct` must be < `strong_pct` ({v['strong_pct']}), was {v['weak_pct']}")


register(MetricSpec(
    name="basis",
    family="derivatives",
    inputs=("prices", "trades", "quotes", "book", "funding"),
    outputs=("basis_pct", "annualized_pct", "strength"),
    params=(*BASIS_PARAMS, INTERVAL,
            Param("weak_pct", "%", 0.2, 0.0, 100.0, "|basis| above which it is a moderate premium/discount"),
            Param("strong_pct", "%", 0.5, 0.0, 100.0, "|basis| above which it is an extreme premium/discount")),
    state_dtype=BASIS_STATE,
    step_nb=basis_step_nb,
    batch_nb=basis_batch_nb,
    init_state=_basis_init,
    validate=_strength_validate,
    oracle=basis_oracle,
    instruments=2,
    definition="basis % = (perp - ref) / ref x 100 with the declared reference (spot mid, index or spot last "
               "trade) and perp price (mark, last trade or mid); annualised = basis x 365 d / funding interval "
               "(the premium earned once per interval); strength +2 > 0.5 %, +1 > 0.2 %, 0 neutral, -1 < -0.2 %, "
               "-2 < -0.5 % (golden: 67,920 vs 67,890 -> 0.0442 %, neutral)",
    source="emerald-gameplan.md 1.1: calculate_basis_spread",
    warmup="both prices known",
))

# ------------------------------------------------------------------------- funding-basis convergence

FBC_STATE = np.dtype(BASIS_STATE_FIELDS + [("rate", F8), ("interval", F8)], align=True)


def _fbc_init(state: np.ndarray, params: Params) -> None:
    _basis_init(state, params)
    state["rate"] = np.nan
    state["interval"] = params.interval_ns


@njit(cache=True, inline="always", error_model="numpy")
def funding_basis_convergence_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """Convergence +1 (funding > F and basis > B), -1 (funding < -F and basis < -B), else 0;
    divergence 1 when (funding > F and basis < -D) or (funding < -F and basis > D)."""
    s = state[0]
    q = p[0]
    s.perp_px, s.ref_px, s.b_interval = _basis_update_nb(kind, inst, f, i, q.inst, q.ref_inst, q.reference,
                                                         q.perp_price, s.perp_px, s.ref_px, s.b_interval)
    b = (s.perp_px - s.ref_px) / s.ref_px * 100.0
    r, iv = _funding_event_nb(kind, inst, f, i, q.inst, q.settled_only, q.interval_ns)
    if not np.isnan(r):
        s.rate, s.interval = r, iv
    fp = _annualise_nb(s.rate, s.interval)
    if np.isnan(b) or np.isnan(fp):
        out[i, 0] = np.nan
        out[i, 1] = np.nan
        return
    conv = 0.0
    if fp > q.funding_pct and b > q.basis_pct:
        conv = 1.0
    elif fp < -q.funding_pct and b < -q.basis_pct:
        conv = -1.0
    div = 0.0
    if (fp > q.funding_pct and b < -q.divergence_pct) or (fp < -q.funding_pct and b > q.divergence_pct):
        div = 1.0
    out[i, 0] = conv
    out[i, 1] = div


@njit(cache=True, error_model="numpy", nogil=True)
def funding_basis_convergence_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        funding_basis_convergence_step_nb(state, p, ts, kind, inst, row, f, i, out)


def funding_basis_convergence_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 2), np.nan)
    bo, fo = _BasisOracle(params), _FundingOracle(params)
    fp_, bp_, dp_ = params.funding_pct, params.basis_pct, params.divergence_pct
    for i, (_, k, ins, fields) in enumerate(_rows(events)):
        b = bo.apply(k, ins, fields)
        fo.apply(k, ins, fields)
        fp = fo.annualised
        if math.isnan(b) or math.isnan(fp):
            continue
        bull, bear = fp > fp_, fp < -fp_
        out[i, 0] = 1.0 if bull and b > bp_ else (-1.0 if bear and b < -bp_ else 0.0)
        out[i, 1] = float((bull and b < -dp_) or (bear and b > dp_))
    return out


register(MetricSpec(
    name="funding_basis_convergence",
    family="derivatives",
    inputs=("funding", "prices", "trades", "quotes", "book"),
    outputs=("convergence", "divergence"),
    params=(*BASIS_PARAMS, SETTLED_ONLY, INTERVAL,
            Param("funding_pct", "%/yr", 10.0, 0.0, 1e4, "|annualised funding| threshold"),
            Param("basis_pct", "%", 0.2, 0.0, 100.0, "|basis| threshold for convergence"),
            Param("divergence_pct", "%", 0.1, 0.0, 100.0, "opposite-sign |basis| threshold for divergence")),
    state_dtype=FBC_STATE,
    step_nb=funding_basis_convergence_step_nb,
    batch_nb=funding_basis_convergence_batch_nb,
    init_state=_fbc_init,
    validate=_basis_validate,
    oracle=funding_basis_convergence_oracle,
    instruments=2,
    definition="convergence +1 when annualised funding > 10 %/yr and basis > 0.2 % (bullish), -1 when < -10 %/yr "
               "and < -0.2 % (bearish), else 0; divergence 1 when funding > 10 %/yr with basis < -0.1 % or "
               "funding < -10 %/yr with basis > 0.1 % (avoid)",
    source="emerald-gameplan.md 1.1: _generate_summary (funding_basis_*_convergence, funding_basis_divergence_avoid)",
    warmup="a funding rate and both basis prices known",
))

# ------------------------------------------------------------------------- open interest change

OI_STATE = np.dtype(lag_fields("o", 2), align=True)  # series: 0 = open interest, 1 = price


def _oi_init(state: np.ndarray, params: Params) -> None:
    lag_init(state, "o")


@njit(cache=True, inline="always", error_model="numpy")
def _oi_update_nb(cur, kind, inst, f, i, q_inst, oi_field, price_source):
    """Apply event ``i`` to the as-of values ``cur`` (0 = open interest, 1 = price)."""
    if inst[i] != q_inst:
        return
    if kind[i] == OPEN_INTEREST:
        x = f[oi_field, i]
        if np.isfinite(x) and x > 0.0:
            cur[0] = x
    else:
        cur[1] = price_update_nb(price_source, kind, f, i, cur[1])


@njit(cache=True, inline="always", error_model="numpy")
def _change_nb(vals, head, cur, n, j):
    return cur[j] / lag_value_nb(vals, head, n, j) - 1.0


@njit(cache=True, inline="always", error_model="numpy")
def open_interest_change_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """OI change over the short / mid / long lags and price change over ``price_ns`` (fractions,
    ``now / then - 1``), and the regime: +1 accumulation, -1 distribution, 2 short-term noise, 0."""
    s = state[0]
    q = p[0]
    bk = q.bucket_ns
    s.o_head = lag_advance_nb(s.o_vals, s.o_head, ts[i] // bk, s.o_cur)
    _oi_update_nb(s.o_cur, kind, inst, f, i, q.inst, q.oi_field, q.price_source)
    c_s = _change_nb(s.o_vals, s.o_head, s.o_cur, q.short_ns // bk, 0)
    c_m = _change_nb(s.o_vals, s.o_head, s.o_cur, q.mid_ns // bk, 0)
    c_l = _change_nb(s.o_vals, s.o_head, s.o_cur, q.long_ns // bk, 0)
    pc = _change_nb(s.o_vals, s.o_head, s.o_cur, q.price_ns // bk, 1)
    out[i, 0] = c_s
    out[i, 1] = c_m
    out[i, 2] = c_l
    out[i, 3] = pc
    if np.isnan(c_s) or np.isnan(c_m) or np.isnan(c_l) or np.isnan(pc):
        out[i, 4] = np.nan
    elif c_m > q.oi_mid_pct and c_l > q.oi_long_pct and pc > q.price_pct:
        out[i, 4] = 1.0
    elif c_m > q.oi_mid_pct and c_l > q.oi_long_pct and pc < -q.price_pct:
        out[i, 4] = -1.0
    elif c_s > q.noise_pct and c_m < 0.0:
        out[i, 4] = 2.0
    else:
        out[i, 4] = 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def open_interest_change_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        open_interest_change_step_nb(state, p, ts, kind, inst, row, f, i, out)


class _OiOracle:
    """As-of OI and price series with lagged look-ups (oracle side)."""

    def __init__(self, params: Params) -> None:
        self.p = params
        self.oi, self.px = AsofSeries(), AsofSeries()
        self.cur_oi = self.cur_px = math.nan
        self.first = self.last = -1  # buckets of the first and the latest event (-1 before any)

    def apply(self, t: int, kind: int, inst: int, fields: np.ndarray) -> None:
        b = t // self.p.bucket_ns
        self.first = b if self.first < 0 else self.first
        self.last = max(self.last, b)
        if inst != self.p.inst:
            return
        if kind == OPEN_INTEREST:
            x = fields[self.p.oi_field]
            if math.isfinite(x) and x > 0:
                self.cur_oi = float(x)
                self.oi.add(t, self.cur_oi)
        else:
            x = price_at(kind, fields, self.p.price_source)
            if not math.isnan(x):
                self.cur_px = x
                self.px.add(t, x)

    def change(self, lag_ns: int, price: bool = False) -> float:
        series, cur = (self.px, self.cur_px) if price else (self.oi, self.cur_oi)
        bk = self.p.bucket_ns
        return cur / series.lagged(self.last, lag_ns // bk, bk, self.first) - 1.0


def open_interest_change_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 5), np.nan)
    oo = _OiOracle(params)
    for i, (t, k, ins, fields) in enumerate(_rows(events)):
        oo.apply(t, k, ins, fields)
        cs, cm, cl = oo.change(params.short_ns), oo.change(params.mid_ns), oo.change(params.long_ns)
        pc = oo.change(params.price_ns, price=True)
        out[i, :4] = cs, cm, cl, pc
        if any(math.isnan(v) for v in (cs, cm, cl, pc)):
            continue
        rising = cm > params.oi_mid_pct and cl > params.oi_long_pct
        if rising and pc > params.price_pct:
            out[i, 4] = 1.0
        elif rising and pc < -params.price_pct:
            out[i, 4] = -1.0
        elif cs > params.noise_pct and cm < 0:
            out[i, 4] = 2.0
        else:
            out[i, 4] = 0.0
    return out


OI_FIELD = Param("oi_field", "code", 0, 0, 1, "open interest field: 0 = oi_qty (base), 1 = oi_notional (quote)",
                 integer=True)
OI_PRICE = Param("price_source", "code", 0, 0, 2, PRICE_DOC, integer=True)
OI_BUCKET = Param("bucket_ns", "ns", 5 * MINUTE_NS, SECOND_NS, 6 * HOUR_NS, "lag resolution (5 min: 7 d = 2016 "
                  "buckets)", integer=True)

register(MetricSpec(
    name="open_interest_change",
    family="derivatives",
    inputs=("open_interest", "prices", "trades", "quotes", "book"),
    outputs=("change_short", "change_mid", "change_long", "price_change", "regime"),
    params=(INST, OI_FIELD, OI_PRICE,
            Param("short_ns", "ns", 4 * HOUR_NS, MINUTE_NS, 30 * DAY_NS, "short lag (4 h)", integer=True),
            Param("mid_ns", "ns", 24 * HOUR_NS, MINUTE_NS, 30 * DAY_NS, "mid lag (24 h)", integer=True),
            Param("long_ns", "ns", 7 * DAY_NS, MINUTE_NS, 30 * DAY_NS, "long lag (7 d)", integer=True),
            Param("price_ns", "ns", 24 * HOUR_NS, MINUTE_NS, 30 * DAY_NS, "price-change lag (24 h)", integer=True),
            OI_BUCKET,
            Param("oi_mid_pct", "fraction", 0.03, 0.0, 10.0, "mid OI rise for accumulation/distribution"),
            Param("oi_long_pct", "fraction", 0.05, 0.0, 10.0, "long OI rise for accumulation/distribution"),
            Param("price_pct", "fraction", 0.02, 0.0, 10.0, "|price change| for accumulation/distribution"),
            Param("noise_pct", "fraction", 0.05, 0.0, 10.0, "short OI spike for short-term noise")),
    state_dtype=OI_STATE,
    step_nb=open_interest_change_step_nb,
    batch_nb=open_interest_change_batch_nb,
    init_state=_oi_init,
    validate=lambda v: check_lags(v, "bucket_ns", "short_ns", "mid_ns", "long_ns", "price_ns"),
    oracle=open_interest_change_oracle,
    definition="OI(t) / OI(t - h) - 1 for h = 4 h, 24 h, 7 d and price(t) / price(t - 24 h) - 1, lagged values "
               "at bucket resolution (5 min ring: 7 d fits in 2016 buckets); regime +1 accumulation (24 h OI > "
               "+3 %, 7 d > +5 %, price > +2 %), -1 distribution (same OI, price < -2 %), 2 short-term noise / "
               "squeeze fade (4 h OI > +5 % while 24 h OI < 0), else 0",
    source="cto-review-revised-direction.md: MultiTimeframeOI, multi_timeframe_oi_signal",
    warmup="OI and price known at t - h (the regime needs all four changes: 7 d of history)",
))

# ------------------------------------------------------------------------- OI-price divergence


@njit(cache=True, inline="always", error_model="numpy")
def oi_price_divergence_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """OI and price change over ``window_ns``; divergence = sign of the price change when price
    and OI move in opposite directions beyond their thresholds, else 0."""
    s = state[0]
    q = p[0]
    bk = q.bucket_ns
    s.o_head = lag_advance_nb(s.o_vals, s.o_head, ts[i] // bk, s.o_cur)
    _oi_update_nb(s.o_cur, kind, inst, f, i, q.inst, q.oi_field, q.price_source)
    n = q.window_ns // bk
    oc = _change_nb(s.o_vals, s.o_head, s.o_cur, n, 0)
    pc = _change_nb(s.o_vals, s.o_head, s.o_cur, n, 1)
    out[i, 0] = oc
    out[i, 1] = pc
    if np.isnan(oc) or np.isnan(pc):
        out[i, 2] = np.nan
    elif pc > q.price_pct and oc < -q.oi_pct:
        out[i, 2] = 1.0
    elif pc < -q.price_pct and oc > q.oi_pct:
        out[i, 2] = -1.0
    else:
        out[i, 2] = 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def oi_price_divergence_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        oi_price_divergence_step_nb(state, p, ts, kind, inst, row, f, i, out)


def oi_price_divergence_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 3), np.nan)
    oo = _OiOracle(params)
    for i, (t, k, ins, fields) in enumerate(_rows(events)):
        oo.apply(t, k, ins, fields)
        oc, pc = oo.change(params.window_ns), oo.change(params.window_ns, price=True)
        out[i, :2] = oc, pc
        if math.isnan(oc) or math.isnan(pc):
            continue
        up = pc > params.price_pct and oc < -params.oi_pct
        down = pc < -params.price_pct and oc > params.oi_pct
        out[i, 2] = 1.0 if up else (-1.0 if down else 0.0)
    return out


register(MetricSpec(
    name="oi_price_divergence",
    family="derivatives",
    inputs=("open_interest", "prices", "trades", "quotes", "book"),
    outputs=("oi_change", "price_change", "divergence"),
    params=(INST, OI_FIELD, OI_PRICE,
            Param("window_ns", "ns", 24 * HOUR_NS, MINUTE_NS, 14 * DAY_NS, "change lag", integer=True),
            OI_BUCKET,
            Param("oi_pct", "fraction", 0.03, 0.0, 10.0, "|OI change| threshold"),
            Param("price_pct", "fraction", 0.02, 0.0, 10.0, "|price change| threshold")),
    state_dtype=OI_STATE,
    step_nb=oi_price_divergence_step_nb,
    batch_nb=oi_price_divergence_batch_nb,
    init_state=_oi_init,
    validate=lambda v: check_lags(v, "bucket_ns", "window_ns"),
    oracle=oi_price_divergence_oracle,
    definition="OI and price change over the window (now / then - 1, bucket resolution); divergence +1 when price "
               "rises > 2 % while OI falls > 3 % (rally on closing positions: short covering), -1 when price falls "
               "> 2 % while OI rises > 3 % (new shorts pressing), else 0",
    source="cto-review-revised-direction.md: OI divergence (oi_divergence)",
    warmup="OI and price known at t - window_ns",
))

# ------------------------------------------------------------------------- cross-venue spread

CVS_STATE = np.dtype([("px", F8), ("ref_px", F8)], align=True)


def _cvs_init(state: np.ndarray, params: Params) -> None:
    state["px"] = np.nan
    state["ref_px"] = np.nan


@njit(cache=True, inline="always", error_model="numpy")
def cross_venue_spread_step_nb(state, p, ts, kind, inst, row, f, i, out):
    """``(price(inst) - price(ref_inst)) / price(ref_inst) x 1e4`` (bps), both as of the event."""
    s = state[0]
    q = p[0]
    if inst[i] == q.inst:
        s.px = price_update_nb(q.price_source, kind, f, i, s.px)
    elif inst[i] == q.ref_inst:
        s.ref_px = price_update_nb(q.price_source, kind, f, i, s.ref_px)
    out[i, 0] = (s.px - s.ref_px) / s.ref_px * 1e4


@njit(cache=True, error_model="numpy", nogil=True)
def cross_venue_spread_batch_nb(state, p, ts, kind, inst, row, f, out):
    for i in range(ts.shape[0]):
        cross_venue_spread_step_nb(state, p, ts, kind, inst, row, f, i, out)


def cross_venue_spread_oracle(events: EventTable, params: Params) -> np.ndarray:
    out = np.full((len(events), 1), np.nan)
    px = ref = math.nan
    for i, (_, k, ins, fields) in enumerate(_rows(events)):
        x = price_at(k, fields, params.price_source)
        if not math.isnan(x):
            if ins == params.inst:
                px = x
            elif ins == params.ref_inst:
                ref = x
        out[i, 0] = (px - ref) / ref * 1e4
    return out


def _cvs_validate(v: dict) -> None:
    if v["inst"] == v["ref_inst"]:
        raise ConfigError(f"`ref_inst` must differ from `inst`, was {v['ref_inst']}")


register(MetricSpec(
    name="cross_venue_spread",
    family="derivatives",
    inputs=("quotes", "book", "trades", "prices"),
    outputs=("spread_bps",),
    params=(Param("inst", "index", 0, 0, 1023, "instrument index in the event table", integer=True), REF_INST,
            Param("price_source", "code", PX_MID, 0, 2, PRICE_DOC, integer=True)),
    state_dtype=CVS_STATE,
    step_nb=cross_venue_spread_step_nb,
    batch_nb=cross_venue_spread_batch_nb,
    init_state=_cvs_init,
    validate=_cvs_validate,
    oracle=cross_venue_spread_oracle,
    instruments=2,
    definition="(price(inst) - price(ref_inst)) / price(ref_inst) x 10,000 (bps), same price source for both "
               "(default mid)",
    source="emerald-gameplan.md: cross-exchange arbitrage signals (arb any deviation > 0.05 %)",
    warmup="both prices known",
))
