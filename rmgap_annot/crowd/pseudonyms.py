"""Stable pseudonyms per study: what exports, the card, the report and papers call annotators.

A platform id or a user name identifies a person; published outputs must
not. ``ann-01``, ``ann-02``, ... are given in order of each annotator's first
label (or arrival), so a pseudonym never changes when someone joins later:
the caller passes the study's annotators in that order, every time.
"""

from __future__ import annotations

from typing import Hashable, Sequence

PREFIX = "ann-"


def pseudonyms(ordered_ids: Sequence[Hashable], *, min_width: int = 2) -> dict[Hashable, str]:
    """``{id: "ann-NN"}`` numbered from 1 in the given order (repeats keep their first number).

    Zero-padded to the width the count needs, and at least ``min_width``
    (``ann-07`` sorts before ``ann-10``). The width grows past 99 annotators
    (``ann-007``): a caller that publishes while a study still grows should
    pass the planned number of participants' width as ``min_width`` so a name
    once published keeps its spelling.
    """
    if isinstance(min_width, bool) or not isinstance(min_width, int) or min_width < 1:
        raise ValueError(f"min_width must be a whole number of at least 1, got {min_width!r}")
    unique = list(dict.fromkeys(ordered_ids))
    width = max(min_width, len(str(len(unique))))
    return {who: f"{PREFIX}{n:0{width}d}" for n, who in enumerate(unique, start=1)}
