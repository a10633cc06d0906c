from pages.common import require_researcher, choose_benchmark, choose_label_scope, engine, mark_simulated

require_researcher()

# Results: does the benchmark hold? Agreement, human accuracy, naturalness,
# position bias, annotators, items. A thin view over
# rmgap_annot.report.build_report: every number comes from there, cached per
# benchmark and label fingerprint (a new label recomputes, an idle page does
# not). Benchmark text is untrusted: st.text / st.markdown only, never HTML.

import functools  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import altair as alt  # noqa: E402
import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402

from rmgap_annot.accounts import list_users  # noqa: E402
from rmgap_annot.annotation import FLAG_REASONS, flag_counts, flags_for_benchmark  # noqa: E402
from rmgap_annot.stats.comparison import comparison_key  # noqa: E402
from rmgap_annot.exclusions import ExclusionError, active_exclusions, exclude_annotator, include_annotator  # noqa: E402
from rmgap_annot.labels_io import export_labels  # noqa: E402
from rmgap_annot.stats import referee, truth  # noqa: E402
from rmgap_annot.report import build_report, item_detail, report_fingerprint  # noqa: E402
from rmgap_annot import format_sections, results_tables  # noqa: E402
from rmgap_annot.safe_markdown import escape, without_remote_images  # noqa: E402
from rmgap_annot.settings import DOMAINS  # noqa: E402
from rmgap_annot.studies import public_names_by_account  # noqa: E402
from rmgap_annot.stats.bootstrap import DRAWS, SEED  # noqa: E402
from rmgap_annot.verdict import shallow_cue_cached  # noqa: E402

st.title("Results")
# Every table shows an undefined number as "n/a"; its reason is in the row's note (rmgap_annot.results_tables).
_table = functools.partial(st.dataframe, placeholder=results_tables.NA)
benchmark_id = choose_benchmark()
if benchmark_id is None:
    st.stop()
study_ids = choose_label_scope(benchmark_id, key="results_study")  # one study, or all pooled (`--study all`)

# Flags first: an item annotators call broken, offensive or giving the answer away
# needs a look whatever the statistics say (and there may be flags before labels).
flags = flags_for_benchmark(engine=engine(), benchmark_id=benchmark_id)
if flags:
    with st.expander(f"Flagged by annotators: {len(flags)} flag(s) on {len({f.item_id for f in flags})} item(s)"):
        _table(
            pd.DataFrame(
                [{"item_id": f.item_id, "record_id": f.record_id, "domain": f.domain,
                  "reason": FLAG_REASONS.get(f.reason, f.reason), "annotator": f.annotator,
                  "flagged_at": f.flagged_at, "prompt": f.prompt} for f in flags]
            ),
            hide_index=True,
        )


# What-if exclusions (not stored) are part of the cache key, like the stored ones (in the fingerprint).
annotator_names = [u.name for u in list_users(engine=engine()) if u.n_labels]
mark_simulated(benchmark_id)
public_name = public_names_by_account(engine=engine(), benchmark_id=benchmark_id)  # the report names coders so


def as_coder(account: str) -> str:
    return f"{public_name[account]} · {account}" if account in public_name else account


what_if = st.multiselect(
    "What if these annotators were excluded? (a one-off view; nothing is stored)", annotator_names, key="results_what_if",
    format_func=as_coder,
)


@st.cache_data(show_spinner="Computing the report (1,000 bootstrap draws)...", max_entries=8)
def cached_report(benchmark_id: int, fingerprint: tuple, what_if: tuple = (), artifacts_ready: bool = False,  # noqa: ARG001 - the fingerprint (and whether the artifact fit is cached, for the verdict) is the cache key
                  study_ids: tuple[int, ...] | None = None) -> dict:
    return build_report(engine=engine(), benchmark_id=benchmark_id, exclude=list(what_if),
                        study_ids=list(study_ids) if study_ids is not None else None)


