"""Blinding and untrusted text, checked on what Chromium actually receives.

Every field an annotator must not see carries a unique sentinel (response
keys, hence the winner; style profiles; models; source; record id; another
annotator's comment). The test records every websocket frame and HTTP
response body the browser gets while an annotator works, and asserts that
no sentinel is in them, while the visible texts are (so the capture works).
Benchmark texts also carry a <script> and an <img onerror>: no dialog may
fire and both must read as plain text.

Database ids and response keys must not leak through widget or form keys
either (Streamlit sends a form's key, and hashes of it in every widget id, to
the browser; item ids follow file order, so an id tells a base prompt from a
rewrite). Response keys here start with ``response<N>`` so that any key
reaching the browser is caught, and every item id of the database is looked
for in the key-like forms the page used to send.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import confirm_guidelines, submit_label
from rmgap_annot.assignment import next_item
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, session_scope
from rmgap_annot.models import Item
from rmgap_annot.synthetic import write_jsonl
from tests.e2e.conftest import WAIT_MS, log_in, settle, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "eve-password-123"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SENTINELS = ("KEYSENTINEL", "STYLESENTINEL", "MODELSENTINEL", "SOURCESENTINEL", "RECIDSENTINEL", "COMMENTSENTINEL",
             "EXTRASENTINEL")


def sentinel_record(i: int, domain: str) -> dict:
    keys = [f"response{j + 1}KEYSENTINEL{i}" for j in range(4)]
    return {
        "id": f"RECIDSENTINEL{i}",
        "domain": domain,
        "source": f"SOURCESENTINEL{i}",
        "models": {k: f"MODELSENTINEL{j}" for j, k in enumerate(keys)},
        "responses": [
            {"key": k, "text": f"VISIBLERESPONSE{i}-{j}: some **markdown**, `code` and $x^2$."
             + (f" Then {IMG} in the text." if j == 0 else "")}
            for j, k in enumerate(keys)
        ],
        "prompt_groups": [
            {"group": g, "winner": keys[g], "prompts": [
                {"role": "base" if p == 0 else "rewrite", "text": f"VISIBLEPROMPT{i}-{g}-{p}: please help. {SCRIPT} Thanks."}
                for p in range(3)
            ]}
            for g in range(4)
        ],
        "style_assignments": {f"r{j + 1}": {"Formality": f"STYLESENTINEL{j}"} for j in range(4)},
        "extra_field": "EXTRASENTINEL",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")

    def prepare(engine):  # noqa: ANN001
        records = [sentinel_record(i, d) for i, d in enumerate(("Chat", "Writing", "Reasoning", "Safety"))]
        bid = import_benchmark(engine=engine, path=write_jsonl(folder / "s.jsonl", records), name="blind").benchmark_id
        eve = create_user(engine=engine, name="eve", role="annotator", password=PASSWORD)
        confirm_guidelines(engine=engine, user_id=eve, benchmark_id=bid)
        other = create_user(engine=engine, name="other", role="annotator")
        # Another annotator's labels: eve is steered to these items first (closest to completion).
        for _ in range(2):
            item = next_item(engine=engine, user_id=other, benchmark_id=bid)
            submit_label(engine=engine, user_id=other, item_id=item, choice_key=None,
                         reason="prompt_unclear", naturalness=1, comment="COMMENTSENTINEL from someone else")

    srv = start_server(tmp_path_factory, prepare)
    with session_scope(get_engine(srv.db_url)) as s:
        srv.item_ids = list(s.execute(select(Item.id)).scalars())
    yield srv
    srv.stop()


def test_nothing_secret_reaches_the_browser(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    frames: list[bytes] = []
    responses = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda p: frames.append(p if isinstance(p, bytes) else p.encode())))
    page.on("response", lambda r: responses.append(r))
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    log_in(page, server.url, "eve", PASSWORD)
    form = page.locator(".st-key-rmgap-answer")
    form.get_by_text("B [B]", exact=True).click()
    settle(page)
    form.get_by_text("[3] Plausible, but stilted or odd", exact=True).click()
    settle(page)
    form.get_by_role("button", name="Submit").click()
    page.get_by_text("1 of ", exact=False).first.wait_for(timeout=WAIT_MS)
    page.get_by_role("button", name="Back").click()  # her own label comes back pre-filled
    page.get_by_text("You are correcting a label").wait_for(timeout=WAIT_MS)
    page.get_by_role("link", name="Guidelines").click()
    page.get_by_text("What you do").wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.get_by_role("link", name="Study").count() == 0 and page.get_by_role("link", name="Team").count() == 0
    page.wait_for_timeout(300)

    bodies = []
    for r in responses:
        try:
            bodies.append(r.body())
        except Exception:  # noqa: BLE001 - redirects and aborted requests have no body
            pass
    received = b"\n".join(frames + bodies)
    assert b"VISIBLERESPONSE" in received and b"VISIBLEPROMPT" in received  # the capture sees the item
    leaked = [s for s in SENTINELS if s.encode() in received]
    assert not leaked, f"sent to an annotator's browser: {leaked}"
    assert not re.findall(rb"response\d", received), "a response key reached the browser"
    assert len(server.item_ids) == 48
    id_forms = [form.format(i=i).encode() for i in server.item_ids
                for form in ("label-{i}-", "shown_at_{i}", "item-{i}", "item_{i}", "-{i}-new", "st-key-{i}")]
    leaked_ids = [f for f in id_forms if f in received]
    assert not leaked_ids, f"database ids in the annotator's browser: {leaked_ids[:5]}"
    # Whatever the key scheme, no key-like token may end in a number the database assigned.
    key_like = re.findall(rb"(?:label|item|key|form)[-_](\d+)\b", received)
    assert not [k for k in key_like if int(k) in server.item_ids], key_like[:5]
    assert not dialogs
    page.close()


def test_html_in_benchmark_text_is_shown_as_text(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, server.url, "eve", PASSWORD)
    page.get_by_text(SCRIPT, exact=False).first.wait_for(timeout=WAIT_MS)
    page.get_by_text(IMG, exact=False).first.wait_for(timeout=WAIT_MS)
    settle(page)
    assert page.locator("img[src='x']").count() == 0
    # Markdown and LaTeX still render.
    assert page.locator("strong", has_text="markdown").count() >= 4
    assert page.locator(".katex").count() >= 4
    page.wait_for_timeout(500)
    assert not dialogs
    page.close()


# --- every format: hidden metadata, entry ids and candidate keys stay on the server --------------

FORMAT_PASSWORD = "formats-blind-123"
# Values of researcher-only fields (tests/format_items.py): generator names, rubric, narrative,
# entry ids, profile post ids, category paths.
FORMAT_SENTINELS = ("MODELSENTINEL", "RUBRICSENTINEL", "NARRATIVESENTINEL", "PAIRIDSENTINEL", "BONIDSENTINEL",
                    "CHATIDSENTINEL", "PRBIDSENTINEL", "POSTIDSENTINEL", "Pairwise_set", "BoN_set")
# Field names and candidate keys: looked for in what the app sends (the websocket frames), not in
# Streamlit's own JavaScript bundle, where words such as "reject" belong to the library. The app's
# own wording (guidelines, labels) avoids these words, so that any occurrence is a leak.
FORMAT_WORDS = ("llm_name", "chosen_model", "rubric_aspects", "narrative", "models", "chosen", "reject",
                "bon_best", "loser_", "winner", "correct_keys", "hidden_json", "category_path", "group_key")


@pytest.fixture(scope="module")
def formats_server(tmp_path_factory):
    from tests.format_items import prepare_format_studies

    def prepare(engine):  # noqa: ANN001
        prepare_format_studies(engine, prefix="blind", password=FORMAT_PASSWORD)

    srv = start_server(tmp_path_factory, prepare)
    with session_scope(get_engine(srv.db_url)) as s:
        from rmgap_annot.models import Record, Study

        srv.ids = sorted({*s.execute(select(Item.id)).scalars(), *s.execute(select(Record.id)).scalars(),
                          *s.execute(select(Study.id)).scalars()})
    yield srv
    srv.stop()


def test_no_format_sends_hidden_metadata_keys_or_ids_to_the_browser(formats_server, browser):
    frames: list[bytes] = []
    bodies: list[bytes] = []
    dialogs: list[str] = []
    for name in ("pairwise", "bon7", "chat", "profile"):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("websocket", lambda ws: ws.on(
            "framereceived", lambda p: frames.append(p if isinstance(p, bytes) else p.encode())))
        responses = []
        page.on("response", lambda r, responses=responses: responses.append(r))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        log_in(page, formats_server.url, f"blind-{name}", FORMAT_PASSWORD)
        page.wait_for_function("() => !!window.__rmgapKeyboard", timeout=WAIT_MS)  # keys are heard from now
        panel = page.locator(".st-key-rmgap-answer")
        if name == "bon7":
            for key in "GFEDCB":
                page.keyboard.press(key)
                settle(page)
        else:
            page.keyboard.press("T" if name == "pairwise" else "A")
            settle(page)
        if name == "profile":
            for _ in range(8):
                page.keyboard.press("4")
                settle(page)
        panel.get_by_role("button", name="Submit").click()
        page.get_by_text("All done", exact=False).wait_for(timeout=WAIT_MS)
        page.get_by_role("button", name="Back").click()  # the label comes back pre-filled, ratings too
        page.get_by_text("You are correcting a label").wait_for(timeout=WAIT_MS)
        settle(page)
        page.wait_for_timeout(300)
        for r in responses:
            try:
                bodies.append(r.body())
            except Exception:  # noqa: BLE001 - redirects and aborted requests have no body
                pass
        page.close()

    sent = b"\n".join(frames)
    received = b"\n".join(frames + bodies)
    for visible in (b"VISIBLEPAIR", b"VISIBLEBON-RESP 6", b"VISIBLECHAT-FINAL", b"VISIBLEPOST-3", b"VISIBLEPROFILE"):
        assert visible in received, visible  # the capture sees every item
    leaked = [s for s in FORMAT_SENTINELS if s.encode() in received]
    assert not leaked, f"sent to an annotator's browser: {leaked}"
    # Streamlit lists the app's page scripts in every session's first message ("reward_models"):
    # a page name, not a benchmark field.
    scrubbed = re.sub(rb"reward[ _]models", b"", sent)
    words = [w for w in FORMAT_WORDS if w.encode() in scrubbed]
    assert not words, f"field names or candidate keys in the app's frames: {words}"
    key_like = re.findall(rb"(?:label|item|key|form|study|record)[-_](\d+)\b", received)
    assert not [k for k in key_like if int(k) in formats_server.ids], key_like[:5]
    assert not dialogs
