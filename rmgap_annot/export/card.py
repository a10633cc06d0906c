"""The dataset card (README.md of an export): exactly how the subset was chosen, and from what.

Also the verdict block and the alpha lines the HTML report shares with it.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any, Mapping

from rmgap_annot import __version__
from rmgap_annot.export.rule import REASONS, Rule
from rmgap_annot.export.sources import ANALYTICS_MISSING
from rmgap_annot.models import Benchmark
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats.truth import PLURALITY

def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}f}"
    return str(x)


def alpha_lines(analytics: dict | None, why_not: str | None) -> dict[str, str]:
    """'alpha [lo, hi] (n items)' per domain, or the reason there is none."""
    out: dict[str, str] = {}
    table = ((analytics or {}).get("agreement") or {}).get("choice_alpha") or {}
    for domain in (*DOMAINS, "All"):
        if analytics is None:
            out[domain] = why_not or ANALYTICS_MISSING
            continue
        entry = table.get(domain)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("alpha"), (int, float)):
            reason = entry.get("reason") if isinstance(entry, Mapping) else None
            out[domain] = "n/a" + (f" ({reason})" if reason else "")
            continue
        ci = entry.get("ci")
        interval = (f"[95% CI {_fmt(ci[0])}, {_fmt(ci[1])}]" if ci
                    else f"(no interval: {entry.get('ci_reason') or 'not computed'})")
        out[domain] = f"{_fmt(entry['alpha'])} {interval}, {entry.get('n_items', 'n/a')} items"
    return out


def verdict_block(analytics: Mapping | None, why_not: str | None, *, html_out: bool = False) -> str:
    """The verdict at a glance (rmgap_annot.verdict) for the top of the card / report.html, or why it is missing."""
    from rmgap_annot.stats.verified import verified_html, verified_markdown  # noqa: PLC0415
    from rmgap_annot.verdict import verdict_html, verdict_markdown  # noqa: PLC0415

    verdict = (analytics or {}).get("verdict") if isinstance(analytics, Mapping) else None
    if not isinstance(verdict, Mapping):
        why = why_not or "n/a (the analytics report has no verdict)"
        return f"<h2>Verdict at a glance</h2><p>{html.escape(str(why), quote=True)}</p>" if html_out else f"## Verdict at a glance\n\n{why}\n"
    subset = analytics.get("verified_subset")
    if html_out:
        return verdict_html(verdict) + verified_html(subset)
    return verdict_markdown(verdict) + "\n" + verified_markdown(subset)


def dataset_card(
    *, bench: Benchmark, rule: Rule, level: str, summary: dict, alphas: dict[str, str] | None, files: Mapping[str, str],
    n_labels: int, created_at: datetime, verdict: str = "", entries_note: str | None = None,
) -> str:
    """README.md of the export: exactly how the subset was chosen, and from what (the verdict first, when given)."""
    rmgap = entries_note is None
    lines = [
        f"# Human-verified subset of {bench.name}",
        "",
        f"Made with rmgap-annot {__version__} on {created_at:%Y-%m-%d %H:%M} UTC, level `{level}`.",
        "",
        *([verdict] if verdict else []),
        "## Source",
        "",
        f"- benchmark: `{bench.name}` (imported from `{bench.source_path}`)",
        f"- sha256 of the source file: `{bench.file_hash}`",
        f"- labels used: {n_labels} (all of them are in `labels.parquet` / `labels.csv`)",
        "",
        "## The rule",
        "",
        "An item is verified when it passes all four checks below; the first check it fails is",
        "the reason it was dropped. " + ("A record is kept (in `test.jsonl`) when all 12 of its items are verified."
                                         if rmgap else "An entry is kept when all its items are verified."),
        "",
    ]
    for reason, text in zip(REASONS, rule.describe()):
        lines.append(f"1. {text} (else: *{reason}*)")
    lines += [
        "",
        f"Thresholds: `--min-labels {rule.min_labels} --min-agreement {rule.min_agreement} "
        f"--min-naturalness {rule.min_naturalness}`.",
        "",
        "## Kept and dropped",
        "",
        f"| {'domain' if rmgap else 'category'} | {'records' if rmgap else 'entries'} kept | {'records' if rmgap else 'entries'} "
        "| items kept | items | " + " | ".join(f"dropped: {r}" for r in REASONS) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(REASONS),
    ]
    for domain in summary:
        s = summary[domain]
        lines.append(
            f"| {domain or '(none)'} | {s['records_kept']} | {s['records']} | {s['items_kept']} | {s['items']} | "
            + " | ".join(str(s["items_dropped"][r]) for r in REASONS) + " |"
        )
    if alphas is not None:  # RMGAP's per-domain table; another format's agreement is with its own metrics
        lines += [
            "",
            "## Agreement on the pick (Krippendorff's alpha, nominal, over all labels of the source benchmark)",
            "",
            "| domain | alpha |",
            "|---|---|",
        ]
        lines += [f"| {d or '(none)'} | {alphas.get(d, 'n/a')} |" for d in summary]
    lines += ["", "## Files", "", "| file | sha256 |", "|---|---|"]
    lines += [f"| `{name}` | `{digest}` |" for name, digest in files.items()]
    lines += [
        "",
        *(["`test.jsonl` (record level) holds each kept record's original line, byte for byte and in the",
           "original order, so RMGAP's evaluator reads it unchanged."] if rmgap else [entries_note]),
        "`items.jsonl` (item level) holds one verified item per line with its votes, agreement share,",
        "mean naturalness and every scorer's scores.",
        "",
    ]
    return "\n".join(lines)


def card_extras(*, aggregate: str, exclusions: Mapping[str, Any]) -> str:
    """The card's aggregation and exclusion sections (appended after the main card)."""
    names = {PLURALITY: "plurality vote", "dawid-skene": "one-coin Dawid-Skene (crowd-kit)", "mace": "MACE (crowd-kit)"}
    lines = [
        "",
        "## Aggregation",
        "",
        f"`--aggregate {aggregate}`: each item's answer is the {names[aggregate]} estimate"
        + ("." if aggregate == PLURALITY else "; the agreement share in the rule is the share of labels choosing that answer."),
        "",
        "## Excluded annotators",
        "",
    ]
    stored = exclusions.get("stored") or []
    if not stored:
        lines.append("None: every annotator's labels were used.")
    else:
        lines += [f"{exclusions.get('n_labels_excluded', 0)} labels by these annotators are stored but were not used "
                  "(not in the rule, the label files or the agreement figures):", "", "| annotator | reason | excluded at |",
                  "|---|---|---|"]
        lines += [f"| {e['annotator']} | {str(e['reason']).replace('|', '/')} | {e['excluded_at']} |" for e in stored]
    return "\n".join(lines) + "\n"


