"""``emerald signals ...``: list, document, compute and check parity of the metric registry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from emerald.cli._common import EXIT_PROBLEMS, console, emit_json, handle_errors, out
from emerald.cli.data import _parse_options
from emerald.errors import ConfigError

app = typer.Typer(help="The signal library: list, docs, compute, parity.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]
DOCS_PATH = Path("docs") / "signals.md"


@app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """Print the registry: name, family, inputs, outputs, parameters, definition."""
    with handle_errors(as_json):
        from emerald.signals import REGISTRY

        specs = [REGISTRY[k] for k in sorted(REGISTRY)]
        if as_json:
            emit_json({"count": len(specs), "metrics": [s.to_dict() for s in specs]})
            return
        t = Table(title=f"{len(specs)} metrics")
        for c in ("name", "family", "inputs", "outputs", "definition"):
            t.add_column(c, overflow="fold")
        for s in specs:
            t.add_row(s.name, s.family, ",".join(s.inputs), ",".join(s.outputs), s.definition)
        out.print(t)


@app.command("docs")
def docs(
    write: Annotated[bool, typer.Option("--write", help="Write docs/signals.md instead of printing.")] = False,
    path: Annotated[Path, typer.Option(help="Target file.")] = DOCS_PATH,
) -> None:
    """Generate the signal catalogue (docs/signals.md) from the registry."""
    from emerald import signals  # noqa: F401
    from emerald.signals.docs import render_markdown

    text = render_markdown()
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {path}")
    else:
        print(text, end="")


def _events(root: Path, venue: str | None, symbol: str | None, ref_venue: str | None, ref_symbol: str | None,
            start: str | None, end: str | None) -> Any:
    from emerald.events.table import EventTable
    from emerald.tape.reader import Tape

    tape = Tape(root)
    if venue is None or symbol is None:
        insts = tape.instruments()
        if len(insts) != 1 and (venue is None or symbol is None):
            raise ConfigError(f"the tape holds {len(insts)} instruments; pass --venue and --symbol "
                              f"({', '.join(f'{v}:{s}' for v, s in insts[:6])})")
        venue, symbol = insts[0]
    instruments = [(venue, symbol)]
    if ref_venue and ref_symbol:
        instruments.append((ref_venue, ref_symbol))
    return EventTable.from_tape(tape, instruments, start=start, end=end)


def _feedable(spec: Any, events: Any) -> str | None:
    """Why ``spec`` cannot run on ``events`` (None if it can)."""
    if spec.instruments > len(events.instruments):
        return f"needs {spec.instruments} instruments (pass --ref-venue/--ref-symbol)"
    present = events.kinds_present()
    missing = [k for k in spec.inputs if k not in present]
    if len(missing) == len(spec.inputs):
        return f"no {', '.join(spec.inputs)} events on this tape slice"
    if getattr(spec, "required_inputs", None):
        req = [k for k in spec.required_inputs if k not in present]
        if req:
            return f"needs {', '.join(req)} events"
    return None


def _select(metrics: str) -> list[Any]:
    from emerald.signals import REGISTRY, get_spec

    if metrics == "all":
        return [REGISTRY[k] for k in sorted(REGISTRY)]
    return [get_spec(m.strip()) for m in metrics.split(",") if m.strip()]


@app.command("compute")
def compute(
    name: Annotated[str, typer.Argument(help="Metric name, comma list, or `all`.")],
    root: Annotated[Path, typer.Option("--root", help="Tape folder.")],
    out_path: Annotated[Path, typer.Option("--out", help="Output Parquet file.")],
    venue: Annotated[str | None, typer.Option(help="Venue of the main instrument.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol of the main instrument.")] = None,
    ref_venue: Annotated[str | None, typer.Option(help="Venue of the reference instrument (basis, spreads).")] = None,
    ref_symbol: Annotated[str | None, typer.Option(help="Symbol of the reference instrument.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start (ISO with zone, or date).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End, exclusive.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Metric parameter KEY=VALUE (single metric).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run metrics in batch over a tape slice and write one column per output to Parquet."""
    with handle_errors(as_json):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from emerald.signals import Metric

        events = _events(root, venue, symbol, ref_venue, ref_symbol, start, end)
        specs = _select(name)
        overrides = _parse_options(param or [])
        if overrides and len(specs) != 1:
            raise ConfigError("--param applies to a single metric; name one metric")
        cols: dict[str, Any] = {"ts": events.ts, "kind": events.kind, "inst": events.inst}
        skipped: dict[str, str] = {}
        t0 = time.perf_counter()
        for spec in specs:
            why = _feedable(spec, events)
            if why:
                skipped[spec.name] = why
                continue
            values = Metric(spec, **overrides).run(events)
            for j, o in enumerate(spec.outputs):
                cols[f"{spec.name}.{o}"] = values[:, j]
        out_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), out_path, compression="zstd")
        result = {"out": str(out_path), "events": len(events), "metrics": len(specs) - len(skipped),
                  "columns": [c for c in cols if "." in c], "skipped": skipped,
                  "seconds": round(time.perf_counter() - t0, 3), "instruments": events.instruments}
        if as_json:
            emit_json(result)
        else:
            out.print(f"{result['metrics']} metrics over {len(events):,} events -> {out_path}")
            for k, v in skipped.items():
                out.print(f"  skipped {k}: {v}")


