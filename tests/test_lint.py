"""The code base passes ruff (the configuration is in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "emerald", "tests", "benchmarks", "dev.py"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_core_modules_read_no_clock_and_no_global_rng() -> None:
    """RELIABILITY.md 4.1 seams: core code gets time and randomness injected (kernels take ts; generators
    take a seeded numpy Generator)."""
    import re

    banned = re.compile(r"time\.time\(|datetime\.now\(\)|\.utcnow\(|utcfromtimestamp\(|^\s*import random\b|"
                        r"\brandom\.(random|randint|choice|seed|shuffle)\(|np\.random\.(seed|rand|randn|randint)\(")
    hits = []
    for path in sorted((ROOT / "emerald").rglob("*.py")):
        if "cli" in path.parts:
            continue  # the CLI may time itself for its report
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if banned.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
