"""Per-annotator quality figures a researcher watches during a paid study, from plain data.

Time worked is what a participant is paid for, so it must not count a lunch
break: it runs from the first item shown to the last label submitted, with
every pause over five minutes taken out (``seconds_worked`` defines it
exactly). Median seconds per item and the share of items done in under five
seconds tell a careful reader from a clicker; checks passed and failed, the
status, and agreement with the others (leave-one-out alpha) complete the
picture. Undefined figures are None with a reason, never 0.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Hashable, Iterable, Literal, Optional, Sequence

import numpy as np

from rmgap_annot.stats import agreement as agr

PAUSE = timedelta(minutes=5)
FAST_SECONDS = 5.0
Event = tuple[Optional[datetime], Optional[datetime]]  # (shown_at, submitted_at); None where unknown or not yet
Status = Literal["qualifying", "active", "completed", "screened out", "blocked"]
STATUSES: tuple[str, ...] = ("qualifying", "active", "completed", "screened out", "blocked")
CHECK_ACTIONS = ("screen-out", "warn")
NO_SUBMITTED = "no label submitted yet"
NO_TIMED = "no label with both a shown and a submitted time"


def seconds_worked(events: Iterable[Event], *, max_pause: timedelta = PAUSE) -> Optional[float]:
    """Seconds worked: first shown to last submitted, less every pause over ``max_pause``.

    Precisely: take every shown_at and submitted_at that is not after the
    last submitted_at (an item shown but never submitted after the last label
    is not work yet), sort them, and add up the gaps between consecutive
    moments, leaving out each gap longer than ``max_pause`` (a gap of exactly
    ``max_pause`` counts). Two tabs open at once count their common time once.
    None when nothing was submitted.
    """
    events = list(events)
    submitted = [s for _, s in events if s is not None]
    if not submitted:
        return None
    end = max(submitted)
    moments = sorted({t for pair in events for t in pair if t is not None and t <= end})
    total = timedelta(0)
    for a, b in zip(moments, moments[1:]):
        if b - a <= max_pause:
            total += b - a
    return total.total_seconds()


def item_seconds(events: Iterable[Event]) -> list[float]:
    """Seconds from shown to submitted for each submitted item with both times (a clock that went back is left out)."""
    return [(s - a).total_seconds() for a, s in events if a is not None and s is not None and s >= a]


@dataclass(frozen=True)
class Quality:
    """One annotator's figures; ``reasons`` says why a None figure is undefined."""

    labels: int
    checks_passed: int
    checks_failed: int
    median_seconds: Optional[float]
    fast_share: Optional[float]  # share of timed items under FAST_SECONDS
    minutes_worked: Optional[float]
    reasons: dict[str, str] = field(default_factory=dict)


def quality(*, events: Sequence[Event], labels: int, check_results: Sequence[bool]) -> Quality:
    """The figures of one annotator.

    ``events`` is every item they were shown (real, check and qualification
    alike: it is all paid work, and checks look like real items); ``labels``
    counts their real labels only, the number a payment is for;
    ``check_results`` is pass/fail per check labelled.
    """
    durations = item_seconds(events)
    worked = seconds_worked(events)
    reasons: dict[str, str] = {}
    if not durations:
        reasons["median_seconds"] = reasons["fast_share"] = NO_TIMED
    if worked is None:
        reasons["minutes_worked"] = NO_SUBMITTED
    passed = sum(bool(r) for r in check_results)
    return Quality(
        labels=int(labels), checks_passed=passed, checks_failed=len(check_results) - passed,
        median_seconds=statistics.median(durations) if durations else None,
        fast_share=sum(d < FAST_SECONDS for d in durations) / len(durations) if durations else None,
        minutes_worked=worked / 60 if worked is not None else None, reasons=reasons,
    )


def annotator_status(
    *, blocked: bool, qualification: str, checks_failed: int, check_fail_limit: Optional[int],
    check_action: str = "screen-out", real_done: int, quota: Optional[int], consent_declined: bool = False,
) -> Status:
    """One word for where an annotator stands, first match wins: blocked, screened out, completed, qualifying, active.

    Blocked comes first: a researcher's decision overrides everything.
    Screened out (declined consent, failed the qualification, or reached the
    failed-check limit when the action is to screen out) comes before
    completed: a participant who reaches the limit on their last item gets
    the screen-out code, not the completion code. With ``check_action``
    "warn" failed checks only bring a reminder of the guidelines.
    ``qualification`` is ``schedule.qualification_state``'s answer.
    """
    if check_action not in CHECK_ACTIONS:
        raise ValueError(f"--check-action must be one of {', '.join(CHECK_ACTIONS)}, not {check_action!r}")
    if qualification not in ("pending", "passed", "failed"):
        raise ValueError(f"qualification must be pending, passed or failed, not {qualification!r}")
    if blocked:
        return "blocked"
    over_limit = check_fail_limit is not None and checks_failed >= check_fail_limit
    if consent_declined or qualification == "failed" or (over_limit and check_action == "screen-out"):
        return "screened out"
    if quota is not None and real_done >= quota:
        return "completed"
    if qualification == "pending":
        return "qualifying"
    return "active"


