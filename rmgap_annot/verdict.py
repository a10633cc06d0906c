"""The validity verdict at a glance (issue 15, item 2): one row per domain, each cell marked by a stated rule.

A researcher asks one question: are this benchmark's items valid, and does
its headline result survive a human check? The report answers it in many
tables; this module reads those numbers (``build_verdict(report, artifacts)``,
pure: no database, no statistics of its own) and says per domain, cell by
cell, whether the evidence passes, fails or is unclear, and then writes the
sentence under the table *from the numbers*, so it can never disagree with
them.

Why interval rules: a point estimate of 0.81 on 12 items is not evidence of
0.8; a cell passes only when its whole 95% record-clustered interval clears
the threshold, fails only when the whole interval misses it, and is unclear
otherwise (more labels decide it). Every mark is a symbol *and* a word (and a
colour for those who see it), never colour alone.

The rules (``RULES``; ``RULE_LINE`` states them in one line):

- ``people``: human BoN (plurality pick = designated winner): pass when the
  interval lies entirely at or above 0.8, fail when entirely below 0.5.
- ``agreement``: Krippendorff's alpha on the pick: pass when the interval
  lies entirely at or above 0.667 (Krippendorff's lowest level for tentative
  conclusions), fail when entirely below it.
- ``naturalness``: share of ratings 4-5: pass when entirely at or above 0.5,
  fail when entirely below 0.5 (the mean is shown beside it).
- ``verified``: share of labelled items that pass the export rule (default
  thresholds): pass when entirely at or above 0.8, fail when entirely below 0.5.
- ``shallow_cue``: the shallow-cue model's BoN (``rmgap-annot artifacts``,
  read from its cache): pass when its interval lies entirely below people's
  BoN interval, fail when its estimate reaches people's lower bound (cues
  rival people), else unclear; n/a when not computed.
- ``best_model``: the reward model with the best BoN Avg on all labelled
  items; BoN on all labelled items vs on verified items, and the clustered
  verified-minus-rest difference: pass (the headline holds) when that
  difference's interval lies within +-0.05, fail when its adjusted p < 0.05,
  else unclear.

Shape of ``report["verdict"]``::

    {"rule": str (RULE_LINE),
     "columns": [{"key": str, "title": str, "rule": str}, ...],
     "rows": [{"domain": str, "n_labelled": int,
               "cells": {key: {"status": "pass" | "fail" | "unclear" | "n/a",
                               "symbol": "✓" | "✗" | "?" | "–", "word": str, "colour": "#rrggbb",
                               "text": str (the numbers, formatted), "value": float | None,
                               "ci": [lo, hi] | None, "reason"?: str (n/a, or why unclear), ...}}}],
     "best_scorer": {"name": str | None, "BoN_Avg": float | None, "reason"?: str},
     "counts": {"pass": int, "fail": int, "unclear": int, "n/a": int},
     "sentence": str}

``format_verdict`` (text, the CLI), ``verdict_markdown`` (the dataset card)
and ``verdict_html`` (report.html) render it; the Results page draws it too.
"""

from __future__ import annotations

import html
import math
from typing import Any, Mapping, Optional

from rmgap_annot.settings import DOMAINS

PASS, FAIL, UNCLEAR, NA = "pass", "fail", "unclear", "n/a"
MARKS = {
    PASS: {"symbol": "✓", "word": "pass", "colour": "#1a7f37"},
    FAIL: {"symbol": "✗", "word": "fail", "colour": "#cf222e"},
    UNCLEAR: {"symbol": "?", "word": "unclear", "colour": "#9a6700"},
    NA: {"symbol": "–", "word": "n/a", "colour": "#6e7781"},
}
PEOPLE_PASS, PEOPLE_FAIL = 0.8, 0.5
ALPHA_PASS = 0.667
NATURAL_SHARE = 0.5
VERIFIED_PASS, VERIFIED_FAIL = 0.8, 0.5
HOLDS_WITHIN = 0.05
SIGNIFICANT = 0.05
NOT_COMPUTED = "not computed, run `rmgap-annot artifacts`"