def labels_csv(benchmark_id: int, study_ids: tuple[int, ...] | None = None) -> bytes:
    """Built only when the researcher clicks Download (a callable ``data=``), so no
    /media URL holding every label exists until then; see README's reliability section."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "labels.csv"
        export_labels(engine=engine(), benchmark_id=benchmark_id, out=out,
                      study_ids=list(study_ids) if study_ids is not None else None)
        return out.read_bytes()


# --- Artifact checks (section start) ------------------------------------------------
# Shallow-cue ceiling and organic-vs-tailored prompts (rmgap_annot.stats.artifacts).
# Fitting takes seconds to tens of seconds, so the page only ever reads the cached
# fit; a button fits it. The human columns come from the current labels.


@st.cache_data(show_spinner=False, max_entries=8)
def _artifact_checks_cached(benchmark_id: int, fingerprint: tuple, organic) -> dict | None:  # noqa: ANN001, ARG001
    from rmgap_annot.stats.artifacts import cached_artifact_checks

    return cached_artifact_checks(engine=engine(), benchmark_id=benchmark_id, organic=organic)


def _with_ci(v, ci, pct=True) -> str:  # noqa: ANN001
    if v is None:
        return "n/a"
    if pct:
        return f"{v * 100:.1f}%" + ("" if not ci else f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]")
    return f"{v:.3f}" + ("" if not ci else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def _weights_chart(features: list[dict], title: str):  # noqa: ANN202
    df = pd.DataFrame(features[:12])
    if df.empty:
        return None
    df["lo"] = df["weight"] - df["weight_sd"]
    df["hi"] = df["weight"] + df["weight_sd"]
    y = alt.Y("feature:N", sort=None, title=None, axis=alt.Axis(labelLimit=320))
    bars = alt.Chart(df).mark_bar().encode(
        x=alt.X("weight:Q", title=title), y=y, color=alt.Color("family:N", title="cue family"),
        tooltip=["feature", "family", "description", alt.Tooltip("weight:Q", format="+.3f"), alt.Tooltip("weight_sd:Q", format=".3f")],
    )
    return bars + alt.Chart(df).mark_rule().encode(x="lo:Q", x2="hi:Q", y=y)


def artifact_checks_section(benchmark_id: int) -> None:
    """The "Artifact checks" section: can surface cues find the winner, do the prompts read as organic?"""
    from rmgap_annot.formats.rmgap import format_errors
    from rmgap_annot.stats.artifacts import OrganicFileError, artifact_checks, organic_sample_path, read_organic_prompts

    st.header("Artifact checks")
    st.caption(
        "Shallow-cue ceiling: a logistic regression over surface features of (prompt, response) pairs, cross-validated "
        "with folds grouped by record, picks each item's winner; if it rivals people, the benchmark partly tests cue "
        "matching. Organic vs tailored: how well a classifier separates the benchmark's prompts from organic user prompts "
        "(AUC 0.5: indistinguishable)."
    )
    source = st.radio("Organic prompts", ["bundled sample", "upload a file", "none"], horizontal=True, key="artifacts_organic_source")
    organic = None
    if source == "bundled sample":
        organic = read_organic_prompts(organic_sample_path())
    elif source == "upload a file":
        up = st.file_uploader("Organic prompts: JSONL with a \"prompt\" field, or plain text, one per line", type=["jsonl", "txt"], key="artifacts_organic_file")
        if up is None:
            st.info("Choose a file, or use the bundled sample.")
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(up.name).name
            path.write_bytes(up.getvalue())
            try:
                organic = read_organic_prompts(path)
            except OrganicFileError as exc:
                st.error(format_errors(exc.errors))
                return
    result = _artifact_checks_cached(benchmark_id, report_fingerprint(engine=engine(), benchmark_id=benchmark_id), organic)
    if result is None:
        st.info("Not computed yet for this benchmark and organic file (the full 13k-item benchmark takes about 15 s; then it is cached).")
        if not st.button("Compute artifact checks", key="artifacts_compute"):
            return
        with st.status("Fitting the artifact checks...", expanded=True) as status:
            result = artifact_checks(engine=engine(), benchmark_id=benchmark_id, organic=organic, progress=status.write)
            status.update(label=f"Fitted in {result['fit_seconds']:.1f} s", state="complete", expanded=False)
        _artifact_checks_cached.clear()
    sc = result["shallow_cue"]
    st.subheader("Shallow-cue ceiling")
    if "reason" in sc:
        st.info(f"n/a: {sc['reason']}")
    else:
        metric = st.radio("Metric", ["BoN", "Pair"], horizontal=True, key="artifacts_metric")
        domains = list(sc["methods"]["shallow_model"][metric])
        rows = [{"method": label, **{d: _with_ci(sc["methods"][m][metric][d], sc["methods"][m]["ci"][metric][d]) for d in domains}}
                for m, label in sc["method_labels"].items()]
        human = result.get("human", {})
        if metric == "BoN" and "BoN" in human:
            rows.append({"method": "people (plurality pick, labelled items)", **{d: _with_ci(human["BoN"].get(d), human["ci"]["BoN"].get(d)) for d in domains}})
        rows.append({"method": "chance", **{d: _with_ci(sc["chance"][metric], None) for d in domains}})
        _table(pd.DataFrame(rows), hide_index=True)
        if "BoN" not in human:
            st.caption(f"People: n/a ({human.get('reason')}).")
        on = sc.get("on_labelled_items", {})
        if "difference" in on:
            st.markdown("**On the labelled items only** (the same items for both; paired bootstrap over records)")
            _table(
                pd.DataFrame([
                    {"domain": d, "items": on["n_items"].get(d, ""), "people BoN": _with_ci(on["people_BoN"][d], on["ci"]["people_BoN"][d]),
                     "shallow-cue model BoN": _with_ci(on["shallow_model_BoN"][d], on["ci"]["shallow_model_BoN"][d]),
                     "people minus model": _with_ci(on["difference"][d], on["ci"]["difference"][d])}
                    for d in on["difference"]
                ]),
                hide_index=True,
            )
        st.caption(
            f"{sc['n_items']:,} items, {sc['n_records']:,} records, {sc['n_folds']} folds grouped by record; 95% percentile "
            f"bootstrap over records within each domain ({result['bootstrap']['draws']} draws). Avg: the plain mean of the domains."
        )
        chart = _weights_chart(sc["features"], "standardised weight (positive: the cue favours the winner)")
        if chart is not None:
            st.altair_chart(chart, use_container_width=True)
        st.caption(f"Top cue: {sc['top_feature']} ({sc['top_family']}). Bars: mean over folds; lines: one sd.")
        ablation = sc.get("family_ablation") or []
        if ablation:
            _table(
                pd.DataFrame([{"cue family": r["family"], "BoN Avg without it": _with_ci(r["BoN_without"], None),
                               "drop (points)": "n/a" if r["BoN_drop"] is None else f"{r['BoN_drop'] * 100:+.1f}"} for r in ablation]),
                hide_index=True,
            )
            st.caption(
                "Correlated cues share their weight; refitting without a family shows which one the model needs. "
                + (f"Carried by: {sc['carried_by']}." if sc.get("carried_by") else "No family carries it (no drop).")
            )
    org = result["organic"]
    st.subheader("Organic vs tailored prompts")
    if "reason" in org:
        st.info(f"n/a: {org['reason']}")
        return
    st.write(
        f"ROC AUC {_with_ci(org['auc'], org['ci'], pct=False)}: {org['n_benchmark_prompts']:,} benchmark prompts vs "
        f"{org['n_organic']} organic prompts ({org['file']})."
    )
    _table(
        pd.DataFrame([
            {"domain": d, "AUC": _with_ci(r["auc"], r["ci"], pct=False), "mean P(tailored)": _with_ci(r["mean_p_tailored"], None, pct=False),
             "naturalness mean (people)": _with_ci(r.get("naturalness_mean"), None, pct=False),
             "rated 4-5": _with_ci(r.get("naturalness_share_4_5"), None), "ratings": r.get("naturalness_n", 0)}
            for d, r in org["by_domain"].items()
        ]),
        hide_index=True,
    )
    rho = org.get("naturalness_spearman", {})
    st.caption(
        "Spearman correlation of P(tailored) with an item's mean naturalness: "
        + (f"n/a ({rho.get('reason')})" if rho.get("rho") is None else f"{rho['rho']:+.3f} (p = {rho['p_value']:.3g}, {rho['n_items']} items)")
    )
    chart = _weights_chart(org["features"], "standardised weight (positive: looks tailored)")
    if chart is not None:
        st.altair_chart(chart, use_container_width=True)


# --- Artifact checks (section end) --------------------------------------------------


# --- The verdict at a glance (section start) ------------------------------------------
# The first thing on the page: one row per domain, each cell marked by a stated rule with a
# symbol and a word (colour only repeats them). Every number and the sentence come from
# report["verdict"] (rmgap_annot.verdict); the page only draws them.


def verdict_section(report: dict) -> None:
    """The verdict table, its rule in one line, the generated sentence, and verified vs rest per reward model."""
    v = report["verdict"]
    st.subheader("Verdict at a glance")
    columns = v["columns"]
    table = pd.DataFrame(
        [{"domain": r["domain"], **{c["title"]: f"{r['cells'][c['key']]['symbol']} {r['cells'][c['key']]['word']}: "
                                                  f"{r['cells'][c['key']]['text']}" for c in columns}} for r in v["rows"]]
    )
    colours = pd.DataFrame(
        [{"domain": "", **{c["title"]: f"background-color: {r['cells'][c['key']]['colour']}22" for c in columns}} for r in v["rows"]]
    )
    _table(table.style.apply(lambda _: colours, axis=None), hide_index=True, use_container_width=True)
    st.caption("Rule: " + v["rule"])
    st.markdown(escape(v["sentence"]))
    sub = report.get("verified_subset") or {}
    with st.expander("Reward models on the verified items vs the rest"):
        if not sub.get("scorers"):
            st.info(f"n/a: {sub.get('reason', 'no verified-subset numbers')}")
            return
        rows = []
        for name, e in sub["scorers"].items():
            for metric in ("BoN", "Pair", "Consistency", "TopConsistency"):
                for d in (*DOMAINS, "All"):
                    key = "Avg" if d == "All" else d
                    diff = e["difference"][metric][d]
                    rows.append({"scorer": name, "metric": metric, "domain": d,
                                 **{side: _with_ci(e[side][metric].get(key), e[side]["ci"][metric].get(key)) for side in ("all", "verified", "rest")},
                                 "verified - rest": _with_ci(diff.get("difference"), diff.get("ci")),
                                 "p (adjusted)": diff.get("p_adjusted"), "note": diff.get("reason", "")})
        _table(pd.DataFrame(rows), hide_index=True)
        st.caption(sub["method"] + " All/Avg: the difference pools the domains; the metric columns show RMGAP's plain mean of domains.")


# --- The verdict at a glance (section end) --------------------------------------------


# Labels, exclusions and every scorer's scores: new scores recompute the scorers section too.
fingerprint = comparison_key(engine=engine(), benchmark_id=benchmark_id)
report = cached_report(benchmark_id, fingerprint, tuple(sorted(what_if)),
                       shallow_cue_cached(engine=engine(), benchmark_id=benchmark_id, draws=DRAWS, seed=SEED), study_ids)
is_rmgap = report["benchmark_metrics"]["format"] == "rmgap"


def rmgap_only() -> bool:
    """True for RMGAP; for another format, says plainly that the section is RMGAP's (rather than a wall of n/a)."""
    if not is_rmgap:
        st.info(format_sections.RMGAP_ONLY)
    return is_rmgap


