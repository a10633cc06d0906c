"""The public study link per platform, and the participant who arrives through it."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from rmgap_annot.accounts import name_skeleton, validate_name
from rmgap_annot.crowd.links import (
    Arrival, LinkError, completion_url, is_participant_name, mturk_hit_html, new_code, new_study_token, parse_arrival,
    participant_of_user_name, participant_user_name, study_link, validate_participant_id,
)

TOKEN = "AbCdEfGhIjKlMnOpQrStUv"
PID = "5f3a1b2c3d4e5f6a7b8c9d0e"


def _query(link: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(link).query, keep_blank_values=True).items()}


def test_prolific_link_carries_the_placeholders_verbatim():
    link = study_link(base_url="https://annot.example.org/app/?x=1#top", token=TOKEN, platform="prolific")
    assert link == (
        "https://annot.example.org/app/?study=AbCdEfGhIjKlMnOpQrStUv"
        "&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    )
    assert study_link(base_url="http://localhost:8501", token=TOKEN, platform="prolific").startswith(
        "http://localhost:8501/?study=")


def test_generic_and_mturk_links():
    assert study_link(base_url="https://h/", token=TOKEN, platform="generic") == f"https://h/?study={TOKEN}&pid=PARTICIPANT_ID"
    mturk = study_link(base_url="https://h/", token=TOKEN, platform="mturk")
    assert mturk == f"https://h/?study={TOKEN}"
    page = mturk_hit_html(link=mturk)
    assert f'href="{mturk}"' in page and 'name="completion_code"' in page
    assert 'searchParams.set("workerId", worker)' in page and "ASSIGNMENT_ID_NOT_AVAILABLE" in page
    # A link is escaped into the HTML, never injected.
    assert '"><script>' not in mturk_hit_html(link='https://h/?study=x"><script>alert(1)</script>')


def test_link_arguments_are_checked():
    with pytest.raises(LinkError, match="platform"):
        study_link(base_url="https://h/", token=TOKEN, platform="mechanical")
    with pytest.raises(LinkError, match="study token"):
        study_link(base_url="https://h/", token="short", platform="prolific")
    with pytest.raises(LinkError, match="http"):
        study_link(base_url="annot.example.org", token=TOKEN, platform="prolific")


def test_a_prolific_arrival_round_trips():
    link = study_link(base_url="https://h/", token=TOKEN, platform="prolific")
    filled = link.replace("{{%PROLIFIC_PID%}}", PID).replace("{{%STUDY_ID%}}", "s" * 24).replace("{{%SESSION_ID%}}", "abc123")
    arrival = parse_arrival(_query(filled))
    assert arrival == Arrival(token=TOKEN, platform="prolific", participant_id=PID, platform_study_id="s" * 24, platform_session_id="abc123")
    assert arrival.user_name == f"prolific:{PID}"


def test_mturk_and_generic_arrivals():
    a = parse_arrival({"study": TOKEN, "workerId": "A1B2C3D4E5F6", "hitId": "3HIT", "assignmentId": "3ASSIGN"})
    assert (a.platform, a.participant_id, a.platform_study_id, a.platform_session_id) == ("mturk", "A1B2C3D4E5F6", "3HIT", "3ASSIGN")
    g = parse_arrival({"study": [TOKEN], "pid": ["p-17"]})  # lists, as some frameworks give them
    assert (g.platform, g.participant_id, g.platform_study_id, g.platform_session_id) == ("generic", "p-17", None, None)


def test_not_a_study_link_is_none():
    assert parse_arrival({}) is None
    assert parse_arrival({"invite": "x"}) is None


@pytest.mark.parametrize("params, message", [
    ({"study": "short", "pid": "p"}, "not valid"),
    ({"study": TOKEN}, "no participant id"),
    ({"study": TOKEN, "pid": ""}, "no participant id"),
    ({"study": TOKEN, "PROLIFIC_PID": "{{%PROLIFIC_PID%}}"}, "placeholder the platform did not fill in"),
    ({"study": TOKEN, "pid": "PARTICIPANT_ID"}, "replace it with your platform's placeholder"),
    ({"study": TOKEN, "pid": "a" * 65}, "65 characters long"),
    ({"study": TOKEN, "pid": "bob smith"}, "only letters, digits"),
    ({"study": TOKEN, "pid": "bob\u0430"}, "only letters, digits"),  # Cyrillic a
    ({"study": TOKEN, "pid": "p1", "PROLIFIC_PID": PID}, "several platforms"),
    ({"study": TOKEN, "pid": ["p1", "p2"]}, "2 times"),
    ({"study": TOKEN, "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"}, "accept the HIT first"),
    ({"study": TOKEN, "PROLIFIC_PID": PID, "STUDY_ID": "{{%STUDY_ID%}}"}, "study id"),
])
def test_bad_arrivals_say_why(params, message):
    with pytest.raises(LinkError, match=message):
        parse_arrival(params)


def test_participant_id_bounds():
    assert validate_participant_id("a") == "a"
    assert validate_participant_id("A" * 64) == "A" * 64
    assert validate_participant_id(PID, platform="prolific") == PID
    with pytest.raises(LinkError, match="Prolific participant id"):
        validate_participant_id("", platform="prolific")


def test_tokens_and_codes_are_fresh_and_well_formed():
    tokens = {new_study_token() for _ in range(50)}
    assert len(tokens) == 50
    for t in tokens:  # each one is accepted by the link it goes into
        assert parse_arrival({"study": t, "pid": "p"}).token == t
    code = new_code()
    assert len(code) == 8 and code.isalnum() and code.upper() == code


def test_completion_url_only_for_prolific():
    assert completion_url(platform="prolific", code="C1A2B3C4") == "https://app.prolific.com/submissions/complete?cc=C1A2B3C4"
    assert completion_url(platform="mturk", code="C1A2B3C4") is None
    assert completion_url(platform="generic", code="C1A2B3C4") is None
    with pytest.raises(LinkError, match="code"):
        completion_url(platform="prolific", code="a&cc=other")


def test_participant_user_names_pass_the_account_rules_and_cannot_be_ordinary_names():
    for platform, pid in [("prolific", PID), ("mturk", "A1B2C3D4E5F6"), ("generic", "p_1-x")]:
        name = participant_user_name(platform=platform, participant_id=pid)
        assert validate_name(name) == name  # stored exactly as derived
        assert participant_of_user_name(name) == (platform, pid)
        assert is_participant_name(name)
    assert not is_participant_name("alice") and not is_participant_name("dr: who")
    assert participant_of_user_name("alice") is None and participant_of_user_name("prolific:a b") is None
    # Case, full-width letters and look-alike letters do not get an ordinary name into the namespace.
    assert is_participant_name("Prolific:x") and is_participant_name("ｍｔｕｒｋ：x") and is_participant_name("prol\u0456fic:x")
    # Why participants need their own creation path: distinct MTurk ids share a look-alike skeleton.
    a = participant_user_name(platform="mturk", participant_id="A1B2")
    b = participant_user_name(platform="mturk", participant_id="ALB2")
    assert a != b and name_skeleton(a) == name_skeleton(b)
    with pytest.raises(LinkError):
        participant_user_name(platform="prolific", participant_id="x y")


def test_a_study_made_for_one_platform_refuses_another_platforms_ids():
    assert parse_arrival({"study": TOKEN, "PROLIFIC_PID": PID}, platform="prolific").participant_id == PID
    with pytest.raises(LinkError, match="through its prolific link"):
        parse_arrival({"study": TOKEN, "pid": "made-up"}, platform="prolific")
    with pytest.raises(LinkError, match="platform must be one of"):
        parse_arrival({"study": TOKEN, "pid": "p"}, platform="sona")
