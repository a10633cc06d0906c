"""The report's ``benchmark_metrics`` and ``ratings`` sections, and their tables for every view.

``build_report`` adds two keys through this module so that the per-format
metrics (``format_report``) and the rating questions (``stats.rating_report``)
reach the JSON, the Results page, report.html and the dataset card from one
place. The table helpers flatten the benchmark's own metric tree (RMB's
category tree, RewardBench's subsets and sections, RewardBench 2's subsets,
Personalized RewardBench's win and tie rates, pairs' accuracy) into rows
named in that benchmark's words; the views only lay the rows out, so a page
never computes a metric.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Sequence

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import Benchmark

RMGAP_REASON = ("an RMGAP benchmark's own metrics (Pair, BoN, Consistency per domain) are the report's "
                "human and scorers sections")
FORMAT_TITLES = {
    "rmb": "RMB", "prb": "Personalized RewardBench", "rewardbench": "RewardBench", "rewardbench2": "RewardBench 2",
    "pairs": "preference pairs",
}
RMGAP_ONLY = "This section applies to RMGAP benchmarks only; this benchmark's own metrics are in the Benchmark metrics tab."


# --- the two report sections ----------------------------------------------------------


def benchmark_metrics_section(*, engine: Engine, benchmark_id: int, exclude: Sequence[str] = (), draws: int, seed: int,
                              study_ids: Optional[list[int]] = None,
                              labels: Optional[pd.DataFrame] = None) -> dict[str, Any]:
    """``benchmark_metrics``: ``format_report`` for another format; for RMGAP a pointer to the main sections."""
    from rmgap_annot.format_report import format_report  # noqa: PLC0415

    with session_scope(engine) as session:
        fmt = session.execute(select(Benchmark.format).where(Benchmark.id == benchmark_id)).scalar_one()
    if fmt == "rmgap":
        return {"format": "rmgap", "reason": RMGAP_REASON}
    return format_report(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids, seed=seed, n_boot=draws,
                         exclude=exclude, labels=labels)


def ratings_report_section(*, engine: Engine, benchmark_id: int, labels: pd.DataFrame, draws: int, seed: int,
                           confidence: float, study_ids: Optional[list[int]] = None) -> dict[str, Any]:
    """``ratings``: each rating question's ordinal alpha and answers, over the labels that count.

    ``reason`` is left out when there are questions (a null would need a reason of its own).
    """
    from rmgap_annot.stats.rating_report import ratings_section  # noqa: PLC0415

    out = ratings_section(engine=engine, benchmark_id=benchmark_id, labels=labels, study_ids=study_ids,
                          draws=draws, seed=seed, confidence=confidence)
    if out.get("reason") is None:
        out.pop("reason", None)
    return out


# --- the benchmark's own metrics as rows -----------------------------------------------


def _estimates(tree: Any, path: tuple = ()) -> Iterator[tuple[tuple, dict]]:
    """(path, estimate) for every ``{"value", "n", ...}`` (or ``{"difference", ...}``) leaf of a metric tree."""
    if not isinstance(tree, dict):
        return
    if ("value" in tree and "n" in tree) or ("difference" in tree and "ci" in tree):
        yield path, tree
        return
    for key, sub in tree.items():
        yield from _estimates(sub, (*path, str(key)))


def place(fmt: str, path: tuple) -> tuple[str, str, str]:
    """(family, category, metric) of a metric-tree path, in the benchmark's own names."""
    if fmt == "rmb" and len(path) == 2:
        return ({"pairwise": "Pairwise accuracy", "bon": "BoN accuracy (best beats every loser)"}.get(path[0], path[0]),
                path[1], "accuracy")
    if fmt == "rewardbench":
        if path[0] == "subsets":
            return "Subset accuracy", path[1], "accuracy"
        return "Sections and Score", path[1] if len(path) > 1 else "Score", "score"
    if fmt == "rewardbench2":
        if path[0] == "subsets":
            return "Best-of-4 per subset (1/k credit for ties)", path[1], path[2] if len(path) > 2 else "score"
        return "Best-of-4 per subset (1/k credit for ties)", "Score", "score"
    if fmt == "prb" and len(path) == 2:
        return "Chosen win rate (ties counted apart)", path[0], path[1].replace("_", " ")
    if fmt == "pairs":
        return "Accuracy", "/".join(path), "accuracy"
    return fmt, "/".join(path[:-1]) or path[0], path[-1]


def metric_rows(section: Optional[dict]) -> list[dict[str, Any]]:
    """One row per (family, category, metric): people's estimate, each scorer's, and people minus each scorer.

    Rows keep the tree's order (RMB: each category before its children);
    ``depth`` is the category's depth in the path ("Helpfulness/Chat" = 1).
    """
    if not section or "human" not in section:
        return []
    fmt = section["format"]
    rows: dict[tuple, dict[str, Any]] = {}
    for path, est in _estimates(section["human"].get("metrics")):
        family, category, metric = place(fmt, path)
        rows[path] = {"family": family, "category": category, "depth": category.count("/"),
                      "label": category.rsplit("/", 1)[-1], "metric": metric, "people": est, "models": {}, "differences": {}}
    for name, model in (section.get("models") or {}).items():
        for path, est in _estimates(model.get("metrics")):
            if path in rows:
                rows[path]["models"][name] = est
    for name, comp in (section.get("comparison") or {}).items():
        for path, est in _estimates(comp.get("difference")):
            if path in rows:
                rows[path]["differences"][name] = est
    return list(rows.values())


