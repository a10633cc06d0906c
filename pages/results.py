from pages.common import require_researcher, choose_benchmark, engine

require_researcher()

# Results: does the benchmark hold? Agreement, human accuracy, naturalness,
# position bias, annotators, items. A thin view over
# rmgap_annot.report.build_report: every number comes from there, cached per
# benchmark and label fingerprint (a new label recomputes, an idle page does
# not). Benchmark text is untrusted: st.text / st.markdown only, never HTML.

import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from rmgap_annot.annotation import FLAG_REASONS, flag_counts, flags_for_benchmark  # noqa: E402
from rmgap_annot.labels_io import export_labels  # noqa: E402
from rmgap_annot.report import build_report, item_detail, report_fingerprint  # noqa: E402
from rmgap_annot.settings import DOMAINS  # noqa: E402

st.title("Results")
benchmark_id = choose_benchmark()
if benchmark_id is None:
    st.stop()

# Flags first: an item annotators call broken, offensive or giving the answer away
# needs a look whatever the statistics say (and there may be flags before labels).
flags = flags_for_benchmark(engine=engine(), benchmark_id=benchmark_id)
if flags:
    with st.expander(f"Flagged by annotators: {len(flags)} flag(s) on {len({f.item_id for f in flags})} item(s)"):
        st.dataframe(
            pd.DataFrame(
                [{"item_id": f.item_id, "record_id": f.record_id, "domain": f.domain,
                  "reason": FLAG_REASONS.get(f.reason, f.reason), "annotator": f.annotator,
                  "flagged_at": f.flagged_at, "prompt": f.prompt} for f in flags]
            ),
            hide_index=True,
        )


@st.cache_data(show_spinner="Computing the report (1,000 bootstrap draws)...", max_entries=8)
def cached_report(benchmark_id: int, fingerprint: tuple) -> dict:  # noqa: ARG001 - the fingerprint is the cache key
    return build_report(engine=engine(), benchmark_id=benchmark_id)


@st.cache_data(show_spinner=False, max_entries=4)
def cached_export(benchmark_id: int, fingerprint: tuple) -> bytes:  # noqa: ARG001
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "labels.csv"
        export_labels(engine=engine(), benchmark_id=benchmark_id, out=out)
        return out.read_bytes()


fingerprint = report_fingerprint(engine=engine(), benchmark_id=benchmark_id)
report = cached_report(benchmark_id, fingerprint)
summary = report["agreement"]["summary"]
if summary["n_labels"] == 0:
    st.info("No labels yet. Annotators label on the Annotate page, or import labels with `rmgap-annot labels import FILE`.")
    st.stop()

st.caption(
    f"{summary['n_labels']:,} labels by {summary['n_annotators']} annotators on "
    f"{sum(summary['n_items_labelled'].values()):,} of {sum(summary['n_items'].values()):,} items; "
    f"{summary['n_cant_decide']:,} Can't decide (missing in agreement). Intervals: 95% percentile bootstrap, "
    f"{report['agreement']['bootstrap']['draws']} draws, seed {report['agreement']['bootstrap']['seed']}."
)

c1, c2 = st.columns(2)
c1.download_button("Download labels (CSV)", cached_export(benchmark_id, fingerprint), file_name="labels.csv", mime="text/csv")
c2.download_button(
    "Download report (JSON)", json.dumps(report, ensure_ascii=False, indent=2), file_name="report.json", mime="application/json"
)


def _fmt(v, pct=False) -> str:  # noqa: ANN001
    if v is None:
        return "n/a"
    return f"{v * 100:.1f}%" if pct else f"{v:.3f}"


def interval_chart(rows: list[dict], value: str, title: str, domain_field: str = "domain") -> alt.Chart:
    """Points with interval bars; n/a rows are left out of the chart (the table says why)."""
    df = pd.DataFrame([r for r in rows if r[value] is not None])
    if df.empty:
        return None
    base = alt.Chart(df).encode(y=alt.Y(f"{domain_field}:N", sort=None, title=None))
    bars = base.mark_rule().encode(x=alt.X("lo:Q", title=title), x2="hi:Q")
    points = base.mark_point(filled=True, size=80).encode(x=f"{value}:Q", tooltip=list(df.columns))
    return bars + points


tab_agree, tab_human, tab_nat, tab_bias, tab_people, tab_items = st.tabs(
    ["Agreement", "Human accuracy", "Naturalness", "Position bias", "Annotators", "Items"]
)

with tab_agree:
    for key, title in (("choice_alpha", "Krippendorff's alpha on the pick (nominal)"), ("naturalness_alpha", "Krippendorff's alpha on naturalness (ordinal, 1-5)")):
        st.subheader(title)
        rows = []
        for d in (*DOMAINS, "All"):
            a = report["agreement"][key][d]
            ci = a.get("ci") or [None, None]
            rows.append({"domain": d, "alpha": a["alpha"], "lo": ci[0], "hi": ci[1], "items": a["n_items"], "note": a.get("reason", "")})
        chart = interval_chart(rows, "alpha", "alpha")
        if chart is not None:
            st.altair_chart(chart, use_container_width=True)
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.subheader("Percent agreement and Fleiss' kappa")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "domain": d,
                    "percent agreement": _fmt(report["agreement"]["percent_agreement"][d]["value"], True),
                    "Fleiss' kappa": _fmt(report["agreement"]["fleiss_kappa"][d]["kappa"]),
                    "note": report["agreement"]["fleiss_kappa"][d].get("reason", ""),
                    "Can't decide": report["agreement"]["cant_decide"][d],
                }
                for d in (*DOMAINS, "All")
            ]
        ),
        hide_index=True,
    )
    ck = report["agreement"]["cohen_kappa"]
    if ck["annotators"]:
        st.subheader("Cohen's kappa between annotators (shared items)")
        st.dataframe(pd.DataFrame(ck["kappa"], index=ck["annotators"], columns=ck["annotators"]))

