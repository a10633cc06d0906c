"""The Results page as a researcher sees it: every undefined number reads "n/a" with its
reason, reward models as a table, simulated annotators marked (AppTest, no browser)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from rmgap_annot.accounts import create_user
from rmgap_annot.scores_io import import_scores
from tests.analytics_helpers import add_labels, item_ids, winners

PAGE = Path(__file__).resolve().parent.parent / "pages" / "results.py"
KEYS = [f"response{i}" for i in range(1, 5)]


def _labels(engine, benchmark_id, *, annotators=("ann0", "ann1"), lone=None, seed=0):
    """Pick-mode labels (no ranking: Pair is undefined) by ``annotators`` on every item, and
    ``lone`` on one item only (its kappa with anyone is undefined)."""
    rng = random.Random(seed)
    ids, win = sorted(item_ids(engine, benchmark_id).values()), winners(engine, benchmark_id)
    rows = []
    for iid in ids:
        for a in annotators:
            r = rng.random()
            rows.append({"annotator": a, "item_id": iid, "displayed_order": rng.sample(KEYS, 4), "naturalness": rng.randint(1, 5),
                         "choice": win[iid] if r < 0.7 else rng.choice(KEYS), "seconds": rng.uniform(2, 40)})
    if lone:
        rows.append({"annotator": lone, "item_id": ids[0], "displayed_order": KEYS, "naturalness": 3, "choice": win[ids[0]], "seconds": 9.0})
    add_labels(engine, rows)


def _scorer(engine, benchmark_id, tmp_path, name="len"):
    from sqlalchemy import select

    from rmgap_annot.db import session_scope
    from rmgap_annot.models import Item, Record

    with session_scope(engine) as s:
        items = s.execute(select(Record.record_id, Item.group, Item.prompt_index, Item.winner_key)
                          .join(Record, Record.id == Item.record_pk).where(Item.benchmark_id == benchmark_id)).all()
    lines = [json.dumps({"record_id": r, "group": g, "prompt_index": p,
                         "scores": {k: (2.0 if (k == w) == (p != 1) else KEYS.index(k) * 0.1) for k in KEYS}})
             for r, g, p, w in items]
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    import_scores(engine=engine, benchmark_id=benchmark_id, path=path, name=name)


def _open(engine, db_url, monkeypatch) -> AppTest:
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    uid = create_user(engine=engine, name="res", role="researcher")
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["user_id"] = uid
    at.session_state["role"] = "researcher"
    at.run()
    assert not at.exception, at.exception
    return at


def shown(table) -> pd.DataFrame:  # noqa: ANN001
    """What the browser displays: a Styler's display values where it has them, else the data."""
    styler = table.proto.arrow_data.styler
    if styler.display_values:
        return dataframe_util.convert_arrow_bytes_to_pandas_df(styler.display_values)
    return table.value


def _undefined(v) -> bool:  # noqa: ANN001
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() in ("None", "nan", "NaN", "<NA>"))


def _table(at: AppTest, *columns: str):  # noqa: ANN202
    """The one dataframe on the page that has all these columns."""
    (found,) = [t for t in at.dataframe if set(columns) <= set(map(str, t.value.columns))]
    return found


def test_every_undefined_cell_reads_na_with_its_reason(engine, benchmark_id, db_url, monkeypatch, tmp_path):
    # Pick-mode labels only: Pair needs ranking labels; "lone" shares one item with the others (no kappa);
    # with two full annotators, alpha without one of them has a single rater left (no leave-one-out alpha).
    _labels(engine, benchmark_id, lone="lone")
    at = _open(engine, db_url, monkeypatch)
    (metric,) = [r for r in at.radio if "label_accuracy" in r.options]
    metric.set_value("Pair").run()
    assert not at.exception, at.exception
    undefined = 0
    for t in at.dataframe:
        frame = shown(t)
        cells = [frame[c].iloc[r] for c in frame.columns for r in range(len(frame))]
        if any(_undefined(v) for v in cells):
            undefined += 1
            # the browser draws a missing cell with the placeholder; "None", "nan" or blank otherwise
            assert t.proto.placeholder == "n/a", list(frame.columns)
    assert undefined >= 3
    human = _table(at, "domain", "Pair", "note").value
    assert human["Pair"].isna().all() and human["note"].str.len().gt(0).all()
    assert human[human["domain"] != "Avg"]["note"].str.contains("no ranking-mode labels").all()
    kappa = _table(at, "annotator", "with", "shared items", "note").value
    from tests.test_report import pseudonym_of

    name = pseudonym_of(engine, "lone")  # the report names people by their pseudonym
    lone = kappa[(kappa["with"] == name) | (kappa["annotator"] == name)]
    assert len(lone) == 2 and (lone["shared items"] == 1).all() and lone["note"].str.contains("kappa needs 2").all()
    people = _table(at, "annotator", "loo_alpha", "note").value
    assert "loo_alpha_reason" not in people.columns
    for _, row in people.iterrows():
        assert (row["loo_alpha"] is None or math.isnan(row["loo_alpha"])) == ("loo_alpha: " in row["note"])
    assert people["note"].str.contains("alpha without this annotator is undefined").any()


