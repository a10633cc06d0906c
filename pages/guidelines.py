"""The study's guidelines: annotators read them, researchers edit them here."""

from __future__ import annotations

import streamlit as st

from pages.common import engine, require_login
from rmgap_annot import assignment, studies
from rmgap_annot.annotation import DEFAULT_GUIDELINES, guidelines_text, study_questions

uid = require_login()
eng = engine()
researcher = st.session_state.get("role") == "researcher"
# An annotator reads the guidelines of the study they label (as the annotate page picks it);
# a researcher edits those of the benchmark chosen on their pages.
sid = None if researcher else studies.study_for_user(engine=eng, user_id=uid)
bid = st.session_state.get("benchmark_id") or assignment.default_benchmark_id(engine=eng)
st.title("Guidelines")
if sid is None and bid is None:
    st.markdown(DEFAULT_GUIDELINES)
    st.stop()
study = assignment.get_study(engine=eng, study_id=sid) if sid is not None else assignment.get_study(engine=eng, benchmark_id=bid)
bid = study.benchmark_id
text = study.guidelines_md or DEFAULT_GUIDELINES

if researcher:
    from pages.common import require_researcher

    require_researcher()
    with st.form("guidelines"):
        new = st.text_area("Guidelines (markdown)", value=text, height=360)
        if st.form_submit_button("Save guidelines", type="primary"):
            assignment.update_study(engine=eng, benchmark_id=bid, guidelines_md=new,
                                    actor=st.session_state.get("user_name") or "researcher")
            st.success("Saved. Annotators see the new guidelines on their next page load.")
            text = new
    st.subheader("Preview (as annotators read it)")
# The default text names the study's own questions; a researcher's text is shown as written.
st.markdown(guidelines_text(None if text == DEFAULT_GUIDELINES else text, mode=study.mode,
                            questions=study_questions(engine=eng, study_id=study.id)))
