"""Invariants every backtest run must satisfy, checked from its ledgers by an independent replay.

:func:`assert_run_invariants` takes the engine's :class:`~emerald.backtest.engine.State` after a
run, or a :class:`~emerald.backtest.result.RunResult`, and re-derives the accounting from the
fills alone (average-cost replay per instrument, in Python floats): every closed trade's price PnL
and fees, the open positions, the cash and the equity. It also checks the timing rules of the fill
model: a fill never comes before its order's eligible time nor at or before its decision (bar
mode: not before the decision), and, given the event table, every market fill's reference price
is a tradable price of an event of its instrument at the fill's own time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emerald.execution import kernels as K


@dataclass
class _Replay:
    kind: int
    cs: float
    qty: float = 0.0
    avg: float = 0.0
    price_pnl: float = 0.0
    fees: float = 0.0
    closed: list[tuple[int, float, float]] = field(default_factory=list)  # (direction, pnl_price, fees)

    def realised(self, q: float, px: float) -> float:
        """Price PnL of closing ``q`` (signed, the position's side) at ``px``."""
        if self.kind == K.INVERSE:
            return q * self.cs * (1.0 / self.avg - 1.0 / px) * px
        return q * (px - self.avg)

    def fill(self, side: int, qty: float, px: float, fee: float) -> None:
        remaining = qty
        if self.qty != 0.0 and (self.qty > 0) != (side > 0):
            close_q = min(qty, abs(self.qty))
            share = close_q / qty
            self.price_pnl += self.realised(-side * close_q, px)
            self.fees += fee * share
            self.qty += side * close_q
            if abs(self.qty) <= 1e-12 * max(1.0, close_q):
                self.closed.append((-side, self.price_pnl, self.fees))
                self.qty, self.avg, self.price_pnl, self.fees = 0.0, 0.0, 0.0, 0.0
            remaining = qty - close_q
            fee *= 1.0 - share
        if remaining > 0.0:
            old = abs(self.qty)
            if old == 0.0:
                self.avg = px
            elif self.kind == K.INVERSE:
                self.avg = (old + remaining) / (old / self.avg + remaining / px)
            else:
                self.avg = (self.avg * old + px * remaining) / (old + remaining)
            self.qty += side * remaining
            self.fees += fee

    def upnl(self, px: float) -> float:
        if self.qty == 0.0 or not px > 0.0:
            return 0.0
        return self.realised(self.qty, px)


def _close(a: float, b: float, rel: float, what: str, scale: float = 1.0) -> None:
    tol = rel * max(abs(a), abs(b), scale)
    assert abs(a - b) <= tol, f"{what}: {a!r} != {b!r} (tolerance {tol:.3g})"


def _ledgers(run: Any) -> dict[str, Any]:
    """Plain numpy ledgers of a State or a RunResult (instrument as an index)."""
    if hasattr(run, "acct"):  # engine State
        a = run.acct[0]
        fills = run.out[0][: a["n_fills"]]
        orders = run.out[1][: a["n_orders"]]
        trades = run.out[2][: a["n_trades"]]
        open_ = run.pos["qty"] != 0.0
        return {
            "kinds": run.insts["kind"].tolist(), "cs": run.insts["contract_size"].tolist(),
            "f_inst": fills["inst"], "f_ts": fills["ts"], "f_side": fills["side"], "f_qty": fills["qty"],
            "f_px": fills["price"], "f_fee": fills["fee"], "f_order": fills["order_id"], "f_maker": fills["maker"],
            "f_reason": fills["reason"],
            "o_id": orders["order_id"], "o_dec": orders["ts_decision"], "o_elig": orders["ts_eligible"],
            "o_status": orders["status"], "o_qty": orders["qty"], "o_limit": orders["limit_px"],
            "o_type": orders["otype"],
            "t_inst": trades["inst"], "t_dir": trades["direction"], "t_pnl_price": trades["pnl_price"],
            "t_fees": trades["fees"], "t_funding": trades["funding"], "t_pnl": trades["pnl"],
            "initial": float(run.params[0]["initial_equity"]), "equity": float(a["equity"]), "cash": float(a["cash"]),
            "funding": float(trades["funding"].sum() + run.pos["funding"][open_].sum()),
            "last": run.pos["last"].tolist(), "upnl": float(run.pos["upnl"][open_].sum()),
            "pos_qty": run.pos["qty"].tolist(), "slippage_bps": float(run.params[0]["slippage_bps"]),
            "book_levels": int(run.params[0]["book_levels"]), "pnl": None, "bars": None,
        }
    from emerald.backtest.engine import INST_KIND
    from emerald.model.instruments import get_instrument

    names = [str(x) for x in run.manifest["config"]["instruments"]]
    specs = [get_instrument(*n.split(":")) for n in names]
    index = {n: j for j, n in enumerate(names)}
    ex = run.manifest["config"]["execution"]
    fl, od, tr, eq = run.fills, run.orders, run.trades, run.equity
    status = {"filled": K.ST_FILLED, "expired": K.ST_EXPIRED, "cancelled": K.ST_CANCELLED, "working": -1}
    return {
        "kinds": [INST_KIND[s.kind] for s in specs],
        "cs": [s.contract_size if INST_KIND[s.kind] == K.INVERSE else 1.0 for s in specs],
        "f_inst": np.array([index[x] for x in fl["inst"]], np.int64), "f_ts": fl["ts"].to_numpy(),
        "f_side": fl["side"].to_numpy(), "f_qty": fl["qty"].to_numpy(), "f_px": fl["price"].to_numpy(),
        "f_fee": fl["fee"].to_numpy(), "f_order": fl["order_id"].to_numpy(),
        "f_maker": (fl["liquidity"] == "maker").to_numpy(),
        "f_reason": np.array([K.REASONS.index(r) for r in fl["reason"]], np.int64),
        "o_id": od["order_id"].to_numpy(), "o_dec": od["ts_decision"].to_numpy(), "o_elig": od["ts_eligible"].to_numpy(),
        "o_status": np.array([status[s] for s in od["status"]], np.int64), "o_qty": od["qty"].to_numpy(),
        "o_limit": od["limit_px"].to_numpy(), "o_type": np.where((od["type"] == "limit").to_numpy(), K.LIMIT, K.MARKET),
        "t_inst": np.array([index[x] for x in tr["inst"]], np.int64), "t_dir": tr["direction"].to_numpy(),
        "t_pnl_price": tr["pnl_price"].to_numpy(), "t_fees": tr["fees"].to_numpy(),
        "t_funding": tr["funding"].to_numpy(), "t_pnl": tr["pnl"].to_numpy(),
        "initial": float(ex["initial_equity"]), "equity": float(eq["equity"][-1]), "cash": float(eq["cash"][-1]),
        "funding": float(run.pnl["funding"]), "last": None, "upnl": float(eq["unrealized"][-1]), "pos_qty": None,
        "slippage_bps": float(ex["slippage_bps"]), "book_levels": int(ex["book_levels"]), "pnl": run.pnl,
        "bars": run.manifest.get("mode") == "bars",
    }


def assert_run_invariants(run: Any, events: Any = None, *, rel: float = 1e-9) -> None:
    """Check the accounting and timing invariants of a finished run (see module docstring).

    Parameters
    ----------
    run
        An engine ``State`` after ``run_events`` / ``run_bar_matrix``, or a ``RunResult``.
    events
        Optional :class:`~emerald.events.table.EventTable` the run consumed (event mode): every
        market fill's reference price must be a price of an event of its instrument at the fill's
        time (never a price seen at or before the decision).
    rel
        Relative tolerance of the money comparisons (scaled by the initial equity for sums).
    """
    L = _ledgers(run)
    scale = L["initial"] * 1e-3
    reps = [_Replay(k, c) for k, c in zip(L["kinds"], L["cs"], strict=True)]
    order_of = {int(o): k for k, o in enumerate(L["o_id"])}
    fills_of: dict[int, int] = {}
    closed: list[tuple[int, int, float, float]] = []
    for k in range(L["f_ts"].shape[0]):
        j = int(L["f_inst"][k])
        qty = float(L["f_qty"][k])
        assert qty > 0.0 and math.isfinite(qty), f"fill {k}: quantity must be positive and finite, was {qty}"
        n_before = len(reps[j].closed)
        reps[j].fill(int(L["f_side"][k]), qty, float(L["f_px"][k]), float(L["f_fee"][k]))
        closed += [(j, *c) for c in reps[j].closed[n_before:]]
        oid = int(L["f_order"][k])
        if oid >= 0:
            fills_of[oid] = fills_of.get(oid, 0) + 1
            o = order_of[oid]
            ts = int(L["f_ts"][k])
            assert ts >= L["o_elig"][o], f"fill {k} at {ts} before its order's eligible time {L['o_elig'][o]}"
            if L["bars"]:
                assert ts >= L["o_dec"][o], f"fill {k} at {ts} before its decision {L['o_dec'][o]}"
            else:
                assert ts > L["o_dec"][o], f"fill {k} at {ts} not after its decision {L['o_dec'][o]}"
            _close(qty, float(L["o_qty"][o]), 1e-12, f"fill {k} quantity vs its order's")
            if L["o_type"][o] == K.LIMIT:
                assert L["f_maker"][k] and L["f_px"][k] == L["o_limit"][o], f"limit fill {k} not at its limit, maker"
        else:
            assert L["f_reason"][k] in (K.R_LIQ, K.R_STOP, K.R_TRAIL), f"fill {k} without an order: {L['f_reason'][k]}"
    for oid, n in fills_of.items():
        assert n == 1, f"order {oid} filled {n} times"
    for o in range(L["o_id"].shape[0]):
        assert (L["o_status"][o] == K.ST_FILLED) == (int(L["o_id"][o]) in fills_of), f"order {o}: status vs fills"

    # closed trades, one by one, against the replay
    assert len(closed) == L["t_inst"].shape[0], f"{L['t_inst'].shape[0]} trades, the fills close {len(closed)}"
    for k, (j, direction, pnl_price, fees) in enumerate(closed):
        assert L["t_inst"][k] == j and L["t_dir"][k] == direction, f"trade {k}: instrument / direction"
        _close(float(L["t_pnl_price"][k]), pnl_price, rel, f"trade {k} pnl_price", scale)
        _close(float(L["t_fees"][k]), fees, rel, f"trade {k} fees", scale)
        _close(float(L["t_pnl"][k]), float(L["t_pnl_price"][k] - L["t_fees"][k] - L["t_funding"][k]), rel,
               f"trade {k} pnl = pnl_price - fees - funding", scale)

    realised = sum(c[2] for c in closed) + sum(r.price_pnl for r in reps)
    fees = float(np.sum(L["f_fee"]))
    open_fees = sum(r.fees for r in reps)
    _close(fees, float(np.sum(L["t_fees"])) + open_fees, rel, "fees of fills vs trades + open positions", scale)
    if L["last"] is not None:
        for j, r in enumerate(reps):
            _close(r.qty, L["pos_qty"][j], 1e-9, f"instrument {j}: position vs replayed fills")
        upnl = sum(r.upnl(px) for r, px in zip(reps, L["last"], strict=True))
        _close(upnl, L["upnl"], rel, "unrealised PnL vs replay", scale)
    else:
        upnl = L["upnl"]
    _close(L["cash"], L["initial"] + realised - fees - L["funding"], rel, "cash = initial + realised - fees - funding",
           scale)
    _close(L["equity"], L["cash"] + upnl, rel, "equity = cash + unrealised", scale)
    total = L["equity"] - L["initial"]
    open_part = sum(r.price_pnl for r in reps) + upnl - open_fees - (L["funding"] - float(np.sum(L["t_funding"])))
    _close(float(np.sum(L["t_pnl"])) + open_part, total, rel, "trade PnL + open positions = equity - initial", scale)
    if L["pnl"] is not None:
        p = L["pnl"]
        _close(p["total"], p["price"] - p["fees"] - p["funding"], rel, "pnl total = price - fees - funding", scale)
        _close(p["total"], total, rel, "pnl total = final equity - initial", scale)
        _close(p["fees"], fees, rel, "pnl fees = sum of fill fees", scale)
        _close(p["price"], realised + upnl, rel, "pnl price = realised + unrealised (replay)", scale)
    if events is not None:
        _check_fill_prices(L, events)


def _check_fill_prices(L: dict[str, Any], events: Any) -> None:
    """Every market fill's reference price (slippage removed) is a tradable price of an event of its
    instrument at exactly the fill time: a trade price, the ask (buys) / bid (sells), a bar open/close."""
    if L["book_levels"] > 0:
        return
    slip = L["slippage_bps"] * 1e-4
    kind, inst, ts, f = events.kind, events.inst, events.ts, events.f
    for k in range(L["f_ts"].shape[0]):
        if L["f_maker"][k]:
            continue
        side = int(L["f_side"][k])
        px = float(L["f_px"][k])
        if L["f_reason"][k] == K.R_LIQ:
            ref = px
        else:
            ref = px / (1.0 + side * slip)
        at = np.flatnonzero((ts == L["f_ts"][k]) & (inst == L["f_inst"][k]))
        cands = []
        for i in at:
            if kind[i] == 6:  # trades
                cands.append(f[0, i])
            elif kind[i] in (4, 5):  # book, quotes
                cands.append(f[2, i] if side > 0 else f[0, i])
                if L["f_reason"][k] == K.R_LIQ:  # a liquidation closes at the event's mark (the mid)
                    cands.append(0.5 * (f[0, i] + f[2, i]))
            elif kind[i] == 8:  # bars
                cands += [f[0, i], f[3, i]]
        assert any(abs(c - ref) <= 1e-9 * abs(ref) for c in cands), \
            f"fill {k} at {px} (reference {ref}) is no price of an event of its instrument at its time {L['f_ts'][k]}"
