"""The screens a crowd participant meets around the items: consent, feedback, reminders, the codes.

Called at the top of the Annotate page (``crowd_gate``): for a lab account
it returns None and draws nothing; for a participant who arrived through a
study link it draws whichever screen their state asks for and stops the
page, or returns their study's id so the page draws the next item. Every
decision is ``rmgap_annot.crowd.stream``'s; this module only draws.
"""

from __future__ import annotations

import streamlit as st

from rmgap_annot import assignment
from rmgap_annot.annotation import guidelines_text, study_questions
from rmgap_annot.crowd import stream
from rmgap_annot.crowd.links import LinkError, completion_url
from rmgap_annot.safe_markdown import without_remote_images

SEEN = "crowd_seen"  # session state: the feedback and reminders already acknowledged in this browser


def _seen() -> set:
    return st.session_state.setdefault(SEEN, set())


def _code(label: str, code: str | None) -> None:
    if code:
        st.markdown(f"**{label}:**")
        st.code(code, language=None)
    else:
        st.warning("The researcher has not set a code for this study. Contact them through the platform.")


def _feedback_body(feedback: stream.Feedback) -> None:
    if feedback.correct:
        st.success("Right.")
    else:
        st.error("Not the expected answer.")
    letters = " or ".join(f"Response {x}" for x in feedback.expected_letters)
    st.markdown(f"The expected answer: **{letters}**.")
    if feedback.explanation:
        with st.container(border=True):
            st.markdown(without_remote_images(feedback.explanation))


def _screened_out(state: stream.CrowdState) -> None:
    st.title("Thank you")
    if state.screened_out_reason == stream.SCREENED_QUALIFICATION and state.last_feedback is not None:
        st.subheader("Your last qualification answer")
        _feedback_body(state.last_feedback)  # the round's last feedback, with the code on the same screen
        st.markdown("You did not reach the qualification mark, so this study has no items for you.")
    elif state.declined:
        st.markdown("You chose not to take part. Nothing you did in this study is used.")
    else:
        st.markdown("This study has no more items for you. Thank you for your time.")
    _code("Your screen-out code (paste it into the platform)", state.screenout_code)
    st.stop()


def _completed(eng, uid: int, state: stream.CrowdState) -> None:  # noqa: ANN001
    stream.mark_completed(engine=eng, user_id=uid, study_id=state.study_id)
    st.title("All done: thank you!")
    if state.quota is not None and state.real_done < state.quota:
        st.info("There are no more items for you in this study right now, before your quota was reached. "
                "You have finished: here is your completion code.")
    else:
        st.success("You have finished your part of the study.")
    _code("Your completion code", state.completion_code)
    if state.completion_code and state.platform == "prolific":
        try:
            url = completion_url(platform="prolific", code=state.completion_code)
        except LinkError:
            url = None
        if url:
            st.link_button("Go back to Prolific", url, type="primary")
    st.stop()


def _consent(eng, uid: int, sid: int) -> None:  # noqa: ANN001
    study = assignment.get_study(engine=eng, study_id=sid)
    st.title("Before you start")
    if study.consent_md.strip():
        with st.container(border=True):
            st.markdown(without_remote_images(study.consent_md))
    st.subheader("Guidelines")
    with st.container(border=True):
        st.markdown(without_remote_images(guidelines_text(study.guidelines_md, mode=study.mode,
                                                          questions=study_questions(engine=eng, study_id=sid))))
    cols = st.columns(2)
    if cols[0].button("Start", type="primary"):
        stream.give_consent(engine=eng, user_id=uid, study_id=sid)
        st.rerun()
    if cols[1].button("I do not consent"):
        stream.decline_consent(engine=eng, user_id=uid, study_id=sid)
        st.rerun()
    st.stop()


def _feedback(feedback: stream.Feedback, state: stream.CrowdState) -> None:
    st.title("Qualification: your answer")
    _feedback_body(feedback)
    st.caption(f"Qualification item {state.qualification_done} of {state.qualification_n}.")
    if st.button("Continue", type="primary"):
        _seen().add(("feedback", feedback.label_id))
        st.rerun()
    st.stop()


def _reminder(eng, state: stream.CrowdState) -> None:  # noqa: ANN001
    study = assignment.get_study(engine=eng, study_id=state.study_id)
    st.title("A reminder of the guidelines")
    st.warning("Some of your recent answers did not follow the guidelines. Please read them again, "
               "and read each request and all responses carefully.")
    with st.container(border=True):
        st.markdown(without_remote_images(guidelines_text(study.guidelines_md, mode=study.mode,
                                                          questions=study_questions(engine=eng, study_id=state.study_id))))
    if st.button("Continue", type="primary"):
        _seen().add(("warned", state.checks_failed))
        st.rerun()
    st.stop()


def _screen(state: stream.CrowdState) -> str | None:
    """Which screen stands before the items, if any (the order is the order of precedence)."""
    if state.status == "blocked":
        return "blocked"
    if state.needs_consent:
        return "consent"
    if state.status == "screened out":
        return "screened out"
    fb = state.last_feedback
    if fb is not None and ("feedback", fb.label_id) not in _seen() and state.real_done == 0:
        return "feedback"
    if state.status == "completed" or state.completed_at is not None:
        return "completed"
    if state.warned and ("warned", state.checks_failed) not in _seen():
        return "reminder"
    return None


def crowd_gate(eng, uid: int) -> int | None:  # noqa: ANN001
    """None for a lab account; else the participant's study id, once no screen stands before the items."""
    sid = stream.crowd_study_of(engine=eng, user_id=uid)
    if sid is None:
        return None
    study = assignment.get_study(engine=eng, study_id=sid)
    st.session_state["benchmark_id"] = study.benchmark_id
    state = stream.crowd_state(engine=eng, user_id=uid, study_id=sid)
    screen = _screen(state)
    if screen == "blocked":
        st.info("This study has no more items for you.")
        st.stop()
    elif screen == "consent":
        _consent(eng, uid, sid)
    elif screen == "screened out":
        _screened_out(state)
    elif screen == "feedback":
        _feedback(state.last_feedback, state)
    elif screen == "completed":
        _completed(eng, uid, state)
    elif screen == "reminder":
        _reminder(eng, state)
    return sid


def crowd_after_submit(eng, uid: int, sid: int) -> None:  # noqa: ANN001
    """After a stored answer: rerun into the gate when a screen now stands (feedback, a reminder, a code).

    Otherwise the page goes on to the next item in the same run, as for a
    lab account (and keys typed meanwhile are kept).
    """
    if _screen(stream.crowd_state(engine=eng, user_id=uid, study_id=sid)) is not None:
        st.rerun()


def crowd_next_item(eng, uid: int, sid: int) -> int | None:  # noqa: ANN001
    """The participant's next stream entry; when nothing is left for them the page reruns into the completion screen."""
    entry = stream.next_entry(engine=eng, user_id=uid, study_id=sid)
    if entry is None:
        state = stream.crowd_state(engine=eng, user_id=uid, study_id=sid)
        if state.status in ("qualifying", "active") and state.consented:
            stream.mark_completed(engine=eng, user_id=uid, study_id=sid)  # ran out of items before the quota
        st.rerun()
    return entry


def crowd_progress(eng, uid: int, sid: int) -> assignment.Progress | None:  # noqa: ANN001
    """Progress over all items shown, checks included (None: the page's own progress stands)."""
    p = stream.stream_progress(stream.crowd_state(engine=eng, user_id=uid, study_id=sid))
    return None if p is None else assignment.Progress(done=p.done, target=p.target, remaining=max(0, p.target - p.done))
