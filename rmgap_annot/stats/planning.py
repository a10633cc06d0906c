"""Power and sample-size planning: how many records a 95% interval of a given half-width needs.

The unit that buys precision is the *record*, not the item: the items of a
record share one set of responses, so their correctness is correlated and a
record's twelve items carry less information than twelve independent ones.
The design effect says how much less: ``DEFF = 1 + (m - 1) * ICC`` for
clusters of ``m`` units whose outcomes have intra-class correlation ICC.

- **BoN** (item correct when its plurality pick is the winner) and
  **label_accuracy** (each label correct) are proportions, so
  ``half-width = z * sqrt(p (1 - p) * DEFF / (R * m))`` and the records
  needed are ``R = z^2 p (1 - p) DEFF / (m h^2)``. For BoN ``m`` is the
  items per record; for label accuracy ``m`` is items per record times
  labels per item (one exchangeable ICC across a record's labels: a
  simplification, since two labels of one item are likelier to agree than
  labels of two items).
- **choice_alpha** has no closed form worth trusting, so it is planned by
  *simulation*: studies are generated under a one-coin model (each record
  has an ease drawn from a Beta with mean ``p`` = label accuracy and
  intra-class correlation ICC; a label is right with that probability,
  otherwise a uniformly random wrong key; winners uniform over keys), the
  spread of alpha is measured at a reference size and scaled as
  ``1 / sqrt(R)``. ``tests/test_planning.py`` checks that scaling against
  studies simulated directly at another size.

Inputs come from the pilot labels in the database (per domain: accuracy and
the ANOVA estimate of the ICC, with records as clusters), or from
``--accuracy`` and ``--icc`` when there is no pilot. Changing the labels per
item changes BoN itself (more votes, fewer ties); the plan then rescales the
pilot's BoN by the one-coin model's ratio f_N(q) / f_k(q), where q is the
pilot's label accuracy and f_n the chance that the winner is the unique
plurality of n labels.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache
from typing import Optional

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import Item, Record, Response
from rmgap_annot.settings import DOMAINS

METRICS = ("BoN", "label_accuracy", "choice_alpha")
CONFIDENCE = 0.95
SIM_RECORDS = 200  # the reference study size of the alpha simulation
SIM_STUDIES = 300
DEFAULT_ITEMS_PER_RECORD = 12
DEFAULT_KEYS = 4


class PlanError(ValueError):
    """A plan that cannot be made as asked."""


def z_value(confidence: float = CONFIDENCE) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


# --- ingredients ---------------------------------------------------------------


def icc_anova(values: np.ndarray, clusters: np.ndarray) -> tuple[Optional[float], Optional[str]]:
    """One-way ANOVA intra-class correlation (unequal cluster sizes), clipped at 0.

    Returns (None, reason) when undefined: fewer than two clusters, no
    within-cluster replication, or no variation at all.
    """
    y = np.asarray(values, dtype=float)
    codes, uniq = pd.factorize(np.asarray(clusters))
    r, n = len(uniq), len(y)
    if r < 2:
        return None, "fewer than two records"
    if n <= r:
        return None, "no record has two labelled units"
    sizes = np.bincount(codes, minlength=r).astype(float)
    sums = np.bincount(codes, weights=y, minlength=r)
    means = sums / sizes
    grand = y.mean()
    msb = float((sizes * (means - grand) ** 2).sum() / (r - 1))
    msw = float(((y - means[codes]) ** 2).sum() / (n - r))
    n0 = (n - (sizes**2).sum() / n) / (r - 1)
    denom = msb + (n0 - 1) * msw
    if denom <= 0:
        return None, "every unit has the same outcome"
    return max(0.0, (msb - msw) / denom), None


def design_effect(m: float, icc: float) -> float:
    return 1.0 + (m - 1.0) * icc


def records_for_proportion(p: float, icc: float, m: float, half_width: float, z: float) -> int:
    """Records so that z * sqrt(p(1-p) DEFF / (R m)) <= half_width."""
    var = max(p * (1 - p), 1e-12)
    return max(2, math.ceil(z**2 * var * design_effect(m, icc) / (m * half_width**2)))


def proportion_half_width(p: float, icc: float, m: float, records: int, z: float) -> float:
    return z * math.sqrt(max(p * (1 - p), 0.0) * design_effect(m, icc) / (records * m))


@lru_cache(maxsize=256)
def plurality_correct(n_labels: int, accuracy: float, n_keys: int = DEFAULT_KEYS) -> float:
    """P(the winner is the unique plurality) with n labels, each right w.p. ``accuracy`` (one-coin, wrong keys uniform)."""
    if n_labels < 1:
        return 0.0
    probs = np.array([accuracy] + [(1 - accuracy) / (n_keys - 1)] * (n_keys - 1))
    total = 0.0
    for split in itertools.product(range(n_labels + 1), repeat=n_keys - 1):
        rest = n_labels - sum(split)
        if rest < 0:
            continue
        counts = (rest, *split)
        if counts[0] > max(counts[1:]):
            total += float(stats.multinomial.pmf(counts, n_labels, probs))
    return total


# --- alpha by simulation -------------------------------------------------------------


def _beta_params(mean: float, icc: float) -> Optional[tuple[float, float]]:
    if icc <= 0:
        return None
    s = (1 - icc) / icc
    return max(mean * s, 1e-6), max((1 - mean) * s, 1e-6)


def simulate_counts(rng: np.random.Generator, *, studies: int, records: int, items_per_record: int, labels_per_item: int,
                    accuracy: float, icc: float, n_keys: int = DEFAULT_KEYS) -> np.ndarray:
    """Value counts (studies, units, keys) under the one-coin model with a record-level ease."""
    ab = _beta_params(accuracy, icc)
    ease = np.full((studies, records), accuracy) if ab is None else rng.beta(ab[0], ab[1], size=(studies, records))
    ease = np.repeat(ease, items_per_record, axis=1)  # (S, U)
    n_right = rng.binomial(labels_per_item, ease)
    n_units = records * items_per_record
    wrong = rng.multinomial(1, np.full(n_keys - 1, 1 / (n_keys - 1)), size=(studies, n_units, labels_per_item))
    has_wrong = np.arange(labels_per_item)[None, None, :] >= n_right[:, :, None]
    wrong_counts = (wrong * has_wrong[:, :, :, None]).sum(axis=2)
    rel = np.concatenate([n_right[:, :, None], wrong_counts], axis=2)  # winner first
    offset = rng.integers(0, n_keys, size=(studies, n_units))
    idx = (np.arange(n_keys)[None, None, :] - offset[:, :, None]) % n_keys
    return np.take_along_axis(rel, idx, axis=2)


def nominal_alpha_of_counts(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's nominal alpha of (studies, units, keys) value counts, one per study."""
    c = counts.astype(float)
    m = c.sum(axis=2)
    ok = m >= 2
    d = np.where(ok, (m**2 - (c**2).sum(axis=2)) / np.where(ok, m - 1, 1), 0.0).sum(axis=1)
    n_v = (c * ok[:, :, None]).sum(axis=1)
    n = n_v.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (n**2 - (n_v**2).sum(axis=1)) / (n - 1)
        return 1 - d / expected


