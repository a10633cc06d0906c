"""The annotate page with the other formats' items, in real Chromium: a pairwise item answered with
a tie, seven candidates ranked, a conversation with its last user turn highlighted, a profile panel
with the study's per-response questions.

The items are built in the database by ``tests/format_items.py`` (one benchmark and study each);
every annotator joins one study, so the page opens that study's item.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.models import Label, User
from tests.e2e.conftest import WAIT_MS, settle, start_server
from tests.format_items import prepare_format_studies

pytestmark = pytest.mark.e2e
PASSWORD = "formats-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    made = {}

    def prepare(engine):  # noqa: ANN001
        made.update(prepare_format_studies(engine, prefix="ann", password=PASSWORD))

    srv = start_server(tmp_path_factory, prepare)
    srv.studies = made
    yield srv
    srv.stop()


def labels_of(server, name: str) -> list[Label]:  # noqa: ANN001
    with session_scope(get_engine(server.db_url)) as s:
        uid = s.execute(select(User.id).where(User.name == name)).scalar_one()
        return list(s.execute(select(Label).where(Label.user_id == uid)).scalars())


def open_item(browser, server, name: str, width: int = 1440, height: int = 900):  # noqa: ANN001, ANN201
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.locator(".st-key-rmgap-answer").wait_for(timeout=WAIT_MS)
    page.wait_for_function("() => !!window.__rmgapKeyboard", timeout=WAIT_MS)
    settle(page)
    return page


def box(page, selector: str) -> dict:  # noqa: ANN001
    return page.locator(selector).first.bounding_box()


def test_a_pairwise_item_side_by_side_answered_with_a_tie(server, browser):
    page = open_item(browser, server, "ann-pairwise")
    panel = page.locator(".st-key-rmgap-answer")
    a = page.get_by_text("Response A", exact=False).first.bounding_box()
    b = page.get_by_text("Response B", exact=False).first.bounding_box()
    assert abs(a["y"] - b["y"]) < 2 and b["x"] > a["x"] + 200  # side by side at 1440 px
    page.keyboard.press("N")
    settle(page)
    assert panel.get_by_role("radio", name="Both bad [N]").is_checked()
    panel.get_by_text("Both equally good [T]", exact=True).click()
    settle(page)
    assert panel.get_by_role("radio", name="Both equally good [T]").is_checked()
    panel.get_by_role("button", name="Submit").click()
    page.get_by_text("All done", exact=False).wait_for(timeout=WAIT_MS)
    (lab,) = labels_of(server, "ann-pairwise")
    assert (lab.choice_key, lab.study_id, lab.ranking_json) == ("tie_good", server.studies["pairwise"][1], None)
    page.close()


def test_seven_candidates_ranked_by_keyboard(server, browser):
    page = open_item(browser, server, "ann-bon7")
    panel = page.locator(".st-key-rmgap-answer")
    assert panel.get_by_text("Order all 7 responses", exact=False).count() == 1
    for letter in "ABCDEFG":  # every letter is a visible, legible button in the panel
        button = panel.get_by_role("button", name=letter, exact=True)
        assert button.is_visible() and button.bounding_box()["width"] >= 24
    assert page.get_by_text("Response G", exact=False).count() >= 1
    for key in "DGACBE":  # F fills the last place
        page.keyboard.press(key)
        settle(page)
    panel.get_by_text("Your ranking: 1. D · 2. G · 3. A · 4. C · 5. B · 6. E · 7. F", exact=False).wait_for(timeout=WAIT_MS)
    page.keyboard.press("Enter")
    page.get_by_text("All done", exact=False).wait_for(timeout=WAIT_MS)
    (lab,) = labels_of(server, "ann-bon7")
    order = json.loads(lab.displayed_order_json)
    expected = [order["ABCDEFG".index(x)] for x in "DGACBEF"]
    assert json.loads(lab.ranking_json) == expected and lab.choice_key == expected[0]
    assert sorted(expected) == sorted(["bon_best"] + [f"loser_{i}" for i in range(6)])
    page.close()


def test_a_conversation_is_a_transcript_with_the_last_user_turn_highlighted(server, browser):
    page = open_item(browser, server, "ann-chat")
    earlier = page.locator(".st-key-rmgap-conversation")
    last = page.locator(".st-key-rmgap-lastturn")
    assert earlier.locator("[data-testid='stChatMessage']").count() == 4
    for i in range(1, 5):
        assert f"VISIBLECHAT-{i}:" in earlier.inner_text()
    assert "VISIBLECHAT-FINAL" not in earlier.inner_text()
    assert "VISIBLECHAT-FINAL" in last.inner_text() and "The user's last message" in last.inner_text()
    background = last.evaluate("e => getComputedStyle(e).backgroundColor")
    plain = earlier.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background != plain and background not in ("rgba(0, 0, 0, 0)", "transparent")
    assert box(page, ".st-key-rmgap-conversation")["y"] < box(page, ".st-key-rmgap-lastturn")["y"] \
        < page.get_by_text("Response A", exact=False).first.bounding_box()["y"]
    page.keyboard.press("B")
    settle(page)
    page.keyboard.press("Enter")
    page.get_by_text("All done", exact=False).wait_for(timeout=WAIT_MS)
    (lab,) = labels_of(server, "ann-chat")
    assert lab.choice_key in ("chosen", "reject")
    page.close()


def test_a_profile_panel_above_the_question_and_questions_about_each_response(server, browser):
    page = open_item(browser, server, "ann-profile")
    profile = page.locator(".st-key-rmgap-profile")
    assert profile.get_by_text("VISIBLEPOST-", exact=False).count() == 4
    assert profile.evaluate("e => e.scrollHeight > e.clientHeight + 50")  # long posts scroll inside the panel
    assert box(page, ".st-key-rmgap-profile")["y"] < box(page, ".st-key-rmgap-prompt")["y"]
    panel = page.locator(".st-key-rmgap-answer")
    panel.get_by_text("A [A]", exact=True).click()
    settle(page)
    # Digits walk through the questions one response at a time: factuality A, B, relevance A, B, ...
    for digit in "5432":
        page.keyboard.press(digit)
        settle(page)
    page.keyboard.press("Enter")  # the focus is still on a clicked radio: Enter must reach the page anyway
    settle(page)
    panel.get_by_text("Answer for every response: How useful is the response to this user?", exact=False) \
        .wait_for(timeout=WAIT_MS)
    assert labels_of(server, "ann-profile") == []
    for row in ("usefulness-A", "usefulness-B", "personalised_alignment-A", "personalised_alignment-B"):
        page.locator(f".st-key-rmgap-q-{row}").get_by_text("3", exact=True).click()
        settle(page)
    panel.get_by_role("button", name="Submit").click()
    page.get_by_text("All done", exact=False).wait_for(timeout=WAIT_MS)
    (lab,) = labels_of(server, "ann-profile")
    order = json.loads(lab.displayed_order_json)
    assert lab.choice_key == order[0]
    ratings = json.loads(lab.ratings_json)
    assert ratings["factuality"] == {order[0]: 5, order[1]: 4}
    assert ratings["relevance"] == {order[0]: 3, order[1]: 2}
    assert ratings["usefulness"] == ratings["personalised_alignment"] == {order[0]: 3, order[1]: 3}
    page.close()
