"""The key map: what each key does to a half-made answer (no browser needed)."""

from __future__ import annotations

from rmgap_annot.annotation import REASONS, LabelView
from rmgap_annot.keymap import Draft, apply_key, current_question, missing, submission, with_mode
from rmgap_annot.questions import PRESETS, parse_questions


def press(draft: Draft, *keys: str, mode: str = "pick", n: int = 4, **kw) -> tuple[Draft, list]:  # noqa: ANN003
    actions = []
    pending = None
    for key in keys:
        result = apply_key(draft, key, mode=mode, n_candidates=n, pending=pending, **kw)
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


def test_two_candidates_t_and_n_are_ties_stored_as_their_own_choice_values():
    draft, _ = press(Draft(), "T", n=2)
    assert (draft.pick, draft.reason) == ("tie_good", None)
    assert current_question(draft) == "naturalness"
    draft, actions = press(draft, "4", "Enter", n=2)
    assert missing(draft, mode="pick", n_candidates=2) is None and actions[-1] == "submit"
    sent = submission(draft, keys=("rejected", "chosen"), mode="pick")
    assert (sent["choice_key"], sent["ranking"], sent["reason"], sent["naturalness"]) == ("tie_good", None, None, 4)
    draft, _ = press(Draft(), "A", "N", n=2)  # a tie replaces a pick, and a letter replaces a tie
    assert draft.pick == "tie_bad"
    assert submission(draft, keys=("rejected", "chosen"), mode="pick")["choice_key"] == "tie_bad"
    draft, _ = press(draft, "B", n=2)
    assert submission(draft, keys=("rejected", "chosen"), mode="pick")["choice_key"] == "chosen"
    stale = Draft(pick="tie_good", naturalness=3)  # a tie is no answer for four responses
    assert missing(stale, mode="pick", n_candidates=4) is not None
    assert missing(stale, mode="pick", n_candidates=2) is None


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


def test_ranking_works_for_seven_candidates_and_maps_letters_to_keys():
    keys = tuple(f"k{i}" for i in range(7))
    draft, _ = press(Draft(), "G", "A", "C", "B", "F", mode="ranking", n=7)
    assert missing(draft, mode="ranking", n_candidates=7) is not None
    draft, _ = press(draft, "E", "2", mode="ranking", n=7)
    assert draft.ranking == ("G", "A", "C", "B", "F", "E", "D")
    assert missing(draft, mode="ranking", n_candidates=7) is None
    sent = submission(draft, keys=keys, mode="ranking")
    assert sent["ranking"] == ["k6", "k0", "k2", "k1", "k5", "k4", "k3"] and sent["choice_key"] == "k6"
    draft, _ = press(Draft(), "H", mode="ranking", n=7)  # only A-G exist
    assert draft.ranking == ()


PRB = PRESETS["prb-human-check"]


def test_digits_walk_through_per_response_questions_one_letter_at_a_time():
    draft, _ = press(Draft(), "B", "5", "4", n=2, asks=PRB)
    assert draft.ratings == {"factuality": {"A": 5, "B": 4}}
    assert current_question(draft, asks=PRB, n_candidates=2) == "relevance:A"
    assert missing(draft, mode="pick", n_candidates=2, asks=PRB) == \
        "Answer for every response: Is the response relevant to the request? (still open: A, B)"
    draft, _ = press(draft, *"345345", n=2, asks=PRB)
    assert missing(draft, mode="pick", n_candidates=2, asks=PRB) is None
    assert draft.naturalness is None  # this study does not ask it
    sent = submission(draft, keys=("rejected", "chosen"), mode="pick", asks=PRB)
    assert sent["choice_key"] == "chosen"
    assert sent["ratings"] == {"factuality": {"rejected": 5, "chosen": 4}, "relevance": {"rejected": 3, "chosen": 4},
                               "usefulness": {"rejected": 5, "chosen": 3}, "personalised_alignment": {"rejected": 4, "chosen": 5}}
    assert sent["naturalness"] is None


def test_a_digit_is_the_level_position_and_optional_questions_do_not_block():
    asks = parse_questions([
        {"name": "safe", "text": "Is the request safe?", "levels": "yes/no"},
        {"name": "clarity", "text": "How clear?", "levels": [{"value": 0, "label": "Unclear"}, {"value": 1, "label": "Clear"}],
         "required": False},
    ])
    draft, _ = press(Draft(), "A", "2", asks=asks)  # the second level of yes/no is No (value 0)
    assert draft.ratings == {"safe": 0}
    assert missing(draft, mode="pick", n_candidates=4, asks=asks) is None
    draft, _ = press(draft, "3", asks=asks)  # out of range for a two-level scale
    assert draft.ratings == {"safe": 0}
    assert submission(draft, keys=("a", "b", "c", "d"), mode="pick", asks=asks)["ratings"] == {"safe": 0}


def test_no_questions_means_the_pick_alone_completes_the_answer():
    draft, _ = press(Draft(), "C", "3", asks=())
    assert draft.naturalness is None and current_question(draft, asks=(), n_candidates=4) is None
    assert missing(draft, mode="pick", n_candidates=4, asks=()) is None


def test_answers_to_removed_questions_are_not_sent():
    draft = Draft(pick="A", ratings={"gone": 3, "factuality": {"A": 2, "B": 2}})
    sent = submission(draft, keys=("x", "y"), mode="pick", asks=PRB)
    assert sent["ratings"] == {"factuality": {"x": 2, "y": 2}}


def test_draft_keeps_ratings_through_json_and_from_a_label():
    draft = Draft(pick="tie_bad", ratings={"usefulness": {"A": 2, "B": 5}, "safe": 1}, current="usefulness:B")
    assert Draft.from_json(draft.to_json()) == draft
    junk = Draft.from_json({"ratings": {"a": True, "b": {"Z": 1, "A": "x", "B": 2}, "c": [1]}})
    assert junk.ratings == {"b": {"B": 2}}
    label = LabelView(1, 1, "tie_good", None, None, None, "ok", 0, {"usefulness": {"chosen": 4, "rejected": 1}})
    back = Draft.from_label(label, ("chosen", "rejected"))
    assert back.pick == "tie_good" and back.ratings == {"usefulness": {"A": 4, "B": 1}}
    ranked = LabelView(2, 1, "c", None, ["c", "a", "b"], 3, None, 1)
    back = Draft.from_label(ranked, ("a", "b", "c"))
    assert (back.pick, back.ranking, back.naturalness) == ("C", ("C", "A", "B"), 3)


def test_nothing_chosen_is_reported_not_raised():
    for n in (2, 4, 7):
        assert missing(Draft(), mode="pick", n_candidates=n).startswith("Choose the response")
