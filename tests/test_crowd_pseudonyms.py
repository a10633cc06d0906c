"""Stable pseudonyms per study."""

from __future__ import annotations

import pytest

from rmgap_annot.crowd.pseudonyms import pseudonyms


def test_numbered_in_order_of_first_appearance():
    assert pseudonyms([17, 3, 17, 9]) == {17: "ann-01", 3: "ann-02", 9: "ann-03"}
    assert pseudonyms([]) == {}


def test_a_later_annotator_leaves_earlier_names_unchanged():
    early = pseudonyms(["u5", "u2"])
    later = pseudonyms(["u5", "u2", "u8"])
    assert {k: later[k] for k in early} == early


def test_width_follows_the_count_and_can_be_fixed():
    names = pseudonyms(list(range(100)))
    assert names[0] == "ann-001" and names[99] == "ann-100"
    assert pseudonyms(list(range(9)))[8] == "ann-09"
    assert pseudonyms(list(range(9)), min_width=3)[0] == "ann-001"
    assert pseudonyms(list(range(100)), min_width=3)[0] == "ann-001"
    assert sorted(names.values()) == [names[i] for i in range(100)]  # names sort in arrival order
    with pytest.raises(ValueError):
        pseudonyms([1], min_width=0)
