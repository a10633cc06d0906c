"""The Study page's crowd section: consent text, the public link, and a preview of what annotators see.

Drawn at the end of pages/study.py (``crowd_section``); every rule is in
``rmgap_annot`` (``assignment.update_study``, ``crowd.links``,
``crowd.preview``). The preview stores nothing: no lease, label or check answer.
"""

from __future__ import annotations

import streamlit as st

from rmgap_annot import accounts, assignment
from rmgap_annot.crowd import preview as pv
from rmgap_annot.crowd.links import PLATFORMS, LinkError, mturk_hit_html, new_study_token, study_link
from rmgap_annot.safe_markdown import escape, without_remote_images
from rmgap_annot.studies import list_studies


def _root() -> str:
    try:
        page_url = str(st.context.url or "") or "http://localhost:8501/"
    except Exception:  # noqa: BLE001 - older Streamlit: no st.context.url
        page_url = "http://localhost:8501/"
    return accounts.app_root(page_url, base_path=st.get_option("server.baseUrlPath") or "")


def draw_preview(p: pv.Preview) -> None:
    """The item as an annotator reads it: context, then the responses under their letters."""
    view = p.view
    if view.profile:
        with st.expander("The user's past posts"):
            for text in view.profile:
                st.markdown(without_remote_images(text))
    if view.conversation and len(view.conversation) > 1:
        for role, content in view.conversation[:-1]:
            st.markdown(f"**{escape(role)}**")
            st.markdown(without_remote_images(content))
    st.markdown("**The user's request**")
    with st.container(border=True):
        st.markdown(without_remote_images(view.prompt))
    cols = st.columns(2 if len(view.responses) > 1 else 1)
    for i, (letter, text) in enumerate(view.responses):
        with cols[i % len(cols)]:
            st.markdown(f"**Response {letter}** · {len(text):,} characters")
            with st.container(border=True):
                st.markdown(without_remote_images(text))
    if p.expected_letters is not None:
        st.info("Expected answer (researchers only): " + " or ".join(f"Response {x}" for x in p.expected_letters)
                + (f". {p.explanation}" if p.explanation else ""))


def crowd_section(eng, bid: int, researcher_id: int, *, study_id: int | None = None,  # noqa: ANN001
                  actor: str = "researcher") -> None:
    """``study_id``: the study chosen at the top of the Study page (else a picker of the benchmark's)."""
    st.subheader("Crowd study")
    if study_id is None:
        studies = list_studies(engine=eng, benchmark_id=bid)
        if not studies:
            return
        chosen = st.selectbox("Study", studies, format_func=lambda s: s.name, key="crowd_study_pick") \
            if len(studies) > 1 else studies[0]
        study_id = chosen.id
    study = assignment.get_study(engine=eng, study_id=study_id)

    with st.form("crowd_consent"):
        consent = st.text_area("Consent text (Markdown; shown with the guidelines before the first item)",
                               value=study.consent_md, height=160)
        public = st.checkbox("Public study link on", value=study.public_link)
        if st.form_submit_button("Save"):
            settings = {"consent_md": consent, "public_link": public}
            if public and not study.link_token:
                settings["link_token"] = new_study_token()
            study = assignment.update_study(engine=eng, study_id=study.id, actor=actor, **settings)
            st.success("Saved.")
    if study.public_link and study.link_token:
        platform = st.selectbox("Platform", PLATFORMS, key="crowd_platform")
        try:
            link = study_link(base_url=_root(), token=study.link_token, platform=platform)
        except LinkError as exc:
            st.error(str(exc))
        else:
            st.code(link, language=None)
            if platform == "mturk":
                st.download_button("Download the HIT layout", mturk_hit_html(link=link), file_name="mturk-hit.html",
                                   mime="text/html", key="crowd_hit_layout")
                st.caption("On MTurk the link sits in a survey-link HIT: paste the layout into the HIT's design "
                           "(source view). It adds the worker's ids to the link once the HIT is accepted and asks "
                           "for the completion code back.")
        st.caption("Paste this into the platform. `rmgap-annot crowd link --rotate` replaces it (the old link stops working).")

    st.markdown("**Preview an item as annotators see it** (nothing is stored)")
    options = pv.previewable(engine=eng, study_id=study.id)
    kinds = [k for k in ("item", "check", "qualification") if options.get(k)]
    if not kinds:
        st.caption("No items yet.")
        return
    kind = st.radio("What", kinds, horizontal=True, key="crowd_preview_kind",
                    format_func={"item": "A study item", "check": "An attention check",
                                 "qualification": "A qualification item"}.get)
    picked = st.selectbox("Which", options[kind], format_func=lambda o: o[1], key="crowd_preview_pick")
    if picked is None:
        return
    if kind == "item":
        p = pv.preview_item(engine=eng, researcher_id=researcher_id, study_id=study.id, item_id=picked[0])
    else:
        p = pv.preview_check(engine=eng, researcher_id=researcher_id, check_item_id=picked[0])
    with st.container(border=True):
        draw_preview(p)