def alpha_spread(*, accuracy: float, icc: float, items_per_record: int, labels_per_item: int, n_keys: int = DEFAULT_KEYS,
                 records: int = SIM_RECORDS, studies: int = SIM_STUDIES, seed: int = 0) -> tuple[float, float]:
    """(mean alpha, its standard deviation) over simulated studies of ``records`` records."""
    if labels_per_item < 2:
        raise PlanError("alpha needs at least 2 labels per item")
    rng = np.random.default_rng(seed)
    alphas = []
    for start in range(0, studies, 50):  # blocks keep memory small
        block = min(50, studies - start)
        counts = simulate_counts(rng, studies=block, records=records, items_per_record=items_per_record,
                                 labels_per_item=labels_per_item, accuracy=accuracy, icc=icc, n_keys=n_keys)
        alphas.append(nominal_alpha_of_counts(counts))
    a = np.concatenate(alphas)
    a = a[np.isfinite(a)]
    return float(a.mean()), float(a.std(ddof=1))


def records_for_alpha(sd_ref: float, half_width: float, z: float, ref_records: int = SIM_RECORDS) -> int:
    """SD scales as 1/sqrt(R): R = ref * (z * sd_ref / h)^2."""
    return max(2, math.ceil(ref_records * (z * sd_ref / half_width) ** 2))


