"""The Results page's tables as plain rows, built from the report JSON.

The report keeps an undefined number as ``None`` with its reason beside it (a
``reasons`` map, a ``*_reason`` key, the kappa ``reasons`` matrix); a table
that only showed the ``None`` would hide why. These builders put the reason in
a ``note`` column next to the number, so the page shows "n/a" (its missing-value
placeholder) and says why. No streamlit here: the rows are testable alone.
"""

from __future__ import annotations

from typing import Mapping, Optional

from rmgap_annot.settings import DOMAINS

NA = "n/a"
METRICS = ("BoN", "Pair", "Consistency", "TopConsistency")


def _notes(*parts: Optional[str]) -> str:
    return "; ".join(dict.fromkeys(p for p in parts if p))


def human_rows(human: Mapping, metric: str) -> list[dict]:
    """One row per domain and Avg: the human metric, its interval, the record clustering, and why any is n/a."""
    rows = []
    for d in (*DOMAINS, "Avg"):
        ci = human["ci"][metric].get(d) or [None, None]
        c = human["clustering"].get(d) or {}
        cluster_note = f"ICC: {c['reason']}" if c.get("reason") else ("ICC and design effect: per domain only" if not c else None)
        rows.append({"domain": d, metric: human[metric].get(d), "lo": ci[0], "hi": ci[1], "within-record ICC": c.get("icc"),
                     "design effect": c.get("design_effect"), "note": _notes(human["reasons"][metric].get(d), cluster_note)})
    return rows


def kappa_notes(cohen: Mapping) -> list[dict]:
    """Each annotator pair whose Cohen's kappa is n/a, with its shared-item count and the reason."""
    names, kappa = cohen["annotators"], cohen["kappa"]
    reasons = cohen.get("reasons") or [[None] * len(names) for _ in names]
    shared = cohen.get("n_shared") or [[0] * len(names) for _ in names]
    return [{"annotator": names[i], "with": names[j], "shared items": shared[i][j],
             "kappa": NA, "note": reasons[i][j] or "undefined"}
            for i in range(len(names)) for j in range(i, len(names)) if kappa[i][j] is None and (i != j or reasons[i][j])]


def annotator_rows(annotators: list[Mapping]) -> list[dict]:
    """The annotator table with its ``*_reason`` keys folded into one ``note`` column."""
    rows = []
    for a in annotators:
        row = {k: v for k, v in a.items() if not k.endswith("_reason")}
        row["note"] = _notes(*(f"{k.removesuffix('_reason')}: {v}" for k, v in a.items() if k.endswith("_reason") and v))
        rows.append(row)
    return rows


def _with_ci(value: Optional[float], ci: Optional[list]) -> str:
    if value is None:
        return NA
    return f"{value * 100:.1f}%" + (f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if ci and ci[0] is not None else "")


def scorer_rows(scorers: Mapping[str, Mapping]) -> list[dict]:
    """Each reward model on the labelled items (its ``labelled_only`` block): scorer, metric, domain,
    value with its 95% interval, the labelled-item count, and why a value is n/a."""
    rows = []
    for name, sec in scorers.items():
        lab = sec["labelled_only"]
        for metric in METRICS:
            for d in (*DOMAINS, "Avg"):
                value = lab[metric].get(d)
                rows.append({"scorer": name, "metric": metric, "domain": d,
                             "value [95% interval]": _with_ci(value, (lab.get("ci") or {}).get(metric, {}).get(d)),
                             "labelled items": lab["n_items"],
                             "note": (lab.get("reasons") or {}).get(metric, {}).get(d, "") if value is None else ""})
    return rows


def scorer_item_set(scorers: Mapping[str, Mapping]) -> str:
    """The caption naming the items the scorer table is on."""
    counts = sorted({sec["labelled_only"]["n_items"] for sec in scorers.values()})
    n = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}-{counts[-1]:,}"
    return (f"On the {n} labelled items (items people labelled that the reward model scored), the same items as the human "
            "numbers above; report.html's scorer columns use every item a scorer scored. Intervals: 95% percentile bootstrap "
            "over whole records.")

