"""The CLI reference (``docs/cli.md``), generated from the command tree itself.

``emerald docs cli --write`` regenerates it; ``tests/cli/test_reference.py`` fails when the file
differs from what the current commands would generate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

DOCS_PATH = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
FORMATS_PATH = DOCS_PATH.with_name("tape-formats.md")


def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    """Every command under ``cmd`` (typer vendors click, so groups are recognised by their
    ``commands`` mapping rather than by class)."""
    out = [(path, cmd)]
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            out += _walk(cmd.commands[name], [*path, name])
    return out


def _type(p: Any) -> str:
    if getattr(p, "is_flag", False):
        return "flag"
    ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
    if ann is None:
        t = getattr(p, "type", None)
        return getattr(t, "name", "text")
    return {"Path": "path", "str": "text", "int": "integer", "float": "number"}.get(getattr(ann, "__name__", ""),
                                                                                   str(ann).replace("typing.", ""))


def _default(p: Any) -> str:
    d: Any = p.default
    if d is None or d == () or getattr(p, "is_flag", False) and d is False or callable(d):
        return ""
    return f"`{d}`"


def render(app: typer.Typer) -> str:
    root = typer.main.get_command(app)
    lines = ["# CLI reference", "",
             "Generated from the commands by `emerald docs cli --write`; a test fails when this file is stale.",
             "Every command that takes `--json` prints one JSON object as its last line; errors exit with 2 (bad "
             "arguments or config) or 1 (bad data, failed checks) and name the file, field and value.", ""]
    for path, cmd in _walk(root, ["emerald"]):
        if cmd.hidden:
            continue
        is_group = hasattr(cmd, "commands")
        lines.append(f"{'##' if len(path) <= 2 else '###'} `{' '.join(path)}`" + (" …" if is_group else ""))
        lines.append("")
        help_text = (cmd.help or "").strip()
        if help_text:
            lines += [help_text, ""]
        if is_group:
            continue
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        opts = [p for p in cmd.params if p.param_type_name == "option" and not p.hidden and p.name != "help"]
        usage = " ".join([*path, *(f"{(a.metavar or a.name or '').upper()}" for a in args), "[OPTIONS]" if opts else ""])
        lines += ["```", usage.strip(), "```", ""]
        if opts or args:
            lines += ["| argument / option | type | default | help |", "|---|---|---|---|"]
            for a in args:
                lines.append(f"| `{a.metavar or (a.name or '').upper()}` | {_type(a)} | "
                             f"{'required' if a.required else _default(a)} | "
                             f"{(getattr(a, 'help', '') or '').replace('|', '/')} |")
            for o in opts:
                names = ", ".join(f"`{n}`" for n in [*o.opts, *o.secondary_opts])
                kind = _type(o)
                lines.append(f"| {names} | {kind} | {'required' if o.required else _default(o)} | "
                             f"{(o.help or '').replace('|', '/')} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_formats() -> str:
    """``docs/tape-formats.md``: every import format with its module's documentation (layouts,
    quirks, what maps to which tape kind), in the order of the importer registry."""
    import inspect
    from importlib import import_module

    from emerald.tape.importers import IMPORTERS

    lines = ["# Tape formats", "",
             "Generated from the importer modules by `emerald docs formats --write`; a test fails when this file is "
             "stale. Import with `emerald data import FORMAT FILES... --root DIR` (`--venue/--symbol` when the file "
             "does not say, `--tz` when its times carry no zone). Every import reports lines in = parsed + rejected "
             "(by reason) and, per tape kind, rows in = written + duplicates + quarantined.", ""]
    seen: set[str] = set()
    modules = []
    for target in IMPORTERS.values():
        module = target.partition(":")[0]
        if module not in seen:
            seen.add(module)
            modules.append((module, [f for f, t in IMPORTERS.items() if t.partition(":")[0] == module]))
    for module, fmts in modules:
        doc = inspect.getdoc(import_module(module)) or ""
        lines += [f"## {', '.join(f'`{f}`' for f in fmts)}", "", f"Module: `{module}`", "", doc.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
