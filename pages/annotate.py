"""The annotator's workbench: one item, answered by keyboard or mouse, nothing lost.

Only the blinded view from ``annotation.item_for_annotator`` is drawn: the
request (or the conversation, its last user turn highlighted; the user's
profile posts above it) and 2 to 8 response texts under letters, with the
study's rating questions (``annotation.study_questions``). Response keys
and everything in an item's hidden metadata stay on the server;
widgets carry letters only, under opaque keys (``workbench.widget_key``).
Benchmark text goes through ``st.markdown`` without ``unsafe_allow_html``.

The answer being made is a ``keymap.Draft``: keys and clicks change it, and
every change is saved as a server-side draft per (annotator, item), so the
Guidelines page, a refresh or a lost connection loses nothing. The item on
screen is remembered for the session and its lease renewed while it is open:
a label is always stored for the item the annotator answered, late or not.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone

import streamlit as st

from pages.common import engine, require_login
from pages.crowd_gate import crowd_after_submit, crowd_gate, crowd_next_item, crowd_progress
from pages.workbench import CSS, keyboard, pending_keys, widget_key
from rmgap_annot import annotation as ann
from rmgap_annot import assignment
from rmgap_annot import keymap as km
from rmgap_annot import studies
from rmgap_annot.safe_markdown import without_remote_images

BOX_HEIGHT = 225  # px per response box in the 2x2 grid, so the grid and the answer panel fit 1440x900
LONG_TEXT = 500  # characters; shorter responses take their natural height
PROFILE_HEIGHT = 190  # px: the user's posts scroll inside their panel
EARLIER_HEIGHT = 260  # px: earlier turns of a conversation scroll; the last user turn is always in view

uid = require_login()
eng = engine()
# A crowd participant (arrived through a study link) meets consent, feedback and the codes
# first; None for a lab account. Their items come from the crowd stream (checks mixed in).
crowd_sid = crowd_gate(eng, uid)
sid = crowd_sid or studies.study_for_user(engine=eng, user_id=uid)
if sid is None:  # no study joined and none found: the benchmark this session chose, as before studies
    bid = st.session_state.get("benchmark_id") or assignment.default_benchmark_id(engine=eng)
    if bid is None:
        st.info("There is nothing to label yet. Your researcher has not imported a benchmark.")
        st.stop()
    sid = assignment.get_study(engine=eng, benchmark_id=bid).id
study = assignment.get_study(engine=eng, study_id=sid)
bid = study.benchmark_id
asks = ann.study_questions(engine=eng, study_id=sid)  # the study's rating questions (naturalness for RMGAP)
guidelines = ann.guidelines_text(study.guidelines_md, mode=study.mode, questions=asks)
st.markdown(CSS, unsafe_allow_html=True)  # the page's own static CSS, no benchmark text

# --- the guidelines gate ------------------------------------------------------------
if not ann.guidelines_confirmed(engine=eng, user_id=uid, study_id=sid):
    st.title("Before you start: the guidelines")
    with st.container(border=True):
        st.markdown(guidelines)
    if st.button("I have read the guidelines: start", type="primary"):
        ann.confirm_guidelines(engine=eng, user_id=uid, study_id=sid)
        st.rerun()
    st.stop()

shortcuts = ann.keyboard_shortcuts(engine=eng, user_id=uid)
with st.sidebar:
    with st.expander("Guidelines", expanded=False):
        st.markdown(guidelines)
    on = st.toggle("Keyboard shortcuts", value=shortcuts,
                   help="Single-key shortcuts (letters, digits). Switch them off if they collide with your screen reader.")
    if on != shortcuts:
        ann.set_keyboard_shortcuts(engine=eng, user_id=uid, enabled=on)
        shortcuts = on

# --- which item is open -------------------------------------------------------------
# ``ws`` is this session's workbench state: the open item and what is being made on it.
ws = st.session_state.setdefault("workbench", {})
if ws.get("study") != sid:  # the annotator moved to another study: nothing open carries over
    ws.clear()
    ws["study"] = sid
    st.session_state.pop("back_item", None)


def resolve_item() -> int | None:
    """The item to show: the label being corrected, else the open one, else the next one."""
    back = st.session_state.get("back_item")
    if back is not None:
        return back
    if ws.get("item") is not None and ann.label_for(engine=eng, user_id=uid, item_id=ws["item"], study_id=sid) is None:
        # It stays open until answered, skipped or flagged, even if its lease lapsed.
        assignment.hold_item(engine=eng, user_id=uid, item_id=ws["item"], study_id=sid)
        return ws["item"]
    if crowd_sid is not None:
        return crowd_next_item(eng, uid, crowd_sid)
    return assignment.next_item(engine=eng, user_id=uid, study_id=sid)


def open_item(item: int | None) -> None:
    """Start (or resume) work on an item: the draft from the server, else the label being corrected."""
    if ws.get("item") == item and "draft" in ws:
        return
    note = ws.get("note")
    ws.clear()
    ws.update(item=item, study=sid, shown_at=time.time(), mode=study.mode, note=note,
              view=widget_key("view", item, time.time()))  # opaque; tells the keyboard a new item is up
    if item is None:
        return
    saved = ann.load_draft(engine=eng, user_id=uid, item_id=item, study_id=sid)
    if saved is not None:
        ws["draft"] = km.Draft.from_json(saved)
        return
    existing = ann.label_for(engine=eng, user_id=uid, item_id=item, study_id=sid)
    ws["draft"] = km.Draft.from_label(
        existing, ann.item_for_annotator(engine=eng, user_id=uid, item_id=item, study_id=sid).keys
    ) if existing else km.Draft()


def save(draft: km.Draft, item: int) -> None:
    """Every change of the answer goes to the server at once."""
    if draft != ws.get("draft"):
        ws["draft"] = draft
        ann.save_draft(engine=eng, user_id=uid, item_id=item, state=draft.to_json(), study_id=sid)


def leave(note: str) -> None:
    """Move on from this item (after a submit, skip or flag): the next one opens in this same run."""
    st.session_state.pop("back_item", None)
    ws["item"] = None
    ws["note"] = note


def submit(view: ann.AnnotatorItem) -> None:
    draft = ws["draft"]
    problem = km.missing(draft, mode=view.mode, n_candidates=len(view.keys), asks=asks)
    if problem:
        ws["error"] = problem
        return
    try:
        ann.submit_label(
            engine=eng, user_id=uid, item_id=view.item_id, study_id=sid,
            **km.submission(draft, keys=view.keys, mode=view.mode, asks=asks),
            displayed_order=list(view.keys), shown_at=datetime.fromtimestamp(ws["shown_at"], tz=timezone.utc),
        )
    except ann.LabelError as exc:
        ws["error"] = str(exc)
        return
    leave("Correction saved." if st.session_state.get("back_item") is not None else "Saved.")
    if crowd_sid is not None:
        crowd_after_submit(eng, uid, crowd_sid)  # feedback, a reminder or a code now: the gate draws it


def act(action: str | None, view: ann.AnnotatorItem | None) -> bool:
    """Carry out what a key or a control asked for; True when the annotator moved to another item."""
    if action is None:
        return False
    if action.startswith("pending:"):
        ws["pending"] = action.split(":", 1)[1]
        return False
    ws.pop("pending", None)
    if action == "back":
        previous = ann.previous_label(engine=eng, user_id=uid, study_id=sid,
                                      before_item_id=st.session_state.get("back_item"))
        if previous is None:
            return False
        st.session_state["back_item"] = previous
        ws["item"] = None
        return True
    if view is None:
        return False
    if action == "submit":
        submit(view)
    elif action == "skip":
        ann.skip_item(engine=eng, user_id=uid, item_id=view.item_id, study_id=sid)
        leave("Skipped: the item went back to the pool.")
    elif action.startswith("flag:"):
        ann.flag_item(engine=eng, user_id=uid, item_id=view.item_id, reason=action.split(":", 1)[1])
        leave("Flagged: thank you, the researchers will look at it.")
    elif action.startswith("zoom:"):
        ws["zoom"] = action.split(":", 1)[1]
    elif action == "close":
        ws.pop("zoom", None)
        ws.pop("help", None)
    elif action == "help":
        ws["help"] = not ws.get("help")
    return ws.get("item") is None


item_id = resolve_item()
open_item(item_id)

# Keys pressed since the last run, applied before anything is drawn: Enter stores the
# label and the next item is drawn in this same run (the component itself is drawn last).
ws.pop("error", None)
view = ann.item_for_annotator(engine=eng, user_id=uid, item_id=item_id, study_id=sid) if item_id is not None else None
for event in pending_keys():
    if event.get("k") == "viewport":
        st.session_state["narrow"] = bool(event.get("narrow"))
        continue
    key = str(event.get("k"))
    if view is None:
        moved = act("back", None) if key == "U" else False
    else:
        n_keys = len(view.keys)
        result = km.apply_key(ws["draft"], key, mode=view.mode, n_candidates=n_keys, pending=ws.get("pending"),
                              asks=asks)
        save(result.draft, view.item_id)
        moved = act(result.action, view)
    if moved:  # later keys belong to the item that opens now
        error = ws.get("error")
        item_id = resolve_item()
        open_item(item_id)
        view = ann.item_for_annotator(engine=eng, user_id=uid, item_id=item_id, study_id=sid) if item_id is not None else None
        if error:
            ws["error"] = error

back_item = st.session_state.get("back_item")
# A participant's progress counts checks too (the stream's); anyone else's, the study's items.
prog = (crowd_progress(eng, uid, crowd_sid) if crowd_sid is not None else None) \
    or assignment.progress(engine=eng, user_id=uid, study_id=sid)
previous = ann.previous_label(engine=eng, user_id=uid, study_id=sid, before_item_id=back_item)


def draw_keyboard() -> None:
    keyboard(enabled=shortcuts, view=ws["view"], narrow=bool(st.session_state.get("narrow")))


if item_id is None:
    st.progress(prog.fraction, text=f"{prog.done} of {prog.target} labelled")
    st.success("All done: there is nothing left for you to label. Thank you!")
    st.markdown("You can close this tab, or use **Back** (`U`) to review your last labels.")
    if st.button("Back `U`", disabled=previous is None):
        act("back", None)
        st.rerun()
    draw_keyboard()
    st.stop()

n = len(view.responses)
letters = list(view.letters)
existing = ann.label_for(engine=eng, user_id=uid, item_id=item_id, study_id=sid)

# A study switched between pick and ranking while the item was open: say so, keep the pick.
if ws.get("mode") != view.mode:
    ws["draft"] = km.with_mode(ws["draft"], mode=view.mode, n_candidates=n)
    ws["mode_note"] = (
        "The researcher switched this study to **ranking**: order all responses, best first. "
        "Your pick is kept as first place." if view.mode == "ranking" else
        "The researcher switched this study to **picking** one response. Your first place is kept as your pick."
    )
    ws["mode"] = view.mode


def act_now(action: str) -> None:
    """A control's action, from inside the page: redraw at once when it moved to another item."""
    if act(action, view):
        st.rerun()


