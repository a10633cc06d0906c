"""Where attention checks go in an annotator's stream, and the qualification rule.

The stream an annotator sees is: the qualification items first (if the study
has a qualification round), then real items with checks mixed in. Checks are
placed by *slot*: a check with slot ``s`` is shown once the annotator has
done ``s`` real items (so slot 0 is before the first real item). The quota
counts real items only.

The rate is the share of checks among the items shown after qualification:
``--check-rate 0.05`` means one shown item in 20 is a check, i.e. one check
per ``m = round((1 - rate) / rate)`` real items (19). Real items are cut into
blocks of ``m``; block ``j`` holds check ``j`` at a seeded slot in
``[j*m, (j+1)*m - 1]``. So the rate holds exactly on a long stream, the
checks do not come at a rhythm a person could learn, and when the quota is
shorter than a block the first check is drawn within the quota instead:
every annotator who finishes a quota has met at least one check (when the
study has any). Each check is shown to an annotator at most once (their
label on it is unique), so once the study's checks are used up no more come;
``checks_needed`` tells the researcher how many a quota uses.

Every draw is a sha256 of (study seed, annotator, purpose, index): the
schedule is the same on every server and Python version, for as long as the
study lives, and different between annotators. The caller asks
``next_check`` with counts of what the annotator has done, so a check that
was missed (a crash between two items) is simply shown next.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction
from typing import Literal, Optional, Sequence

from rmgap_annot.export import ExportError, as_fraction, format_fraction

MAX_CHECK_RATE = Fraction(1, 2)  # one check per real item; more would be a test, not a study


class ScheduleError(ValueError):
    """A schedule setting is unusable (rate, quota, qualification size); the message names the flag."""


def _draw(*, seed: int | str, annotator: int | str, purpose: str, index: int, n: int) -> int:
    """A uniform draw in [0, n) from the seed, the annotator and what it is for (bias below 2**-200)."""
    digest = hashlib.sha256(f"rmgap-annot\0{purpose}\0{seed}\0{annotator}\0{index}".encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % n


def parse_share(value: object, *, flag: str, low: Fraction = Fraction(0), high: Fraction = Fraction(1)) -> Fraction:
    """A share given as ``0.05``, ``1/20`` or ``2/3``, read exactly as ``--min-agreement`` is (``export.as_fraction``)."""
    try:
        share = as_fraction(value)  # type: ignore[arg-type]
    except ExportError as exc:
        raise ScheduleError(f"{flag}: {exc}") from exc
    if not low <= share <= high:
        raise ScheduleError(f"{flag} must lie between {format_fraction(low)} and {format_fraction(high)}, got {value!r}")
    return share


def real_items_per_check(rate: object) -> Optional[int]:
    """How many real items each check comes with; None when checks are off (rate 0)."""
    share = parse_share(rate, flag="--check-rate", high=MAX_CHECK_RATE)
    if share == 0:
        return None
    return max(1, round((1 - share) / share))


def checks_needed(*, quota: int, rate: object) -> int:
    """The most checks one annotator can meet over a quota: with fewer in the study, the rate falls short."""
    m = real_items_per_check(rate)
    if m is None:
        return 0
    _quota(quota)
    return max(1, math.ceil(quota / m))


def _quota(quota: Optional[int]) -> Optional[int]:
    if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota < 1):
        raise ScheduleError(f"the quota must be a whole number of at least 1, got {quota!r}")
    return quota


def check_slots(*, seed: int | str, annotator: int | str, quota: Optional[int], rate: object, n_checks: int) -> list[int]:
    """The slot (real items done before it) of each check the annotator will meet, ascending.

    At most ``n_checks`` entries: an annotator meets each check once. With a
    quota, only slots below it: a check after the last real item would never
    be shown (a block that straddles the quota keeps its check only when the
    draw falls inside). ``quota=None`` (no quota) gives one slot per block
    for all the study's checks.
    """
    m = real_items_per_check(rate)
    _quota(quota)
    if m is None or n_checks <= 0:
        return []
    slots = []
    for j in range(n_checks):
        # The first check is drawn within the quota, so every quota holds one;
        # the others over their whole block, so a quota that ends inside a
        # block holds its check with the block's share (the rate stays exact).
        width = min(m, quota) if j == 0 and quota is not None else m
        slot = j * m + _draw(seed=seed, annotator=annotator, purpose="check-slot", index=j, n=width)
        if quota is not None and slot >= quota:
            break
        slots.append(slot)
    return slots


def check_order(*, seed: int | str, annotator: int | str, check_ids: Sequence[str]) -> list[str]:
    """The order in which this annotator meets the study's checks: a seeded shuffle, the same on every call."""
    return sorted(dict.fromkeys(check_ids), key=lambda c: hashlib.sha256(f"rmgap-annot\0check-order\0{seed}\0{annotator}\0{c}".encode("utf-8")).digest())


def next_check(
    *, seed: int | str, annotator: int | str, quota: Optional[int], rate: object, check_ids: Sequence[str],
    real_done: int, checks_done: Sequence[str],
) -> Optional[str]:
    """The check to show now, or None for a real item.

    ``real_done`` counts the annotator's real labels, ``checks_done`` the
    checks they have labelled. The next scheduled check is due once its slot
    is reached; a check that is due but was not shown (a crash, a second tab)
    stays due, so the count of checks never falls behind the schedule.
    """
    order = [c for c in check_order(seed=seed, annotator=annotator, check_ids=check_ids) if c not in set(checks_done)]
    if not order:
        return None
    slots = check_slots(seed=seed, annotator=annotator, quota=quota, rate=rate, n_checks=len(set(check_ids)))
    done = len(set(checks_done) & set(check_ids))
    if done < len(slots) and slots[done] <= real_done:
        return order[0]
    return None


# --- qualification -------------------------------------------------------------

QualificationState = Literal["pending", "passed", "failed"]


def qualification_items(*, seed: int | str, annotator: int | str, item_ids: Sequence[str], n_items: int) -> list[str]:
    """The ``n_items`` qualification items this annotator sees first, in order (a seeded draw from the study's pool)."""
    pool = list(dict.fromkeys(item_ids))
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
        raise ScheduleError(f"--qualification-items must be a whole number of at least 0, got {n_items!r}")
    if n_items > len(pool):
        raise ScheduleError(f"--qualification-items is {n_items}, but the study has only {len(pool)} qualification item(s)")
    return check_order(seed=seed, annotator=f"qualification\0{annotator}", check_ids=pool)[:n_items]


def qualification_state(*, results: Sequence[bool], n_items: int, pass_share: object) -> QualificationState:
    """Pending until all ``n_items`` are labelled; then passed when the share right is at least ``pass_share``.

    The share is compared exactly (``Fraction``): 2 of 3 right passes
    ``--qualification-pass 2/3``. With no qualification round (``n_items``
    0) everyone has passed. Decided on all items, never early: feedback
    after each item is part of the round, and the participant sees all of it.
    """
    share = parse_share(pass_share, flag="--qualification-pass")
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
        raise ScheduleError(f"--qualification-items must be a whole number of at least 0, got {n_items!r}")
    if n_items == 0:
        return "passed"
    if len(results) < n_items:
        return "pending"
    right = sum(bool(r) for r in results[:n_items])
    return "passed" if Fraction(right, n_items) >= share else "failed"
