"""report.html: one self-contained page (inline SVG charts, inline data, no script, no network)."""

from __future__ import annotations

import html
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from rmgap_annot import __version__
from rmgap_annot.export import own_metrics
from rmgap_annot.export.card import _fmt, verdict_block
from rmgap_annot.export.rule import REASONS, Rule
from rmgap_annot.export.sources import ANALYTICS_MISSING
from rmgap_annot.models import Benchmark
from rmgap_annot.settings import DOMAINS

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}h2{margin-top:2em;border-bottom:1px solid #ddd}
.note{color:#666;font-size:.9em}svg{display:block;margin:1em 0}pre{white-space:pre-wrap;font-size:.8em}
"""
_COLORS = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6"]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def svg_stacked_bars(rows: list[tuple[str, list[float]]], series: list[str], *, title: str) -> str:
    """Horizontal stacked bars: one row per category, one colour per series."""
    width, left, bar_h, gap = 760, 130, 22, 10
    total_max = max([sum(v) for _, v in rows] + [1])
    height = 40 + len(rows) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="16" font-size="14" font-weight="bold">{_e(title)}</text>']
    scale = (width - left - 20) / total_max
    for i, (label, values) in enumerate(rows):
        y = 30 + i * (bar_h + gap)
        parts.append(f'<text x="{left - 6}" y="{y + bar_h * 0.7:.1f}" font-size="12" text-anchor="end">{_e(label)}</text>')
        x = float(left)
        for j, v in enumerate(values):
            w = v * scale
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{_COLORS[j % len(_COLORS)]}">'
                             f"<title>{_e(series[j])}: {v:g}</title></rect>")
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="11">{sum(values):g}</text>')
    ly = 30 + len(rows) * (bar_h + gap) + 8
    lx = left
    for j, name in enumerate(series):
        parts.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{_COLORS[j % len(_COLORS)]}"/>'
                     f'<text x="{lx + 14}" y="{ly + 9}" font-size="11">{_e(name)}</text>')
        lx += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def svg_intervals(rows: list[tuple[str, float | None, float | None, float | None]], *, title: str,
                  lo: float = -1.0, hi: float = 1.0) -> str:
    """Point estimates with interval bars on a fixed axis (alpha, accuracies)."""
    width, left, row_h = 760, 130, 26
    height = 40 + len(rows) * row_h + 24
    span = width - left - 30

    def x(v: float) -> float:
        return left + (min(max(v, lo), hi) - lo) / (hi - lo) * span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="16" font-size="14" font-weight="bold">{_e(title)}</text>']
    axis_y = 30 + len(rows) * row_h
    for tick in np.linspace(lo, hi, 5):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="28" y2="{axis_y}" stroke="#eee"/>'
                     f'<text x="{x(tick):.1f}" y="{axis_y + 14}" font-size="10" text-anchor="middle">{tick:g}</text>')
    for i, (label, est, a, b) in enumerate(rows):
        y = 30 + i * row_h + row_h / 2
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{_e(label)}</text>')
        if est is None:
            parts.append(f'<text x="{left + 4}" y="{y + 4:.1f}" font-size="11" fill="#999">n/a</text>')
            continue
        if a is not None and b is not None:
            parts.append(f'<line x1="{x(a):.1f}" x2="{x(b):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#4c78a8" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(est):.1f}" cy="{y:.1f}" r="4" fill="#4c78a8"><title>{est:.3f}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _metric_table(title: str, columns: dict[str, Mapping], *, keys=(*DOMAINS, "Avg")) -> str:
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = []
    for name, values in columns.items():
        cells = "".join(f"<td>{_e(_fmt(_num(values.get(k)) if isinstance(values, Mapping) else None))}</td>" for k in keys)
        body.append(f"<tr><td>{_e(name)}</td>{cells}</tr>")
    return f"<h3>{_e(title)}</h3><table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _json_for_script(data: Any) -> str:
    """JSON that cannot close its <script> element early."""
    text = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False) if data is not None else "null"
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(float(value)) or math.isinf(float(value)) else float(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def _naturalness_and_position(analytics: Mapping) -> list[str]:
    """Charts for naturalness ratings and display-slot picks, drawn only from what is there."""
    parts: list[str] = []
    nat = (analytics.get("naturalness") or {}).get("by_domain")
    if isinstance(nat, Mapping):
        scale = ["1", "2", "3", "4", "5"]
        rows = []
        for d in (*DOMAINS, "All"):
            counts = (nat.get(d) or {}).get("counts") if isinstance(nat.get(d), Mapping) else None
            if isinstance(counts, Mapping):
                rows.append((d, [float(_num(counts.get(k)) or 0) for k in scale]))
        if rows:
            parts.append("<h2>Naturalness</h2>")
            parts.append(svg_stacked_bars(rows, [f"rated {k}" for k in scale], title="Naturalness ratings per domain (1 = unnatural, 5 = natural)"))
    pos = analytics.get("position_bias")
    if isinstance(pos, Mapping) and isinstance(pos.get("counts"), Mapping):
        parts.append("<h2>Position bias</h2>")
        counts = pos["counts"]
        if sum(float(_num(v) or 0) for v in counts.values()) > 0:
            parts.append(svg_stacked_bars([(f"slot {k}", [float(_num(v) or 0)]) for k, v in counts.items()], ["picks"],
                                          title="Picks by displayed slot"))
            parts.append(f"<p>chi-square against uniform: {_e(_fmt(_num(pos.get('chi2'))))}, "
                         f"p = {_e(_fmt(_num(pos.get('p_value'))))}</p>")
        else:
            parts.append(f"<p>n/a ({_e(pos.get('reason') or 'no picks with a recorded display order')})</p>")
    return parts


def write_report_html(
    path: Path, *, bench: Benchmark, rule: Rule, summary: dict, verdicts: pd.DataFrame, analytics: dict | None,
    why_not: str | None, created_at: datetime,
) -> None:
    """One self-contained page: inline SVG charts, inline data, no script, no network."""
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(bench.name)}: human verification report</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(bench.name)}: human verification report</h1>",
        f"<p class=\"note\">rmgap-annot {_e(__version__)}, {created_at:%Y-%m-%d %H:%M} UTC. Source sha256 "
        f"<code>{_e(bench.file_hash)}</code>.</p>",
        verdict_block(analytics, why_not, html_out=True) if bench.format == "rmgap" else "",
        "<h2>The verified subset</h2><ol>",
        *(f"<li>{_e(t)} (else: <em>{_e(r)}</em>)</li>" for r, t in zip(REASONS, rule.describe())),
        "</ol>",
    ]
    rmgap = bench.format == "rmgap"
    groups = [d for d in summary if d != "All"]  # RMGAP's domains, or another format's top-level categories
    unit, entry = ("domain", "records") if rmgap else ("category", "entries")
    rows = [(d, [summary[d]["items_kept"], *(summary[d]["items_dropped"][r] for r in REASONS)]) for d in groups]
    parts.append(svg_stacked_bars(rows, ["verified", *REASONS], title=f"Items per {unit}: verified, and why the rest were dropped"))
    table = [f"<table><tr><th>{unit}</th><th>{entry} kept</th><th>{entry}</th><th>items kept</th><th>items</th>",
             *(f"<th>{_e(r)}</th>" for r in REASONS), "</tr>"]
    for d in (*groups, "All"):
        s = summary[d]
        table.append(f"<tr><td>{_e(d)}</td><td>{s['records_kept']}</td><td>{s['records']}</td><td>{s['items_kept']}</td>"
                     f"<td>{s['items']}</td>" + "".join(f"<td>{s['items_dropped'][r]}</td>" for r in REASONS) + "</tr>")
    table.append("</table>")
    parts += table
    nat = verdicts["mean_naturalness"].dropna()
    if len(nat):
        bins = [(f"{a:g}-{a + 1:g}" if a < 4 else "4-5", int(((nat >= a) & ((nat < a + 1) if a < 4 else (nat <= 5))).sum()))
                for a in (1, 2, 3, 4)]
        parts.append(svg_stacked_bars([(b, [n]) for b, n in bins], ["items"], title="Mean naturalness per item"))

    parts.append("<h2>Agreement and human accuracy</h2>" if rmgap else "")
    if analytics is None:
        parts.append(f"<p>{_e(why_not or ANALYTICS_MISSING)}</p>")
    elif not rmgap:
        parts += own_metrics.html_own_metrics(analytics)  # its own metrics, agreement and rating questions
        readable = {k: v for k, v in analytics.items() if k != "items"}
        parts.append("<details><summary>All analytics numbers (JSON, per-item list omitted)</summary><pre>"
                     f"{_e(json.dumps(_jsonable(readable), indent=1, ensure_ascii=False))}</pre></details>")
        parts.append(f'<script type="application/json" id="analytics">{_json_for_script(_jsonable(analytics))}</script>')
    else:
        agreement = analytics.get("agreement") or {}
        for key, title, lo in (("choice_alpha", "Krippendorff's alpha on the pick (95% CI)", -1.0),
                               ("naturalness_alpha", "Krippendorff's alpha on naturalness (95% CI)", -1.0)):
            table_a = agreement.get(key) or {}
            if not isinstance(table_a, Mapping):
                continue
            rows_a = []
            for d in (*DOMAINS, "All"):
                entry = table_a.get(d) if isinstance(table_a.get(d), Mapping) else {}
                ci = entry.get("ci") or [None, None]
                ci = list(ci) + [None, None]
                rows_a.append((d, _num(entry.get("alpha")), _num(ci[0]), _num(ci[1])))
            parts.append(svg_intervals(rows_a, title=title, lo=lo, hi=1.0))
        human = analytics.get("human") or {}
        scorers = analytics.get("scorers") or {}
        titles = {
            "Pair": "Pair accuracy against the designated winners",
            "BoN": "BoN accuracy against the designated winners",
            "Consistency": "Consistency (RMGAP's rule: identical full rankings on a group's three prompts; "
                           "people: Borda order of ranking-mode labels, n/a without them)",
            "TopConsistency": "TopConsistency (the same top pick on a group's three prompts; people: plurality pick)",
        }
        for metric in ("Pair", "BoN", "Consistency", "TopConsistency"):
            columns: dict[str, Mapping] = {}
            # Each column says its item set: people are scored on the items they labelled, a
            # reward model on every item it scored (the Reward models page compares both on
            # the labelled items only, hence different numbers).
            if isinstance(human.get(metric), Mapping):
                columns["humans (labelled items)"] = human[metric]
            if isinstance(scorers, Mapping):
                for name, s in scorers.items():
                    if isinstance(s, Mapping) and isinstance(s.get(metric), Mapping):
                        columns[f"{name} (all {s.get('n_items', '?')} scored items)"] = s[metric]
            if columns:
                parts.append(_metric_table(titles[metric], columns))
                avg_rows = [(n, _num(v.get("Avg")), None, None) for n, v in columns.items()]
                parts.append(svg_intervals(avg_rows, title=f"{metric}, average over domains", lo=0.0, hi=1.0))
        parts += own_metrics.html_own_metrics(analytics)  # the benchmark's own metrics, the rating questions
        parts += _naturalness_and_position(analytics)
        # The per-item list is long (and in labels.*); the inline JSON below keeps it for tools.
        readable = {k: v for k, v in analytics.items() if k != "items"}
        parts.append("<details><summary>All analytics numbers (JSON, per-item list omitted)</summary><pre>"
                     f"{_e(json.dumps(_jsonable(readable), indent=1, ensure_ascii=False))}</pre></details>")
        parts.append(f'<script type="application/json" id="analytics">{_json_for_script(_jsonable(analytics))}</script>')
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8", newline="\n")
