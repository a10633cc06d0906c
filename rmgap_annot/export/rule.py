"""The verification rule: which items are verified, and which entries that keeps.

**The rule is exact.** Thresholds are compared in rational arithmetic
(``fractions.Fraction``), so "2 of 3 annotators agree" passes a 2/3
threshold whatever float the caller typed for it.

An item is *verified* when, in this order of checks (the first failing one is
the reason the item is dropped):

1. ``too few labels``: it has at least ``min_labels`` labels that are not
   "Can't decide";
2. ``disagreement``: its plurality pick is unique (no tie for first) and the
   share of those labels choosing it is at least ``min_agreement``;
3. ``wrong winner``: that pick is the designated winner;
4. ``unnatural``: the mean naturalness of its ratings is at least
   ``min_naturalness`` (an item nobody rated fails, unless the threshold is 0,
   which switches the check off).

Disagreement is checked before the winner because a pick people do not agree
on says nothing about whether the benchmark's winner is right.

The rule is per item; an entry (whatever unit a benchmark format writes out)
is kept when all its items are verified (:func:`entries_kept`). RMGAP's
record rule is the special case where the entry is the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Hashable, Mapping

import numpy as np
import pandas as pd

from rmgap_annot.export.errors import ExportError
from rmgap_annot.settings import DOMAINS

REASON_FEW = "too few labels"
REASON_DISAGREE = "disagreement"
REASON_WRONG = "wrong winner"
REASON_UNNATURAL = "unnatural"
# The order in which the checks run; the first failure is the reason.
REASONS: tuple[str, ...] = (REASON_FEW, REASON_DISAGREE, REASON_WRONG, REASON_UNNATURAL)


def as_fraction(value: Fraction | int | float | str) -> Fraction:
    """A threshold as an exact rational.

    Strings are read exactly ("2/3", "0.67"); floats are snapped to the
    nearest fraction with a denominator up to 10^6, so ``2/3`` computed in
    floating point means two thirds, not a hair less.
    """
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise ExportError(f"not a number: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExportError(f"not a finite number: {value!r}")
        return Fraction(value).limit_denominator(10**6)
    try:
        return Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise ExportError(f"not a number or fraction: {value!r} (try 0.75 or 2/3)") from exc


def format_fraction(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    if value.denominator <= 12:
        return f"{value.numerator}/{value.denominator} ({float(value):.3f})"
    return f"{float(value):g}"


@dataclass(frozen=True)
class Rule:
    """The verification thresholds (see the module docstring for the rule)."""

    min_labels: int = 3
    min_agreement: Fraction = Fraction(2, 3)
    min_naturalness: Fraction = Fraction(3)

    @classmethod
    def of(cls, *, min_labels: int = 3, min_agreement: Any = Fraction(2, 3), min_naturalness: Any = 3) -> "Rule":
        """Validated thresholds from whatever a CLI flag or a slider gave."""
        if isinstance(min_labels, bool) or int(min_labels) != min_labels or min_labels < 1:
            raise ExportError(f"--min-labels must be a whole number of at least 1, got {min_labels!r}")
        agreement = as_fraction(min_agreement)
        if not 0 <= agreement <= 1:
            raise ExportError(f"--min-agreement must lie between 0 and 1, got {min_agreement!r}")
        naturalness = as_fraction(min_naturalness)
        if not 0 <= naturalness <= 5:
            raise ExportError(f"--min-naturalness must lie between 0 and 5 (0 switches the check off), got {min_naturalness!r}")
        return cls(int(min_labels), agreement, naturalness)

    def describe(self) -> list[str]:
        nat = (
            "no naturalness check (threshold 0)"
            if self.min_naturalness == 0
            else f"mean naturalness >= {format_fraction(self.min_naturalness)} (an unrated item fails)"
        )
        return [
            f"at least {self.min_labels} labels, not counting \"Can't decide\"",
            "a unique plurality pick (no tie for first) chosen by a share of those labels "
            f">= {format_fraction(self.min_agreement)}",
            "that pick is the designated winner",
            nat,
        ]


STAT_COLUMNS = [
    "item_id", "record_id", "domain", "group", "prompt_index", "role", "winner_key", "n_labels", "n_decided",
    "n_cant_decide", "votes", "pick", "top_count", "tie", "nat_sum", "nat_count", "mean_naturalness",
]


def item_stats(*, labels: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per item, the tallies the rule needs (independent of any threshold).

    Split from :func:`apply_rule` so a page can recompute verdicts on every
    slider move without re-reading labels. Every item of ``items`` gets a row,
    unlabelled ones included (they fail as "too few labels").
    """
    votes: dict[int, dict[str, int]] = {}
    n_all: dict[int, int] = {}
    nat_sum: dict[int, int] = {}
    nat_count: dict[int, int] = {}
    if len(labels):
        for item_id, choice, nat in zip(labels["item_id"], labels["choice_key"], labels["naturalness"]):
            item_id = int(item_id)
            n_all[item_id] = n_all.get(item_id, 0) + 1
            if not _missing(choice):
                tally = votes.setdefault(item_id, {})
                tally[str(choice)] = tally.get(str(choice), 0) + 1
            if not _missing(nat):
                nat_sum[item_id] = nat_sum.get(item_id, 0) + int(nat)
                nat_count[item_id] = nat_count.get(item_id, 0) + 1
    rows = []
    for it in items.itertuples(index=False):
        item_id = int(it.item_id)
        tally = votes.get(item_id, {})
        n_decided = sum(tally.values())
        top = max(tally.values()) if tally else 0
        leaders = sorted(k for k, v in tally.items() if v == top) if tally else []
        tie = len(leaders) > 1
        nc = nat_count.get(item_id, 0)
        ns = nat_sum.get(item_id, 0)
        rows.append(
            (
                item_id, it.record_id, it.domain, int(it.group), int(it.prompt_index), getattr(it, "role", None),
                it.winner_key, n_all.get(item_id, 0), n_decided, n_all.get(item_id, 0) - n_decided,
                dict(sorted(tally.items())), leaders[0] if len(leaders) == 1 else None, top, tie, ns, nc,
                ns / nc if nc else float("nan"),
            )
        )
    return pd.DataFrame(rows, columns=STAT_COLUMNS)


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and pd.isna(value))


