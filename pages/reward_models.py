from pages.common import require_researcher, choose_benchmark, engine, mark_simulated

require_researcher()

# Reward models: the scorers, a form that starts a scoring job (a worker
# process, so leaving the page does not stop it), its progress polled from
# the ScoringJob table, and human vs model on the identical labelled items.
# Every number comes from rmgap_annot.stats.comparison; this page only draws.

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from rmgap_annot import jobs  # noqa: E402
from rmgap_annot.catalog import list_benchmarks  # noqa: E402
from rmgap_annot.stats.comparison import comparison_key, list_scorers, side_by_side  # noqa: E402
from rmgap_annot.safe_markdown import escape  # noqa: E402
from rmgap_annot.scoring import AGGREGATIONS, FAMILIES, JUDGE_MODES, ScoringError, default_name, parse_spec, ScoringOptions  # noqa: E402

st.title("Reward models")
benchmark_id = choose_benchmark(key="rm_benchmark")
if benchmark_id is None:
    st.stop()
eng = engine()
bench_name = next(b.name for b in list_benchmarks(engine=eng) if b.id == benchmark_id)

st.subheader("Scorers")
scorers = list_scorers(engine=eng, benchmark_id=benchmark_id)
if scorers:
    st.dataframe(pd.DataFrame(scorers), hide_index=True, width="stretch")
else:
    st.caption("No scorer yet. Start one below, run `rmgap-annot score`, or import a file with `rmgap-annot scores import`.")

with st.expander("Score with a reward model or baseline", expanded=not scorers):
    with st.form("start_scoring"):
        spec = st.text_input("Scorer", placeholder="scalar:/models/skywork-0.6b", help=f"Families: {', '.join(FAMILIES)}; dpo:POLICY,REFERENCE")
        name = st.text_input("Name (optional)")
        cols = st.columns(4)
        items = cols[0].radio("Items", ["labelled", "all"], help="labelled: only items people labelled (fast)")
        device = cols[1].selectbox("Device", ["auto", "cpu", "cuda"])
        dtype = cols[2].selectbox("Dtype", ["auto", "float32", "bfloat16", "float16"])
        batch_size = cols[3].number_input("Batch size", 1, 512, 8)
        cols = st.columns(4)
        max_length = cols[0].number_input("Max length (tokens)", 8, 131072, 4096)
        aggregation = cols[1].selectbox("Aggregation (lm-logprob, dpo)", AGGREGATIONS, index=AGGREGATIONS.index("discounted_sum"))
        judge_mode = cols[2].selectbox("Judge mode", JUDGE_MODES)
        output_index = cols[3].number_input("Output index (scalar)", 0, 64, 0)
        cols = st.columns([3, 1, 1])
        endpoint = cols[0].text_input("Endpoint (judge, OpenAI-compatible)", placeholder="http://host:8000/v1")
        seed = cols[1].number_input("Seed", 0, 2**31 - 1, 0)
        trust = cols[2].checkbox("Trust remote code", help="Runs code from the model's folder: only for models you trust.")
        submitted = st.form_submit_button("Start scoring")
    if submitted:
        options = {"device": device, "dtype": dtype, "batch_size": int(batch_size), "max_length": int(max_length),
                   "aggregation": aggregation, "judge_mode": judge_mode, "output_index": int(output_index),
                   "endpoint": endpoint.strip() or None, "seed": int(seed)}
        try:
            parse_spec(spec)
            job_name = name.strip() or default_name(spec.strip(), ScoringOptions(aggregation=aggregation, judge_mode=judge_mode))
        except ScoringError as exc:
            st.error(str(exc))
        else:
            job_id = jobs.start_job(engine=eng, db_url=eng.url.render_as_string(hide_password=False), spec=spec.strip(),
                                    name=job_name, benchmark=bench_name, items=items, options=options, trust_remote_code=trust)
            st.success(f"Started job {job_id} ({escape(job_name)}). It keeps running if you leave this page.")


