"""Render the metric registry as Markdown (``docs/signals.md`` is generated from this)."""

from __future__ import annotations

from emerald.signals.base import REGISTRY


def _fmt(v: object) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1e6:
        return f"{v:.3g}"
    if isinstance(v, int) and abs(v) >= 10**6:
        return f"{v:,}".replace(",", "_")
    return str(v)


def render_markdown() -> str:
    """The signal catalogue, grouped by family; deterministic for a given registry."""
    lines = [
        "# Signal catalogue",
        "",
        "Generated from the metric registry by `emerald signals docs --write`; a test fails when this file is stale.",
        "Every metric is one numba kernel (`step_nb`, with `batch_nb` a loop over it) and passes the contract checks:",
        "stream == batch bit for bit, split batches == one batch, no look-ahead, agreement with a slow oracle.",
        "Inputs are event kinds of the merged stream (`emerald/events/table.py`); windows are in ns of event time.",
        "",
    ]
    families = sorted({s.family for s in REGISTRY.values()})
    lines.append("| family | metrics |")
    lines.append("|---|---|")
    for fam in families:
        names = sorted(s.name for s in REGISTRY.values() if s.family == fam)
        lines.append(f"| {fam} | {', '.join(f'`{n}`' for n in names)} |")
    lines.append("")
    for fam in families:
        lines.append(f"## {fam}")
        lines.append("")
        for spec in sorted((s for s in REGISTRY.values() if s.family == fam), key=lambda s: s.name):
            lines.append(f"### `{spec.name}`")
            lines.append("")
            lines.append(spec.definition.strip())
            lines.append("")
            lines.append(f"- inputs: {', '.join(spec.inputs)}" + (" (full book depth)" if spec.needs_book else ""))
            lines.append(f"- outputs: {', '.join(f'`{o}`' for o in spec.outputs)}")
            lines.append(f"- warm-up: {spec.warmup}")
            lines.append(f"- source: {spec.source}")
            lines.append(f"- oracle tolerance: {spec.oracle_tolerance:g} (relative)")
            if spec.params:
                lines.append("")
                lines.append("| parameter | unit | default | bounds | meaning |")
                lines.append("|---|---|---|---|---|")
                for p in spec.params:
                    bounds = f"[{_fmt(p.low)}, {_fmt(p.high)}]"
                    lines.append(f"| `{p.name}` | {p.unit} | {_fmt(p.default)} | {bounds} | {p.doc} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
