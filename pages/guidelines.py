"""The study's guidelines: annotators read them, researchers edit them here."""

from __future__ import annotations

import streamlit as st

from pages.common import engine, require_login
from rmgap_annot import assignment
from rmgap_annot.annotation import DEFAULT_GUIDELINES, guidelines_text

uid = require_login()
eng = engine()
bid = st.session_state.get("benchmark_id") or assignment.default_benchmark_id(engine=eng)
st.title("Guidelines")
if bid is None:
    st.markdown(DEFAULT_GUIDELINES)
    st.stop()
study = assignment.get_study(engine=eng, benchmark_id=bid)
text = study.guidelines_md or DEFAULT_GUIDELINES

if st.session_state.get("role") == "researcher":
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
st.markdown(guidelines_text(text, mode=study.mode))
