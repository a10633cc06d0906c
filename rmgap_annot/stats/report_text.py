"""Plain-text lines for the report's exclusions, truth inference and two-way intervals.

Kept apart from ``report.format_report`` so those sections can change
without touching the main text report; the CLI prints both.
"""

from __future__ import annotations

from typing import Optional

from rmgap_annot.settings import DOMAINS


def _pct(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _ci(ci: Optional[list]) -> str:
    return "" if not ci else f" [{_pct(ci[0])}, {_pct(ci[1])}]"


def format_extras(report: dict) -> str:
    lines: list[str] = []
    ex = report.get("exclusions") or {}
    if ex.get("excluded"):
        lines += ["", f"Excluded annotators ({ex['n_labels_excluded']} labels left out; stored, counted nowhere):"]
        for e in ex.get("stored", []):
            lines.append(f"  {e['annotator']}: {e['reason']}")
        for n in ex.get("what_if", []):
            lines.append(f"  {n}: what-if (--exclude; not stored)")
    ti = report.get("truth_inference") or {}
    if ti.get("BoN"):
        lines += ["", "Human BoN by aggregation (95% intervals hold the aggregation fixed)",
                  f"{'':<14}" + "".join(f"{d:>24}" for d in (*DOMAINS, "Avg"))]
        for m in ti["methods"]:
            status = ti["status"].get(m, {})
            if not status.get("fitted"):
                lines.append(f"{m:<14}{status.get('reason', 'n/a')}")
                continue
            lines.append(f"{m:<14}" + "".join(f"{_pct(ti['BoN'][m][d]) + _ci(ti['ci'][m][d]):>24}" for d in (*DOMAINS, "Avg")))
        if ti.get("n_disagreements") is not None:
            lines.append(f"Items whose answer depends on the aggregation: {ti['n_disagreements']}")
        fitted = [m for m in ti["methods"] if m != "plurality" and ti["status"].get(m, {}).get("fitted")]
        if fitted and ti.get("competence"):
            lines += ["", f"{'annotator':<20}{'labels':>8}{'accuracy':>10}" + "".join(f"{m:>14}" for m in fitted)]
            for r in ti["competence"]:
                lines.append(f"{r['annotator'][:19]:<20}{r['n_labels']:>8}{_pct(r['label_accuracy']):>10}"
                             + "".join(f"{'n/a' if r.get(m) is None else format(r[m], '.3f'):>14}" for m in fitted))
    tw = report.get("annotator_resampling")
    if tw:
        lines += ["", "Two-way (record x annotator) 95% intervals"]
        if tw.get("reason"):
            lines.append(f"  n/a: {tw['reason']}")
        else:
            for metric in ("BoN", "label_accuracy"):
                lines.append(f"  {metric:<16}" + "  ".join(f"{d} {_ci(tw[metric]['ci'][d]).strip() or 'n/a'}" for d in (*DOMAINS, "Avg")))
            a = tw["choice_alpha"]["ci"]
            lines.append("  pick alpha      " + "  ".join(
                f"{d} " + (f"[{a[d][0]:.3f}, {a[d][1]:.3f}]" if a[d] else "n/a") for d in (*DOMAINS, "All")))
    return "\n".join(lines)
