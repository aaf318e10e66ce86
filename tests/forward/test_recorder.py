"""The recorder: parity with the backtester (demo tape and the real Binance capture), the signal
log's schema and counts (I5), and a SIGKILL mid-run followed by a restart (RELIABILITY TK2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from emerald.forward.log import SignalLog
from emerald.forward.recorder import Recorder, backtest_signal_rows
from emerald.strategy.base import load_config
from emerald.tape.demo import build_demo
from emerald.tape.importers import run_import

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STRATEGY = str(HERE / "_strategies.py")
COMPARE = ["signal_id", "kind", "ts_event", "event_index", "instrument", "signal", "direction", "value", "threshold",
           "weight", "score", "score_long", "score_short", "breakdown", "inputs", "price"]


def config(instrument: str, **extra: object) -> dict[str, object]:
    return {"strategy": STRATEGY, "instruments": [instrument], "params": {"window_s": 60, "entry_score": 100.0},
            "execution": {"latency_ms": 50, "slippage_bps": 1.0, "fraction": 0.5, "trail_pct": 0.5,
                          **extra.pop("execution", {})}, **extra}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def demo2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rec") / "tape"
    build_demo(root, seed=7, days=2, instruments=[("demo-perp", "BTCUSDT")])
    return root


@pytest.fixture(scope="module")
def binance_tape(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("binance") / "tape"
    files = sorted((real_data / "binance-raw").glob("usdm_btcusdt_*.dat.gz"))
    run_import("binance-raw", files, root, venue="binance-usdm", symbol="BTCUSDT")
    return root


def recorded(log: Path, run_id: str) -> pl.DataFrame:
    with SignalLog(log, read_only=True) as lg:
        return lg.signals(run_id)


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    a = a.select(COMPARE).sort("signal_id")
    b = b.select(COMPARE).sort("signal_id")
    assert a.height == b.height
    assert a.equals(b), a.join(b, on="signal_id", how="anti")


def test_parity_with_backtester_on_demo_tape(demo2: Path, tmp_path: Path) -> None:
    cfg = load_config(config("demo-perp:BTCUSDT"))
    expected = backtest_signal_rows(cfg, demo2)
    assert expected.filter(pl.col("kind") == "firing").height > 50
    assert expected.filter(pl.col("kind") == "decision").height > 5
    report = Recorder(cfg, tmp_path / "log.duckdb").replay(demo2)
    assert report["emitted"] == report["recorded"] == expected.height  # I5
    got = recorded(tmp_path / "log.duckdb", report["run_id"])
    same_rows(got, expected)
    assert got["signal_id"].n_unique() == got.height
    assert (got["ts_recorded"] > 0).all()
    # the decisions' breakdown names the scored signals; firings carry the threshold they crossed
    firing = got.filter(pl.col("kind") == "firing").row(0, named=True)
    assert firing["threshold"] in (0.3, 1.5)
    assert firing["direction"] * (firing["value"] - firing["direction"] * firing["threshold"]) > 0


def test_parity_on_real_binance_capture(binance_tape: Path, tmp_path: Path) -> None:
    cfg = load_config(config("binance-usdm:BTCUSDT", params={"window_s": 30, "entry_score": 60.0,
                                                               "flow_threshold": 0.5}))
    expected = backtest_signal_rows(cfg, binance_tape)
    assert expected.height > 20
    report = Recorder(cfg, tmp_path / "log.duckdb").replay(binance_tape)
    assert report["emitted"] == report["recorded"] == expected.height
    same_rows(recorded(tmp_path / "log.duckdb", report["run_id"]), expected)


def test_second_replay_is_recognised(demo2: Path, tmp_path: Path) -> None:
    cfg = load_config(config("demo-perp:BTCUSDT", end="2024-03-01T06:00:00Z"))
    rec = Recorder(cfg, tmp_path / "log.duckdb")
    first = rec.replay(demo2)
    again = rec.replay(demo2)
    assert again["status"] == "already recorded" and again["recorded"] == first["recorded"]
    assert recorded(tmp_path / "log.duckdb", first["run_id"]).height == first["recorded"]


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "emerald", "record", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


@pytest.mark.timeout(600)
def test_sigkill_mid_run_then_restart(demo2: Path, tmp_path: Path) -> None:
    """TK2: kill -9 after some commits, twice, then let it finish: no duplicate ids, every row of
    an uninterrupted run is there exactly once, emitted == recorded."""
    cfg_path = tmp_path / "s.toml"
    cfg_path.write_text(f'strategy = "{STRATEGY}"\ninstruments = ["demo-perp:BTCUSDT"]\n'
                        '[params]\nwindow_s = 60\nentry_score = 100.0\n'
                        '[execution]\nlatency_ms = 50\nslippage_bps = 1.0\nfraction = 0.5\ntrail_pct = 0.5\n')
    log = tmp_path / "log.duckdb"
    args = [str(cfg_path), "--replay", str(demo2), "--log", str(log), "--progress"]
    killed_at = []
    for kills in range(2):
        proc = _start(args)
        commits = 0
        assert proc.stderr is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("committed"):
                commits += 1
                if commits == 3 + 5 * kills:
                    killed_at.append(int(line.split("events=")[1].split()[0]))
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.wait(timeout=60)
        proc.stderr.close()
        assert proc.stdout is not None
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL, "the recorder finished before it could be killed"
    with SignalLog(log, read_only=True) as lg:
        partial = lg.signals()
        events_done = lg.progress(partial["run_id"][0])[0] if partial.height else 0
    assert partial["signal_id"].n_unique() == partial.height
    assert events_done >= killed_at[-1] > 0
    proc = _start([*args[:-1], "--json"])
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    import orjson

    report = orjson.loads(out.strip().splitlines()[-1])
    assert report["resumed_from"] >= killed_at[-1]
    assert report["emitted"] == report["recorded"]
    final = recorded(log, report["run_id"])
    assert final["signal_id"].n_unique() == final.height
    # everything committed before the kills is still there, unchanged
    kept = final.filter(pl.col("signal_id").is_in(partial["signal_id"].implode()))
    same_rows(kept, partial)
    expected = backtest_signal_rows(load_config(cfg_path), demo2)
    same_rows(final, expected)