RULES = {
    "people": f"pass if the 95% interval of human BoN is entirely >= {PEOPLE_PASS:g}, fail if entirely < {PEOPLE_FAIL:g}",
    "agreement": f"pass if the interval of pick alpha is entirely >= {ALPHA_PASS:g}, fail if entirely < {ALPHA_PASS:g}",
    "naturalness": f"pass if the interval of the share rated 4-5 is entirely >= {NATURAL_SHARE:g}, fail if entirely < {NATURAL_SHARE:g}",
    "verified": f"pass if the interval of the share verified is entirely >= {VERIFIED_PASS:g}, fail if entirely < {VERIFIED_FAIL:g}",
    "shallow_cue": "pass if the cue model's BoN interval lies entirely below people's, fail if its estimate reaches people's lower bound",
    "best_model": f"pass if the verified - rest BoN difference's interval lies within ±{HOLDS_WITHIN:g}, fail if its adjusted p < {SIGNIFICANT:g}",
}
COLUMNS = [
    {"key": "people", "title": "People confirm the winner (BoN)"},
    {"key": "agreement", "title": "Agreement (pick α)"},
    {"key": "naturalness", "title": "Naturalness (mean; rated 4-5)"},
    {"key": "verified", "title": "Items verified"},
    {"key": "shallow_cue", "title": "Shallow-cue ceiling (BoN)"},
    {"key": "best_model", "title": "Best reward model: all vs verified (BoN)"},
]
RULE_LINE = (
    "✓ pass / ✗ fail / ? unclear / – n/a, judged on whole 95% record-clustered intervals (a zero-width one is unclear): people's BoN and the share "
    f"verified pass at >= {PEOPLE_PASS:g} and fail below {PEOPLE_FAIL:g}; pick alpha passes at >= {ALPHA_PASS:g} and fails below; "
    f"naturalness passes when >= {NATURAL_SHARE:g} of ratings are 4-5 and fails below; the shallow-cue ceiling passes when "
    "entirely below people and fails when it reaches them; the best reward model passes when its verified - rest BoN "
    f"difference is within ±{HOLDS_WITHIN:g} and fails when significant (adjusted p < {SIGNIFICANT:g}); anything between is unclear."
)


# --- reading numbers safely ------------------------------------------------------------


def _num(x: Any) -> Optional[float]:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(float(x)) else None


def _ci(x: Any) -> Optional[list[float]]:
    if isinstance(x, (list, tuple)) and len(x) == 2 and all(_num(v) is not None for v in x):
        return [float(x[0]), float(x[1])]
    return None


def _get(node: Any, *path: Any) -> Any:
    for key in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def pct(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v * 100:.0f}%"


def pct_ci(v: Optional[float], ci: Optional[list]) -> str:
    if v is None:
        return "n/a"
    return f"{v * 100:.0f}%" + (f" [{ci[0] * 100:.0f}, {ci[1] * 100:.0f}]" if ci else "")


def num_ci(v: Optional[float], ci: Optional[list], digits: int = 2) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def points_ci(v: Optional[float], ci: Optional[list]) -> str:
    if v is None:
        return "n/a"
    return f"{v * 100:+.0f} points" + (f" [{ci[0] * 100:+.0f}, {ci[1] * 100:+.0f}]" if ci else "")


# --- cells ------------------------------------------------------------------------------


def cell(status: str, text: str, *, value: Optional[float] = None, ci: Optional[list] = None, reason: Optional[str] = None,
         **extra: Any) -> dict:
    out = {"status": status, **MARKS[status], "text": text, "value": value, "ci": ci}
    if reason:
        out["reason"] = reason
    elif value is None or ci is None:
        out["reason"] = "no value" if value is None else "no interval (draws=0 or too few resamples)"
    out.update(extra)
    return out


def not_available(reason: str) -> dict:
    """An n/a cell: its text is the reason (the mark already says "– n/a")."""
    return cell(NA, reason, reason=reason)


