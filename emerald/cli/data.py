"""``emerald data ...``: build, import, list, validate and query tapes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from emerald.cli._common import EXIT_PROBLEMS, console, emit_json, handle_errors, out, progress_bar
from emerald.errors import ConfigError

app = typer.Typer(help="Build, import, list, validate and query tapes.", no_args_is_help=True)

RootOpt = Annotated[Path, typer.Option("--root", help="Tape folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def _parse_options(pairs: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option must be KEY=VALUE, was {pair!r}")
        value: Any = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for conv in (int, float):
                try:
                    value = conv(raw)
                    break
                except ValueError:
                    pass
        opts[key.replace("-", "_")] = value
    return opts


def build_or_reuse_demo(root: Path, seed: int, days: int, *, force: bool, progress: bool) -> dict[str, Any]:
    """Build the demo tape, or reuse the one at ``root`` when it was built with the same recipe."""
    import shutil

    import orjson

    from emerald.tape.demo import build_demo
    from emerald.tape.manifest import MANIFEST_NAME, atomic_write_bytes

    recipe = root / "_demo.json"
    if root.exists() and any(root.iterdir()):
        if force:
            if not (root / MANIFEST_NAME).exists():
                raise ConfigError(f"--force deletes a tape folder, and {root} holds no {MANIFEST_NAME}; "
                                  "pick another --root")
            shutil.rmtree(root)
        elif recipe.exists():
            old = orjson.loads(recipe.read_bytes())
            if (old.get("seed"), old.get("days")) == (seed, days):
                from emerald.tape.coverage import audit

                if audit(root, verify="footer").ok:
                    old["reused"] = True
                    return dict(old)
    t0 = time.perf_counter()
    with progress_bar(progress) as cb:
        summary = build_demo(root, seed=seed, days=days, progress=cb)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["reused"] = False
    atomic_write_bytes(recipe, orjson.dumps(summary, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))
    return summary


@app.command("demo")
def demo(
    root: Annotated[Path, typer.Option("--root", help="Tape folder to build.")] = Path("demo-tape"),
    seed: Annotated[int, typer.Option(help="Random seed: same seed, byte-identical files.")] = 7,
    days: Annotated[int, typer.Option(help="Days of data.", min=1, max=365)] = 7,
    force: Annotated[bool, typer.Option(help="Delete an existing tape at --root and rebuild.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the seeded demo tape (3 perps + their spot markets + EURUSD) and print its summary.

    A tape already at --root built with the same seed and days is verified and reused."""
    with handle_errors(as_json):
        summary = build_or_reuse_demo(root, seed, days, force=force, progress=not as_json)
        summary["root"] = str(root)
        if as_json:
            emit_json(summary)
            return
        _print_summary(root)
        how = "reused (same seed and days; --force rebuilds)" if summary["reused"] else \
            f"built in {summary['seconds']} s"
        console.print(f"demo tape {how} at [bold]{root}[/] (seed {seed}, {days} days)")


