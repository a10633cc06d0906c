"""The annotator's workbench: one item, answered by keyboard or mouse, nothing lost.

Only the blinded view from ``annotation.item_for_annotator`` is drawn:
prompt and response texts under letters. Response keys stay on the server;
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
from rmgap_annot.safe_markdown import without_remote_images

BOX_HEIGHT = 225  # px per response box in the 2x2 grid, so the grid and the answer panel fit 1440x900
LONG_TEXT = 500  # characters; shorter responses take their natural height

uid = require_login()
eng = engine()
# A crowd participant (arrived through a study link) meets consent, feedback and the codes
# first; None for a lab account. Their items come from the crowd stream (checks mixed in).
crowd_sid = crowd_gate(eng, uid)
bid = st.session_state.get("benchmark_id") or assignment.default_benchmark_id(engine=eng)
if bid is None:
    st.info("There is nothing to label yet. Your researcher has not imported a benchmark.")
    st.stop()
study = assignment.get_study(engine=eng, benchmark_id=bid, study_id=crowd_sid)
guidelines = ann.guidelines_text(study.guidelines_md, mode=study.mode)
st.markdown(CSS, unsafe_allow_html=True)  # the page's own static CSS, no benchmark text

# --- the guidelines gate ------------------------------------------------------------
if not ann.guidelines_confirmed(engine=eng, user_id=uid, benchmark_id=bid, study_id=crowd_sid):
    st.title("Before you start: the guidelines")
    with st.container(border=True):
        st.markdown(guidelines)
    if st.button("I have read the guidelines: start", type="primary"):
        ann.confirm_guidelines(engine=eng, user_id=uid, benchmark_id=bid, study_id=crowd_sid)
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


def resolve_item() -> int | None:
    """The item to show: the label being corrected, else the open one, else the next one."""
    back = st.session_state.get("back_item")
    if back is not None:
        return back
    if ws.get("item") is not None and ann.label_for(engine=eng, user_id=uid, item_id=ws["item"], study_id=crowd_sid) is None:
        # It stays open until answered, skipped or flagged, even if its lease lapsed.
        assignment.hold_item(engine=eng, user_id=uid, item_id=ws["item"], study_id=crowd_sid)
        return ws["item"]
    if crowd_sid is not None:
        return crowd_next_item(eng, uid, crowd_sid)
    return assignment.next_item(engine=eng, user_id=uid, benchmark_id=bid)


def open_item(item: int | None) -> None:
    """Start (or resume) work on an item: the draft from the server, else the label being corrected."""
    if ws.get("item") == item and "draft" in ws:
        return
    note = ws.get("note")
    ws.clear()
    ws.update(item=item, shown_at=time.time(), mode=study.mode, note=note,
              view=widget_key("view", item, time.time()))  # opaque; tells the keyboard a new item is up
    if item is None:
        return
    saved = ann.load_draft(engine=eng, user_id=uid, item_id=item, study_id=crowd_sid)
    if saved is not None:
        ws["draft"] = km.Draft.from_json(saved)
        return
    existing = ann.label_for(engine=eng, user_id=uid, item_id=item, study_id=crowd_sid)
    ws["draft"] = draft_from_label(existing, ann.item_for_annotator(engine=eng, user_id=uid, item_id=item,
                                                                     study_id=crowd_sid)) \
        if existing else km.Draft()


def draft_from_label(label: ann.LabelView, view: ann.AnnotatorItem) -> km.Draft:
    return km.Draft(
        pick=km.CANT_DECIDE if label.choice_key is None else view.letter_for(label.choice_key),
        reason=label.reason,
        naturalness=label.naturalness,
        ranking=tuple(view.letter_for(k) for k in label.ranking or ()),
        comment=label.comment or "",
    )


def save(draft: km.Draft, item: int) -> None:
    """Every change of the answer goes to the server at once."""
    if draft != ws.get("draft"):
        ws["draft"] = draft
        ann.save_draft(engine=eng, user_id=uid, item_id=item, state=draft.to_json(), study_id=crowd_sid)


def leave(note: str) -> None:
    """Move on from this item (after a submit, skip or flag): the next one opens in this same run."""
    st.session_state.pop("back_item", None)
    ws["item"] = None
    ws["note"] = note


def submit(view: ann.AnnotatorItem) -> None:
    draft = ws["draft"]
    problem = km.missing(draft, mode=view.mode, n_candidates=len(view.keys))
    if problem:
        ws["error"] = problem
        return
    cant = draft.pick == km.CANT_DECIDE
    ranking = None if cant or view.mode != "ranking" else [view.key_for(x) for x in draft.ranking]
    choice = None if cant else (ranking[0] if ranking else view.key_for(draft.pick))
    try:
        ann.submit_label(
            engine=eng, user_id=uid, item_id=view.item_id, choice_key=choice, naturalness=draft.naturalness,
            reason=draft.reason if cant else None, ranking=ranking, comment=draft.comment,
            displayed_order=list(view.keys), shown_at=datetime.fromtimestamp(ws["shown_at"], tz=timezone.utc),
            study_id=crowd_sid,
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
        previous = ann.previous_label(engine=eng, user_id=uid, benchmark_id=bid, study_id=crowd_sid,
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
        ann.skip_item(engine=eng, user_id=uid, item_id=view.item_id, study_id=crowd_sid)
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
view = ann.item_for_annotator(engine=eng, user_id=uid, item_id=item_id, study_id=crowd_sid) \
    if item_id is not None else None
for event in pending_keys():
    if event.get("k") == "viewport":
        st.session_state["narrow"] = bool(event.get("narrow"))
        continue
    key = str(event.get("k"))
    if view is None:
        moved = act("back", None) if key == "U" else False
    else:
        n_keys = len(view.keys)
        result = km.apply_key(ws["draft"], key, mode=view.mode, n_candidates=n_keys, pending=ws.get("pending"))
        save(result.draft, view.item_id)
        moved = act(result.action, view)
    if moved:  # later keys belong to the item that opens now
        error = ws.get("error")
        item_id = resolve_item()
        open_item(item_id)
        view = ann.item_for_annotator(engine=eng, user_id=uid, item_id=item_id, study_id=crowd_sid) \
            if item_id is not None else None
        if error:
            ws["error"] = error

back_item = st.session_state.get("back_item")
prog = assignment.progress(engine=eng, user_id=uid, benchmark_id=bid, study_id=crowd_sid)
if crowd_sid is not None:
    prog = crowd_progress(eng, uid, crowd_sid) or prog
previous = ann.previous_label(engine=eng, user_id=uid, benchmark_id=bid, before_item_id=back_item,
                             study_id=crowd_sid)


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
letters = [letter for letter, _ in view.responses]
existing = ann.label_for(engine=eng, user_id=uid, item_id=item_id, study_id=crowd_sid)

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
        save(km.choose(ws["draft"], value, mode=view.mode, n_candidates=n), item_id)


def _on_question(key: str, question: str) -> None:
    value = st.session_state.get(key)
    # A person cannot un-answer a radio: None here is the browser's copy lagging behind
    # an answer given by key (its rerun was superseded), and must not erase that answer.
    if value is not None:
        save(km.after_answer(replace(ws["draft"], **{question: value}), question), item_id)


def _on_comment(key: str) -> None:
    save(replace(ws["draft"], comment=st.session_state.get(key) or ""), item_id)


def _on_rank(letter: str) -> None:
    save(km.choose(ws["draft"], letter, mode="ranking", n_candidates=n), item_id)


def _on_key(key: str) -> None:
    result = km.apply_key(ws["draft"], key, mode=view.mode, n_candidates=n, pending=ws.get("pending"))
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
left, right = (st.container(), st.container()) if narrow else st.columns([3, 1.15], gap="medium")

with left:
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
            for tab, (letter, text) in zip(st.tabs([f"Response {x}" for x in letters]), view.responses):
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
    current = km.current_question(draft)
    mark = "▶ "
    if view.mode == "ranking":
        order = " · ".join(f"{i + 1}. {x}" for i, x in enumerate(draft.ranking)) or "nothing yet"
        st.markdown(f"**Order all {n} responses, best fit first** (letters in order)  \nYour ranking: {order}")
        cols = st.columns(n)
        for col, letter in zip(cols, letters):
            col.button(f"{letter}", key=wk("rank", item_id, rev, letter), on_click=_on_rank, args=(letter,),
                       disabled=letter in draft.ranking, help=f"Next place: Response {letter} (key {letter})",
                       width="stretch")
        b = st.columns(2)
        b[0].button("Remove last `⌫`", key=wk("unrank", item_id, rev), on_click=_on_key, args=("Backspace",),
                    disabled=not draft.ranking)
        b[1].button("Can't decide `X`", key=wk("cant", item_id, rev), on_click=_on_key, args=("X",),
                    type="primary" if draft.pick == km.CANT_DECIDE else "secondary")
    else:
        pick_key = wk("pick", item_id, rev)
        st.session_state[pick_key] = draft.pick
        options = [*letters, km.CANT_DECIDE]
        st.radio(
            "**Which response fits the user's request best?** `A`-`" + letters[-1] + "`",
            options, index=None, key=pick_key, on_change=_on_pick, args=(pick_key,), horizontal=True,
            format_func=lambda x: "Can't decide [X]" if x == km.CANT_DECIDE else f"{x} [{x}]",
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
    nat_key = wk("naturalness", item_id, rev)
    st.session_state[nat_key] = draft.naturalness
    st.radio(
        (mark if current == "naturalness" else "") + "**How natural is the request?** Could a real user have written it? `1`-`5`",
        list(ann.NATURALNESS), index=None, key=nat_key, on_change=_on_question, args=(nat_key, "naturalness"),
        format_func=lambda v: f"[{v}] {ann.NATURALNESS[v]}",
    )
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
        assignment.hold_item(engine=eng, user_id=uid, item_id=item_id, study_id=crowd_sid)


_keep_lease()
draw_keyboard()
