"""The research notebooks run top to bottom, show no error and no empty chart, and are committed clean.

Each notebook is executed with nbclient in a fresh kernel of this interpreter (a kernelspec written to a
temporary folder first on ``JUPYTER_PATH``, so a user-level ``python3`` kernelspec pointing at another
Python cannot interfere). The notebooks read the real samples through ``EMERALD_REAL_DATA`` (the ``real_data`` fixture) and write
their tapes under ``EMERALD_NOTEBOOK_TMP`` (pytest's ``tmp_path``). Their own cells ``assert`` what they
show, so a wrong number fails the run; this file adds what a notebook cannot check about itself: no cell
errored or wrote to stderr, every plotly figure has data in every trace, every cell that shows a table
or a figure is checked by an ``assert`` in it or in the next code cell, and the committed file has no
outputs.
"""

from __future__ import annotations

import ast
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

RESEARCH = Path(__file__).resolve().parents[2] / "research"
NOTEBOOKS = sorted(RESEARCH.glob("*.ipynb"))
EXPECTED = ("01_tape_tour", "02_signal_study", "03_backtest_and_sweep", "04_forward_test", "05_write_your_own")
PLOTLY = "application/vnd.plotly.v1+json"
CELL_TIMEOUT_S = 600  # first-time numba compiles on a cold cache included
NOTEBOOK_LIMIT_S = 600


def trace_points(trace: dict[str, Any]) -> int:
    """Points in a plotly trace: the length of its first non-empty data array (plain list or plotly's
    typed-array encoding ``{"dtype": ..., "bdata": base64}``)."""
    for key in ("x", "y", "values", "z", "r", "lat"):
        v = trace.get(key)
        if v is None:
            continue
        if isinstance(v, dict) and "bdata" in v:
            n = len(base64.b64decode(v["bdata"])) // np.dtype(v["dtype"]).itemsize
        else:
            n = len(v)
        if n:
            return n
    return 0


def figures(nb: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            fig = o.get("data", {}).get(PLOTLY)
            if fig is not None:
                out.append((cell.get("id", "?"), json.loads(fig) if isinstance(fig, str) else fig))
    return out


def problems(nb: Any) -> list[str]:
    """Everything in an executed notebook that shows a failure: errors, stderr, empty figures."""
    found = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o["output_type"] == "error":
                found.append(f"cell {cell.id}: {o['ename']}: {o['evalue']}")
            elif o["output_type"] == "stream" and o["name"] == "stderr":
                found.append(f"cell {cell.id} wrote to stderr: {o['text'][:500]}")
    for cell_id, fig in figures(nb):
        traces = fig.get("data", [])
        if not traces:
            found.append(f"cell {cell_id}: figure without traces")
        for k, t in enumerate(traces):
            if trace_points(t) == 0:
                found.append(f"cell {cell_id}: figure trace {k} ({t.get('type')}, {t.get('name')!r}) is empty")
    return found


def shows(cell: Any) -> bool:
    return any(o["output_type"] in ("display_data", "execute_result") for o in cell.get("outputs", []))


KERNEL = "emerald-notebook-tests"


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Jupyter data folder holding one kernelspec, :data:`KERNEL`, that runs this interpreter (the
    .venv's python; ipykernel comes with the lockfile). First on ``JUPYTER_PATH`` and under a name no
    user kernelspec has, it cannot resolve to another Python."""
    try:
        import ipykernel  # noqa: F401
    except ImportError:
        pytest.fail(f"ipykernel is not installed in {sys.prefix} (it is in requirements.lock: python3 dev.py setup)")
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "EMERALD notebook tests", "language": "python"}))
    return str(root)


def execute(path: Path) -> tuple[Any, float]:
    """Run the notebook in a fresh kernel (nbclient shuts it down) with the research folder as cwd."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- tests


def test_the_five_notebooks_are_there() -> None:
    assert tuple(p.stem for p in NOTEBOOKS) == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {cell.id} has outputs"


def displays(source: str) -> bool:
    """Whether a code cell shows a result: a figure's ``.show()``, ``display(...)`` or a last statement
    that is a bare expression (other than a ``print`` call)."""
    if ".show()" in source or "display(" in source:
        return True
    body = ast.parse(source).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    value = body[-1].value
    return not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_shown_result_is_asserted(path: Path) -> None:
    """A cell that shows a table or a figure has an ``assert`` in it or in the next code cell."""
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    shown = [k for k, c in enumerate(code) if displays(c.source)]
    assert shown, f"{path.name} shows nothing"
    for k in shown:
        checked = "assert " in code[k].source or (k + 1 < len(code) and "assert " in code[k + 1].source)
        assert checked, f"{path.name} cell {code[k].id} shows a result that no assert checks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, jupyter_path: str, real_data: Path, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", jupyter_path)
    monkeypatch.setenv("EMERALD_REAL_DATA", str(real_data))
    monkeypatch.setenv("EMERALD_NOTEBOOK_TMP", str(tmp_path))
    nb, seconds = execute(path)
    print(f"{path.name}: {seconds:.1f} s")
    assert problems(nb) == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "a cell did not run"
    assert figures(nb), f"{path.name} shows no chart"
    assert sum(shows(c) for c in code) >= 3
    assert seconds < NOTEBOOK_LIMIT_S


# ------------------------------------------------------------------- the checker itself can fail


def _executed(outputs: list[dict[str, Any]]) -> Any:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells.append(cell)
    return nb


def test_displays() -> None:
    assert displays("x = 1\ntable.head()") and displays("fig.show()\nassert x")
    assert not displays("x = 1\nprint(x)") and not displays("def f():\n    return 1") and not displays("x = f()")


def test_problems_catches_errors_stderr_and_empty_figures() -> None:
    good = {"output_type": "display_data", "metadata": {},
            "data": {PLOTLY: {"data": [{"type": "scatter", "x": [1, 2], "y": [3, 4]}], "layout": {}}}}
    typed = {"output_type": "display_data", "metadata": {}, "data": {PLOTLY: {"data": [
        {"type": "scattergl", "y": {"dtype": "f8", "bdata": base64.b64encode(np.arange(3.0).tobytes()).decode()}}]}}}
    assert problems(_executed([good, typed])) == []
    assert trace_points(typed["data"][PLOTLY]["data"][0]) == 3
    empty = {"output_type": "display_data", "metadata": {},
             "data": {PLOTLY: {"data": [{"type": "scatter", "x": [], "y": []}], "layout": {}}}}
    no_traces = {"output_type": "display_data", "metadata": {}, "data": {PLOTLY: {"data": [], "layout": {}}}}
    error = {"output_type": "error", "ename": "AssertionError", "evalue": "", "traceback": []}
    stderr = {"output_type": "stream", "name": "stderr", "text": "UserWarning: something"}
    for bad in (empty, no_traces, error, stderr):
        assert len(problems(_executed([good, bad]))) == 1, bad