@app.command("import")
def import_(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="binance-raw, binance-vision, tardis, hyperliquid-raw, "
                                                               "histdata, mt5, funding-csv, bars-csv")],
    paths: Annotated[list[Path], typer.Argument(help="Input files.")],
    root: RootOpt,
    venue: Annotated[str | None, typer.Option(help="Venue name (binance-usdm, ...).")] = None,
    symbol: Annotated[str | None, typer.Option(help="Venue symbol (BTCUSDT, ...).")] = None,
    tz: Annotated[str | None, typer.Option(help="Time zone of naive times in the source (IANA or UTC-05:00).")] = None,
    strict: Annotated[bool, typer.Option(help="Fail on the first bad row or line instead of quarantining it.")] = False,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Format option KEY=VALUE.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import source files into a tape; report rows in/written/duplicates/quarantined per kind."""
    with handle_errors(as_json):
        from emerald.tape.importers import run_import

        t0 = time.perf_counter()
        opts = _parse_options(option or [])
        if as_json:
            report = run_import(fmt, paths, root, venue=venue, symbol=symbol, tz=tz, strict=strict, **opts)
        else:
            with console.status(f"importing {len(paths)} file(s) as {fmt} into {root} ..."):
                report = run_import(fmt, paths, root, venue=venue, symbol=symbol, tz=tz, strict=strict, **opts)
        d = report.to_dict()
        d["seconds"] = round(time.perf_counter() - t0, 3)
        d["root"] = str(root)
        if as_json:
            emit_json(d)
        else:
            t = Table(title=f"import {fmt} -> {root}")
            for c in ("kind", "rows in", "written", "duplicates", "quarantined", "first", "last", "balanced"):
                t.add_column(c)
            for kind, k in d["kinds"].items():
                t.add_row(kind, str(k.get("rows_in", "")), str(k.get("rows_written", "")), str(k.get("duplicates", "")),
                          str(k.get("quarantined_total", "")), str(k.get("first", "")), str(k.get("last", "")),
                          str(k.get("balanced", "")))
            out.print(t)
            for kind, k in d["kinds"].items():
                if k.get("quarantined"):
                    out.print(f"  {kind} quarantined: {k['quarantined']}")
                book = {x: k[x] for x in ("resyncs", "gaps", "partial") if x in k}
                if book:
                    out.print(f"  {kind} book: {book}")
            if d["lines_rejected"]:
                out.print(f"  rejected lines: {d['lines_rejected']}")
            if d["unhandled"]:
                out.print(f"  unhandled messages: {d['unhandled']}")
            for note in d["notes"]:
                out.print(f"  note: {note}")
        if not d["balanced"]:
            raise typer.Exit(EXIT_PROBLEMS)


def _print_summary(root: Path) -> dict[str, Any]:
    from emerald.tape.reader import Tape

    tape = Tape(root)
    summary = tape.manifest.get("summary", {})
    t = Table(title=f"tape {root}")
    for c in ("kind", "venue", "symbol", "rows", "partitions", "first", "last", "MB"):
        t.add_column(c, justify="right" if c in ("rows", "partitions", "MB") else "left")
    from emerald.tape.timeutil import ns_to_iso

    for s in summary.values():
        t.add_row(s["kind"], s["venue"], s["symbol"], f"{s['rows']:,}", str(s["partitions"]),
                  str(ns_to_iso(s["first_ts"]))[:19], str(ns_to_iso(s["last_ts"]))[:19], f"{s['bytes'] / 1e6:.1f}")
    out.print(t)
    q = tape.manifest.get("quarantine", {})
    if q:
        out.print(f"quarantined rows: {sum(q.values()):,} ({len(q)} reasons; see _quarantine/)")
    return summary


@app.command("ls")
def ls(root: RootOpt, as_json: JsonOpt = False) -> None:
    """List kinds, instruments, rows and time spans of a tape."""
    with handle_errors(as_json):
        from emerald.tape.reader import Tape

        if as_json:
            tape = Tape(root)
            emit_json({"root": str(root), "content_hash": tape.manifest["content_hash"],
                       "schema_version": tape.manifest["schema_version"],
                       "datasets": list(tape.manifest.get("summary", {}).values()),
                       "quarantine": tape.manifest.get("quarantine", {}),
                       "sources": tape.manifest.get("sources", [])})
        else:
            _print_summary(root)


@app.command("validate")
def validate(
    root: RootOpt,
    lenient: Annotated[bool, typer.Option(help="Move bad and stray files to _quarantine/ instead of only reporting.")] = False,
    verify: Annotated[str, typer.Option(help="hash (default), footer or none.")] = "hash",
    gap: Annotated[float | None, typer.Option(help="Gap threshold in seconds (default: per kind).")] = None,
    strict: Annotated[bool, typer.Option(help="Also fail on gaps and missing funding settlements.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every file against the manifest; report stray files, gaps and funding coverage."""
    with handle_errors(as_json):
        from emerald.tape.coverage import audit, coverage

        a = audit(root, verify=verify, lenient=lenient)
        covs = coverage(root, gap_ns=None if gap is None else int(gap * 1e9))
        missing_funding = sum(c.funding["missing"] for c in covs if c.funding)
        gaps = sum(len(c.gaps) for c in covs)
        ok = a.ok or lenient
        if strict:
            ok = ok and missing_funding == 0 and gaps == 0
        result = {"ok": ok, "audit": a.to_dict(), "coverage": [c.to_dict() for c in covs],
                  "gaps": gaps, "funding_missing": missing_funding}
        if as_json:
            emit_json(result)
        else:
            out.print(f"files: {a.files_ok}/{a.files_total} ok, rows {a.rows_total:,}")
            for b in a.bad_files:
                out.print(f"[red]bad file[/] {b['path']}: {b['error']}")
            for s in a.stray_files:
                out.print(f"[yellow]stray file[/] {s}" + (" (moved to _quarantine/_stray)" if lenient else ""))
            t = Table(title="coverage")
            for c in ("kind", "venue", "symbol", "rows", "first", "last", "gaps", "funding"):
                t.add_column(c)
            for c in covs:
                f = c.funding
                ftxt = "" if f is None else f"{f['present']}/{f['expected']} settlements" + (
                    f" [red]{f['missing']} missing[/]" if f["missing"] else "")
                t.add_row(c.kind, c.venue, c.symbol, f"{c.rows:,}", str(c.to_dict()["first"])[:19],
                          str(c.to_dict()["last"])[:19], str(len(c.gaps)), ftxt)
            out.print(t)
            out.print("[green]ok[/]" if ok else "[red]problems found[/]")
        if not ok:
            raise typer.Exit(EXIT_PROBLEMS)


@app.command("query")
def query(
    root: RootOpt,
    sql: Annotated[str, typer.Argument(help="SQL over the views trades, book, quotes, prices, funding, ...")],
    limit: Annotated[int, typer.Option(help="Rows to print (JSON prints all).")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Run SQL (DuckDB) over the tape; one view per kind with venue, symbol and date columns."""
    with handle_errors(as_json):
        from emerald.tape.reader import Tape

        df = Tape(root).sql(sql)
        if as_json:
            emit_json({"columns": df.columns, "rows": df.rows(), "row_count": df.height})
        else:
            with __import__("polars").Config(tbl_rows=limit, tbl_cols=20):
                out.print(str(df.head(limit)))
