from pages.common import require_researcher, choose_benchmark, choose_label_scope, engine, mark_simulated

import re
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import pandas as pd
import streamlit as st

from rmgap_annot.catalog import list_benchmarks
from rmgap_annot.export import (
    REASONS,
    ExportError,
    Rule,
    apply_rule,
    format_fraction,
    labels_version,
    record_verdicts,
    summarize,
    write_export,
)
from rmgap_annot.exclusions import counted_labels, exclusions_key
from rmgap_annot.export.files import effective_rule, verdict_stats
from rmgap_annot.stats.rating_report import study_questions
from rmgap_annot.stats.truth import AGGREGATES
from rmgap_annot.settings import DOMAINS, get_settings

require_researcher()

st.title("Export the human-verified subset")

benchmark_id = choose_benchmark()
if benchmark_id is None:
    st.stop()
study_ids = choose_label_scope(benchmark_id, key="export_study")  # one study, or all pooled (`--study all`)
mark_simulated(benchmark_id)


@st.cache_data(show_spinner=False, max_entries=8)
def _stats(benchmark_id: int, version: tuple, exclusions: tuple, aggregate: str,  # noqa: ARG001 - cache keys
           study_ids: tuple[int, ...] | None = None) -> pd.DataFrame:
    """Tallies per item, recomputed only when the labels, the exclusions, the aggregation or the studies change."""
    eng = engine()
    labels = counted_labels(engine=eng, benchmark_id=benchmark_id,
                            study_ids=list(study_ids) if study_ids is not None else None).labels
    return verdict_stats(engine=eng, benchmark_id=benchmark_id, labels=labels, aggregate=aggregate, fmt=_format(benchmark_id))


def _format(benchmark_id: int) -> str:
    return next(b.format for b in list_benchmarks(engine=engine()) if b.id == benchmark_id)


# Every share a handful of annotators can produce, so 2/3 is exactly 2/3.
AGREEMENT_STEPS = sorted({Fraction(k, n) for n in range(1, 11) for k in range(n + 1)})

col1, col2, col3 = st.columns(3)
min_labels = col1.slider("Min labels (not counting Can't decide)", 1, 10, 3, key="export_min_labels")
min_agreement = col2.select_slider(
    "Min agreement with the plurality pick", AGREEMENT_STEPS, value=Fraction(2, 3), format_func=format_fraction,
    key="export_min_agreement",
)
min_naturalness = col3.slider("Min mean naturalness (0: off)", 0.0, 5.0, 3.0, 0.1, key="export_min_naturalness")
# Each rating question the studies ask (naturalness has its own slider): at its lowest level the check is off.
min_ratings = []
rating_questions = [q for q in study_questions(engine=engine(), benchmark_id=benchmark_id) if q.name != "naturalness"]
for col, q in zip(st.columns(len(rating_questions)) if rating_questions else [], rating_questions):
    low, high = min(q.values), max(q.values)
    least = col.slider(f"Min mean {q.name} ({low}: off)", float(low), float(high), float(low), 0.05, key=f"export_min_rating_{q.name}",
                       help=f"{q.text} " + ("The designated winner's answers count." if q.about == "response" else ""))
    if least > low:
        min_ratings.append((q.name, round(least, 2)))
level = st.radio(
    "Level", ["record", "item"], horizontal=True, key="export_level",
    help="record: test.jsonl with records whose 12 items all pass; item: items.jsonl with every passing item.",
)

aggregate = st.radio(
    "Each item's answer", list(AGGREGATES), horizontal=True, key="export_aggregate",
    help="plurality vote, or crowd-kit's one-coin Dawid-Skene / MACE (fitted once per set of labels, then cached).",
)
rule = effective_rule(engine=engine(), benchmark_id=benchmark_id, fmt=_format(benchmark_id),
                      rule=Rule.of(min_labels=min_labels, min_agreement=min_agreement, min_naturalness=round(min_naturalness, 1),
                                      min_ratings=min_ratings))
with st.spinner("Fitting the aggregation..." if aggregate != "plurality" else "Tallying..."):
    tallies = _stats(benchmark_id, labels_version(engine=engine(), benchmark_id=benchmark_id), exclusions_key(engine=engine()), aggregate, study_ids)