def threshold_cell(value: Optional[float], ci: Optional[list], *, pass_at: float, fail_below: float, text: str,
                   why_missing: Optional[str], why_no_ci: Optional[str] = None, **extra: Any) -> dict:
    """pass: the whole interval >= pass_at; fail: the whole interval < fail_below; else unclear."""
    if value is None:
        return not_available(why_missing or "no value")
    if ci is None:
        return cell(UNCLEAR, text, value=value, ci=None,
                    reason=f"no interval to judge by ({why_no_ci or 'draws=0 or too few resamples'})", **extra)
    if ci[1] - ci[0] < 1e-12:
        # Every resample gave the same number (a handful of records that agree): no spread seen is no evidence of none.
        return cell(UNCLEAR, text, value=value, ci=ci, reason="the interval has no width: too few records to judge by", **extra)
    if ci[0] >= pass_at:
        return cell(PASS, text, value=value, ci=ci, **extra)
    if ci[1] < fail_below:
        return cell(FAIL, text, value=value, ci=ci, **extra)
    return cell(UNCLEAR, text, value=value, ci=ci, **extra)


def _people(report: Mapping, d: str) -> dict:
    v, ci = _num(_get(report, "human", "BoN", d)), _ci(_get(report, "human", "ci", "BoN", d))
    why = _get(report, "human", "reasons", "BoN", d) or f"no labelled {d} items"
    return threshold_cell(v, ci, pass_at=PEOPLE_PASS, fail_below=PEOPLE_FAIL, text=pct_ci(v, ci), why_missing=str(why))


def _agreement(report: Mapping, d: str) -> dict:
    entry = _get(report, "agreement", "choice_alpha", d) or {}
    v, ci = _num(entry.get("alpha")), _ci(entry.get("ci"))
    return threshold_cell(v, ci, pass_at=ALPHA_PASS, fail_below=ALPHA_PASS, text=("α = " + num_ci(v, ci)) if v is not None else "n/a",
                          why_missing=str(entry.get("reason") or "alpha undefined"), why_no_ci=entry.get("ci_reason"))


def _naturalness(report: Mapping, d: str) -> dict:
    entry = _get(report, "naturalness", "by_domain", d) or {}
    share, ci = _num(entry.get("share_4_5")), _ci(entry.get("ci_share_4_5"))
    mean, ci_mean = _num(entry.get("mean")), _ci(entry.get("ci_mean"))
    text = f"mean {num_ci(mean, ci_mean, 1)}; {pct_ci(share, ci)} rated 4-5" if share is not None else "n/a"
    return threshold_cell(share, ci, pass_at=NATURAL_SHARE, fail_below=NATURAL_SHARE, text=text,
                          why_missing=str(entry.get("reason") or "no naturalness ratings"), mean=mean, ci_mean=ci_mean)


def _verified(report: Mapping, d: str) -> dict:
    entry = _get(report, "verified_subset", "share_verified", d) or {}
    v, ci = _num(entry.get("value")), _ci(entry.get("ci"))
    n = _get(report, "verified_subset", "n_items", d) or {}
    text = f"{pct_ci(v, ci)} ({n.get('verified', 0)} of {n.get('labelled', 0)} labelled)" if v is not None else "n/a"
    return threshold_cell(v, ci, pass_at=VERIFIED_PASS, fail_below=VERIFIED_FAIL, text=text,
                          why_missing=str(entry.get("reason") or "no verified-subset section in this report"))