if is_rmgap:
    verdict_section(report)
summary = report["agreement"]["summary"]
excluded_note = report["exclusions"]
if excluded_note["excluded"]:
    reasons = {e["annotator"]: e["reason"] for e in excluded_note["stored"]}
    st.warning(
        f"Left out of every number ({excluded_note['n_labels_excluded']:,} labels, still stored): "
        + "; ".join(f"{n} ({reasons.get(n, 'what-if')})" for n in excluded_note["excluded"])
    )
if summary["n_labels"] == 0:
    st.info("No labels yet. Annotators label on the Annotate page, or import labels with `rmgap-annot labels import FILE`.")
    artifact_checks_section(benchmark_id)  # artifact checks need no labels
    st.stop()

if is_rmgap:
    st.caption(
        f"{summary['n_labels']:,} labels by {summary['n_annotators']} annotators on "
        f"{sum(summary['n_items_labelled'].values()):,} of {sum(summary['n_items'].values()):,} items; "
        f"{summary['n_cant_decide']:,} Can't decide (missing in agreement). Intervals: 95% percentile bootstrap resampling "
        f"whole records within each domain, {report['agreement']['bootstrap']['draws']} draws, seed {report['agreement']['bootstrap']['seed']}."
    )
else:
    st.caption(
        f"{report['benchmark_metrics'].get('n_labels', 0):,} labels on {report['benchmark_metrics'].get('n_items', 0):,} "
        f"{format_sections.FORMAT_TITLES.get(report['benchmark_metrics']['format'], '')} items. Intervals: 95% percentile bootstrap "
        "over item groups (items sharing a conversation or candidate set drawn together), within each top-level category."
    )