def _ci_text(value: Any, ci: Any, pct: bool = True) -> str:
    """A signed difference with its interval: percentage points for proportions, plain otherwise."""
    if value is None:
        return "n/a"

    def f(v: float) -> str:
        return f"{v * 100:+.1f} pp" if pct else f"{v:+.2f}"

    return f(value) + (f" [{f(ci[0])}, {f(ci[1])}]" if ci else "")


def card_planning(report: Mapping[str, Any] | None, why_not: str | None) -> str:
    """The card's "Sample-size plan": records per domain for a 95% interval of +/- 5 points (the report's ``planning``)."""
    lines = ["", "## Sample-size plan (95% interval of half-width 0.05; design effect from the within-record ICC)", ""]
    plan = (report or {}).get("planning")
    if not plan:
        return "\n".join(lines + [f"n/a: {why_not or 'the report has no planning section'}"]) + "\n"
    if plan.get("reason"):
        return "\n".join(lines + [f"n/a: {plan['reason']}"]) + "\n"
    lines += ["| metric | domain | records now | half-width now | records needed | note |", "|---|---|---|---|---|---|"]
    for metric in ("BoN", "label_accuracy"):
        res = plan.get(metric) or {}
        if res.get("reason"):
            lines.append(f"| {metric} | all | | | n/a | {res['reason']} |")
            continue
        for d, e in (res.get("domains") or {}).items():
            now = e.get("half_width_now")
            lines.append(f"| {metric} | {d} | {e.get('records_now', '')} | {'' if now is None else f'{now:.3f}'} | "
                         f"{'n/a' if e.get('records_needed') is None else e['records_needed']} | {e.get('reason') or e.get('note') or ''} |")
    lines += ["", f"Labels per item planned: {plan['labels_per_item']}. Pick alpha: `rmgap-annot plan --metric choice_alpha`."]
    return "\n".join(lines) + "\n"