with tab_human:
    h = report["human"]
    metric = st.radio("Metric", ["BoN", "Pair", "Consistency", "label_accuracy"], horizontal=True)
    rows = []
    for d in (*DOMAINS, "Avg"):
        ci = h["ci"][metric][d] or [None, None]
        rows.append({"domain": d, metric: h[metric][d], "lo": ci[0], "hi": ci[1], "note": h["reasons"][metric].get(d, "")})
    chart = interval_chart(rows, metric, f"human {metric}")
    if chart is not None:
        st.altair_chart(chart, use_container_width=True)
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(
        "BoN: the plurality pick is the designated winner (a tie or no pick is wrong). Pair: ranking-mode labels only. "
        "Consistency: the three paraphrased prompts of a group get the same plurality pick. Avg: the plain mean of the domains, as RMGAP computes it."
    )
    if report.get("scorers"):
        st.subheader("Reward models on the same items")
        st.json(report["scorers"], expanded=False)

with tab_nat:
    nat = report["naturalness"]
    hist = [
        {"domain": d, "role": r, "rating": int(k), "labels": n}
        for d in DOMAINS
        for r, s in nat["by_domain_role"][d].items()
        for k, n in s["counts"].items()
    ]
    df = pd.DataFrame(hist)
    if df["labels"].sum():
        st.altair_chart(
            alt.Chart(df).mark_bar().encode(
                x=alt.X("rating:O", title="naturalness (1-5)"), y=alt.Y("labels:Q"), color="role:N",
                xOffset="role:N", column=alt.Column("domain:N", sort=list(DOMAINS)), tooltip=["domain", "role", "rating", "labels"],
            )
        )
    st.dataframe(
        pd.DataFrame([{"domain": d, "n": s["n"], "mean": _fmt(s["mean"]), "rated 4-5": _fmt(s["share_4_5"], True)} for d, s in nat["by_domain"].items()]),
        hide_index=True,
    )

with tab_bias:
    pb = report["position_bias"]
    df = pd.DataFrame([{"slot": k, "picks": v} for k, v in pb["counts"].items()])
    st.altair_chart(alt.Chart(df).mark_bar().encode(x="slot:N", y="picks:Q", tooltip=["slot", "picks"]), use_container_width=True)
    if pb["chi2"] is None:
        st.info(f"n/a: {pb['reason']}")
    else:
        st.write(f"Chi-square against uniform: {pb['chi2']:.2f} (df {pb['dof']}), p = {pb['p_value']:.3g}, n = {pb['n']}.")
        if pb.get("warning"):
            st.caption(pb["warning"])

with tab_people:
    people = pd.DataFrame(report["annotators"])
    plot = people.dropna(subset=["median_seconds"])
    if not plot.empty:
        st.altair_chart(
            alt.Chart(plot).mark_circle().encode(
                x=alt.X("median_seconds:Q", title="median seconds per item"), y=alt.Y("accuracy:Q", title="label accuracy"),
                size="n_labels:Q", tooltip=["annotator", "n_labels", "accuracy", "median_seconds", "share_fast", "loo_alpha"],
            ),
            use_container_width=True,
        )
    st.dataframe(people, hide_index=True)
    st.caption("loo_alpha: the pooled pick alpha without this annotator (higher than the pooled alpha: they lower agreement).")

with tab_items:
    items = pd.DataFrame(report["items"])
    items["votes"] = items["votes"].map(lambda v: ", ".join(f"{k}: {n}" for k, n in v.items()))
    n_flags = flag_counts(engine=engine(), benchmark_id=benchmark_id)
    items["flags"] = items["item_id"].map(lambda i: n_flags.get(i, 0))
    f1, f2, f3 = st.columns(3)
    domains = f1.multiselect("Domain", list(DOMAINS), default=list(DOMAINS))
    only = f2.selectbox("Show", ["all items", "plurality is not the winner", "ties", "low naturalness (< 3)", "flagged"])
    search = f3.text_input("Record id contains")
    view = items[items["domain"].isin(domains)]
    if only == "plurality is not the winner":
        view = view[~view["matches_winner"]]
    elif only == "ties":
        view = view[view["tie"]]
    elif only == "low naturalness (< 3)":
        view = view[view["mean_naturalness"].fillna(5) < 3]
    elif only == "flagged":
        view = view[view["flags"] > 0]
    if search:
        view = view[view["record_id"].str.contains(search, regex=False)]
    st.caption(f"{len(view):,} items (click a column header to sort).")
    st.dataframe(view, hide_index=True, use_container_width=True)
    if len(view):
        chosen = st.selectbox("Open an item", view["item_id"].tolist(), format_func=lambda i: f"item {i}")
        if chosen is not None:
            detail = item_detail(engine=engine(), item_id=int(chosen))
            st.markdown(f"**{detail['domain']}** · record `{detail['record_id']}` · group {detail['group']} · prompt {detail['prompt_index']} ({detail['role']}) · winner `{detail['winner_key']}`")
            st.text(detail["prompt"])
            for resp in detail["responses"]:
                with st.expander(f"{resp['key']}" + (" (winner)" if resp["key"] == detail["winner_key"] else "")):
                    st.markdown(resp["text"])
            st.dataframe(pd.DataFrame(detail["labels"]), hide_index=True)