c1, c2 = st.columns(2)
c1.download_button("Download labels (CSV)", lambda: labels_csv(benchmark_id, study_ids), file_name="labels.csv", mime="text/csv")
c2.download_button(
    "Download report (JSON)", lambda: json.dumps(report, ensure_ascii=False, indent=2), file_name="report.json",
    mime="application/json",
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


def benchmark_metrics_tab(section: dict) -> None:
    """Another format's own metrics under its own names: one table per metric family, people vs each scorer."""
    human = section.get("human") or {}
    st.caption(
        f"{format_sections.FORMAT_TITLES.get(section['format'], section['format'])}'s own metrics, computed as its evaluator "
        "computes them. People: each item's plurality pick, scored by the same rule as a reward model (a tie, a split "
        "or no pick follows the benchmark's tie rule). Cells: value [95% interval]; people − scorer: the difference on the "
        "same items."
    )
    if human.get("reason") and not human.get("metrics"):
        st.info(f"n/a: {human['reason']}")
        return
    if agreement := format_sections.agreement_rows(section):
        st.subheader("Agreement on the pick")
        st.caption("Krippendorff's alpha (nominal) on the pick; a tie answer counts as an answer, Can't decide as none. "
                   "95% intervals resample item groups (a conversation's items together).")
        _table(pd.DataFrame(agreement), hide_index=True, use_container_width=True)
    for family, rows in format_sections.families(section).items():
        st.subheader(family)
        _table(pd.DataFrame(format_sections.family_table(rows)), hide_index=True, use_container_width=True)
    if picks := human.get("picks"):
        st.caption("People's picks per item: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in picks.items()) + ".")
    if not section.get("models"):
        st.caption("No reward model scored yet (Reward models page, or `rmgap-annot scores import`).")


RATING_CHART_HEIGHT = 140


def ratings_tab(ratings: dict) -> None:
    """Every rating question: ordinal alpha with its interval, and the answers as a small bar chart."""
    questions = ratings.get("questions") or []
    if not questions:
        st.info(f"n/a: {ratings.get('reason') or 'no rating question'}")
        return
    st.caption("Krippendorff's alpha (ordinal) per question with a 95% interval resampling item groups; a question about "
               "each response rates every (item, response) as its own unit.")
    _table(pd.DataFrame(format_sections.rating_rows(ratings)), hide_index=True, use_container_width=True)
    cols = st.columns(2)
    for n, q in enumerate(questions):
        df = format_sections.distribution_frame(q)
        with cols[n % 2]:
            st.markdown(f"**{escape(q['name'])}**")
            if df["answers"].sum():
                st.altair_chart(alt.Chart(df).mark_bar().encode(
                    x=alt.X("level:N", sort=df["level"].tolist(), title=None, axis=alt.Axis(labelAngle=0, labelLimit=140)),
                    y=alt.Y("answers:Q", title="answers"), tooltip=["level", "label", "answers"],
                ).properties(height=RATING_CHART_HEIGHT), use_container_width=True)
            else:
                st.caption("No answers yet.")


def referee_analyses(ref: dict) -> None:
    """The "Referee analyses" tab: style profiles, base vs rewrite prompts, between domains (report["referee"])."""
    st.caption(
        "The analyses the RMGAP referee asked for. Intervals resample whole records within each domain (All: stratified); "
        "scorers are compared on the labelled items only. n/a cells say why in their note."
    )
    sp = ref["style_profiles"]
    st.subheader("Style profiles: accuracy by the winner's level")
    if sp.get("reason"):
        st.info(f"n/a: {sp['reason']}")
    else:
        acc, wrong = referee.style_rows(sp)
        acc_df, wrong_df = pd.DataFrame(acc), pd.DataFrame(wrong)
        c1, c2 = st.columns(2)
        domain = c1.selectbox("Domain", [*DOMAINS, "All"], index=len(DOMAINS), key="referee_domain")
        who = sorted(acc_df["who"].unique()) if not acc_df.empty else []
        shown = c2.multiselect("Series", who, default=[w for w in who if w.startswith("human BoN")] + [w for w in who if w.endswith(" BoN") and not w.startswith("human")][:3],
                               key="referee_who")
        view = acc_df[(acc_df["domain"] == domain) & acc_df["who"].isin(shown)] if not acc_df.empty else acc_df
        plotted = view.dropna(subset=["value"]) if not view.empty else view
        if not plotted.empty:
            base = alt.Chart(plotted).encode(
                x=alt.X("level:N", sort=None, title="winner's level"), color=alt.Color("who:N", title=None),
                tooltip=["dimension", "level", "who", "value", "lo", "hi", "items"],
            )
            chart = (base.mark_line(point=True).encode(y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1])))
                     + base.mark_errorbar().encode(y="lo:Q", y2="hi:Q")).properties(width=220, height=180).facet(
                facet=alt.Facet("dimension:N", title=None), columns=3)
            st.altair_chart(chart)
        _table(view, hide_index=True)
        st.subheader("Where wrong picks go (observed share at each level against uniform over the non-winners)")
        _table(wrong_df[wrong_df["domain"] == domain] if not wrong_df.empty else wrong_df, hide_index=True)
        lean = [{"picker": w, "dimension": dim, "lean (levels)": e["lean"].get("value"),
                 "lo": (e["lean"].get("ci") or [None, None])[0], "hi": (e["lean"].get("ci") or [None, None])[1],
                 "p": e["lean"].get("p_value"), "wrong picks": e["n_wrong"], "note": e["lean"].get("reason", "")}
                for dim, parts in ((sp["by_domain"].get(domain) or {}).get("dimensions") or {}).items()
                for w, e in parts["wrong_picks"].items()]
        st.caption("Lean: mean level of the wrong picks minus its expectation under uniform wrong picks "
                   "(positive: towards the high end, e.g. verbose, highly formal).")
        _table(pd.DataFrame(lean), hide_index=True)
    st.subheader("Base prompt vs its two paraphrases")
    st.caption(ref["base_vs_rewrite"]["method"])
    _table(pd.DataFrame(referee.base_vs_rewrite_rows(ref["base_vs_rewrite"])), hide_index=True)
    st.subheader("Does human accuracy differ between domains?")
    bd = ref["between_domains"]
    st.caption(f"Test: {bd['test']}. Check: {bd['check']}.")
    omnibus, pairs = referee.between_domain_rows(bd)
    _table(pd.DataFrame(omnibus), hide_index=True)
    if pairs:
        _table(pd.DataFrame(pairs), hide_index=True)