@st.fragment(run_every=2)
def job_progress() -> None:
    recent = jobs.list_jobs(engine=eng, limit=10)
    changed, st.session_state["rm_jobs_done"] = jobs.newly_finished(st.session_state.get("rm_jobs_done"), recent)
    if changed:  # a new scorer exists: redraw the whole page, not only this fragment
        st.rerun(scope="app")
    if not recent:
        return
    st.subheader("Scoring jobs")
    for job in recent:
        label = f"#{job.id} {escape(job.scorer_name)}: {job.status}"
        if job.status in ("queued", "running"):
            doing = f" · {job.phase}" if job.phase else ""
            st.progress(job.fraction, text=f"{label}{doing} ({job.done}/{job.total or '?'} items)")
        elif job.status == "failed":
            st.error(f"{label}: {escape(str(job.error))}")
        else:
            st.caption(f"{label} ({job.done}/{job.total} items)")


job_progress()

st.subheader("Human vs reward models on the same labelled items")
mark_simulated(benchmark_id)


# Cached by what the numbers depend on (labels, exclusions, every scorer's scores): the
# 1,000-draw intervals for every scorer are computed once, not on each visit.
@st.cache_data(show_spinner="Comparing people and reward models (1,000 bootstrap draws)...", max_entries=8)
def cached_side_by_side(benchmark_id: int, key: tuple) -> dict:  # noqa: ARG001 - the key is the cache key
    return side_by_side(engine=engine(), benchmark_id=benchmark_id)


data = cached_side_by_side(benchmark_id, comparison_key(engine=eng, benchmark_id=benchmark_id))
if not data["metrics"]:
    st.info("Needs labels and at least one scorer.")
    st.stop()
st.caption(f"{data['n_labelled_items']} labelled items. Pair, BoN and Consistency as RMGAP defines them (Consistency: "
           "identical full rankings on a group's three prompts; for people, from ranking-mode labels' Borda order). "
           "TopConsistency: the same top pick on all three prompts, for people and models alike. Groups count only when "
           "all three prompts are labelled.")
frame = pd.DataFrame(data["metrics"])
for metric in ("BoN", "Pair", "Consistency", "TopConsistency"):
    part = frame[frame["metric"] == metric]
    # float dtype, so a metric that is undefined (None) shows as "n/a", not "None".
    table = part.pivot(index="who", columns="domain", values="value")[["Chat", "Writing", "Reasoning", "Safety", "Avg"]].astype(float)
    st.markdown(f"**{metric}** · on the {data['n_labelled_items']} labelled items, for people and every scorer alike "
                "(report.html's scorer columns use every item a scorer scored)")
    st.dataframe(table.style.format("{:.1%}", na_rep="n/a"), width="stretch")
    chart = (
        alt.Chart(part.dropna(subset=["value"]))
        .mark_bar()
        .encode(
            x=alt.X("who:N", title=None, axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("value:Q", title=metric, axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("who:N", title=None),
            column=alt.Column("domain:N", sort=["Chat", "Writing", "Reasoning", "Safety", "Avg"], title=None),
            tooltip=["who", "domain", alt.Tooltip("value:Q", format=".1%")],
        )
        .properties(width=110, height=180)
    )
    st.altair_chart(chart)

st.markdown("**Do people and the scorer differ?** Human-majority BoN minus scorer BoN on the same items, with a 95% interval "
            "that resamples whole records and a clustered McNemar test (Durkalski), p-values adjusted across scorers "
            f"({data['adjust']}); the scorer's BoN against chance (0.25); agreement of its top pick with the human pick.")
tests = pd.DataFrame(data["tests"])
if len(tests):
    pct = {c: "{:.1%}" for c in ("human BoN", "scorer BoN", "human - scorer", "lo", "hi", "top pick = human pick")}
    st.dataframe(
        tests.style.format({**pct, **{c: "{:.3g}" for c in tests.columns if c.startswith(("p ", "scorer BoN vs"))}}, na_rep="n/a"),
        hide_index=True, width="stretch",
    )