# --- agreement with the others ---------------------------------------------------


@dataclass(frozen=True)
class AnnotatorAgreement:
    """How one annotator's picks sit with the others'.

    ``alpha_without`` is the study's pick alpha with this annotator's labels
    left out; ``delta`` = alpha with everyone minus ``alpha_without``
    (negative: the study agrees better without them). ``agreement`` is, over
    the items they share with at least one other annotator, the mean share
    of the others' picks equal to theirs.
    """

    alpha_without: Optional[float]
    delta: Optional[float]
    agreement: Optional[float]
    shared_items: int
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LeaveOneOut:
    alpha: Optional[float]  # nominal alpha of the picks with everyone
    reason: Optional[str]
    annotators: dict[Hashable, AnnotatorAgreement]


def _alpha(counts) -> tuple[Optional[float], Optional[str]]:  # noqa: ANN001
    st = agr.nominal_stats(counts)
    value = float(agr.nominal_alpha_from_sums(st.disagreement.sum(), np.asarray(st.pairable.sum(axis=0)).ravel()))
    if np.isfinite(value):
        return value, None
    return None, agr.NO_PAIRS if st.n_pairable_units == 0 else agr.ONE_VALUE


def leave_one_out(labels: Iterable[tuple[Hashable, Hashable, Optional[str]]]) -> LeaveOneOut:
    """Pick agreement with and without each annotator, from (annotator, item, choice key) triples.

    Only real items' labels belong here (checks and qualification items never
    count in agreement). A choice of None ("can't decide") is a missing
    value, as in the report's alpha. Built on ``agreement``'s fast nominal
    alpha, which the tests hold equal to ``krippendorff.alpha``.
    """
    rows = list(labels)
    seen: set[tuple[Hashable, Hashable]] = set()
    for annotator, item, _ in rows:
        if (annotator, item) in seen:
            raise ValueError(f"annotator {annotator!r} has two labels on item {item!r}")
        seen.add((annotator, item))
    annotators = list(dict.fromkeys(a for a, _, _ in rows))
    decided = [(a, i, c) for a, i, c in rows if c is not None]
    items = {i: n for n, i in enumerate(dict.fromkeys(i for _, i, _ in decided))}
    values = {c: n for n, c in enumerate(dict.fromkeys(c for _, _, c in decided))}
    raters = {a: n for n, a in enumerate(annotators)}
    unit = np.array([items[i] for _, i, _ in decided], dtype=np.int64)
    value = np.array([values[c] for _, _, c in decided], dtype=np.int64)
    rater = np.array([raters[a] for a, _, _ in decided], dtype=np.int64)
    shape = {"n_units": len(items), "n_values": len(values)}
    alpha, reason = _alpha(agr.value_counts_matrix(unit, value, **shape))

    by_item: dict[Hashable, list[tuple[Hashable, str]]] = {}
    for a, i, c in decided:
        by_item.setdefault(i, []).append((a, c))
    out: dict[Hashable, AnnotatorAgreement] = {}
    for a in annotators:
        keep = rater != raters[a]
        without, why = _alpha(agr.value_counts_matrix(unit[keep], value[keep], **shape))
        shares = []
        for pairs in by_item.values():
            mine = [c for who, c in pairs if who == a]
            others = [c for who, c in pairs if who != a]
            if mine and others:
                shares.append(sum(c == mine[0] for c in others) / len(others))
        reasons = {}
        if without is None:
            reasons["alpha_without"] = why
        if without is None or alpha is None:
            reasons["delta"] = reason if alpha is None else why
        if not shares:
            reasons["agreement"] = "no decided label on an item another annotator also decided"
        out[a] = AnnotatorAgreement(
            alpha_without=without, delta=alpha - without if alpha is not None and without is not None else None,
            agreement=sum(shares) / len(shares) if shares else None, shared_items=len(shares), reasons=reasons,
        )
    return LeaveOneOut(alpha=alpha, reason=reason, annotators=out)
