"""Studies: each run's progress, the chosen one's settings (labelling, codes, checks,
qualification; consent, public link and preview in the crowd section), and a new study."""

from __future__ import annotations

import streamlit as st

from pages.common import choose_study, engine, require_researcher
from rmgap_annot import annotation, assignment, questions
from rmgap_annot.accounts import list_users
from rmgap_annot.crowd.links import is_participant_name
from rmgap_annot.crowd.schedule import ScheduleError, parse_share
from rmgap_annot.report import report_fingerprint
from rmgap_annot.stats import planning
from rmgap_annot.studies import StudyNotFound, assign_to_study, list_studies

require_researcher()
eng = engine()
actor = st.session_state.get("user_name") or f"researcher-{st.session_state.get('user_id')}"
st.title("Study")

studies = list_studies(engine=eng)
if studies:
    overview_rows = []
    for info in studies:
        ov = assignment.overview(engine=eng, study_id=info.id)
        target = ov.items * ov.labels_per_item
        overview_rows.append({"study": info.name, "benchmark": info.benchmark, "items": ov.items,
                              "labels": ov.labels, "target": target,
                              "progress": min(1.0, ov.labels / target) if target else 0.0,
                              "complete items": ov.complete_items, "people": info.members})
    st.dataframe(overview_rows, hide_index=True, key="studies_table",
                 column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)})
sid = choose_study(key="study_edit")
if sid is None:
    st.stop()
study = assignment.get_study(engine=eng, study_id=sid)
bid = study.benchmark_id
with st.form("study"):
    labels_per_item = st.number_input("Labels wanted per item", min_value=1, max_value=20, value=study.labels_per_item)
    sample_all = st.radio("Items in the study", ["all", "sample"], index=0 if study.records_per_domain is None else 1,
                          format_func={"all": "All items", "sample": "A seeded sample of records per domain"}.get,
                          horizontal=True)
    records_per_domain = st.number_input("Records per domain (sample)", min_value=1,
                                         value=study.records_per_domain or 25)
    sample_seed = st.number_input("Sample seed", min_value=0, value=study.sample_seed)
    mode = st.radio("Task", list(assignment.MODES), index=list(assignment.MODES).index(study.mode),
                    format_func={"pick": "Pick the best response", "ranking": "Rank all responses"}.get,
                    horizontal=True)
    quota = st.number_input("Quota per annotator (0: none)", min_value=0, value=study.quota_per_annotator or 0)
    one_per_record = st.checkbox("At most one item per record per annotator", value=study.one_item_per_record,
                                 help="Someone who read a record's four responses under one prompt would recognise them under the next.")
    lease = st.number_input("Lease (seconds an item stays reserved for an annotator)", min_value=10,
                            value=study.lease_seconds)
    st.markdown("**Crowd participants** (the consent text and the public link: *Crowd study* below)")
    c1, c2 = st.columns(2)
    completion_code = c1.text_input("Completion code", value=study.completion_code or "")
    screenout_code = c2.text_input("Screen-out code", value=study.screenout_code or "")
    c3, c4, c5 = st.columns(3)
    check_rate = c3.number_input("Attention-check rate", min_value=0.0, max_value=0.5, step=0.01,
                                 value=float(study.check_rate or 0.0))
    check_fail_limit = c4.number_input("Failed checks allowed before the action (0: no limit)", min_value=0,
                                       value=study.check_fail_limit or 0)
    check_action = c5.radio("Check action", list(assignment.CHECK_ACTIONS),
                            index=list(assignment.CHECK_ACTIONS).index(study.check_action))
    c6, c7 = st.columns(2)
    qualification_items = c6.number_input("Qualification items (0: none)", min_value=0, value=study.qualification_items)
    qualification_pass = c7.text_input("Qualification pass mark (e.g. 0.8 or 4/5)",
                                       value="" if study.qualification_pass is None else f"{study.qualification_pass:g}")
    if st.form_submit_button("Save settings", type="primary"):
        try:
            crowd: dict = {"check_rate": float(check_rate),
                           "check_fail_limit": int(check_fail_limit), "check_action": check_action,
                           "qualification_items": int(qualification_items),
                           "completion_code": completion_code.strip() or None,
                           "screenout_code": screenout_code.strip() or None}
            if qualification_pass.strip():
                crowd["qualification_pass"] = float(parse_share(qualification_pass.strip(), flag="qualification pass mark"))
            study = assignment.update_study(
                engine=eng, study_id=sid, labels_per_item=int(labels_per_item), mode=mode,
                records_per_domain=0 if sample_all == "all" else int(records_per_domain), sample_seed=int(sample_seed),
                quota_per_annotator=int(quota), one_item_per_record=one_per_record, lease_seconds=int(lease),
                actor=actor, **crowd,
            )
            st.success("Saved.")
        except (assignment.StudyError, ScheduleError, ValueError) as exc:
            st.error(str(exc))

with st.expander("New study over this benchmark (a pilot, the main run, one per domain)"):
    with st.form("new_study", clear_on_submit=True):
        new_name = st.text_input("Name (letters, digits, . _ -)", key="new_study_name")
        copy = st.checkbox(f"Start from the settings of {study.name!r} (not its people, link or labels)", value=True,
                           key="new_study_copy")
        if st.form_submit_button("Create study"):
            try:
                made = assignment.create_study(engine=eng, name=new_name, benchmark_id=bid,
                                               copy_from=sid if copy else None)
                st.session_state["study_id"] = made.id
                st.success(f"Created {made.name!r}: choose it above to edit it.")
            except (assignment.StudyError, ValueError) as exc:
                st.error(str(exc))