def test_reward_models_on_the_same_items_is_a_table_naming_its_items(engine, benchmark_id, db_url, monkeypatch, tmp_path):
    _labels(engine, benchmark_id)
    _scorer(engine, benchmark_id, tmp_path)
    at = _open(engine, db_url, monkeypatch)
    assert not at.get("json"), "no raw JSON tree on the page"
    table = _table(at, "scorer", "metric", "domain", "value [95% interval]", "labelled items", "note").value
    assert set(table["scorer"]) == {"len"} and set(table["metric"]) == {"BoN", "Pair", "Consistency", "TopConsistency"}
    assert (table["labelled items"] == 96).all()
    bon = table[(table["metric"] == "BoN") & (table["domain"] == "Avg")]["value [95% interval]"].iloc[0]
    assert bon.endswith("]") and "%" in bon  # value with its interval
    pair = table[table["metric"] == "Pair"]  # scorers have a Pair on every scored item
    assert not pair["value [95% interval]"].eq("n/a").all()
    assert any("On the 96 labelled items" in c.value for c in at.caption)


def test_results_marks_simulated_annotators(engine, benchmark_id, db_url, monkeypatch):
    _labels(engine, benchmark_id, annotators=("ann0", "ann1"))
    at = _open(engine, db_url, monkeypatch)
    assert not any("simulated" in w.value for w in at.warning)  # people only: no note
    _labels(engine, benchmark_id, annotators=("sim-1",), seed=1)
    at.run()
    (note,) = [w.value for w in at.warning if "simulated" in w.value]
    assert "sim-1" in note and "ann0" not in note


def test_simulated_note_is_one_rule():
    from rmgap_annot.demo import CROWD, simulated_note

    assert simulated_note(["alice", "bob"]) is None
    note = simulated_note(["alice", *CROWD])
    assert all(name in note for name in CROWD) and "alice" not in note


def test_result_rows_carry_reasons():
    from rmgap_annot.results_tables import annotator_rows, kappa_notes

    ck = {"annotators": ["a", "b"], "kappa": [[1.0, None], [None, 1.0]], "n_shared": [[5, 0], [0, 3]],
          "reasons": [[None, "0 shared items (kappa needs 2)"], ["0 shared items (kappa needs 2)", None]]}
    assert kappa_notes(ck) == [{"annotator": "a", "with": "b", "shared items": 0, "kappa": "n/a", "note": "0 shared items (kappa needs 2)"}]
    rows = annotator_rows([{"annotator": "a", "loo_alpha": None, "loo_alpha_reason": "undefined", "median_seconds": None,
                            "seconds_reason": "no timing recorded"}, {"annotator": "b", "loo_alpha": 0.4}])
    assert rows[0]["note"] == "loo_alpha: undefined; seconds: no timing recorded" and rows[1]["note"] == ""
    assert all(not k.endswith("_reason") for r in rows for k in r)


def test_another_formats_results_speak_its_own_metrics(engine, db_url, monkeypatch):
    """An RMB benchmark: its pairwise and BoN tables by category path, people vs the length baseline, the rating
    questions with their charts; RMGAP's per-domain sections say they are RMGAP's instead of a wall of n/a."""
    from tests.test_format_report_wiring import SAMPLES, _labelled

    bench = _labelled(engine, SAMPLES / "rmb" / "RMB_dataset", picks=lambda item, u: item.keys[0])
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    uid = create_user(engine=engine, name="res", role="researcher")
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.session_state["user_id"] = uid
    at.session_state["benchmark_id"] = bench
    at.run()
    assert not at.exception, at.exception
    labels = [t.label for t in at.tabs]
    assert labels[0] == "Benchmark metrics" and "Rating questions" in labels
    headers = [h.value for h in at.subheader]
    assert "Pairwise accuracy" in headers and "BoN accuracy (best beats every loser)" in headers
    pairwise = [t.value for t in at.dataframe if "people − length" in t.value.columns][0]
    assert list(pairwise.columns) == ["category", "people", "n", "length", "people − length"]  # one metric: no column
    code = pairwise[pairwise["category"] == "\u2003\u2003Code Generation"].iloc[0]
    assert code["people"].startswith("100.0% [")
    ratings = _table(at, "question", "about", "alpha", "answers", "distribution").value
    assert list(ratings["question"]) == ["clear", "helpful"]
    assert len(at.get("vega_lite_chart")) >= 2  # one bar chart per question
    chart = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert chart["mark"]["type"] == "bar" if isinstance(chart["mark"], dict) else chart["mark"] == "bar"
    infos = [i.value for i in at.info]
    assert sum("RMGAP benchmarks only" in i for i in infos) == 6  # Agreement, Human accuracy, Naturalness, bias, truth, referee
    assert not any("Verdict" in h for h in headers)


def test_with_several_studies_the_page_reads_one_or_pools_them(engine, benchmark_id, db_url, monkeypatch):
    """A pilot with labels and an empty main run: pooled by default, one study when chosen."""
    from rmgap_annot.assignment import create_study
    from rmgap_annot.studies import list_studies

    _labels(engine, benchmark_id)
    create_study(engine=engine, name="main-run", benchmark_id=benchmark_id)
    at = _open(engine, db_url, monkeypatch)
    assert not [i for i in at.info if "No labels yet" in i.value]  # pooled: the pilot's labels count
    picker = at.selectbox(key="results_study")
    assert picker.options[0].startswith("all studies, pooled") and any("main-run" in o for o in picker.options)
    main = next(s for s in list_studies(engine=engine, benchmark_id=benchmark_id) if s.name == "main-run")
    picker.set_value(main).run()
    assert not at.exception, at.exception
    assert [i for i in at.info if "No labels yet" in i.value]  # the main run has none
