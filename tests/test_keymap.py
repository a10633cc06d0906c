"""The key map: what each key does to a half-made answer (no browser needed)."""

from __future__ import annotations

from rmgap_annot.annotation import REASONS
from rmgap_annot.keymap import Draft, apply_key, current_question, missing, with_mode


def press(draft: Draft, *keys: str, mode: str = "pick", n: int = 4) -> tuple[Draft, list]:
    actions = []
    pending = None
    for key in keys:
        result = apply_key(draft, key, mode=mode, n_candidates=n, pending=pending)
        draft = result.draft
        actions.append(result.action)
        pending = result.action.split(":", 1)[1] if result.action and result.action.startswith("pending:") else None
    return draft, actions


def test_pick_mode_is_three_keys_letter_digit_enter():
    draft, actions = press(Draft(), "C", "4", "Enter")
    assert (draft.pick, draft.naturalness) == ("C", 4)
    assert actions == [None, None, "submit"]
    assert missing(draft, mode="pick", n_candidates=4) is None


def test_cant_decide_makes_the_reason_current_then_naturalness():
    draft, _ = press(Draft(), "X")
    assert current_question(draft) == "reason"
    draft, _ = press(draft, "2")
    assert draft.reason == list(REASONS)[1]
    assert current_question(draft) == "naturalness"
    draft, _ = press(draft, "5")
    assert draft.naturalness == 5 and missing(draft, mode="pick", n_candidates=4) is None


def test_digit_out_of_range_changes_nothing_and_a_second_digit_corrects():
    draft, _ = press(Draft(), "A", "9")
    assert draft.naturalness is None
    draft, _ = press(draft, "3", "2")
    assert draft.naturalness == 2  # all answered: the digit re-answers the last question


def test_x_after_naturalness_asks_for_the_reason_next():
    draft, _ = press(Draft(), "A", "4", "X")
    assert current_question(draft) == "reason"
    assert missing(draft, mode="pick", n_candidates=4) == "Say why you can't decide (1-3)."
    draft, _ = press(draft, "1")
    assert draft.reason == "none_fits" and draft.naturalness == 4


def test_letters_beyond_the_candidates_and_unknown_keys_do_nothing():
    draft, actions = press(Draft(), "E", "W", n=4)
    assert draft == Draft() and actions == [None, None]
    draft, _ = press(Draft(), "T", n=4)  # T means a tie only with two candidates
    assert draft == Draft()


def test_two_candidates_t_and_n():
    draft, _ = press(Draft(), "T", n=2)
    assert (draft.pick, draft.reason) == ("X", "several_fit")
    assert current_question(draft) == "naturalness"
    draft, _ = press(Draft(), "N", n=2)
    assert (draft.pick, draft.reason) == ("X", "none_fits")


def test_ranking_letters_in_order_last_place_fills_itself_and_backspace():
    draft, _ = press(Draft(), "C", "A", mode="ranking")
    assert draft.ranking == ("C", "A")
    assert missing(draft, mode="ranking", n_candidates=4) is not None
    draft, _ = press(draft, "A", mode="ranking")  # already ranked: ignored
    assert draft.ranking == ("C", "A")
    draft, _ = press(draft, "D", mode="ranking")
    assert draft.ranking == ("C", "A", "D", "B")
    draft, _ = press(draft, "Backspace", mode="ranking")
    assert draft.ranking == ("C", "A")
    draft, actions = press(draft, "B", "3", "Enter", mode="ranking")
    assert draft.ranking == ("C", "A", "B", "D") and actions[-1] == "submit"
    assert missing(draft, mode="ranking", n_candidates=4) is None


def test_commands_and_two_key_sequences():
    _, actions = press(Draft(), "U", "S", "?", "Z", "B", "Escape")
    assert actions == ["back", "skip", "help", "pending:zoom", "zoom:B", "close"]
    _, actions = press(Draft(), "Q", "3")
    assert actions == ["pending:flag", "flag:gives_away"]
    draft, actions = press(Draft(), "Q", "A")  # a letter does not complete a flag, and is not a pick either
    assert actions[-1] == "close" and draft.pick is None


def test_draft_round_trips_and_rejects_junk():
    draft, _ = press(Draft(), "X", "2", "4")
    assert Draft.from_json(draft.to_json()) == draft
    assert Draft.from_json({"naturalness": 9, "reason": "bogus", "ranking": [1, "A"], "comment": 3}) == Draft(ranking=("A",))


def test_mode_change_keeps_the_pick_where_it_can():
    ranked = with_mode(Draft(pick="B", naturalness=3), mode="ranking", n_candidates=4)
    assert ranked.ranking == ("B",) and ranked.pick is None and ranked.naturalness == 3
    picked = with_mode(Draft(ranking=("D", "A")), mode="pick", n_candidates=4)
    assert picked.pick == "D" and picked.ranking == ()
    assert with_mode(Draft(pick="X", reason="none_fits"), mode="ranking", n_candidates=4).pick == "X"