def apply_rule(stats: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """``stats`` plus ``agreement``, ``verified`` and ``reason`` (the first failing check).

    Comparisons are integer cross-multiplications against the thresholds'
    exact fractions, so a boundary case can never flip on rounding.
    """
    out = stats.copy()
    n = out["n_decided"].to_numpy(dtype=np.int64)
    top = out["top_count"].to_numpy(dtype=np.int64)
    ag_num, ag_den = rule.min_agreement.numerator, rule.min_agreement.denominator
    nat_num, nat_den = rule.min_naturalness.numerator, rule.min_naturalness.denominator
    ns = out["nat_sum"].to_numpy(dtype=np.int64)
    nc = out["nat_count"].to_numpy(dtype=np.int64)

    few = n < rule.min_labels
    disagree = out["tie"].to_numpy(dtype=bool) | (top * ag_den < ag_num * n) | (n == 0)
    # A missing pick compares unequal, so "no pick" reads as not the winner.
    wrong = ~(out["pick"].astype(object) == out["winner_key"].astype(object)).to_numpy(dtype=bool)
    if "correct_keys" in out:
        # Several designated winners (RewardBench 2's ties subset): the pick is right when it is any of them.
        wrong = np.array([pick not in keys if isinstance(keys, (list, tuple)) else w
                          for pick, keys, w in zip(out["pick"], out["correct_keys"], wrong)], dtype=bool)
    if rule.min_naturalness == 0:
        unnatural = np.zeros(len(out), dtype=bool)
    else:
        unnatural = (nc == 0) | (ns * nat_den < nat_num * nc)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["agreement"] = np.where(n > 0, top / np.where(n > 0, n, 1), np.nan)
    reason = np.select([few, disagree, wrong, unnatural], list(REASONS), default="")
    # Object dtype keeps None as None (a str column would turn it into NaN).
    out["reason"] = pd.Series([r or None for r in reason.tolist()], index=out.index, dtype=object)
    out["verified"] = reason == ""
    return out


def verify(*, labels: pd.DataFrame, items: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    """One row per item with its verdict: the rule applied to a labels frame."""
    return apply_rule(item_stats(labels=labels, items=items), rule)


def entries_kept(item_verified: Mapping[Hashable, bool], entry_of: Mapping[Hashable, Hashable]) -> set:
    """The entries whose items are all verified: the entry rule, the same for every format.

    ``entry_of`` maps each item to the entry it belongs to (RMGAP: its record);
    an entry is kept only when every item mapped to it is verified. An item
    missing from ``item_verified`` counts as not verified, and an entry with no
    items is never kept: nothing was checked, so nothing vouches for it.
    """
    entries: set = set()
    failed: set = set()
    for item, entry in entry_of.items():
        entries.add(entry)
        if not item_verified.get(item, False):
            failed.add(entry)
    return entries - failed


def record_verdicts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per record: verified when every one of its items is (:func:`entries_kept`); else the earliest reason."""
    columns = ["record_id", "domain", "n_items", "n_verified", "verified", "reason"]
    if verdicts.empty:
        return pd.DataFrame(columns=columns)
    # Reasons as their rank in the rule's order (len(REASONS) = passed): the min is the earliest.
    code = verdicts["reason"].map({r: i for i, r in enumerate(REASONS)}).fillna(len(REASONS)).astype(int)
    grouped = verdicts.assign(_code=code).groupby("record_id", sort=False).agg(
        domain=("domain", "first"), n_items=("item_id", "size"), n_verified=("verified", "sum"), _code=("_code", "min")
    )
    out = grouped.reset_index()
    out["n_verified"] = out["n_verified"].astype(int)
    item_ids = verdicts["item_id"].tolist()
    kept = entries_kept(dict(zip(item_ids, verdicts["verified"].tolist())), dict(zip(item_ids, verdicts["record_id"].tolist())))
    out["verified"] = out["record_id"].isin(kept).to_numpy(dtype=bool)
    out["reason"] = pd.Series([REASONS[c] if c < len(REASONS) else None for c in out["_code"]], index=out.index, dtype=object)
    return out[columns]


def summarize(verdicts: pd.DataFrame, records: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """Counts kept and dropped per domain (and ``All``), items by reason, for card and page."""
    records = record_verdicts(verdicts) if records is None else records
    out: dict[str, dict[str, Any]] = {}
    # RMGAP's four domains always (pages and cards index them); another format's top-level categories after them.
    extra = sorted({str(d) for d in verdicts["domain"]} - set(DOMAINS)) if len(verdicts) else []
    for domain in (*DOMAINS, *extra, "All"):
        v = verdicts if domain == "All" else verdicts[verdicts["domain"] == domain]
        r = records if domain == "All" else records[records["domain"] == domain]
        reasons = v["reason"].value_counts() if len(v) else pd.Series(dtype=int)
        out[domain] = {
            "records": int(len(r)),
            "records_kept": int(r["verified"].sum()) if len(r) else 0,
            "items": int(len(v)),
            "items_kept": int(v["verified"].sum()) if len(v) else 0,
            "items_dropped": {reason: int(reasons.get(reason, 0)) for reason in REASONS},
        }
    return out