# --- the pilot ---------------------------------------------------------------------------------


def structure(*, engine: Engine, benchmark_id: int) -> dict:
    """Items per record (per domain) and keys per item, from the benchmark."""
    with session_scope(engine) as session:
        per_domain = dict(session.execute(
            select(Item.domain, func.count(Item.id) * 1.0 / func.count(func.distinct(Item.record_pk)))
            .where(Item.benchmark_id == benchmark_id).group_by(Item.domain)
        ).all())
        keys = session.execute(
            select(func.count(Response.id)).join(Record, Record.id == Response.record_pk)
            .where(Record.benchmark_id == benchmark_id).group_by(Response.record_pk).limit(1)
        ).scalar()
    return {"items_per_record": {d: float(v) for d, v in per_domain.items()}, "n_keys": int(keys or DEFAULT_KEYS)}


def pilot_inputs(labels: pd.DataFrame, summary: pd.DataFrame) -> dict[str, dict]:
    """Per domain, from the pilot: BoN and label accuracy with their ICCs, records, labels per item."""
    out: dict[str, dict] = {}
    for d in DOMAINS:
        rows = summary[summary["domain"] == d]
        lab = labels[(labels["domain"] == d) & labels["choice_key"].notna()]
        entry: dict = {"records_now": int(rows["record_id"].nunique()), "items_now": int(len(rows))}
        if rows.empty or lab.empty:
            entry["reason"] = f"no pilot labels in {d}"
            out[d] = entry
            continue
        correct = rows["matches_winner"].to_numpy(dtype=float)
        entry["BoN"] = float(correct.mean())
        entry["BoN_icc"], why = icc_anova(correct, rows["record_id"].to_numpy())
        if why:
            entry["BoN_icc_reason"] = why
        right = (lab["choice_key"] == lab["winner_key"]).to_numpy(dtype=float)
        entry["label_accuracy"] = float(right.mean())
        entry["label_accuracy_icc"], why = icc_anova(right, lab["record_id"].to_numpy())
        if why:
            entry["label_accuracy_icc_reason"] = why
        entry["labels_per_item_now"] = float(rows["n_decided"].mean())
        entry["items_per_record_now"] = float(len(rows) / max(entry["records_now"], 1))
        out[d] = entry
    return out


# --- the plan ------------------------------------------------------------------------------------


