#!/usr/bin/env python3
"""Set up and run EMERALD on a fresh machine that has only Python 3.11 and pip.

    python3 dev.py demo    # create .venv, install the locked dependencies, build the demo
    python3 dev.py test    # same set-up, then run the test suite (fails when no test ran)
    python3 dev.py bench   # same set-up, then run the benchmarks in benchmarks/

The set-up is idempotent: it reinstalls only when requirements.lock or pyproject.toml changed.
Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
LOCK = ROOT / "requirements.lock"
STAMP = VENV / ".emerald-installed"


def run(cmd: list[str], **kw: object) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kw)  # type: ignore[arg-type]


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by any python3
        sys.exit(f"EMERALD needs Python >= 3.11, this is {sys.version.split()[0]}")
    want = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # uv installs the lockfile in seconds; plain pip is the fallback
    if run([PY, "-m", "pip", "install", "--quiet", "uv"]) == 0 and \
            run([PY, "-m", "uv", "pip", "install", "--python", PY, "-r", LOCK]) == 0:
        ok = run([PY, "-m", "uv", "pip", "install", "--python", PY, "--no-deps", "-e", "."]) == 0
    else:
        ok = run([PY, "-m", "pip", "install", "--quiet", "-r", LOCK]) == 0 and \
            run([PY, "-m", "pip", "install", "--quiet", "--no-deps", "-e", "."]) == 0
    if not ok:
        sys.exit("dependency installation failed (see above)")
    STAMP.write_text(want)


def ensure_chromium() -> None:
    """The report tests open the HTML reports in headless Chromium (Debian's package)."""
    import shutil

    if shutil.which("chromium") or os.environ.get("EMERALD_CHROMIUM"):
        return
    if not shutil.which("apt-get"):
        print("chromium not found and no apt-get: the browser tests will fail", file=sys.stderr)
        return
    sudo = [] if hasattr(os, "geteuid") and os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if run([*sudo, "apt-get", "install", "-y", "-q", "chromium"], env=env) != 0:
        run([*sudo, "apt-get", "update", "-q"], env=env)
        run([*sudo, "apt-get", "install", "-y", "-q", "chromium"], env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "bench", "setup"):
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    setup()
    env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}
    if cmd == "setup":
        return 0
    if cmd == "demo":
        return run([BIN / "emerald", "demo", *rest], env=env)
    if cmd == "bench":
        code = 0
        for script in sorted((ROOT / "benchmarks").glob("*.py")):
            code |= run([PY, script, *rest], env=env)
        return code
    ensure_chromium()
    code = run([PY, "-m", "pytest", *rest], env=env)
    if code == 5:
        print("no test ran: failing on purpose", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
