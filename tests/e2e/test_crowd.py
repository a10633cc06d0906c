"""A crowd study in real Chromium (issue #14): the Prolific link, consent, a quota with an attention check,
the completion code; a failed qualification and the screen-out code; nothing about checks reaches the browser.

The attention check looks like any item, so the test cannot (and does not)
tell it from the page: it reads the database afterwards. Check ids, keys and
explanations carry sentinels; every websocket frame and HTTP body the
browser receives is searched for them (as tests/e2e/test_blinding.py does
for real items).
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from rmgap_annot.annotation import displayed_order
from rmgap_annot.assignment import create_study, get_study, update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.crowd.checks_store import import_checks
from rmgap_annot.crowd.links import mturk_hit_html, new_study_token, study_link
from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.models import CheckItem, CheckLabel, Label, StudyMember, User
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import WAIT_MS, pick_and_submit, settle, start_server

pytestmark = pytest.mark.e2e
KEYS = [f"CHECKKEYSENTINEL{i}" for i in range(1, 5)]
EXPLANATION = "EXPLANATIONSENTINEL: the request asks for yes."
SENTINELS = ("CHECKKEYSENTINEL", "CHECKIDSENTINEL", "EXPLANATIONSENTINEL", "qualification")


def checks(prefix: str, n: int) -> list[dict]:
    return [{"id": f"CHECKIDSENTINEL-{prefix}{i}", "prompt": f"Please answer with the word yes ({prefix}{i}).",
             "responses": [{"key": k, "text": f"{word} ({prefix}{i})"} for k, word in zip(KEYS, ("yes", "no", "maybe", "later"))],
             "expected": KEYS[0], "explanation": EXPLANATION} for i in range(n)]


def write_checks(path, rows):  # noqa: ANN001, ANN201
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crowd")
    tokens = {}

    def prepare(engine):  # noqa: ANN001
        path = write_jsonl(folder / "b.jsonl", make_records({"Chat": 2, "Writing": 2}, seed=2, long_text=False))
        bid = import_benchmark(engine=engine, path=path, name="crowd").benchmark_id
        main = get_study(engine=engine, benchmark_id=bid).id
        tokens["main"] = new_study_token()
        update_study(engine=engine, study_id=main, public_link=True, link_token=tokens["main"], quota_per_annotator=3,
                     check_rate=0.25, completion_code="DONE4242", screenout_code="OUT4242",
                     consent_md="**CONSENTTEXT**: you agree to label items.")
        import_checks(engine=engine, study_id=main, path=write_checks(folder / "c.jsonl", checks("c", 2)))
        pilot = create_study(engine=engine, name="pilot", benchmark_id=bid).id
        tokens["pilot"] = new_study_token()
        update_study(engine=engine, study_id=pilot, public_link=True, link_token=tokens["pilot"], quota_per_annotator=3,
                     qualification_items=1, qualification_pass=1.0, completion_code="DONE1", screenout_code="OUT9999")
        import_checks(engine=engine, study_id=pilot, path=write_checks(folder / "q.jsonl", checks("q", 1)),
                      kind="qualification")
        hits = create_study(engine=engine, name="hits", benchmark_id=bid).id
        tokens["hits"] = new_study_token()
        update_study(engine=engine, study_id=hits, public_link=True, link_token=tokens["hits"], quota_per_annotator=2,
                     completion_code="HIT2222")

    srv = start_server(tmp_path_factory, prepare)
    srv.tokens = tokens
    yield srv
    srv.stop()


def capture(page):  # noqa: ANN001, ANN201
    frames: list[bytes] = []
    responses = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: frames.append(p if isinstance(p, bytes) else p.encode())))
    page.on("response", lambda r: responses.append(r))

    def received() -> bytes:
        bodies = []
        for r in responses:
            try:
                bodies.append(r.body())
            except Exception:  # noqa: BLE001 - redirects have no body
                pass
        return b"\n".join(frames + bodies)

    return received


def link(server, study: str, pid: str) -> str:  # noqa: ANN001
    return f"{server.url}?study={server.tokens[study]}&PROLIFIC_PID={pid}&STUDY_ID=st-{study}&SESSION_ID=se-{pid}"


def test_a_prolific_participant_consents_labels_a_quota_with_a_check_and_gets_the_code(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    received = capture(page)
    pid = "5f0c1e2d3a4b5c6d7e8f9a01"
    page.goto(link(server, "main", pid))
    page.get_by_text("CONSENTTEXT").wait_for(timeout=WAIT_MS)
    assert pid not in page.url and "study=" not in page.url  # the 303 left a clean address
    settle(page)
    page.get_by_role("button", name="Start").click()
    for i in range(4):  # three real items and the one attention check, indistinguishable on the page
        # The counter moves on every item alike (4 = the quota of 3 and the check).
        page.get_by_text(f"Item {i + 1} of 4", exact=False).first.wait_for(timeout=WAIT_MS)
        settle(page)
        pick_and_submit(page, "A", 4)
    page.get_by_text("All done: thank you!").wait_for(timeout=WAIT_MS)
    page.get_by_text("DONE4242").first.wait_for(timeout=WAIT_MS)
    assert page.get_by_role("link", name="Go back to Prolific").get_attribute("href") == \
        "https://app.prolific.com/submissions/complete?cc=DONE4242"

    data = received()
    assert b"DONE4242" in data and b"yes (c" in data  # the capture saw the check's text and the code
    leaked = [s for s in SENTINELS if s.encode() in data]
    assert not leaked, f"sent to a participant's browser: {leaked}"
    engine = get_engine(server.db_url)
    with session_scope(engine) as s:
        user = s.execute(select(User).where(User.name == f"prolific:{pid}")).scalars().one()
        labels = s.execute(select(Label).where(Label.user_id == user.id)).scalars().all()
        answered = s.execute(select(CheckLabel).where(CheckLabel.user_id == user.id)).scalars().all()
        member = s.execute(select(StudyMember).where(StudyMember.user_id == user.id)).scalars().one()
        check_ids = list(s.execute(select(CheckItem.id)).scalars())
    assert len(labels) == 3 and len(answered) == 1 and answered[0].submitted_at is not None
    assert (member.platform_study_id, member.platform_session_id) == ("st-main", f"se-{pid}")
    assert member.consented_at is not None and member.completed_at is not None
    # The check's database id and its entry (the negative id) in no key-like form either.
    key_like = {int(k) for k in re.findall(rb"(?:label|item|key|form|check)[-_](-?\d+)\b", data)}
    assert not key_like & ({i for i in check_ids} | {-i for i in check_ids})
    page.close()


def test_a_participant_who_fails_the_qualification_sees_feedback_then_the_screenout_code(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    received = capture(page)
    pid = "6a0c1e2d3a4b5c6d7e8f9a02"
    page.goto(link(server, "pilot", pid))
    page.get_by_role("button", name="Start").wait_for(timeout=WAIT_MS)
    settle(page)
    page.get_by_role("button", name="Start").click()
    page.get_by_text("The user's request", exact=True).wait_for(timeout=WAIT_MS)
    settle(page)
    assert b"EXPLANATIONSENTINEL" not in received()  # no answer before the label is stored
    engine = get_engine(server.db_url)
    with session_scope(engine) as s:
        uid = s.execute(select(User.id).where(User.name == f"prolific:{pid}")).scalar_one()
        entry = -s.execute(select(CheckLabel.check_item_id).where(CheckLabel.user_id == uid)).scalar_one()
    order = displayed_order(user_id=uid, item_id=entry, keys=KEYS)
    right = "ABCD"[order.index(KEYS[0])]
    wrong = next(x for x in "ABCD" if x != right)
    pick_and_submit(page, wrong, 3)
    page.get_by_text("Not the expected answer.").wait_for(timeout=WAIT_MS)
    settle(page)  # the feedback is drawn element by element: the expected letter comes after the verdict
    assert page.get_by_text(f"Response {right}").count() >= 1
    assert b"EXPLANATIONSENTINEL" in received()  # the feedback, once the answer was stored
    page.get_by_text("OUT9999").wait_for(timeout=WAIT_MS)  # the last feedback and the code on one screen
    settle(page)  # the previous item's elements are removed only when the rerun ends
    assert page.get_by_text("The user's request", exact=True).count() == 0
    with session_scope(engine) as s:
        member = s.execute(select(StudyMember).where(StudyMember.user_id == uid)).scalars().one()
        assert member.screened_out_at is not None and member.screened_out_reason == "failed the qualification"
        assert s.execute(select(Label).where(Label.user_id == uid)).first() is None
    # Opening the link again: still screened out, no new item.
    page.goto(link(server, "pilot", pid))
    page.get_by_text("OUT9999").wait_for(timeout=WAIT_MS)
    data = received()
    # Even after the feedback: the expected answer went as a letter, never as a key, and no check id went at all.
    assert b"CHECKKEYSENTINEL" not in data and b"CHECKIDSENTINEL" not in data
    page.close()


def test_an_mturk_worker_goes_from_the_hit_layout_to_the_study_with_their_ids(server, browser):
    """The layout `crowd link --platform mturk --hit-layout` writes, served as MTurk would serve it (a route:
    the machine has no internet): no link in the preview, the worker's ids on it once accepted, and the
    click arrives in the study as `mturk:WORKER`, the HIT and assignment recorded."""
    layout = mturk_hit_html(link=study_link(base_url=server.url, token=server.tokens["hits"], platform="mturk"))
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.route("https://worker.mturk.test/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=layout))
    context.route("https://assets.crowd.aws/**", lambda route: route.fulfill(
        status=200, content_type="application/javascript", body=""))
    hit = context.new_page()
    hit.goto("https://worker.mturk.test/layout?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=HIT456")
    hit.get_by_text("Accept the HIT to get the study link.").wait_for(timeout=WAIT_MS)
    assert not hit.locator("#go").is_visible()  # a preview offers no link (no worker id to give it)
    worker = "A1B2C3D4E5F6G7"
    hit.goto(f"https://worker.mturk.test/layout?workerId={worker}&assignmentId=ASSIGN123&hitId=HIT456")
    hit.locator("#go").wait_for(state="visible", timeout=WAIT_MS)
    assert not hit.get_by_text("Accept the HIT to get the study link.").is_visible()
    assert hit.locator("crowd-input[name='completion_code'][required]").count() == 1  # the code comes back here
    with context.expect_page() as opened:
        hit.get_by_role("link", name="Open the study").click()
    study = opened.value
    study.get_by_role("button", name="Start").wait_for(timeout=WAIT_MS)  # the consent screen of the study
    assert worker not in study.url and "study=" not in study.url
    engine = get_engine(server.db_url)
    with session_scope(engine) as s:
        uid = s.execute(select(User.id).where(User.name == f"mturk:{worker}")).scalar_one()
        member = s.execute(select(StudyMember).where(StudyMember.user_id == uid)).scalars().one()
    assert (member.platform, member.platform_study_id, member.platform_session_id) == ("mturk", "HIT456", "ASSIGN123")
    context.close()


def test_a_refused_link_says_why(server, browser):
    page = browser.new_page()
    page.goto(f"{server.url}?study={new_study_token()}&PROLIFIC_PID=abc")
    page.get_by_text("This study link is not valid").wait_for(timeout=WAIT_MS)
    page.close()


def test_both_participants_appear_with_their_status_in_the_crowd_report(server, tmp_path):
    """The payment CSV a researcher uploads, after the two tests above (this module runs in file order):
    the finished participant completed with the code, the other screened out."""
    import csv

    from typer.testing import CliRunner

    from rmgap_annot.cli import app

    rows = {}
    for key, study in (("main", "crowd"), ("pilot", "pilot")):  # the main study is the benchmark's first: its name
        out = tmp_path / f"{key}.csv"
        result = CliRunner().invoke(app, ["--db", server.db_url, "crowd", "report", "--study", study, "--out", str(out)])
        assert result.exit_code == 0, result.output
        with open(out, newline="", encoding="utf-8") as fh:
            rows.update({(key, r["participant_id"]): r for r in csv.DictReader(fh)})
    done = rows[("main", "5f0c1e2d3a4b5c6d7e8f9a01")]
    assert (done["platform"], done["status"], done["labels"], done["completion_code_given"]) == \
        ("prolific", "completed", "3", "yes")
    screened = rows[("pilot", "6a0c1e2d3a4b5c6d7e8f9a02")]
    assert (screened["status"], screened["labels"], screened["completion_code_given"]) == ("screened out", "0", "no")