@app.command("parity")
def parity(
    root: Annotated[Path, typer.Option("--root", help="Tape folder.")],
    venue: Annotated[str | None, typer.Option(help="Venue of the main instrument.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol of the main instrument.")] = None,
    ref_venue: Annotated[str | None, typer.Option(help="Venue of the reference instrument.")] = None,
    ref_symbol: Annotated[str | None, typer.Option(help="Symbol of the reference instrument.")] = None,
    metrics: Annotated[str, typer.Option(help="`all` or a comma list.")] = "all",
    start: Annotated[str | None, typer.Option("--from")] = None,
    end: Annotated[str | None, typer.Option("--to")] = None,
    max_events: Annotated[int | None, typer.Option(help="Only the first N events (stream mode is per event).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the batch and the stream driver over a real tape slice and compare every value."""
    with handle_errors(as_json):
        from emerald.signals import Metric

        events = _events(root, venue, symbol, ref_venue, ref_symbol, start, end)
        if max_events is not None:
            events = events.slice(0, min(max_events, len(events)))
        report: dict[str, Any] = {}
        skipped: dict[str, str] = {}
        mismatches = 0
        for spec in _select(metrics):
            why = _feedable(spec, events)
            if why:
                skipped[spec.name] = why
                continue
            t0 = time.perf_counter()
            batch = Metric(spec).run(events)
            t1 = time.perf_counter()
            stream = Metric(spec).stream(events)
            t2 = time.perf_counter()
            both_nan = np.isnan(batch) & np.isnan(stream)
            diff = np.where(both_nan, 0.0, np.abs(batch - stream))
            diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only
            n_bad = int((diff != 0).sum())
            mismatches += n_bad
            report[spec.name] = {"compared": int(batch.size), "non_nan": int((~np.isnan(batch)).sum()),
                                 "max_abs_diff": float(diff.max()) if diff.size else 0.0, "mismatches": n_bad,
                                 "batch_s": round(t1 - t0, 4), "stream_s": round(t2 - t1, 4)}
        never_warmed = sorted(k for k, v in report.items() if v["non_nan"] == 0)
        result = {"ok": mismatches == 0, "events": len(events), "instruments": events.instruments,
                  "kinds": sorted(events.kinds_present()), "metrics": report, "skipped": skipped,
                  "mismatches": mismatches, "compared_metrics": len(report),
                  # fed, compared, but all-NaN on this slice (windows longer than the data)
                  "never_warmed": never_warmed}
        if as_json:
            emit_json(result)
        else:
            t = Table(title=f"parity over {len(events):,} events")
            for c in ("metric", "compared", "non-NaN", "max |diff|", "mismatches"):
                t.add_column(c)
            for k, v in report.items():
                t.add_row(k, f"{v['compared']:,}", f"{v['non_nan']:,}", f"{v['max_abs_diff']:.3g}", str(v["mismatches"]))
            out.print(t)
            for k, v in skipped.items():
                out.print(f"  skipped {k}: {v}")
            if never_warmed:
                out.print(f"  compared but all-NaN on this slice (windows longer than the data): {', '.join(never_warmed)}")
        if mismatches:
            raise typer.Exit(EXIT_PROBLEMS)
