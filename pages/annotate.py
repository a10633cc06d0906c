"""The annotator's screen: one item, one form, then the next.

Only the blinded view from ``annotation.item_for_annotator`` is drawn:
prompt and response texts under letters. Response keys stay in server-side
variables; widgets carry letters only, and form and state keys are opaque
per session (no item id reaches the browser). Benchmark text goes through
``st.markdown`` without ``unsafe_allow_html``, so raw HTML shows as text.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

import streamlit as st

from pages.common import engine, require_login
from rmgap_annot import annotation as ann
from rmgap_annot import assignment
from rmgap_annot.safe_markdown import without_remote_images

LONG_TEXT = 700  # characters; beyond this the four boxes get a fixed height and scroll
BOX_HEIGHT = 460

uid = require_login()
eng = engine()
bid = st.session_state.get("benchmark_id") or assignment.default_benchmark_id(engine=eng)
if bid is None:
    st.info("There is nothing to label yet. Your researcher has not imported a benchmark.")
    st.stop()

back_item = st.session_state.get("back_item")
item_id = back_item if back_item is not None else assignment.next_item(engine=eng, user_id=uid, benchmark_id=bid)
prog = assignment.progress(engine=eng, user_id=uid, benchmark_id=bid)
st.progress(prog.fraction, text=f"{prog.done} of {prog.target} labelled")

previous = ann.previous_label(engine=eng, user_id=uid, benchmark_id=bid, before_item_id=back_item)
top = st.columns([1, 1, 6])
if top[0].button("Back", disabled=previous is None, help="Re-open your previous label to correct it"):
    st.session_state["back_item"] = previous
    st.rerun()
if back_item is not None and top[1].button("Resume", help="Leave this label as it is and go on"):
    del st.session_state["back_item"]
    st.rerun()

if item_id is None:
    st.success("All done: there is nothing left for you to label. Thank you!")
    st.markdown("You can close this tab, or use **Back** to review your last labels.")
    st.stop()

view = ann.item_for_annotator(engine=eng, user_id=uid, item_id=item_id)
existing = ann.label_for(engine=eng, user_id=uid, item_id=item_id)
if existing is not None:
    st.info("You are correcting a label you already gave; **Submit** replaces it.")
# Every key the browser could see is opaque (see ann.opaque_key): no item id, key or position.
secret = st.session_state.setdefault("widget_key_secret", secrets.token_bytes(32))
shown_key = ann.opaque_key(secret=secret, parts=("shown_at", item_id))
st.session_state.setdefault(shown_key, time.time())

st.subheader("The user's request")
with st.container(border=True):
    st.markdown(without_remote_images(view.prompt))

st.subheader("The responses")
long = any(len(text) > LONG_TEXT for _, text in view.responses)
for col, (letter, text) in zip(st.columns(len(view.responses)), view.responses):
    with col:
        st.markdown(f"**Response {letter}** · {len(text):,} characters")
        with st.container(height=BOX_HEIGHT if long else "content", border=True):
            st.markdown(without_remote_images(text))


def _letter(key: str | None) -> str | None:
    return view.letter_for(key) if key is not None else None


revision = existing.revisions if existing else "new"
with st.form(ann.opaque_key(secret=secret, parts=("label", item_id, revision))):
    cant_decide = False
    pick = None
    ranking_letters: list[str] = []
    if view.mode == "ranking":
        ranking_letters = st.multiselect(
            "Order all four responses, best fit first (choose them in order)",
            list(ann.LETTERS),
            default=[_letter(k) for k in existing.ranking] if existing and existing.ranking else None,
            format_func=lambda x: f"Response {x}",
        )
        cant_decide = st.checkbox("Can't decide", value=bool(existing and existing.choice_key is None))
    else:
        options = [*ann.LETTERS, "none"]
        current = "none" if existing and existing.choice_key is None else _letter(existing.choice_key) if existing else None
        pick = st.radio(
            "Which response fits the user's request best?",
            options,
            index=options.index(current) if current else None,
            format_func=lambda x: "Can't decide" if x == "none" else f"Response {x}",
            horizontal=True,
        )
        cant_decide = pick == "none"
    reasons = list(ann.REASONS)
    reason = st.radio(
        "If you can't decide, why?",
        reasons,
        index=reasons.index(existing.reason) if existing and existing.reason in reasons else None,
        format_func=ann.REASONS.get,
        horizontal=True,
    )
    levels = list(ann.NATURALNESS)
    naturalness = st.radio(
        "How natural is the request? Could a real user have written it?",
        levels,
        index=levels.index(existing.naturalness) if existing and existing.naturalness in levels else None,
        format_func=lambda n: f"{n}: {ann.NATURALNESS[n]}",
    )
    comment = st.text_area("Comment (optional)", value=(existing.comment or "") if existing else "")
    submitted = st.form_submit_button("Submit", type="primary")

if submitted:
    ranking = None
    choice = None
    error = None
    if view.mode == "ranking":
        if not cant_decide:
            if len(ranking_letters) != len(view.keys):
                error = "Order all four responses (or tick Can't decide)."
            else:
                ranking = [view.key_for(x) for x in ranking_letters]
                choice = ranking[0]
    elif pick is None:
        error = "Choose the response that fits best, or Can't decide."
    elif not cant_decide:
        choice = view.key_for(pick)
    if error is None:
        try:
            ann.submit_label(
                engine=eng, user_id=uid, item_id=item_id, choice_key=choice, naturalness=naturalness,
                reason=reason if cant_decide else None, ranking=ranking, comment=comment,
                displayed_order=list(view.keys),
                shown_at=datetime.fromtimestamp(st.session_state[shown_key], tz=timezone.utc),
            )
        except ann.LabelError as exc:
            error = str(exc)
    if error:
        st.error(error)
    else:
        st.session_state.pop(shown_key, None)
        st.session_state.pop("back_item", None)
        st.rerun()