TAB_NAMES = ["Agreement", "Human accuracy", "Naturalness", "Position bias", "Annotators", "Items", "Truth inference",
             "Referee analyses", "Rating questions"]
# Another format's own metrics come first; RMGAP's per-domain sections then say they are RMGAP's.
tabs = dict(zip(TAB_NAMES if is_rmgap else ["Benchmark metrics", *TAB_NAMES],
                st.tabs(TAB_NAMES if is_rmgap else ["Benchmark metrics", *TAB_NAMES])))
tab_agree, tab_human, tab_nat, tab_bias, tab_people, tab_items, tab_truth, tab_referee, tab_ratings = (tabs[n] for n in TAB_NAMES)

if not is_rmgap:
    with tabs["Benchmark metrics"]:
        benchmark_metrics_tab(report["benchmark_metrics"])

with tab_ratings:
    ratings_tab(report["ratings"])

with tab_referee:
    if rmgap_only():
        referee_analyses(report["referee"])

with tab_agree:
    if rmgap_only():
        for key, title in (("choice_alpha", "Krippendorff's alpha on the pick (nominal)"), ("naturalness_alpha", "Krippendorff's alpha on naturalness (ordinal, 1-5)")):
            st.subheader(title)
            rows = []
            for d in (*DOMAINS, "All"):
                a = report["agreement"][key][d]
                ci = a.get("ci") or [None, None]
                note = a.get("reason") or (f"no interval: {a['ci_reason']}" if a["alpha"] is not None and a.get("ci_reason") else "")
                rows.append({"domain": d, "alpha": a["alpha"], "lo": ci[0], "hi": ci[1], "items": a["n_items"], "note": note})
            chart = interval_chart(rows, "alpha", "alpha")
            if chart is not None:
                st.altair_chart(chart, use_container_width=True)
            _table(pd.DataFrame(rows), hide_index=True)
        st.subheader("Percent agreement and Fleiss' kappa")
        _table(
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
            _table(pd.DataFrame(ck["kappa"], index=ck["annotators"], columns=ck["annotators"], dtype=float))
            if undefined := results_tables.kappa_notes(ck):
                st.caption("Why a kappa is n/a:")
                _table(pd.DataFrame(undefined), hide_index=True)

with tab_human:
    if rmgap_only():
        h = report["human"]
        metric = st.radio("Metric", ["BoN", "Pair", "Consistency", "TopConsistency", "label_accuracy"], horizontal=True)
        rows = results_tables.human_rows(h, metric)
        chart = interval_chart(rows, metric, f"human {metric}")
        if chart is not None:
            st.altair_chart(chart, use_container_width=True)
        _table(pd.DataFrame(rows), hide_index=True)
        st.caption(
            "BoN: the plurality pick is the designated winner (a tie or no pick is wrong). Pair: ranking-mode labels only. "
            "Consistency (RMGAP's rule): the three paraphrased prompts of a group get the identical full ranking, from ranking-mode "
            "labels' Borda order (n/a without them). TopConsistency: the three prompts get the same plurality pick. "
            "Avg: the plain mean of the domains, as RMGAP computes it. Within-record ICC: how alike the correctness of one "
            "record's items is; the design effect is how much wider that makes an interval than independent items would "
            "(squared)."
        )
        if report.get("scorers"):
            st.subheader("Reward models on the same items")
            st.caption(results_tables.scorer_item_set(report["scorers"]))
            _table(pd.DataFrame(results_tables.scorer_rows(report["scorers"])), hide_index=True)

NAT_FACET_WIDTH = 260  # two facets + axis + legend: about 700 px, inside the column from a 1024 px window up

with tab_nat:
    if rmgap_only():
        nat = report["naturalness"]
        hist = [
            {"domain": d, "role": r, "rating": int(k), "labels": n}
            for d in DOMAINS
            for r, s in nat["by_domain_role"][d].items()
            for k, n in s["counts"].items()
        ]
        df = pd.DataFrame(hist)
        if df["labels"].sum():
            # Two facets a row at a fixed width: four default-width facets and the legend overran the
            # column at 1440 px (a faceted chart cannot stretch to its container).
            st.altair_chart(
                alt.Chart(df).mark_bar().encode(
                    x=alt.X("rating:O", title="naturalness (1-5)", axis=alt.Axis(labelAngle=0)), y=alt.Y("labels:Q"), color="role:N",
                    xOffset="role:N", tooltip=["domain", "role", "rating", "labels"],
                ).properties(width=NAT_FACET_WIDTH, height=150).facet(
                    facet=alt.Facet("domain:N", sort=list(DOMAINS), title=None), columns=2)
            )
        _table(
            pd.DataFrame([{"domain": d, "n": s["n"], "mean": _fmt(s["mean"]), "rated 4-5": _fmt(s["share_4_5"], True)} for d, s in nat["by_domain"].items()]),
            hide_index=True,
        )

with tab_bias:
    if rmgap_only():
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
    people = pd.DataFrame(results_tables.annotator_rows(report["annotators"]))
    plot = people.dropna(subset=["median_seconds"])
    if not plot.empty:
        st.altair_chart(
            alt.Chart(plot).mark_circle().encode(
                x=alt.X("median_seconds:Q", title="median seconds per item"), y=alt.Y("accuracy:Q", title="label accuracy"),
                size="n_labels:Q", tooltip=["annotator", "n_labels", "accuracy", "median_seconds", "share_fast", "loo_alpha"],
            ),
            use_container_width=True,
        )
    _table(people, hide_index=True)
    st.caption("loo_alpha: the pooled pick alpha without this annotator (higher than the pooled alpha: they lower agreement).")

    # Stored exclusions (reversible): the labels stay, they count nowhere.
    st.subheader("Exclude an annotator")
    stored = {e.annotator: e for e in active_exclusions(engine=engine())}
    with st.form("exclude_form", clear_on_submit=True):
        who = st.selectbox("Annotator", [n for n in annotator_names if n not in stored], key="exclude_who",
                           format_func=as_coder)
        why = st.text_input("Reason (shown in the report and the dataset card)", key="exclude_reason")
        if st.form_submit_button("Exclude"):
            try:
                exclude_annotator(engine=engine(), name=who or "", reason=why,
                                  actor=st.session_state.get("user_name") or "researcher")
            except ExclusionError as exc:
                st.error(str(exc))
            else:
                st.cache_data.clear()
                st.rerun()
    if stored:
        _table(pd.DataFrame([e.as_dict() for e in stored.values()]), hide_index=True)
        back = st.selectbox("Excluded annotator", list(stored), key="include_who")
        if st.button("Include again", key="include_button"):
            include_annotator(engine=engine(), name=back, actor=st.session_state.get("user_name") or "researcher")
            st.cache_data.clear()
            st.rerun()

with tab_items:
    items = pd.DataFrame(report["items"])
    items["votes"] = items["votes"].map(lambda v: ", ".join(f"{k}: {n}" for k, n in v.items()))
    n_flags = flag_counts(engine=engine(), benchmark_id=benchmark_id)
    items["flags"] = items["item_id"].map(lambda i: n_flags.get(i, 0))
    f1, f2, f3 = st.columns(3)
    item_domains = list(DOMAINS) if is_rmgap else sorted({str(d) for d in items["domain"]})
    domains = f1.multiselect("Domain" if is_rmgap else "Category", item_domains, default=item_domains)
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
    _table(view, hide_index=True, use_container_width=True)
    if len(view):
        chosen = st.selectbox("Open an item", view["item_id"].tolist(), format_func=lambda i: f"item {i}")
        if chosen is not None:
            detail = item_detail(engine=engine(), item_id=int(chosen))
            # Ids and keys come from the benchmark file: plain text, never Markdown.
            _table(pd.DataFrame([{k: detail[k] for k in ("domain", "record_id", "group", "prompt_index", "role", "winner_key")}]), hide_index=True)
            st.text(detail["prompt"])
            for resp in detail["responses"]:
                with st.expander(escape(str(resp["key"])) + (" (winner)" if resp["key"] == detail["winner_key"] else "")):
                    st.markdown(without_remote_images(resp["text"]))
            _table(pd.DataFrame(detail["labels"]), hide_index=True)

with tab_truth:
    if rmgap_only():
        # Dawid-Skene and MACE fits are cached per label fingerprint; the page only fits on request.
        ti = report["truth_inference"]
        st.caption(ti["interval_note"])
        if any(not ti["status"][m]["fitted"] for m in ti["methods"]):
            if st.button("Fit Dawid-Skene and MACE (seconds)", key="fit_truth"):
                with st.spinner("Fitting..."):
                    truth.fit_all(engine=engine(), benchmark_id=benchmark_id, what_if=what_if)
                st.cache_data.clear()
                st.rerun()
        if ti.get("BoN"):
            rows = []
            for m in ti["methods"]:
                for d in (*DOMAINS, "Avg"):
                    ci = (ti["ci"].get(m) or {}).get(d) or [None, None]
                    rows.append({"aggregation": m, "domain": d, "BoN": ti["BoN"][m][d], "lo": ci[0], "hi": ci[1],
                                 "note": "" if ti["status"][m]["fitted"] else ti["status"][m]["reason"]})
            _table(pd.DataFrame(rows), hide_index=True)
            st.subheader("Annotator competence")
            _table(pd.DataFrame(ti["competence"]), hide_index=True)
            if ti.get("n_disagreements") is not None:
                st.subheader(f"Items whose answer depends on the aggregation ({ti['n_disagreements']:,})")
                dis = pd.DataFrame(ti["disagreements"])
                if not dis.empty:
                    dis["votes"] = dis["votes"].map(lambda v: ", ".join(f"{k}: {n}" for k, n in v.items()))
                _table(dis, hide_index=True)
        else:
            st.info(f"n/a: {ti.get('reason', 'no labels yet')}")

st.divider()
artifact_checks_section(benchmark_id)
