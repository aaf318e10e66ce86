"""Generated modules: source written to ``$EMERALD_CACHE_DIR`` under a name derived from its
content, then imported, so numba's on-disk cache works for them as for any module.

numba's cache of a module checks only that module's own file, not the kernels it calls, so
callers put a digest of those kernels' sources into the generated text (:func:`sources_digest`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


def cache_dir(kind: str) -> Path:
    root = Path(os.environ.get("EMERALD_CACHE_DIR", Path.home() / ".cache" / "emerald")) / kind
    root.mkdir(parents=True, exist_ok=True)
    return root


def sources_digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:20]


def load_generated(src: str, prefix: str, kind: str) -> ModuleType:
    """Import ``src`` as module ``<prefix>_<sha of src>`` from the cache folder ``kind``."""
    digest = hashlib.sha256(src.encode()).hexdigest()[:20]
    modname = f"{prefix}_{digest}"
    if modname in sys.modules:
        return sys.modules[modname]
    path = cache_dir(kind) / f"{modname}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(src)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module