draft: km.Draft = ws["draft"]
wk = widget_key  # short alias: every widget key is opaque and changes with the item
rev = existing.revisions if existing else "new"


# --- callbacks of the answer panel's widgets (run before the script) ------------------


def _on_pick(key: str) -> None:
    value = st.session_state.get(key)
    if value is not None:  # None: a lagging browser copy (see _on_question)
        save(km.choose(ws["draft"], value, mode=view.mode, n_candidates=n, asks=asks), item_id)


def _on_question(key: str, question: str) -> None:
    value = st.session_state.get(key)
    # A person cannot un-answer a radio: None here is the browser's copy lagging behind
    # an answer given by key (its rerun was superseded), and must not erase that answer.
    if value is not None:
        save(km.after_answer(km.with_answer(ws["draft"], question, value), question, asks=asks, n_candidates=n),
             item_id)


def _on_comment(key: str) -> None:
    save(replace(ws["draft"], comment=st.session_state.get(key) or ""), item_id)


def _on_rank(letter: str) -> None:
    save(km.choose(ws["draft"], letter, mode="ranking", n_candidates=n, asks=asks), item_id)


def _on_key(key: str) -> None:
    result = km.apply_key(ws["draft"], key, mode=view.mode, n_candidates=n, pending=ws.get("pending"), asks=asks)
    save(result.draft, item_id)
    if result.action and result.action.startswith("pending:"):
        ws["pending"] = result.action.split(":", 1)[1]