def card_referee(report: Mapping[str, Any] | None, why_not: str | None) -> str:
    """The card's "Referee analyses" section: the report's ``referee`` key in three short tables.

    Over all counted labels of the source benchmark (not only the kept
    records), like the agreement figures above; the full numbers are in
    ``report --json``.
    """
    lines = ["", "## Referee analyses (all counted labels; 95% intervals resample whole records)", ""]
    ref = (report or {}).get("referee")
    if not ref:
        return "\n".join(lines + [f"n/a: {why_not or 'the report has no referee section'}"]) + "\n"
    sp = ref["style_profiles"]
    lines += ["**Style lean of wrong picks** (mean level of the wrong picks minus its expectation if they fell uniformly on the",
              "non-winners; positive = towards highly formal / verbose / highly specialized / strictly objective / rigorous), All domains:", ""]
    if sp.get("reason"):
        lines.append(f"n/a: {sp['reason']}")
    else:
        pickers = ["human", *sp["scorers"]]
        lines += ["| dimension | " + " | ".join(pickers) + " |", "|---|" + "---|" * len(pickers)]
        dims = (sp["by_domain"].get("All") or {}).get("dimensions") or {}
        for dim, parts in dims.items():
            cells = []
            for who in pickers:
                lean = parts["wrong_picks"][who]["lean"]
                cells.append(_ci_text(lean.get("value"), lean.get("ci"), pct=False)
                             + (f", p {lean['p_value']:.3g}" if lean.get("p_value") is not None else f" ({lean.get('reason')})"))
            lines.append(f"| {dim} | " + " | ".join(cells) + " |")
    bvr = ref["base_vs_rewrite"]
    lines += ["", "**Base prompt minus its paraphrases** (paired within prompt groups; p adjusted across domains):", "",
              "| domain | BoN | label accuracy | pick alpha | naturalness (mean) |", "|---|---|---|---|---|"]
    for d in (*DOMAINS, "All"):
        block = bvr["by_domain"].get(d) or {}
        if "reason" in block:
            lines.append(f"| {d} | n/a ({block['reason']}) | | | |")
            continue
        cells = []
        for metric in ("BoN", "label_accuracy", "pick_alpha", "naturalness_mean"):
            diff = block[metric]["difference"]
            text = _ci_text(diff.get("difference"), diff.get("ci"), pct=metric in ("BoN", "label_accuracy"))
            p = diff.get("p_adjusted", diff.get("p_value"))
            cells.append(text + (f", p {p:.3g}" if p is not None else f" ({diff.get('reason', '')})" if diff.get("difference") is None else ""))
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    bd = ref["between_domains"]
    lines += ["", f"**Between domains** ({bd['test']}):", ""]
    for metric in ("BoN", "label_accuracy"):
        e = bd[metric]
        if e.get("p_value") is None:
            lines.append(f"- {metric}: n/a ({e.get('reason')})")
        else:
            rs = e.get("rao_scott") or {}
            lines.append(f"- {metric}: chi-square {e['statistic']:.2f} on {e['df']} df, p {e['p_value']:.3g}"
                         + (f" (Rao-Scott check: p {rs['p_value']:.3g})" if rs.get("p_value") is not None else ""))
    return "\n".join(lines) + "\n"
