"""Live quality control of a study: who is doing what, how well, and the decisions about them.

A thin view over ``rmgap_annot.crowd.monitor`` (the figures), ``crowd.control``
and ``exclusions`` (the actions) and ``audit`` (the log). The table refreshes
by itself as labels arrive; the actions sit outside the refreshing part so a
half-typed reason is never reset.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import choose_study, engine, require_researcher
from rmgap_annot import audit
from rmgap_annot.crowd import control, monitor
from rmgap_annot.crowd.payment import payment_csv
from rmgap_annot.exclusions import ExclusionError, exclude_annotator, include_annotator

REFRESH_SECONDS = 10

require_researcher()
eng = engine()
actor = st.session_state.get("user_name") or f"researcher-{st.session_state.get('user_id')}"
st.title("Quality")
sid = choose_study(key="quality_study")
if sid is None:
    st.stop()


def _n(v, digits: int = 1):  # noqa: ANN001, ANN202
    return None if v is None else round(float(v), digits)


@st.fragment(run_every=REFRESH_SECONDS)
def live_table() -> None:
    q = monitor.study_quality(engine=eng, study_id=sid)
    alpha = f"{q.alpha:.3f}" if q.alpha is not None else f"n/a ({q.alpha_reason})"
    st.caption(f"{len(q.annotators)} people · pick alpha {alpha} · refreshed every {REFRESH_SECONDS} s")
    if not q.annotators:
        st.info("Nobody has joined this study yet.")
        return
    rows = [{
        "pseudonym": r.pseudonym, "account": r.name, "participant id": r.participant_id or "",
        "status": r.status, "labels": r.labels, "checks passed": r.checks_passed, "checks failed": r.checks_failed,
        "median s": _n(r.median_seconds), "under 5 s": _n(r.fast_share, 2), "LOO alpha": _n(r.loo_alpha, 3),
        "alpha change": _n(r.loo_delta, 3), "agreement": _n(r.agreement, 2),
        "Dawid-Skene": _n(r.competence.get("dawid-skene"), 2), "MACE": _n(r.competence.get("mace"), 2),
        "minutes": _n(r.minutes_worked), "excluded": r.exclusion_reason or "", "code given": r.completion_code_given,
        "platform": r.platform or "", "platform study": r.platform_study_id or "",
        "platform session": r.platform_session_id or "",
    } for r in q.annotators]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="quality_table", placeholder="n/a")  # undefined: n/a
    notes = [f"{m}: {state}" for m, state in q.truth_status.items() if state != "fitted"]
    st.caption("n/a: not defined yet (no timed label, no shared item, no fit). "
               "alpha change: the study's alpha with them minus without them (negative: they lower agreement). "
               + " ".join(notes))
    st.download_button("Download the payment CSV", payment_csv(monitor.payment_rows(q)) or "",
                       file_name=f"payment-{q.study}.csv", mime="text/csv", key="payment_csv")


live_table()

st.subheader("Decide about a person")
people = monitor.study_quality(engine=eng, study_id=sid).annotators
if not people:
    st.stop()
by_label = {f"{r.pseudonym} · {r.participant_id or r.name} ({r.status})": r for r in people}
chosen = by_label[st.selectbox("Person", list(by_label), key="quality_person")]
c1, c2, c3 = st.columns(3)
with c1:
    st.caption("Block: no more items in this study; their labels stay stored.")
    if chosen.blocked:
        if st.button("Unblock", key="quality_unblock"):
            control.set_blocked(engine=eng, study_id=sid, name=chosen.name, blocked=False, actor=actor)
            st.rerun()
    elif st.button("Block", key="quality_block"):
        control.set_blocked(engine=eng, study_id=sid, name=chosen.name, blocked=True, actor=actor)
        st.rerun()
with c2:
    st.caption("Exclude: their labels count nowhere (reversible).")
    if chosen.excluded:
        if st.button("Include again", key="quality_include"):
            include_annotator(engine=eng, name=chosen.name, actor=actor, study_id=sid)
            st.rerun()
    else:
        reason = st.text_input("Reason (in the report and the dataset card)", key="quality_reason")
        if st.button("Exclude", key="quality_exclude"):
            try:
                exclude_annotator(engine=eng, name=chosen.name, reason=reason, actor=actor, study_id=sid)
                st.rerun()
            except ExclusionError as exc:
                st.error(str(exc))
with c3:
    st.caption("Delete: the person withdrew consent. Their labels and account go for good.")
    sure = st.checkbox("They withdrew consent: delete everything of theirs", key="quality_delete_sure")

    def _delete(name: str) -> None:
        # A callback: it runs before the next script run, so the confirmation box can be
        # cleared (it must not stay ticked for the next person in the list).
        st.session_state["quality_delete_sure"] = False
        try:
            control.delete_annotator(engine=eng, name=name, actor=actor)
            st.session_state["quality_deleted"] = None
        except control.ControlError as exc:
            st.session_state["quality_deleted"] = str(exc)

    st.button("Delete", key="quality_delete", disabled=not sure, on_click=_delete, args=(chosen.name,))
    if st.session_state.get("quality_deleted"):
        st.error(st.session_state.pop("quality_deleted"))

st.subheader("Audit log")
log = audit.events(engine=eng, study_id=sid)
if log:
    st.dataframe(pd.DataFrame([{"at": e.at, "who": e.actor, "action": e.action, "target": e.target,
                                "detail": ", ".join(f"{k}: {v}" for k, v in e.detail.items())} for e in log]),
                 hide_index=True, key="audit_table")
else:
    st.caption("No block, exclusion, deletion or settings change yet.")