# --- the page -----------------------------------------------------------------------

with st.container(key="rmgap-itemhead"):
    head = st.columns([5, 2])
    title = "Correcting your label" if existing else f"Item {prog.done + 1} of {prog.target}"
    head[0].markdown(f"**{title}** · {prog.done} of {prog.target} labelled")
    if note := ws.pop("note", None):
        head[1].success(note)
    st.progress(prog.fraction)
if existing is not None:
    st.info("You are correcting a label you already gave; **Submit** replaces it.")
if note := ws.pop("mode_note", None):
    st.warning(note)

narrow = bool(st.session_state.get("narrow"))
# Questions about each response need a wider answer panel (one row of levels per response).
wide_panel = any(q.about == "response" for q in asks)
left, right = (st.container(), st.container()) if narrow else st.columns([3, 1.6 if wide_panel else 1.15], gap="medium")

with left:
    if view.profile:
        st.markdown(f"**About this user** · {len(view.profile)} of their past posts (scroll)")
        with st.container(height=PROFILE_HEIGHT, border=True, key="rmgap-profile"):
            for i, post in enumerate(view.profile):
                if i:
                    st.divider()
                st.markdown(without_remote_images(post))
    if view.transcript:
        st.markdown("**The conversation** · the responses answer the user's last message")
        earlier = [t for t in view.transcript if not t[2]]
        with st.container(height=EARLIER_HEIGHT if sum(len(t[1]) for t in earlier) > LONG_TEXT else "content",
                          border=True, key="rmgap-conversation"):
            for role, text, final in view.transcript:
                if final:
                    break
                with st.chat_message(role if role in ("user", "assistant") else "system"):
                    st.markdown(without_remote_images(text))
        with st.container(border=True, key="rmgap-lastturn"):
            with st.chat_message("user"):
                st.markdown("**The user's last message**")
                st.markdown(without_remote_images(view.prompt))
    else:
        st.markdown("**The user's request**")
        with st.container(border=True, key="rmgap-prompt"):
            st.markdown(without_remote_images(view.prompt))
    rank_of = {letter: i + 1 for i, letter in enumerate(draft.ranking)}

    def heading(letter: str, text: str) -> str:
        rank = f" · **rank {rank_of[letter]}**" if letter in rank_of else ""
        chosen = " · **your pick**" if draft.pick == letter else ""
        return f"**Response {letter}**{rank}{chosen} · {len(text):,} characters"

    with st.container(key="rmgap-responses"):
        zoom = ws.get("zoom")
        if zoom in letters:
            text = dict(view.responses)[zoom]
            top = st.columns([6, 1])
            top[0].markdown(heading(zoom, text) + " · full width")
            top[1].button("Close `Esc`", key=wk("close", item_id), on_click=lambda: ws.pop("zoom", None))
            with st.container(border=True):
                st.markdown(without_remote_images(text))
        elif narrow:
            # Beyond four, "Response X" tabs overflow a phone's width: the letter alone names each tab.
            names = [f"Response {x}" if n <= 4 else x for x in letters]  # noqa: PLR2004 - RMGAP's four fit
            for tab, (letter, text) in zip(st.tabs(names), view.responses):
                with tab:
                    st.markdown(heading(letter, text))
                    st.markdown(without_remote_images(text))
        else:
            long = any(len(text) > LONG_TEXT for _, text in view.responses)
            per_row = 2 if n > 1 else 1
            for row in range(0, n, per_row):
                cols = st.columns(per_row)
                for col, (letter, text) in zip(cols, view.responses[row:row + per_row]):
                    with col:
                        top = st.columns([3, 1], vertical_alignment="center")
                        top[0].markdown(heading(letter, text))
                        top[1].button(f"Expand `Z{letter}`", key=wk("zoom", item_id, letter), type="tertiary",
                                      on_click=lambda x=letter: ws.__setitem__("zoom", x),
                                      help=f"Open Response {letter} full width (Z then {letter}; Esc closes)")
                        with st.container(height=BOX_HEIGHT if long else "content", border=True):
                            st.markdown(without_remote_images(text))