def families(section: Optional[dict]) -> dict[str, list[dict[str, Any]]]:
    """The rows grouped by metric family, in order of first appearance."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in metric_rows(section):
        out.setdefault(row["family"], []).append(row)
    return out


def pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def estimate_text(est: Optional[dict], key: str = "value") -> str:
    """"75.0% [50.0%, 100.0%]", or "n/a (why)"."""
    if not est:
        return "n/a (not scored)"
    value = est.get(key)
    if value is None:
        return f"n/a ({est.get('reason') or 'undefined'})"
    ci = est.get("ci")
    sign = "+" if key == "difference" and value > 0 else ""
    return f"{sign}{pct(value)}" + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else _no_interval(est))


def _no_interval(est: dict) -> str:
    """Why a defined number has no interval, when it says (one resampling group, no spread to resample)."""
    reason = est.get("ci_reason")
    return f" (no interval: {reason})" if reason and reason != "no estimate" else ""


def alpha_text(est: dict, key: str = "alpha") -> str:
    """"0.812 [0.700, 0.900]", "1.000 (no interval: why)", or "n/a (why)"."""
    alpha, ci = est.get(key), est.get("ci")
    if alpha is None:
        return f"n/a ({est.get('reason') or 'undefined'})"
    return f"{alpha:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else _no_interval(est))


def family_table(rows: list[dict[str, Any]], *, indent: str = "\u2003") -> list[dict[str, str]]:
    """A family's rows as display cells: category (indented by depth), metric, people, n, each scorer, people minus it.

    The metric column is left out when the family has one metric (RMB's accuracy): the family's title names it.
    """
    scorers = sorted({name for row in rows for name in row["models"]})
    one_metric = len({row["metric"] for row in rows}) == 1
    table = []
    for row in rows:
        cells = {"category": indent * row["depth"] + row["label"]}
        if not one_metric:
            cells["metric"] = row["metric"]
        cells.update(people=estimate_text(row["people"]), n=str(row["people"].get("n", "")))
        for name in scorers:
            cells[name] = estimate_text(row["models"].get(name))
            cells[f"people − {name}"] = estimate_text(row["differences"].get(name), key="difference")
        table.append(cells)
    return table


def agreement_rows(section: Optional[dict]) -> list[dict[str, str]]:
    """Another format's pick agreement (``format_report.pick_agreement``) as display rows, per category and All."""
    rows = []
    for category, est in ((section or {}).get("agreement") or {}).items():
        rows.append({
            "category": category,
            "pick alpha": alpha_text(est),
            "items": str(est.get("n_items", 0)), "labels": str(est.get("n_values", 0)),
            "can't decide": str(est.get("n_missing", 0)), "groups": str(est.get("n_groups", 0)),
        })
    return rows


# --- the rating questions as rows -------------------------------------------------------


SHORT_LABEL = 16  # longer level labels (naturalness's sentences) give way to the level's value in tables and charts


def _level_names(question: dict) -> dict[str, str]:
    """Level value -> what a table or chart calls it: the label when every label is short, else the value."""
    labels = {str(level["value"]): str(level["label"]) for level in question.get("levels") or []}
    if all(len(label) <= SHORT_LABEL for label in labels.values()):
        return labels
    return {v: v for v in labels}


def rating_rows(ratings: Optional[dict]) -> list[dict[str, str]]:
    """One display row per question: name, about, alpha with interval, answers, distribution as text."""
    rows = []
    for q in (ratings or {}).get("questions") or []:
        labels = _level_names(q)
        dist = q.get("distribution") or {}
        rows.append({
            "question": q["name"], "about": q.get("about") or "prompt",
            "alpha": alpha_text(q),
            "answers": str(sum(dist.values())),
            "distribution": ", ".join(f"{labels.get(v, v)}: {c}" for v, c in dist.items()) or "none yet",
            "text": q.get("text") or "",  # last: the numbers stay in view on a phone
        })
    return rows


def distribution_frame(question: dict) -> pd.DataFrame:
    """A question's answer counts per level, in scale order (for a bar chart)."""
    names = _level_names(question)
    labels = {str(level["value"]): str(level["label"]) for level in question.get("levels") or []}
    dist = question.get("distribution") or {}
    order = list(dist) or list(labels)
    return pd.DataFrame({
        "level": [names.get(v, v) for v in order],
        "label": [labels.get(v, v) for v in order],
        "answers": [int(dist.get(v, 0)) for v in order],
    })
