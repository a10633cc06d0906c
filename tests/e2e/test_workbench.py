"""The annotator's workbench in real Chromium: keyboard only, ranking, late labels, skip and flag,
the guidelines gate, a phone, and drafts that survive leaving the page.

One app server for the module; every test has its own annotator, so their
items, drafts and settings do not mix.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import func, select, update

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import LETTERS, confirm_guidelines, item_for_annotator, submit_label
from rmgap_annot.assignment import hold_item, overview, update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.labels_io import export_labels
from rmgap_annot.models import Flag, Item, Label, Lease, Skip, User, utcnow
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import WAIT_MS, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "workbench-password-1"
NAMES = ("kim", "rita", "lou", "sam", "gina", "pia", "dan", "otto", "fay", "late1", "late2", "late3")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 3, "Writing": 3, "Reasoning": 3, "Safety": 3}, seed=5, long_text=False)
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "w.jsonl", records), name="wb").benchmark_id
        update_study(engine=engine, benchmark_id=bid, quota_per_annotator=8)
        create_user(engine=engine, name="ria", role="researcher", password=PASSWORD)
        create_user(engine=engine, name="invitee", role="annotator")
        for name in NAMES:
            uid = create_user(engine=engine, name=name, role="annotator", password=PASSWORD)
            if name != "gina":  # gina meets the guidelines gate
                confirm_guidelines(engine=engine, user_id=uid, benchmark_id=bid)

    srv = start_server(tmp_path_factory, prepare)
    srv.benchmark_id = 1
    yield srv
    srv.stop()


def engine_of(server):  # noqa: ANN001, ANN201
    return get_engine(server.db_url)


def user_id(server, name: str) -> int:  # noqa: ANN001
    with session_scope(engine_of(server)) as s:
        return s.execute(select(User.id).where(User.name == name)).scalar_one()


def log_in(page, server, name: str, *, gate: bool = False) -> None:  # noqa: ANN001
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    if gate:
        page.get_by_text("Before you start: the guidelines").wait_for(timeout=WAIT_MS)
    else:
        ready(page)


def ready(page) -> None:  # noqa: ANN001
    """The item is drawn and the keyboard listens."""
    page.locator(".st-key-rmgap-prompt").wait_for(timeout=WAIT_MS)
    page.wait_for_function("() => !!window.__rmgapKeyboard", timeout=WAIT_MS)
    settle(page)


def prompt(page) -> str:  # noqa: ANN001
    return page.locator(".st-key-rmgap-prompt").inner_text()


def next_item(page, old: str) -> str:  # noqa: ANN001
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if page.locator(".st-key-rmgap-prompt").count() and prompt(page) != old:
            settle(page)
            return prompt(page)
        page.wait_for_timeout(50)
    raise AssertionError(f"the page still shows {old!r}")


def scroll_top(page) -> int:  # noqa: ANN001
    return page.evaluate("() => Math.round(document.querySelector(\"[data-testid='stMain']\").scrollTop + window.scrollY)")


def labels_of(server, name: str) -> list[Label]:  # noqa: ANN001
    with session_scope(engine_of(server)) as s:
        return list(s.execute(select(Label).where(Label.user_id == user_id(server, name)).order_by(Label.id)).scalars())


def item_text(server, item_id: int) -> str:  # noqa: ANN001
    """The item's tag ("[chat-0001 g2]"): the prompt's markdown renders differently from its source."""
    with session_scope(engine_of(server)) as s:
        return re.search(r"\[\S+ g\d\]", s.get(Item, item_id).text).group()


def test_five_items_by_keyboard_only_three_keys_each(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(page, server, "kim")
    picks = ["B", "D", "A", "C", "B"]
    shown = []
    keys = 0
    for i, letter in enumerate(picks):
        text = prompt(page)
        shown.append(text)
        page.mouse.wheel(0, 600)  # reading further down: the next item must still open at the top
        for key in (letter, str(i + 1), "Enter"):
            page.keyboard.press(key)
            keys += 1
        page.get_by_text(f"{i + 1} of 8 labelled").wait_for(timeout=WAIT_MS)
        if i < len(picks) - 1:
            next_item(page, text)
            assert scroll_top(page) == 0
            page.get_by_text(f"Item {i + 2} of 8").wait_for(timeout=WAIT_MS)  # the change cue
    assert keys == 3 * len(picks)
    page.close()

    rows = labels_of(server, "kim")
    assert len(rows) == len(picks)
    out = tmp_path / "labels.jsonl"
    export_labels(engine=engine_of(server), benchmark_id=server.benchmark_id, out=out, real_names=True)
    for n, (lab, letter, text) in enumerate(zip(rows, picks, shown), start=1):
        assert item_text(server, lab.item_id) in text
        order = json.loads(lab.displayed_order_json)
        assert lab.choice_key == order[LETTERS.index(letter)]
        assert lab.naturalness == n and lab.late is False and lab.ranking_json is None
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    mine = [r for r in lines if r.get("annotator") == "kim"]
    assert sorted(r["choice"] for r in mine) == sorted(lab.choice_key for lab in rows)
    assert sorted(r["naturalness"] for r in mine) == [1, 2, 3, 4, 5]


def test_three_items_in_ranking_mode_by_keyboard(server, browser, tmp_path):
    update_study(engine=engine_of(server), benchmark_id=server.benchmark_id, mode="ranking")
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        log_in(page, server, "rita")
        orders = [("C", "A", "D"), ("B", "D", "A"), ("D", "C", "B")]
        for i, order in enumerate(orders):
            text = prompt(page)
            for key in order:
                page.keyboard.press(key)
            settle(page)
            # Rank numbers are shown on the responses; the last place filled itself.
            page.get_by_text("rank 4").first.wait_for(timeout=WAIT_MS)
            page.keyboard.press("Backspace")  # removes the last key's places (3 and the auto-filled 4)
            settle(page)
            assert page.get_by_text("rank 3").count() == 0 and page.get_by_text("rank 2").count() >= 1
            page.keyboard.press(order[-1])
            page.keyboard.press("4")
            page.keyboard.press("Enter")
            page.get_by_text(f"{i + 1} of 8 labelled").wait_for(timeout=WAIT_MS)
            if i < len(orders) - 1:
                next_item(page, text)
        page.close()
    finally:
        update_study(engine=engine_of(server), benchmark_id=server.benchmark_id, mode="pick")
    rows = labels_of(server, "rita")
    assert len(rows) == 3
    out = tmp_path / "labels.jsonl"
    export_labels(engine=engine_of(server), benchmark_id=server.benchmark_id, out=out, real_names=True)
    exported = [json.loads(x) for x in out.read_text().splitlines()]
    exported = [r for r in exported if r.get("annotator") == "rita"]
    for lab, order in zip(rows, orders):
        shown = json.loads(lab.displayed_order_json)
        letters = [*order, next(x for x in LETTERS if x not in order)]
        expected = [shown[LETTERS.index(x)] for x in letters]
        assert json.loads(lab.ranking_json) == expected and lab.choice_key == expected[0]
        assert any(r["ranking"] == expected and r["choice"] == expected[0] for r in exported)


def test_a_label_after_the_lease_expired_is_stored_and_flagged_late(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(page, server, "lou")
    text = prompt(page)
    engine = engine_of(server)
    lou = user_id(server, "lou")
    with session_scope(engine) as s:
        item = s.execute(select(Lease.item_id).where(Lease.user_id == lou)).scalar_one()
    # Lou reads too long: the lease lapses and three others fill the item.
    with session_scope(engine, write=True) as s:
        s.execute(update(Lease).where(Lease.item_id == item).values(expires_at=utcnow()))  # time passes for all
    for name in ("late1", "late2", "late3"):
        other = user_id(server, name)
        if not hold_item(engine=engine, user_id=other, item_id=item):
            break  # full: earlier tests' annotators already labelled it
        view = item_for_annotator(engine=engine, user_id=other, item_id=item)
        submit_label(engine=engine, user_id=other, item_id=item, choice_key=view.keys[0], naturalness=3)
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).where(Label.item_id == item)).scalar_one() == 3  # the target
    for key in ("A", "2", "Enter"):
        page.keyboard.press(key)
    page.get_by_text("1 of 8 labelled").wait_for(timeout=WAIT_MS)
    next_item(page, text)
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0
    page.close()
    (lab,) = labels_of(server, "lou")
    assert lab.item_id == item and lab.late is True and lab.naturalness == 2
    ov = overview(engine=engine, benchmark_id=server.benchmark_id)
    assert ov.late_labels >= 1 and ov.over_target_items >= 1


def test_skip_and_flag(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(page, server, "sam")
    first = prompt(page)
    page.keyboard.press("S")
    page.get_by_text("Skipped").wait_for(timeout=WAIT_MS)
    second = next_item(page, first)
    page.keyboard.press("Q")
    page.get_by_text("Flag this item").wait_for(timeout=WAIT_MS)
    settle(page)
    page.keyboard.press("2")
    page.get_by_text("Flagged").wait_for(timeout=WAIT_MS)
    third = next_item(page, second)
    assert first not in (second, third)
    page.close()
    sam = user_id(server, "sam")
    with session_scope(engine_of(server)) as s:
        skipped = s.execute(select(Skip.item_id).where(Skip.user_id == sam)).scalars().all()
        flags = s.execute(select(Flag.item_id, Flag.reason).where(Flag.user_id == sam)).all()
    assert len(skipped) == 1 and item_text(server, skipped[0]) in first
    assert len(flags) == 1 and flags[0].reason == "offensive" and item_text(server, flags[0].item_id) in second
    assert labels_of(server, "sam") == []


def test_guidelines_gate_before_the_first_item(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(page, server, "gina", gate=True)
    settle(page)
    assert page.locator(".st-key-rmgap-prompt").count() == 0
    page.get_by_text("What you do").wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("button", name="I have read the guidelines: start").click()
    ready(page)
    # Once confirmed, the gate is not shown again (the login survives the reload).
    page.goto(server.url)
    ready(page)
    page.close()
    # Nor in a new browser: the confirmation is the server's.
    again = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(again, server, "gina")
    again.close()


def test_a_phone_labels_an_item_with_responses_as_tabs(server, browser):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    log_in(page, server, "pia")
    page.get_by_role("tab", name="Response C").wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("tab", name="Response C").click()
    panel = page.locator(".st-key-rmgap-answer")
    panel.get_by_text("C [C]", exact=True).click()
    settle(page)
    panel.get_by_text("[5] Indistinguishable from a real request", exact=True).click()
    settle(page)
    panel.get_by_role("button", name="Submit").click()
    page.get_by_text("1 of 8 labelled").wait_for(timeout=WAIT_MS)
    page.close()
    (lab,) = labels_of(server, "pia")
    assert lab.choice_key == json.loads(lab.displayed_order_json)[2] and lab.naturalness == 5


def test_drafts_survive_guidelines_and_a_new_session(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(page, server, "dan")
    text = prompt(page)
    page.keyboard.press("D")
    page.keyboard.press("3")
    settle(page)
    box = page.locator(".st-key-rmgap-answer textarea")
    box.click()
    box.type("first line")
    page.keyboard.press("Enter")  # a newline in the comment, not a submit
    box.type("second line, with S and Q typed")
    page.locator(".st-key-rmgap-prompt").click()  # leaving the box commits the comment
    settle(page)
    assert labels_of(server, "dan") == []

    def same_answer(page=page) -> None:  # noqa: ANN001
        panel = page.locator(".st-key-rmgap-answer")
        assert prompt(page) == text
        assert panel.get_by_role("radio", name="D [D]").is_checked()
        assert panel.get_by_role("radio", name="[3] Plausible, but stilted or odd").is_checked()
        assert panel.locator("textarea").input_value() == "first line\nsecond line, with S and Q typed"

    page.get_by_role("link", name="Guidelines").click()
    page.get_by_text("What you do").wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("link", name="Annotate").click()
    ready(page)
    same_answer()
    # F5: still logged in, same item, same draft.
    page.reload()
    ready(page)
    same_answer()
    # A new browser (another device): the draft is the server's.
    other = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(other, server, "dan")
    same_answer(other)
    other.close()
    # Ctrl+Enter in the comment submits.
    page.locator(".st-key-rmgap-answer textarea").click()
    page.keyboard.press("Control+Enter")
    page.get_by_text("1 of 8 labelled").wait_for(timeout=WAIT_MS)
    page.close()
    (lab,) = labels_of(server, "dan")
    assert lab.comment == "first line\nsecond line, with S and Q typed" and lab.naturalness == 3
    assert lab.choice_key == json.loads(lab.displayed_order_json)[3]


def test_an_invite_link_from_the_team_page_logs_in_without_an_error(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(server.url)
    page.get_by_role("textbox", name="Username").fill("ria")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Team").click(timeout=WAIT_MS)
    page.get_by_text("Invite links").wait_for(timeout=WAIT_MS)
    settle(page)
    page.locator("[data-testid='stSelectbox']").last.click()
    page.keyboard.type("invitee")
    page.keyboard.press("Enter")
    settle(page)
    page.get_by_role("button", name="Create invite link").click()
    code = page.locator("[data-testid='stCode'] code").last
    code.wait_for(timeout=WAIT_MS)
    link = code.inner_text().strip()
    assert link.startswith(server.url + "?invite="), link
    page.close()
    fresh = browser.new_page(viewport={"width": 1440, "height": 900})
    fresh.goto(link)
    fresh.get_by_text("Before you start: the guidelines").wait_for(timeout=WAIT_MS)
    settle(fresh)
    assert fresh.get_by_text("Logged in as invitee").count() == 1
    assert fresh.get_by_text("Page not found").count() == 0
    fresh.close()


def test_key_map_zoom_and_switching_shortcuts_off(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(page, server, "otto")
    page.keyboard.press("?")
    page.get_by_text("show or hide this key map").wait_for(timeout=WAIT_MS)
    settle(page)
    page.keyboard.press("Z")
    page.keyboard.press("B")
    # The zoomed heading ("Response B · full width"), not the key map's line about Z, which is already shown.
    page.get_by_text("· full width", exact=False).wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.get_by_text("Response A", exact=False).count() == 0  # only B is shown
    page.keyboard.press("Escape")
    page.get_by_text("Response A").first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.get_by_text("show or hide this key map").count() == 0
    # Off: letters do nothing (a screen reader's keys are left alone); clicks still work.
    page.get_by_text("Keyboard shortcuts").click()
    settle(page)
    page.keyboard.press("C")
    page.wait_for_timeout(500)
    settle(page)
    panel = page.locator(".st-key-rmgap-answer")
    assert not panel.get_by_role("radio", name="C [C]").is_checked()
    panel.get_by_text("C [C]", exact=True).click()
    settle(page)
    assert panel.get_by_role("radio", name="C [C]").is_checked()
    page.close()
    from rmgap_annot.annotation import keyboard_shortcuts

    assert keyboard_shortcuts(engine=engine_of(server), user_id=user_id(server, "otto")) is False


def test_typing_ahead_over_two_items_loses_no_key(server, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    log_in(page, server, "fay")
    for key in ("B", "2", "Enter", "D", "5", "Enter"):  # no waiting: the second item is not drawn yet
        page.keyboard.press(key)
    page.get_by_text("2 of 8 labelled").wait_for(timeout=WAIT_MS)
    page.close()
    first, second = labels_of(server, "fay")
    assert first.choice_key == json.loads(first.displayed_order_json)[1] and first.naturalness == 2
    assert second.choice_key == json.loads(second.displayed_order_json)[3] and second.naturalness == 5