# The rating questions asked besides the pick (rmgap_annot.questions): a preset, or the study's own JSON.
st.subheader("Rating questions")
asked = annotation.study_questions(engine=eng, study_id=study.id)
CUSTOM = "custom"
choices = [*questions.PRESETS, CUSTOM]
# Keyed by what is stored: after a save the widgets start again from the saved questions.
version = f"{study.id}-{hash(questions.dumps(asked))}"
if saved := st.session_state.pop("questions_saved", None):
    st.success(saved)
with st.form(f"questions-{version}"):
    preset = st.selectbox(
        "Questions", choices, index=choices.index(questions.preset_name(asked) or CUSTOM),
        format_func={"rmgap": "RMGAP: the request's naturalness (1-5)",
                     "prb-human-check": "Personalized RewardBench human check (4 questions per response)",
                     "none": "None: the pick (or ranking) only", CUSTOM: "Custom: the JSON below"}.get,
    )
    custom = st.text_area(
        "Questions as JSON (used with Custom)", value=questions.dumps(asked, indent=2), height=220,
        help='A list of {"name", "text", "levels": [{"value", "label"}, ...] or "yes/no", '
             '"required": true|false, "about": "prompt"|"response"}.',
    )
    if st.form_submit_button("Save questions"):
        try:
            chosen = questions.parse_questions(custom if preset == CUSTOM else preset)
        except questions.QuestionError as exc:
            st.error(f"Not saved: {exc}")
        else:
            assignment.update_study(engine=eng, study_id=study.id, questions_json=questions.dumps(chosen),
                                    actor=actor)
            st.session_state["questions_saved"] = (f"Saved: {len(chosen)} question(s)." if chosen
                                                   else "Saved: no rating questions.")
            st.rerun()
st.caption(", ".join(f"{q.name} ({'each response' if q.about == 'response' else 'the request'}"
                     f"{'' if q.required else ', optional'})" for q in asked) or "No rating questions.")

counts = assignment.study_item_count(engine=eng, study_id=sid)
ov = assignment.overview(engine=eng, study_id=sid)
st.subheader("In the study")
st.write(", ".join(f"{d}: {n:,} items" for d, n in counts.items()) + f" · total {ov.items:,}")
target = ov.items * ov.labels_per_item
st.progress(min(1.0, ov.labels / target) if target else 0.0,
            text=f"{ov.labels:,} of {target:,} labels; {ov.complete_items:,} items complete")
if ov.late_labels or ov.over_target_items:
    st.caption(
        f"{ov.over_target_items:,} items over their target; {ov.late_labels:,} late label(s) "
        "(submitted after the item's lease expired: kept, since an annotator did the work)."
    )
st.caption("Edit the annotators' guidelines on the Guidelines page.")

# Lab accounts label the study they joined last; crowd participants arrive by the study's link.
with st.form("study_assign"):
    lab = [u.name for u in list_users(engine=eng) if u.role == "annotator" and not is_participant_name(u.name)]
    who = st.multiselect("Annotators who label this study from now on", lab, key="study_assign_who")
    if st.form_submit_button("Assign"):
        try:
            assign_to_study(engine=eng, study_id=sid, names=who, actor=actor)
        except (ValueError, StudyNotFound) as exc:
            st.error(str(exc))
        else:
            st.success(f"{len(who)} annotator(s) now label this study.")

# How many records a target precision needs, next to the sample-size setting above.
st.subheader("Sample size for a target precision")
pc1, pc2 = st.columns(2)
plan_half_width = pc1.number_input("Half-width of the 95% interval", min_value=0.01, max_value=0.5, value=0.05, step=0.01,
                                   key="plan_half_width")
plan_metric = pc2.selectbox("Metric", list(planning.METRICS), key="plan_metric")


@st.cache_data(show_spinner="Planning...", max_entries=16)
def cached_plan(benchmark_id: int, fingerprint: tuple, metric: str, half_width: float, labels_per_item: int) -> dict:  # noqa: ARG001
    return planning.plan_for_benchmark(engine=eng, benchmark_id=benchmark_id, metric=metric, half_width=half_width,
                                       labels_per_item=labels_per_item)


try:
    plan = cached_plan(bid, report_fingerprint(engine=eng, benchmark_id=bid), plan_metric, float(plan_half_width),
                       int(study.labels_per_item))
except planning.PlanError as exc:
    st.info(f"{exc}. Without pilot labels, plan from assumptions with "
            "`rmgap-annot plan --half-width 0.05 --accuracy 0.7 --icc 0.1`.")
else:
    st.dataframe(
        [
            {"domain": d, "records needed": e.get("records_needed"), "items": e.get("items_needed"),
             "labels": e.get("labels_needed"), "expected": e.get("expected"), "ICC": e.get("icc"),
             "design effect": e.get("design_effect"), "records now": e.get("records_now"),
             "half-width now": e.get("half_width_now"), "note": e.get("reason") or e.get("note") or ""}
            for d, e in plan["domains"].items()
        ],
        hide_index=True,
    )
    st.caption(f"{plan['labels_per_item']} labels per item (the setting above); {plan['method']}. "
               "Set 'Records per domain' to at least the records needed.")

# Consent text, the public link and a preview of what annotators see (issue #14).
from pages.crowd_study import crowd_section  # noqa: E402

crowd_section(eng, bid, st.session_state["user_id"], study_id=sid, actor=actor)
