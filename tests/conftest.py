from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# numba's first-call compile trips hypothesis' 200 ms deadline
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/real`` beside the project; tests that use it fail loudly when it is missing."""
    if not REAL_DATA.is_dir():
        pytest.fail(f"real market data not found at {REAL_DATA} (expected ../shared/data/real beside the repo)")
    return REAL_DATA
