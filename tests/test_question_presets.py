"""Rating questions: presets, the JSON a researcher writes on the Study page, and what is recognised as a preset."""

from __future__ import annotations

import json

import pytest

from rmgap_annot.questions import PRESETS, QuestionError, dumps, parse_questions, preset_name, questions_for


def test_every_preset_round_trips_through_json_and_is_recognised():
    for name, preset in PRESETS.items():
        again = parse_questions(json.loads(dumps(preset, indent=2)))
        assert again == preset and preset_name(again) == name


def test_a_studys_own_questions_are_not_taken_for_a_preset():
    own = parse_questions('[{"name": "safe", "text": "Is it safe?", "levels": "yes/no"}]')
    assert preset_name(own) is None
    changed = parse_questions(json.loads(dumps(PRESETS["prb-human-check"]))[:3])
    assert preset_name(changed) is None


def test_an_empty_list_means_no_questions_even_for_rmgap():
    assert questions_for("[]", "rmgap") == ()
    assert questions_for(None, "rmgap") == PRESETS["rmgap"]
    assert questions_for(None, "prb") == ()


@pytest.mark.parametrize(("text", "message"), [
    ('[{"name": "Bad"}]', "questions[0].name"),
    ('[{"name": "ok", "text": "Q?", "levels": [{"value": 1, "label": "x"}]}]', "questions[0].levels"),
    ('[{"name": "ok", "text": "Q?", "levels": "yes/no", "about": "both"}]', "questions[0].about"),
    ("[{", "not a preset"),
])
def test_bad_json_names_the_question_and_the_field(text, message):
    with pytest.raises(QuestionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_questions(text)
