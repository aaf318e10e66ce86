"""Shared fixtures of the strategy tests: the 7-day demo tape (built once per session) and
a helper that runs a strategy config dict on any tape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emerald.backtest.engine import backtest
from emerald.backtest.result import RunResult
from emerald.strategy.base import REPO_STRATEGIES, load_config
from emerald.tape.demo import build_demo


@pytest.fixture(scope="session")
def demo_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo7") / "tape"
    build_demo(root, seed=7, days=7)
    return root


def run_toml(name: str, root: Path, **overrides: Any) -> RunResult:
    """Backtest ``strategies/<name>.toml`` on ``root`` (top-level keys may be overridden)."""
    return backtest(load_config(REPO_STRATEGIES / f"{name}.toml", **overrides), root)


def run_dict(config: dict[str, Any], root: Path) -> RunResult:
    return backtest(load_config(config), root)
