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
   which switches the check off);
5. ``low rating``: for each ``min_ratings`` threshold (``--min-rating NAME=X``),
   the mean of the item's answers to the study question NAME is at least X.
   For a question about each response, the answers about the designated
   winner count. The mean, not the median: it is what naturalness uses, it
   moves with every answer (a median of three 1-5 answers ignores the two
   others), and it compares exactly as a sum against X times the count. A
   yes/no question stores yes as 1, so its mean is the share saying yes. An
   item nobody answered fails.

Disagreement is checked before the winner because a pick people do not agree
on says nothing about whether the benchmark's winner is right.

The rule is per item; an entry (whatever unit a benchmark format writes out)
is kept when all its items are verified (:func:`entries_kept`). RMGAP's
record rule is the special case where the entry is the record.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Hashable, Iterable, Mapping

import numpy as np
import pandas as pd

from rmgap_annot.export.errors import ExportError
from rmgap_annot.settings import DOMAINS

REASON_FEW = "too few labels"
REASON_DISAGREE = "disagreement"
REASON_WRONG = "wrong winner"
REASON_UNNATURAL = "unnatural"
REASON_RATING = "low rating"
# The order in which the checks run; the first failure is the reason.
REASONS: tuple[str, ...] = (REASON_FEW, REASON_DISAGREE, REASON_WRONG, REASON_UNNATURAL, REASON_RATING)


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
    min_ratings: tuple[tuple[str, Fraction], ...] = ()

    @classmethod
    def of(cls, *, min_labels: int = 3, min_agreement: Any = Fraction(2, 3), min_naturalness: Any = 3,
           min_ratings: Iterable[str | tuple[str, Any]] = ()) -> "Rule":
        """Validated thresholds from whatever a CLI flag or a slider gave.

        ``min_ratings``: ``"NAME=X"`` texts (``--min-rating``) or (name, X) pairs.
        """
        if isinstance(min_labels, bool) or int(min_labels) != min_labels or min_labels < 1:
            raise ExportError(f"--min-labels must be a whole number of at least 1, got {min_labels!r}")
        agreement = as_fraction(min_agreement)
        if not 0 <= agreement <= 1:
            raise ExportError(f"--min-agreement must lie between 0 and 1, got {min_agreement!r}")
        naturalness = as_fraction(min_naturalness)
        if not 0 <= naturalness <= 5:
            raise ExportError(f"--min-naturalness must lie between 0 and 5 (0 switches the check off), got {min_naturalness!r}")
        ratings: dict[str, Fraction] = {}
        for spec in min_ratings:
            name, value = parse_min_rating(spec) if isinstance(spec, str) else (str(spec[0]), as_fraction(spec[1]))
            if name in ratings:
                raise ExportError(f"--min-rating {name} is given twice")
            ratings[name] = value
        return cls(int(min_labels), agreement, naturalness, tuple(ratings.items()))

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
            "; ".join(f"mean answer to {name} >= {format_fraction(x)}" for name, x in self.min_ratings)
            + " (about each response: the designated winner's answers; an unanswered item fails)"
            if self.min_ratings else "no rating-question threshold (--min-rating)",
        ]


def parse_min_rating(text: str) -> tuple[str, Fraction]:
    """``"NAME=X"`` -> (NAME, X as an exact fraction)."""
    name, sep, value = str(text).partition("=")
    name = name.strip()
    if not sep or not name or not value.strip():
        raise ExportError(f"--min-rating must be NAME=X (a study question's name and the least mean answer), got {text!r}")
    try:
        return name, as_fraction(value)
    except ExportError as exc:
        raise ExportError(f"--min-rating {name}: {exc}") from None


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
    answers = _rating_answers(labels, items)
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
    out = pd.DataFrame(rows, columns=STAT_COLUMNS)
    # Per question [sum, count] of the answers (``--min-rating``); a frame without it has none.
    out["ratings"] = [answers.get(int(i), {}) for i in out["item_id"]]
    return out


def _rating_answers(labels: pd.DataFrame, items: pd.DataFrame) -> dict[int, dict[str, list[int]]]:
    """item id -> question -> [sum, count] of its answers (per-response questions: the designated winner's)."""
    if not len(labels) or "ratings_json" not in labels.columns:
        return {}
    winner = dict(zip(items["item_id"].astype(int), items["winner_key"]))
    out: dict[int, dict[str, list[int]]] = {}
    for item_id, text in zip(labels["item_id"], labels["ratings_json"]):
        if not isinstance(text, str) or not text:
            continue
        item_id = int(item_id)
        for name, answer in json.loads(text).items():
            if isinstance(answer, dict):
                answer = answer.get(winner.get(item_id))
            if answer is None or isinstance(answer, bool) or not isinstance(answer, (int, float)):
                continue
            tally = out.setdefault(item_id, {}).setdefault(name, [0, 0])
            tally[0] += answer
            tally[1] += 1
    return out


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
    low = np.zeros(len(out), dtype=bool)
    if rule.min_ratings:
        tallies = out["ratings"].tolist() if "ratings" in out else [{}] * len(out)
        for i, answers in enumerate(tallies):
            for name, least in rule.min_ratings:
                total, count = (answers or {}).get(name, (0, 0))
                if count == 0 or Fraction(total) < least * count:
                    low[i] = True
                    break
    reason = np.select([few, disagree, wrong, unnatural, low], list(REASONS), default="")
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
