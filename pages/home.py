"""Researcher home: what the database holds and how far each study is."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import engine, require_researcher
from rmgap_annot import assignment
from rmgap_annot.catalog import list_benchmarks
from rmgap_annot.safe_markdown import escape

require_researcher()
eng = engine()
st.title("rmgap-annot")
rows = list_benchmarks(engine=eng)
if not rows:
    st.info("No benchmark yet. Import one with `rmgap-annot import-benchmark FILE`.")
    st.stop()
latest = assignment.default_benchmark_id(engine=eng)
for b in rows:
    with st.container(border=True):
        st.subheader(escape(b.name) + ("  (annotators label this one)" if b.id == latest else ""))
        st.caption(f"sha256 {b.file_hash[:12]} · imported {b.imported_at:%Y-%m-%d %H:%M} UTC · from {escape(b.source_path or 'n/a')}")
        counts = pd.DataFrame(
            [{"domain": d or "(none)", "records": c["records"], "items": c["items"]} for d, c in b.counts.items()]
            + [{"domain": "total", "records": b.n_records, "items": b.n_items}]
        )
        st.dataframe(counts, hide_index=True)
        ov = assignment.overview(engine=eng, benchmark_id=b.id)
        target = ov.items * ov.labels_per_item
        st.metric("Labels in the study", f"{ov.labels:,} / {target:,}")
        st.progress(min(1.0, ov.labels / target) if target else 0.0,
                    text=f"{ov.complete_items:,} of {ov.items:,} study items have {ov.labels_per_item} labels")
