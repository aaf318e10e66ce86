"""`emerald demo`, `emerald backtest`, `emerald strategies list` end to end, through the real
command line (a subprocess, as a user runs them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from emerald.testing.browser import assert_page_ok

REPO = Path(__file__).resolve().parents[2]


def emerald(*args: str, cwd: Path) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "emerald", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=900)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
    return proc.returncode, orjson.loads(last), proc.stderr


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    work = tmp_path_factory.mktemp("demo")
    code, out, err = emerald("demo", "--root", str(work / "tape"), "--days", "2", "--json", cwd=work)
    assert code == 0, err[-3000:]
    return work, out


def test_demo_ends_with_a_report_that_renders(demo_run: tuple[Path, dict]) -> None:
    work, out = demo_run
    report = Path(out["report"])
    if not report.is_absolute():
        report = work / report
    assert report.exists() and report.stat().st_size > 1_000_000  # plotly.js is inlined: the file works offline
    assert out["ok"] is True and out["trades"] > 0 and out["strategy"] == "ema_cross"
    assert {"sharpe", "max_drawdown_pct", "total_return_pct", "win_rate_pct"} <= set(out["stats"])
    pnl = out["pnl"]
    assert pnl["total"] == pytest.approx(pnl["price"] - pnl["fees"] - pnl["funding"], abs=1e-6)
    assert [row["criterion"] for row in out["go_live"]][:5] == ["win rate", "profit factor", "Sharpe",
                                                                "max drawdown", "trades"]
    check = assert_page_ok(report)
    assert len(check.charts) >= 5


def test_demo_reuses_the_tape_and_gives_the_same_result(demo_run: tuple[Path, dict]) -> None:
    work, first = demo_run
    code, again, err = emerald("demo", "--root", str(work / "tape"), "--days", "2", "--json", "--report",
                               str(work / "again.html"), cwd=work)
    assert code == 0, err[-3000:]
    assert again["digest"] == first["digest"]


def test_backtest_command_json_and_report(demo_run: tuple[Path, dict], tmp_path: Path) -> None:
    work, _ = demo_run
    code, out, err = emerald("backtest", str(REPO / "strategies" / "ema_cross.toml"), "--root", str(work / "tape"),
                             "--from", "2024-03-01T06:00:00Z", "--to", "2024-03-02", "--report",
                             str(tmp_path / "r.html"), "--json", cwd=tmp_path)
    assert code == 0, err[-3000:]
    assert out["start"].startswith("2024-03-01T06:00") and out["end"].startswith("2024-03-02T00:00")
    assert Path(out["report"]).exists() and out["trades"] == out["stats"]["trades"]


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('strategy = "ema_cross"\ninstruments = ["demo-perp:BTCUSDT"]\n[execution]\nlatency_msec = 5\n')
    code, out, _ = emerald("backtest", str(cfg), "--root", str(tmp_path), "--json", cwd=tmp_path)
    assert code == 2 and out["ok"] is False
    assert "latency_msec" in out["error"] and "latency_ms" in out["error"]  # did-you-mean


def test_strategies_list_json(tmp_path: Path) -> None:
    code, out, err = emerald("strategies", "list", "--json", cwd=tmp_path)
    assert code == 0, err
    names = {s["name"] for s in out["strategies"]}
    assert {"ema_cross", "emerald_convergence", "orderflow_scalper"} <= names
    for s in out["strategies"]:
        assert s["params"] and all({"name", "unit", "default"} <= set(p) for p in s["params"])