def _shallow(report: Mapping, artifacts: Optional[Mapping], d: str) -> dict:
    if not isinstance(artifacts, Mapping) or not isinstance(_get(artifacts, "shallow_cue", "methods"), Mapping):
        return not_available(NOT_COMPUTED)
    model = _get(artifacts, "shallow_cue", "methods", "shallow_model") or {}
    v, ci = _num(_get(model, "BoN", d)), _ci(_get(model, "ci", "BoN", d))
    if v is None:
        return not_available(f"the shallow-cue model has no {d} items")
    people, people_ci = _num(_get(report, "human", "BoN", d)), _ci(_get(report, "human", "ci", "BoN", d))
    text = pct_ci(v, ci) + (f" vs people {pct(people)}" if people is not None else "")
    if people is None or people_ci is None:
        return cell(UNCLEAR, text, value=v, ci=ci, reason="no human BoN interval to compare with")
    if ci is None:
        return cell(UNCLEAR, text, value=v, ci=None, reason="no interval for the cue model")
    if ci[1] < people_ci[0]:
        return cell(PASS, text, value=v, ci=ci, people=people)
    if v >= people_ci[0]:
        return cell(FAIL, text, value=v, ci=ci, people=people)
    return cell(UNCLEAR, text, value=v, ci=ci, people=people)


def best_scorer(report: Mapping) -> dict:
    """The reward model with the best BoN Avg on all labelled items (ties: the first by name)."""
    scorers = report.get("scorers") or {}
    ranked = sorted(
        ((_num(_get(sec, "labelled_only", "BoN", "Avg")), name) for name, sec in scorers.items()),
        key=lambda t: (-(t[0] if t[0] is not None else -1.0), t[1]),
    )
    ranked = [r for r in ranked if r[0] is not None]
    if not ranked:
        return {"name": None, "BoN_Avg": None,
                "reason": "no reward model has scores on this benchmark (rmgap-annot score)" if not scorers
                else "no reward model has a BoN on the labelled items"}
    return {"name": ranked[0][1], "BoN_Avg": ranked[0][0]}


def _best_model(report: Mapping, best: Mapping, d: str) -> dict:
    name = best.get("name")
    if name is None:
        return not_available(str(best.get("reason")))
    sub = _get(report, "verified_subset", "scorers", name)
    if not isinstance(sub, Mapping):
        return not_available(str(_get(report, "verified_subset", "reason") or "no verified-subset numbers for this model"))
    all_v, all_ci = _num(_get(sub, "all", "BoN", d)), _ci(_get(sub, "all", "ci", "BoN", d))
    ver_v, ver_ci = _num(_get(sub, "verified", "BoN", d)), _ci(_get(sub, "verified", "ci", "BoN", d))
    diff = _get(sub, "difference", "BoN", d) or {}
    dv, dci, p = _num(diff.get("difference")), _ci(diff.get("ci")), _num(diff.get("p_adjusted"))
    extra = {"scorer": name, "all": all_v, "ci_all": all_ci, "verified": ver_v, "ci_verified": ver_ci, "difference": dv,
             "ci_difference": dci, "p_adjusted": p}
    if all_v is None:
        return not_available(f"{name} has no BoN on labelled {d} items")
    text = f"{name}: {pct_ci(all_v, all_ci)} all, {pct_ci(ver_v, ver_ci)} verified"
    if dv is None:
        return cell(UNCLEAR if ver_v is not None else NA, text, value=None, ci=None,
                    reason=str(diff.get("reason") or "no verified - rest difference"), **extra)
    text += f"; verified - rest {points_ci(dv, dci)}" + (f", p = {p:.2g}" if p is not None else "")
    if dci is not None and -HOLDS_WITHIN <= dci[0] and dci[1] <= HOLDS_WITHIN:
        return cell(PASS, text, value=dv, ci=dci, **extra)
    if p is not None and p < SIGNIFICANT:
        return cell(FAIL, text, value=dv, ci=dci, **extra)
    return cell(UNCLEAR, text, value=dv, ci=dci, reason=None if dci is not None else "no interval for the difference", **extra)


# --- the verdict --------------------------------------------------------------------------


