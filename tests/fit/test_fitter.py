"""The fitter on hand-built signal logs (no tape: the metric history is the log's inputs): weights
proportional to the out-of-sample Sharpe clipped at zero and normalised to 100, the minimum-sample
guard, percentile thresholds with a lookback, the window rule (outcomes ended after ``before`` are
never read), calibration, the artifact's round trip and the ``emerald fit`` command."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from emerald.cli.fit import fit as fit_cmd
from emerald.errors import ConfigError
from emerald.fit.artifact import FORMAT, load_artifact
from emerald.fit.fitter import FitParams, fit
from emerald.forward.label import OUTCOME_SCHEMA, OUTCOME_SCHEMA_PL
from emerald.forward.log import SIGNAL_COLUMNS, SignalLog
from emerald.strategy.base import load_config

STRATEGY = str(Path(__file__).resolve().parents[1] / "forward" / "_strategies.py")
S = 1_000_000_000
M = 60 * S
H = 3600 * S
T0 = 1_709_251_200 * S  # 2024-03-01 00:00 UTC
N = 600  # one flow firing per minute (at :00) and one zscore firing per minute (at :30) for 10 h
RUN = "run-synthetic"


def config() -> object:
    # flow: sign, weight 60, threshold 0.3 on flow.imbalance; zscore: sign, weight 40, threshold 1.5 on z.z_score
    return load_config({"strategy": STRATEGY, "instruments": ["demo-perp:BTCUSDT"],
                        "params": {"window_s": 60, "entry_score": 100.0}})


def returns(seed: int, mean_flow: float, mean_z: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return mean_flow + 0.001 * rng.standard_normal(N), mean_z + 0.001 * rng.standard_normal(N)


def build_log(path: Path, ret_flow: np.ndarray, ret_z: np.ndarray, *, decisions: bool = False) -> None:
    """Firings of both triggers with 1 h outcomes; every row's inputs carry both signal columns:
    flow.imbalance = (i mod 100) / 100 (a uniform grid 0 .. 0.99), z.z_score = -(i mod 50) / 10."""
    rows, outs = [], []
    for i in range(N):
        for name, off, r in (("flow", 0, ret_flow[i]), ("zscore", 30 * S, ret_z[i])):
            ts = T0 + i * M + off
            sid = f"{name}-{i}"
            inputs = orjson.dumps({"flow.imbalance": (i % 100) / 100, "z.z_score": -(i % 50) / 10, "z.mean": None,
                                   "z.std": None}).decode()
            rows.append({"signal_id": sid, "run_id": RUN, "kind": "firing", "ts_event": ts, "ts_recorded": 0,
                         "event_index": 2 * i + (off > 0), "strategy": "flow_score_test",
                         "instrument": "demo-perp:BTCUSDT", "signal": name, "direction": 1,
                         "value": 0.5 if name == "flow" else 2.0, "threshold": 0.3, "weight": 60.0, "score": 60.0,
                         "score_long": 60.0, "score_short": 0.0, "breakdown": None, "inputs": inputs, "price": None,
                         "code_hash": "c", "config_hash": "c", "fitted_hash": "none"})
            outs.append((sid, RUN, "1h", H, ts, 1, ts, 100.0, 100.0 * (1 + r), float(r), 0.0, 0.0, 0, None, 0.0,
                         math.nan))
    if decisions:  # a decision every 2 minutes: score 100 wins (ret > 0) when i is even, score 60 never wins
        for i in range(0, N, 2):
            ts = T0 + i * M + 45 * S
            win = (i // 2) % 2 == 0
            sid = f"dec-{i}"
            breakdown = {"flow": 60.0, "z": 40.0} if win else {"flow": 60.0, "z": -40.0}
            rows.append({"signal_id": sid, "run_id": RUN, "kind": "decision", "ts_event": ts, "ts_recorded": 0,
                         "event_index": 10_000 + i, "strategy": "flow_score_test",
                         "instrument": "demo-perp:BTCUSDT", "signal": "flow_long", "direction": 1, "value": None,
                         "threshold": None, "weight": None, "score": 100.0 if win else 60.0, "score_long": None,
                         "score_short": None, "breakdown": orjson.dumps(breakdown).decode(), "inputs": None,
                         "price": 100.0, "code_hash": "c", "config_hash": "c", "fitted_hash": "none"})
            r = 0.002 if win else -0.002
            outs.append((sid, RUN, "1h", H, ts, 1, ts, 100.0, 100.0 * (1 + r), r, 0.0, 0.0, 0, None, 0.0, math.nan))
    with SignalLog(path) as log:
        log.start_run({"run_id": RUN, "strategy": "flow_score_test", "config": "{}", "code_hash": "c",
                       "config_hash": "c", "fitted_hash": "none", "data_hash": "d", "source": "live:demo-perp",
                       "start": T0, "end": T0 + N * M, "started_at": 0})
        log.commit(RUN, pl.DataFrame(rows, infer_schema_length=None).select(SIGNAL_COLUMNS), 0, len(rows))
        log.con.execute(OUTCOME_SCHEMA)
        frame = pl.DataFrame(outs, schema=OUTCOME_SCHEMA_PL, orient="row")  # noqa: F841 (read by duckdb below)
        log.con.execute("INSERT INTO outcomes SELECT * FROM frame")
        log.con.execute("INSERT INTO outcome_runs (run_id, horizons) VALUES (?, '[\"1h\"]')", [RUN])


def oos_sharpe(r: np.ndarray, split: int, before: int, offset: int) -> float:
    """Annualised Sharpe of the validation outcomes, computed here from the construction."""
    ts = T0 + np.arange(N) * M + offset
    sel = (ts >= split) & (ts + H < before)
    x = r[sel]
    return float(np.mean(x) / np.std(x, ddof=1) * math.sqrt(x.size * 365 * 86400 * S / (before - split)))


def test_weights_proportional_to_oos_sharpe(tmp_path: Path) -> None:
    rf, rz = returns(1, 0.0004, 0.0002)
    build_log(tmp_path / "log.duckdb", rf, rz)
    before = T0 + N * M
    art = fit(tmp_path / "log.duckdb", config(), start=T0, before=before, params=FitParams())
    split = T0 + int(0.7 * N * M)
    assert art.doc["window"] == {"start": T0, "split": split, "before": before, "runs": [RUN]}
    sf, sz = oos_sharpe(rf, split, before, 0), oos_sharpe(rz, split, before, 30 * S)
    assert sf > 0 and sz > 0
    w = art.scoring()["weights"]
    assert w["flow"] == pytest.approx(100 * sf / (sf + sz), rel=1e-9)
    assert w["zscore"] == pytest.approx(100 * sz / (sf + sz), rel=1e-9)
    assert sum(w.values()) == pytest.approx(100.0)
    # validation rows: signals at/after the split whose hour ended before `before` (1 h before the end)
    n_val = int(np.sum((T0 + np.arange(N) * M >= split) & (T0 + np.arange(N) * M + H < before)))
    assert art.signals["flow"]["out_of_sample"]["count"] == n_val == 180 - 60
    # purge: in-sample outcomes ended before the split (7 h window minus the last hour)
    assert art.signals["flow"]["in_sample"]["count"] == 420 - 60


def test_negative_sharpe_clipped_to_zero(tmp_path: Path) -> None:
    rf, rz = returns(2, 0.0004, -0.0004)
    build_log(tmp_path / "log.duckdb", rf, rz)
    art = fit(tmp_path / "log.duckdb", config(), start=T0, before=T0 + N * M)
    assert art.signals["zscore"]["out_of_sample"]["sharpe"] < 0
    assert art.scoring()["weights"] == {"flow": 100.0, "zscore": 0.0}


def test_min_sample_keeps_the_default_and_says_so(tmp_path: Path) -> None:
    rf, rz = returns(3, 0.0004, 0.0002)
    build_log(tmp_path / "log.duckdb", rf, rz)
    # 120 validation outcomes per signal (previous test): a minimum of 121 keeps both defaults
    art = fit(tmp_path / "log.duckdb", config(), start=T0, before=T0 + N * M, params=FitParams(min_samples=121))
    for name, default in (("flow", 60.0), ("zscore", 40.0)):
        s = art.signals[name]
        assert (s["weight"], s["weight_source"]) == (default, "default")
        assert any("120 out-of-sample outcomes < min_samples 121" in n for n in s["notes"])
    assert art.scoring()["weights"] == {}
    # the history has 1200 values per column: thresholds are still fitted
    assert set(art.scoring()["thresholds"]) == {"flow", "zscore"}


def test_thresholds_are_percentiles_of_the_history(tmp_path: Path) -> None:
    rf, rz = returns(4, 0.0004, 0.0002)
    build_log(tmp_path / "log.duckdb", rf, rz)
    before = T0 + N * M
    art = fit(tmp_path / "log.duckdb", config(), start=T0, before=before)
    assert art.doc["params"]["history"] == "log inputs"
    # 1200 events (two per minute), flow.imbalance cycles through 0.00 .. 0.99: six copies of the grid
    # per 100 minutes; linear percentile at index 0.9 * 1199 = 1079.1: sorted[1079] = 0.89, sorted[1080] = 0.90 -> 0.891
    grid = np.sort(np.repeat(np.arange(100) / 100, 12))
    assert art.signals["flow"]["threshold"] == pytest.approx(grid[1079] + 0.1 * (grid[1080] - grid[1079]))
    assert art.signals["flow"]["threshold"] == pytest.approx(0.891)
    # |z| cycles through 0.0 .. 4.9 (24 copies): sorted[1079] = 4.4, sorted[1080] = 4.5 -> 4.41
    assert art.signals["zscore"]["threshold"] == pytest.approx(4.41)
    # lookback 50 min: the last 100 events; flow.imbalance there is (550..599) mod 100 = 0.50 .. 0.99
    art2 = fit(tmp_path / "log.duckdb", config(), start=T0, before=before, params=FitParams(lookback="50m"))
    assert art2.signals["flow"]["history_count"] == 100
    assert art2.signals["flow"]["threshold"] == pytest.approx(np.percentile(np.repeat(np.arange(50, 100) / 100, 2),
                                                                            90))
    assert art2.signals["flow"]["threshold"] == pytest.approx(0.941)


def test_outcomes_ending_after_the_cutoff_are_never_read(tmp_path: Path) -> None:
    rf, rz = returns(5, 0.0004, 0.0002)
    build_log(tmp_path / "a.duckdb", rf, rz)
    before = T0 + 6 * H
    base = fit(tmp_path / "a.duckdb", config(), start=T0, before=before)
    # poison every outcome whose horizon ends at or after the cutoff (later signals and the last hour's)
    i = np.arange(N)
    late = T0 + i * M + H >= before
    rf2, rz2 = rf.copy(), rz.copy()
    rf2[late], rz2[late] = 0.5, -0.5
    build_log(tmp_path / "b.duckdb", rf2, rz2)
    poisoned = fit(tmp_path / "b.duckdb", config(), start=T0, before=before)
    assert poisoned.hash == base.hash
    # the canary of the canary: poisoning one outcome that ended just before the cutoff changes the fit
    k = int(np.flatnonzero(~late)[-1])
    rf3 = rf.copy()
    rf3[k] = 0.5
    build_log(tmp_path / "c.duckdb", rf3, rz)
    assert fit(tmp_path / "c.duckdb", config(), start=T0, before=before).hash != base.hash


@pytest.mark.parametrize("method", ["logistic", "isotonic"])
def test_calibration_maps_score_to_win_probability(tmp_path: Path, method: str) -> None:
    rf, rz = returns(6, 0.0004, 0.0002)
    build_log(tmp_path / "log.duckdb", rf, rz, decisions=True)
    art = fit(tmp_path / "log.duckdb", config(), start=T0, before=T0 + N * M,
              params=FitParams(calibration=method, min_samples=50))
    cal = art.doc["calibration"]
    assert cal["method"] == method
    # rescored with the fitted weights: winners had both triggers agreeing (w_flow + w_z = 100),
    # losers only flow (w_flow); wins are exactly the decisions with the higher score
    w = art.scoring()["weights"]
    hi, lo = w["flow"] + w["zscore"], w["flow"]
    p_hi, p_lo = art.win_probability([hi, lo])
    if method == "isotonic":
        assert (p_hi, p_lo) == (1.0, 0.0)
        assert cal["x"] == pytest.approx([lo, hi])
    else:
        assert p_hi > 0.9 and p_lo < 0.1
    assert cal["count"] == 300 - 30  # decisions whose hour ended before the end


def test_artifact_round_trip_and_bad_files(tmp_path: Path) -> None:
    rf, rz = returns(7, 0.0004, 0.0002)
    build_log(tmp_path / "log.duckdb", rf, rz)
    art = fit(tmp_path / "log.duckdb", config(), start=T0, before=T0 + N * M)
    path = art.write(tmp_path / "a.json")
    back = load_artifact(path)
    assert back.hash == art.hash and back.scoring() == art.scoring()
    doc = orjson.loads(path.read_bytes())
    assert doc["format"] == FORMAT and doc["strategy"] == "flow_score_test"
    assert set(doc["hashes"]) == {"log_slice", "strategy_code", "config", "data"}
    doc["signals"]["flow"]["weight"] = "heavy"
    (tmp_path / "bad.json").write_bytes(orjson.dumps(doc))
    with pytest.raises(ConfigError, match=r"signals\.flow\.weight.*'heavy'"):
        load_artifact(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="does not exist"):
        load_artifact(tmp_path / "missing.json")


def test_unlabelled_log_and_missing_horizon_are_refused(tmp_path: Path) -> None:
    rf, rz = returns(8, 0.0004, 0.0002)
    build_log(tmp_path / "log.duckdb", rf, rz)
    with pytest.raises(ConfigError, match="no outcome at horizon 5m"):
        fit(tmp_path / "log.duckdb", config(), params=FitParams(horizon="5m"))
    with SignalLog(tmp_path / "bare.duckdb") as log:
        log.con.execute("SELECT 1")
    with pytest.raises(ConfigError, match="no outcomes; run `emerald label`"):
        fit(tmp_path / "bare.duckdb", config())


def test_fit_command_writes_the_artifact(tmp_path: Path) -> None:
    rf, rz = returns(9, 0.0004, -0.0004)
    build_log(tmp_path / "log.duckdb", rf, rz)
    toml = tmp_path / "s.toml"
    toml.write_text(f'strategy = "{STRATEGY}"\ninstruments = ["demo-perp:BTCUSDT"]\n[params]\nwindow_s = 60\n')
    app = typer.Typer()
    app.command()(fit_cmd)
    res = CliRunner().invoke(app, ["--log", str(tmp_path / "log.duckdb"), "--strategy", str(toml), "--out",
                                   str(tmp_path / "out.json"), "--json"])
    assert res.exit_code == 0, res.output
    payload = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert payload["ok"] and payload["scoring"]["weights"] == {"flow": 100.0, "zscore": 0.0}
    assert payload["hash"] == load_artifact(tmp_path / "out.json").hash
    bad = CliRunner().invoke(app, ["--log", str(tmp_path / "log.duckdb"), "--strategy", str(toml), "--out",
                                   str(tmp_path / "x.json"), "--horizon", "7m", "--json"])
    assert bad.exit_code == 2 and "no outcome at horizon 7m" in orjson.loads(bad.stdout.splitlines()[-1])["error"]