def plan(*, metric: str, half_width: float, labels_per_item: int, pilot: Optional[dict[str, dict]] = None,
         accuracy: Optional[float] = None, icc: Optional[float] = None, items_per_record: Optional[dict[str, float]] = None,
         n_keys: int = DEFAULT_KEYS, confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Records needed per domain (plain data: ``plan --json``)."""
    if metric not in METRICS:
        raise PlanError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not 0 < half_width < 1:
        raise PlanError(f"--half-width must lie between 0 and 1, got {half_width!r}")
    if labels_per_item < 1:
        raise PlanError(f"--labels-per-item must be at least 1, got {labels_per_item!r}")
    assumed = accuracy is not None or icc is not None
    if assumed and (accuracy is None or icc is None):
        raise PlanError("--accuracy and --icc go together")
    if assumed and not (0 < accuracy < 1 and 0 <= icc < 1):
        raise PlanError("--accuracy must lie in (0, 1) and --icc in [0, 1)")
    if not assumed and not pilot:
        raise PlanError("no pilot labels in the database: pass --accuracy P and --icc X")
    z = z_value(confidence)
    out: dict = {
        "metric": metric, "half_width": half_width, "confidence": confidence, "labels_per_item": labels_per_item,
        "source": "assumed (--accuracy, --icc)" if assumed else "pilot labels in the database",
        "method": ("simulation: one-coin labels with a Beta record ease; SD at "
                   f"{SIM_RECORDS} records over {SIM_STUDIES} studies, scaled as 1/sqrt(records)")
        if metric == "choice_alpha" else "normal approximation with design effect 1 + (m - 1) ICC, records as clusters",
        "domains": {},
    }
    for d in DOMAINS:
        m_items = (items_per_record or {}).get(d, DEFAULT_ITEMS_PER_RECORD)
        entry: dict = {"items_per_record": m_items}
        src = (pilot or {}).get(d, {})
        if not assumed and "reason" in src:
            entry.update(records_needed=None, reason=src["reason"])
            out["domains"][d] = entry
            continue
        if assumed:
            p_label, icc_label, p_bon, icc_bon = accuracy, icc, accuracy, icc
        else:
            p_label, icc_label = src["label_accuracy"], src.get("label_accuracy_icc")
            p_bon, icc_bon = src["BoN"], src.get("BoN_icc")
            entry.update(records_now=src["records_now"], labels_per_item_now=src["labels_per_item_now"])
        if metric == "BoN":
            p, rho, m = p_bon, icc_bon, m_items
            if not assumed:
                k_now = max(1, round(src["labels_per_item_now"]))
                if k_now != labels_per_item:
                    ratio = plurality_correct(labels_per_item, p_label, n_keys) / max(plurality_correct(k_now, p_label, n_keys), 1e-9)
                    p = min(1.0, p * ratio)
                    entry["note"] = (f"BoN rescaled from the pilot's {k_now} to {labels_per_item} labels per item "
                                     "by the one-coin model")
        elif metric == "label_accuracy":
            p, rho, m = p_label, icc_label, m_items * labels_per_item
        else:
            p, rho, m = p_label, icc_label, m_items
        if rho is None:
            entry.update(records_needed=None, reason=f"the within-record ICC is undefined ({src.get(metric + '_icc_reason') or src.get('label_accuracy_icc_reason') or src.get('BoN_icc_reason')})")
            out["domains"][d] = entry
            continue
        entry.update(expected=p, icc=rho)
        if metric == "choice_alpha":
            if labels_per_item < 2:
                raise PlanError("alpha needs at least 2 labels per item")
            mean, sd = alpha_spread(accuracy=p, icc=rho, items_per_record=int(round(m_items)), labels_per_item=labels_per_item,
                                    n_keys=n_keys, seed=seed)
            entry.update(expected=mean, expected_label_accuracy=p, sd_at_reference=sd, reference_records=SIM_RECORDS)
            entry["records_needed"] = records_for_alpha(sd, half_width, z)
            if not assumed and src.get("records_now"):
                entry["half_width_now"] = z * sd * math.sqrt(SIM_RECORDS / src["records_now"])
        else:
            entry["design_effect"] = design_effect(m, rho)
            entry["records_needed"] = records_for_proportion(p, rho, m, half_width, z)
            if not assumed and src.get("records_now"):
                # What the pilot gives as labelled: its own records, items per record and labels per item.
                m_now = src["items_per_record_now"] * (src["labels_per_item_now"] if metric == "label_accuracy" else 1)
                p_now = src["BoN"] if metric == "BoN" else src["label_accuracy"]
                entry["half_width_now"] = proportion_half_width(p_now, rho, m_now, src["records_now"], z)
        entry["items_needed"] = int(math.ceil(entry["records_needed"] * m_items))
        entry["labels_needed"] = entry["items_needed"] * labels_per_item
        out["domains"][d] = entry
    return out


def plan_for_benchmark(*, engine: Engine, benchmark_id: int, metric: str, half_width: float, labels_per_item: int,
                       accuracy: Optional[float] = None, icc: Optional[float] = None, exclude=(), seed: int = 0) -> dict:  # noqa: ANN001
    """``plan`` with the benchmark's structure and its pilot labels (excluded annotators left out)."""
    from rmgap_annot.exclusions import counted_labels  # noqa: PLC0415
    from rmgap_annot.stats.human_metrics import item_summary  # noqa: PLC0415

    shape = structure(engine=engine, benchmark_id=benchmark_id)
    pilot = None
    if accuracy is None and icc is None:
        labels = counted_labels(engine=engine, benchmark_id=benchmark_id, what_if=exclude).labels
        if len(labels):
            pilot = pilot_inputs(labels, item_summary(labels))
    return plan(metric=metric, half_width=half_width, labels_per_item=labels_per_item, pilot=pilot, accuracy=accuracy, icc=icc,
                items_per_record=shape["items_per_record"], n_keys=shape["n_keys"], seed=seed)


REPORT_HALF_WIDTH = 0.05  # the report's standing question: records for a +/- 5-point 95% interval
REPORT_METRICS = ("BoN", "label_accuracy")  # formula-based, so cheap enough for the report (alpha needs a simulation)


def report_section(*, labels: pd.DataFrame, summary: pd.DataFrame, labels_per_item: int,
                   items_per_record: Optional[dict[str, float]] = None, n_keys: int = DEFAULT_KEYS) -> dict:
    """``report --json``'s ``planning``: records needed for a 95% interval of half-width 0.05, from the labels so far.

    The same ``plan`` as ``rmgap-annot plan``, on the report's own (counted)
    labels; pick alpha is left to the command, whose simulation costs seconds.
    """
    out: dict = {"half_width": REPORT_HALF_WIDTH, "labels_per_item": labels_per_item,
                 "command": "rmgap-annot plan --half-width H [--metric BoN|label_accuracy|choice_alpha]"}
    if labels.empty:
        out["reason"] = "no labels yet: no pilot to plan from (rmgap-annot plan --accuracy P --icc X works without one)"
        return out
    pilot = pilot_inputs(labels, summary)
    for metric in REPORT_METRICS:
        try:
            out[metric] = plan(metric=metric, half_width=REPORT_HALF_WIDTH, labels_per_item=labels_per_item, pilot=pilot,
                               items_per_record=items_per_record, n_keys=n_keys)
        except PlanError as exc:
            out[metric] = {"reason": str(exc)}
    return out


def format_plan(result: dict) -> str:
    lines = [
        f"Records needed for a {int(result['confidence'] * 100)}% interval of half-width {result['half_width']} on "
        f"{result['metric']} with {result['labels_per_item']} labels per item ({result['source']})",
        f"Method: {result['method']}",
        "",
        f"{'domain':<11}{'expected':>9}{'ICC':>7}{'DEFF':>7}{'records':>9}{'items':>8}{'labels':>9}{'now: records':>14}{'half-width':>12}",
    ]
    for d, e in result["domains"].items():
        if e.get("records_needed") is None:
            lines.append(f"{d:<11}n/a: {e.get('reason')}")
            continue
        deff = f"{e['design_effect']:.2f}" if "design_effect" in e else "-"
        now = e.get("records_now")
        hw = e.get("half_width_now")
        lines.append(
            f"{d:<11}{e['expected']:>9.3f}{e['icc']:>7.3f}{deff:>7}{e['records_needed']:>9}{e['items_needed']:>8}"
            f"{e['labels_needed']:>9}{'' if now is None else now:>14}{'' if hw is None else format(hw, '.3f'):>12}"
        )
        if e.get("note"):
            lines.append(f"{'':<11}({e['note']})")
    return "\n".join(lines)