def build_verdict(report: Mapping, artifacts: Optional[Mapping] = None) -> dict:
    """Rows, marks and the sentence from a ``build_report`` dict (+ cached artifact checks, or None)."""
    best = best_scorer(report)
    n_labelled = _get(report, "agreement", "summary", "n_items_labelled") or {}
    rows = []
    for d in DOMAINS:
        cells = {
            "people": _people(report, d), "agreement": _agreement(report, d), "naturalness": _naturalness(report, d),
            "verified": _verified(report, d), "shallow_cue": _shallow(report, artifacts, d), "best_model": _best_model(report, best, d),
        }
        rows.append({"domain": d, "n_labelled": int(n_labelled.get(d, 0) or 0), "cells": cells})
    counts = {s: sum(1 for r in rows for c in r["cells"].values() if c["status"] == s) for s in MARKS}
    out = {"rule": RULE_LINE, "columns": [{**c, "rule": RULES[c["key"]]} for c in COLUMNS], "rows": rows,
           "best_scorer": best, "counts": counts}
    out["sentence"] = verdict_sentence(out)
    return out


def verdict_sentence(verdict: Mapping) -> str:
    """What the table means in plain words, generated from its cells (never hand-written)."""
    rows = verdict["rows"]
    labelled = [r for r in rows if r["n_labelled"] > 0]
    if not labelled:
        return "No item is labelled yet, so people have confirmed nothing: every cell is n/a until labels arrive."
    parts = []
    for r in labelled:
        c = r["cells"]
        d = r["domain"]
        s = f"People confirmed the designated winner on {_value_text(c['people'], pct_ci)} of {d} items"
        alpha = c["agreement"]
        s += (f", agreeing with α = {num_ci(alpha['value'], alpha['ci'])}" if alpha["value"] is not None
              else f" (agreement n/a: {alpha.get('reason')})")
        nat = c["naturalness"]
        if nat["value"] is not None:
            s += f"; {pct_ci(nat['value'], nat['ci'])} of ratings call the prompts natural (4-5)"
        ver = c["verified"]
        if ver["value"] is not None:
            s += f"; {pct_ci(ver['value'], ver['ci'])} of the labelled items pass the verification rule"
        sc = c["shallow_cue"]
        if sc["status"] != NA:
            s += f"; shallow cues alone find the winner on {pct_ci(sc['value'], sc['ci'])}"
        bm = c["best_model"]
        if bm.get("all") is not None:
            s += (f"; the best reward model, {bm['scorer']}, picks the winner on {pct(bm['all'])} of labelled items"
                  + (f" and {pct(bm['verified'])} of verified ones" if bm.get("verified") is not None else ""))
            if bm.get("difference") is not None:
                verdict_word = {PASS: "the headline holds", FAIL: "the headline shifts", UNCLEAR: "not yet clear"}[bm["status"]]
                s += f" (verified - rest {points_ci(bm['difference'], bm.get('ci_difference'))}: {verdict_word})"
        parts.append(s + ".")
    missing = [r["domain"] for r in rows if r["n_labelled"] == 0]
    if missing:
        parts.append(f"No {', '.join(missing)} item is labelled yet.")
    if all(r["cells"]["shallow_cue"]["status"] == NA and r["cells"]["shallow_cue"].get("reason") == NOT_COMPUTED for r in rows):
        parts.append("The shallow-cue ceiling is not computed (run `rmgap-annot artifacts`).")
    n = verdict["counts"]
    parts.append(f"In all: {n[PASS]} cells pass, {n[FAIL]} fail, {n[UNCLEAR]} are unclear and {n[NA]} are n/a.")
    return " ".join(parts)


def _value_text(c: Mapping, fmt) -> str:  # noqa: ANN001
    return fmt(c["value"], c["ci"]) if c["value"] is not None else f"n/a ({c.get('reason')})"


# --- renderings -----------------------------------------------------------------------------


def mark(c: Mapping) -> str:
    return f"{c['symbol']} {c['word']}"


def format_verdict(verdict: Mapping) -> str:
    """Plain text: one block per domain (the table is too wide for a terminal), then the rule and the sentence."""
    lines = ["Verdict at a glance", ""]
    titles = {c["key"]: c["title"] for c in verdict["columns"]}
    for r in verdict["rows"]:
        lines.append(f"{r['domain']} ({r['n_labelled']} labelled items)")
        for key, c in r["cells"].items():
            lines.append(f"  {mark(c):<10} {titles[key]}: {c['text']}")
    lines += ["", "Rule: " + verdict["rule"], "", verdict["sentence"]]
    return "\n".join(lines)