verdicts = apply_rule(tallies, rule)
summary = summarize(verdicts, record_verdicts(verdicts))
total = summary["All"]
st.markdown(
    f"**{total['records_kept']} of {total['records']} records** and "
    f"**{total['items_kept']} of {total['items']} items** pass the rule."
)
st.dataframe(
    pd.DataFrame(
        [
            {"domain": d or "(none)", "records kept": summary[d]["records_kept"], "records": summary[d]["records"],
             "items kept": summary[d]["items_kept"], "items": summary[d]["items"],
             **{f"dropped: {r}": summary[d]["items_dropped"][r] for r in REASONS}}
            for d in summary
            if d in DOMAINS or d == "All" or summary[d]["items"]
        ]
    ),
    hide_index=True,
)
with st.expander("The rule"):
    st.markdown("\n".join(f"{i}. {text} (else: *{reason}*)" for i, (reason, text) in enumerate(zip(REASONS, rule.describe()), 1)))

if st.button("Write export", type="primary", key="export_write"):
    bench_name = next(b.name for b in list_benchmarks(engine=engine()) if b.id == benchmark_id)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", bench_name)[:60]
    out = get_settings().exports_dir / f"{name}-verified-{level}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    try:
        with st.spinner("Writing..."):
            result = write_export(engine=engine(), benchmark_id=benchmark_id, out_dir=out, rule=rule, level=level,
                                  aggregate=aggregate, study_ids=list(study_ids) if study_ids is not None else None)
    except ExportError as exc:
        st.error(str(exc))
    else:
        st.session_state["export_dir"] = str(result.out_dir)
        st.success(f"Wrote {result.n_written} {level}s to {result.out_dir}")
        if result.analytics_note:
            st.warning(f"Agreement in the card: {result.analytics_note}")

export_dir = st.session_state.get("export_dir")
if export_dir and Path(export_dir).is_dir():
    st.caption(f"Files of {export_dir}")
    mime = {".jsonl": "application/jsonl", ".csv": "text/csv", ".md": "text/markdown", ".html": "text/html"}
    for path in sorted(p for p in Path(export_dir).iterdir() if not p.name.startswith(".")):
        # Read only on click (a callable), so no /media URL serves the labels before.
        st.download_button(
            f"Download {path.name}", path.read_bytes, file_name=path.name,
            mime=mime.get(path.suffix, "application/octet-stream"), key=f"export_dl_{path.name}",
        )

st.divider()
st.subheader("Paper-ready outputs")
st.caption(
    "LaTeX tables (booktabs), SVG and PDF figures, numbers.json and macros.tex from the report and the cached "
    "artifact checks, written into the exports folder (the same as `rmgap-annot paper --out DIR`)."
)
if st.button("Write paper outputs", key="paper_write"):
    from rmgap_annot.paper import PaperError, paper_outputs

    bench_name = next(b.name for b in list_benchmarks(engine=engine()) if b.id == benchmark_id)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", bench_name)[:60]
    out = get_settings().exports_dir / f"{name}-paper-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    try:
        with st.spinner("Building the report and drawing the figures..."):
            paper = paper_outputs(engine=engine(), benchmark_id=benchmark_id, out_dir=out,
                                  study_ids=list(study_ids) if study_ids is not None else None)
    except PaperError as exc:
        st.error(str(exc))
    else:
        st.session_state["paper_dir"] = str(paper.out_dir)
        st.success(f"Wrote {len(paper.files)} files ({paper.n_numbers} numbers, {paper.n_macros} macros) to {paper.out_dir}")
        for note in paper.notes:
            st.info(note)

paper_dir = st.session_state.get("paper_dir")
if paper_dir and Path(paper_dir).is_dir():
    from rmgap_annot.paper import zip_folder

    # A callable: the zip is built only when the button is clicked.
    st.download_button(
        f"Download {Path(paper_dir).name}.zip", lambda: zip_folder(Path(paper_dir)), file_name=f"{Path(paper_dir).name}.zip",
        mime="application/zip", key="paper_download",
    )