with right, st.container(key="rmgap-answer", border=True):
    if ws.get("help"):
        st.markdown("**Keys**\n\n" + "\n".join(f"- `{k}`: {what}" for k, what in km.KEY_HELP))
    current = km.current_question(draft, asks=asks, n_candidates=n)
    mark = "▶ "
    if view.mode == "ranking":
        order = " · ".join(f"{i + 1}. {x}" for i, x in enumerate(draft.ranking)) or "nothing yet"
        st.markdown(f"**Order all {n} responses, best fit first** (letters in order)  \nYour ranking: {order}")
        # A wrapping row: up to eight letter buttons keep their letter legible in the narrow panel.
        with st.container(horizontal=True, gap="small"):
            for letter in letters:
                st.button(f"{letter}", key=wk("rank", item_id, rev, letter), on_click=_on_rank, args=(letter,),
                          disabled=letter in draft.ranking, help=f"Next place: Response {letter} (key {letter})")
        with st.container(horizontal=True, gap="small"):
            st.button("Remove last `⌫`", key=wk("unrank", item_id, rev), on_click=_on_key, args=("Backspace",),
                      disabled=not draft.ranking)
            st.button("Can't decide `X`", key=wk("cant", item_id, rev), on_click=_on_key, args=("X",),
                      type="primary" if draft.pick == km.CANT_DECIDE else "secondary")
    else:
        pick_key = wk("pick", item_id, rev)
        st.session_state[pick_key] = draft.pick
        ties = list(ann.TIES) if view.ties_allowed else []
        options = [*letters, *ties, km.CANT_DECIDE]
        tie_key = {v: k for k, v in km.TIE_KEYS.items()}
        st.radio(
            "**Which response fits the user's request best?** `A`-`" + letters[-1] + "`"
            + (" · ties `T` / `N`" if ties else ""),
            options, index=None, key=pick_key, on_change=_on_pick, args=(pick_key,), horizontal=True,
            format_func=lambda x: "Can't decide [X]" if x == km.CANT_DECIDE else
            f"{ann.TIES[x]} [{tie_key[x]}]" if x in ann.TIES else f"{x} [{x}]",
        )
    if draft.pick == km.CANT_DECIDE:
        reason_key = wk("reason", item_id, rev)
        st.session_state[reason_key] = draft.reason
        reasons = list(ann.REASONS)
        st.radio(
            (mark if current == "reason" else "") + "**Why can't you decide?** `1`-`3`",
            reasons, index=None, key=reason_key, on_change=_on_question, args=(reason_key, "reason"),
            format_func=lambda r: f"[{reasons.index(r) + 1}] {ann.REASONS[r]}",
        )
    for q in asks:
        if q.name == "naturalness":  # RMGAP's question keeps its own widget (and its digits are its values)
            nat_key = wk("naturalness", item_id, rev)
            st.session_state[nat_key] = draft.naturalness
            st.radio(
                (mark if current == "naturalness" else "")
                + "**How natural is the request?** Could a real user have written it? `1`-`5`",
                list(ann.NATURALNESS), index=None, key=nat_key, on_change=_on_question, args=(nat_key, "naturalness"),
                format_func=lambda v: f"[{v}] {ann.NATURALNESS[v]}",
            )
            continue
        digits = f" `1`-`{len(q.levels)}`" if len(q.levels) <= 9 else ""  # noqa: PLR2004 - one digit per level
        optional = "" if q.required else " (optional)"
        position = {v: i + 1 for i, v in enumerate(q.values)}
        label_of = dict(q.levels)
        if q.about == "prompt":
            q_key = wk("q", q.name, item_id, rev)
            st.session_state[q_key] = km.slot_value(draft, q.name)
            st.radio((mark if current == q.name else "") + f"**{q.text}**{optional}{digits}", list(q.values),
                     index=None, key=q_key, on_change=_on_question, args=(q_key, q.name), horizontal=True,
                     format_func=lambda v, p=position, lab=label_of: f"[{p[v]}] {lab[v]}")
            continue
        mark_q = mark if current and current.partition(":")[0] == q.name else ""
        st.markdown(f"{mark_q}**{q.text}**{optional}{digits} · each response")
        st.caption(" · ".join(f"{position[v]} {lab}" for v, lab in q.levels))
        rows = st.container(gap=None)
        for letter in letters:
            slot = f"{q.name}:{letter}"
            q_key = wk("q", slot, item_id, rev)
            st.session_state[q_key] = km.slot_value(draft, slot)
            # One row per response: its letter, then the scale (the key names a question and a letter: nothing hidden).
            with rows, st.container(horizontal=True, vertical_alignment="top", gap="small",
                                    key=f"rmgap-q-{q.name}-{letter}"):
                st.markdown(("▶ " if current == slot else "") + f"**{letter}**", width="content")
                st.radio(f"Response {letter}", list(q.values), index=None, key=q_key, on_change=_on_question,
                         args=(q_key, slot), horizontal=True, label_visibility="collapsed",
                         format_func=lambda v, p=position: str(p[v]))
    comment_key = wk("comment", item_id, rev)
    st.session_state[comment_key] = draft.comment
    st.text_area("Comment (optional)", key=comment_key, on_change=_on_comment, args=(comment_key,), height=68,
                 help="Enter is a new line; Ctrl+Enter submits.", max_chars=ann.MAX_COMMENT_CHARS)
    if error := ws.get("error"):
        st.error(error)
    if st.button("Submit `Enter`", type="primary", key=wk("submit", item_id, rev), width="stretch"):
        act_now("submit")
        if ws.get("error"):
            st.error(ws["error"])
    if ws.get("pending") == "flag":
        st.markdown("**Flag this item:** why? (`1`-`3`, `Esc` cancels)")
        for i, (reason, words) in enumerate(ann.FLAG_REASONS.items(), start=1):
            if st.button(f"[{i}] {words}", key=wk("flagreason", item_id, reason)):
                act_now(f"flag:{reason}")
    tools = st.columns(2) + st.columns(2)
    if tools[0].button("Back `U`", key=wk("back", item_id), disabled=previous is None,
                       help="Re-open your previous label to correct it"):
        act_now("back")
    if tools[1].button("Skip `S`", key=wk("skip", item_id), help="Give this item back; you get it again only at the end"):
        act_now("skip")
    tools[2].button("Flag `Q`", key=wk("flag", item_id), on_click=lambda: ws.__setitem__("pending", "flag"),
                    help="Broken text, offensive, or the request gives away the answer")
    tools[3].button("Keys `?`", key=wk("help", item_id), on_click=lambda: ws.__setitem__("help", not ws.get("help")))
    if back_item is not None and st.button("Resume labelling", key=wk("resume", item_id),
                                           help="Leave this label as it is and go on"):
        st.session_state.pop("back_item", None)
        ws["item"] = None
        st.rerun()


@st.fragment(run_every=max(30, study.lease_seconds // 3))
def _keep_lease() -> None:
    """While the annotator reads, the item stays theirs (no rerun of the page)."""
    if ws.get("item") == item_id and back_item is None:
        assignment.hold_item(engine=eng, user_id=uid, item_id=item_id, study_id=sid)


_keep_lease()
draw_keyboard()