def verdict_markdown(verdict: Mapping) -> str:
    """The dataset card's section: a Markdown table, the rule line and the sentence."""
    cols = verdict["columns"]
    head = "| domain | " + " | ".join(c["title"] for c in cols) + " |"
    lines = ["## Verdict at a glance", "", head, "|---|" + "---|" * len(cols)]
    for r in verdict["rows"]:
        cells = [f"{mark(r['cells'][c['key']])}: {r['cells'][c['key']]['text']}".replace("|", "/") for c in cols]
        lines.append(f"| {r['domain']} | " + " | ".join(cells) + " |")
    lines += ["", f"Rule: {verdict['rule']}", "", verdict["sentence"], ""]
    return "\n".join(lines)


def verdict_html(verdict: Mapping) -> str:
    """report.html's section: coloured cells that also carry the symbol and the word."""
    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    cols = verdict["columns"]
    parts = ["<h2>Verdict at a glance</h2>", f"<p class=\"note\">Rule: {e(verdict['rule'])}</p>",
             "<table class=\"verdict\"><tr><th>domain</th>" + "".join(f"<th>{e(c['title'])}</th>" for c in cols) + "</tr>"]
    for r in verdict["rows"]:
        tds = []
        for c in cols:
            x = r["cells"][c["key"]]
            tds.append(f"<td style=\"border-left:4px solid {x['colour']};text-align:left\" title=\"{e(c['rule'])}\">"
                       f"<strong style=\"color:{x['colour']}\">{e(mark(x))}</strong><br>{e(x['text'])}</td>")
        parts.append(f"<tr><td>{e(r['domain'])}</td>{''.join(tds)}</tr>")
    parts += ["</table>", f"<p id=\"verdict-sentence\">{e(verdict['sentence'])}</p>"]
    return "".join(parts)


def cached_shallow_cue(*, engine, benchmark_id: int, draws: int, seed: int) -> Optional[dict]:  # noqa: ANN001
    """The cached shallow-cue fit as ``{"shallow_cue": ...}``, or None when ``rmgap-annot artifacts`` has not run.

    Reads only the cached fit (not ``cached_artifact_checks``, which also
    recomputes people's columns the report already has), so the report stays fast.
    """
    from rmgap_annot.stats import artifacts  # noqa: PLC0415

    shallow = None
    # The report's draws and seed first; else the fit `rmgap-annot artifacts` makes by default (a report with
    # --draws 0 still shows a ceiling that was computed).
    for d, s in dict.fromkeys(((draws, seed), (artifacts.DRAWS, artifacts.SEED))):
        try:
            path, _, _ = artifacts._cache_files(engine=engine, benchmark_id=benchmark_id, organic=None, draws=d, seed=s)  # noqa: SLF001
            shallow = artifacts._read_json(path)  # noqa: SLF001
        except (OSError, ValueError):
            shallow = None
        if isinstance(shallow, Mapping):
            break
    if not isinstance(shallow, Mapping):
        return None
    return {"shallow_cue": {k: v for k, v in shallow.items() if not str(k).startswith("_")}}


def shallow_cue_cached(*, engine, benchmark_id: int, draws: int, seed: int) -> bool:  # noqa: ANN001
    """Whether the shallow-cue fit is cached: part of a page's report cache key, so running
    ``rmgap-annot artifacts`` elsewhere updates the verdict's column without a new label."""
    from rmgap_annot.stats import artifacts  # noqa: PLC0415

    for d, s in dict.fromkeys(((draws, seed), (artifacts.DRAWS, artifacts.SEED))):
        try:
            path, _, _ = artifacts._cache_files(engine=engine, benchmark_id=benchmark_id, organic=None, draws=d, seed=s)  # noqa: SLF001
        except (OSError, ValueError):
            return False
        if path.exists():
            return True
    return False
