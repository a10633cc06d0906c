"""The verdict at a glance (issue 15 item 2) and the headline on the verified subset (issue 11 item 7)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from rmgap_annot import verdict as vd
from rmgap_annot.accounts import create_user
from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.export import Rule, verify, write_export
from rmgap_annot.labels_frame import load_items
from rmgap_annot.models import Item, Record
from rmgap_annot.report import build_report
from rmgap_annot.scores_io import import_scores
from rmgap_annot.settings import DOMAINS
from tests.analytics_helpers import add_labels, winners

KEYS = ["response1", "response2", "response3", "response4"]
PAGE = Path(__file__).resolve().parent.parent / "pages" / "results.py"


def _items(engine, benchmark_id):
    with session_scope(engine) as s:
        return s.execute(
            select(Item.id, Record.record_id, Item.group, Item.prompt_index, Item.winner_key, Item.domain)
            .join(Record, Record.id == Item.record_pk).where(Item.benchmark_id == benchmark_id)
        ).all()


def _verified_by_construction(engine, benchmark_id, natural=lambda group, prompt: prompt == 0):
    """Every item gets 3 labels choosing the winner; prompt 0 of each group is rated natural (4), the rest unnatural (1).

    So exactly the prompt-0 items pass the export rule, and every record has items on both sides.
    """
    rows = []
    for iid, _, g, p, w, _ in _items(engine, benchmark_id):
        rows += [{"annotator": a, "item_id": iid, "choice": w, "naturalness": 4 if natural(g, p) else 1} for a in "abc"]
    add_labels(engine, rows)


def _scores(engine, benchmark_id, tmp_path, name, right):
    """A scorer whose top score is the winner exactly where ``right(prompt_index)``, else another response."""
    lines = []
    for _, rid, g, p, w, _ in _items(engine, benchmark_id):
        top = w if right(p) else next(k for k in KEYS if k != w)
        lines.append(json.dumps({"record_id": rid, "group": g, "prompt_index": p,
                                 "scores": {k: (2.0 if k == top else KEYS.index(k) * 0.1) for k in KEYS}}))
    path = tmp_path / f"{name}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    import_scores(engine=engine, benchmark_id=benchmark_id, path=path, name=name)


# --- verified vs rest --------------------------------------------------------------------


def test_a_scorer_right_exactly_on_the_verified_items_shows_the_difference(engine, benchmark_id, tmp_path):
    _verified_by_construction(engine, benchmark_id)
    _scores(engine, benchmark_id, tmp_path, "knows-verified", lambda p: p == 0)
    _scores(engine, benchmark_id, tmp_path, "always-right", lambda p: True)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=200)
    sub = report["verified_subset"]
    # the export's own rule decides which items are verified
    labels = counted_labels(engine=engine, benchmark_id=benchmark_id).labels
    want = verify(labels=labels, items=load_items(engine=engine, benchmark_id=benchmark_id), rule=Rule())
    assert sub["n_items"]["All"] == {"labelled": 96, "verified": int(want["verified"].sum()), "rest": 96 - int(want["verified"].sum())}
    assert sub["n_items"]["All"]["verified"] == 32
    assert sub["share_verified"]["All"]["value"] == pytest.approx(1 / 3)
    s = sub["scorers"]["knows-verified"]
    for d in DOMAINS:
        assert s["verified"]["BoN"][d] == 1.0 and s["rest"]["BoN"][d] == 0.0
        assert s["all"]["BoN"][d] == pytest.approx(1 / 3)
    diff = s["difference"]["BoN"]["All"]
    assert diff["difference"] == 1.0 and diff["ci"][0] > 0.5
    # 8 records, each with items on both sides and the same difference: X^2 = 8, p = 0.0047 (clustered, not 96 items)
    assert diff["n_clusters"] == 8 and diff["p_value"] == pytest.approx(0.00468, abs=1e-4)
    assert diff["p_adjusted"] is not None and diff["p_adjusted"] < 0.05
    # a scorer right everywhere: no difference, nothing against the null
    same = sub["scorers"]["always-right"]["difference"]["BoN"]["All"]
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    # Consistency needs a whole group on one side: prompt 0 alone never completes a group on the verified side
    assert s["verified"]["Consistency"]["Chat"] is None and s["verified"]["reasons"]["Consistency"]["Chat"]
    # the verdict's best model is the one with the best BoN on all labelled items, and its cell shows the difference
    assert report["verdict"]["best_scorer"]["name"] == "always-right"


def test_verified_vs_rest_difference_is_clustered_with_the_same_draws():
    """Units of one record on both sides move together: a record-level effect cancels in the difference."""
    import numpy as np

    from rmgap_annot.stats import bootstrap as bs
    from rmgap_annot.stats.verified import subset_difference

    rng = np.random.default_rng(1)
    rec = np.repeat(np.arange(40), 6).astype(str)
    a = np.tile([True, True, True, False, False, False], 40)
    level = np.repeat(rng.random(40), 6)  # a strong record effect shared by both sides
    y = (rng.random(240) < level).astype(float)
    draws = {"Chat": bs.cluster_draws(rec, draws=300, seed=0)}
    out = subset_difference(y, np.ones(240), a, ~a, rec, np.full(240, "Chat", dtype=object), draws)
    assert out["difference"] == pytest.approx(y[a].mean() - y[~a].mean())
    assert out["ci"][0] <= out["difference"] <= out["ci"][1]
    # paired draws: the difference's interval is narrower than either side's own spread would allow unpaired
    w = draws["Chat"].bind(rec)
    side_a = w.sum(y * a) / w.sum(a.astype(float))
    side_b = w.sum(y * ~a) / w.sum((~a).astype(float))
    unpaired = np.sqrt(side_a.var() + side_b.var())
    assert (out["ci"][1] - out["ci"][0]) < 2 * 1.96 * unpaired
    empty = subset_difference(y, np.ones(240), a, np.zeros(240, bool), rec, np.full(240, "Chat", dtype=object), draws)
    assert empty["difference"] is None and "rest" in empty["reason"]


# --- the rules, on constructed reports -------------------------------------------------------


def _report(**over):
    """A constructed report: Chat clearly good, Writing clearly bad, Reasoning in between, Safety unlabelled."""
    r = {
        "human": {"BoN": {"Chat": 0.9, "Writing": 0.3, "Reasoning": 0.7, "Safety": None},
                  "ci": {"BoN": {"Chat": [0.85, 0.95], "Writing": [0.2, 0.4], "Reasoning": [0.6, 0.85], "Safety": None}},
                  "reasons": {"BoN": {"Safety": "no labelled Safety items"}}},
        "agreement": {"summary": {"n_items_labelled": {"Chat": 24, "Writing": 24, "Reasoning": 24, "Safety": 0}},
                      "choice_alpha": {"Chat": {"alpha": 0.8, "ci": [0.7, 0.9]}, "Writing": {"alpha": 0.2, "ci": [0.1, 0.3]},
                                       "Reasoning": {"alpha": 0.66, "ci": [0.5, 0.8]},
                                       "Safety": {"alpha": None, "ci": None, "reason": "no labelled Safety items"}}},
        "naturalness": {"by_domain": {"Chat": {"mean": 4.2, "share_4_5": 0.8, "ci_share_4_5": [0.7, 0.9], "ci_mean": [4.0, 4.4]},
                                      "Writing": {"mean": 2.0, "share_4_5": 0.2, "ci_share_4_5": [0.1, 0.3], "ci_mean": [1.8, 2.2]},
                                      "Reasoning": {"mean": 3.5, "share_4_5": 0.5, "ci_share_4_5": [0.4, 0.6], "ci_mean": [3.3, 3.7]},
                                      "Safety": {"mean": None, "share_4_5": None, "reason": "no naturalness ratings"}}},
        "verified_subset": {
            "share_verified": {"Chat": {"value": 0.9, "ci": [0.82, 0.95]}, "Writing": {"value": 0.2, "ci": [0.1, 0.3]},
                               "Reasoning": {"value": 0.6, "ci": [0.45, 0.75]}, "Safety": {"value": None, "ci": None, "reason": "no labelled Safety items"}},
            "n_items": {d: {"labelled": 24, "verified": 10, "rest": 14} for d in DOMAINS},
            "scorers": {"rm": {
                "all": {"BoN": {"Chat": 0.6, "Writing": 0.5, "Reasoning": 0.55, "Safety": None}, "ci": {"BoN": {"Chat": [0.5, 0.7], "Writing": [0.4, 0.6], "Reasoning": [0.45, 0.65], "Safety": None}}},
                "verified": {"BoN": {"Chat": 0.61, "Writing": 0.8, "Reasoning": 0.6, "Safety": None}, "ci": {"BoN": {"Chat": [0.5, 0.7], "Writing": [0.7, 0.9], "Reasoning": [0.4, 0.8], "Safety": None}}},
                "difference": {"BoN": {"Chat": {"difference": 0.01, "ci": [-0.03, 0.04], "p_adjusted": 0.6},
                                       "Writing": {"difference": 0.4, "ci": [0.3, 0.5], "p_adjusted": 0.001},
                                       "Reasoning": {"difference": 0.06, "ci": [-0.1, 0.2], "p_adjusted": 0.4},
                                       "Safety": {"difference": None, "ci": None, "reason": "no labelled Safety unit"}}},
            }},
        },
        "scorers": {"rm": {"labelled_only": {"BoN": {"Avg": 0.55}}}, "worse": {"labelled_only": {"BoN": {"Avg": 0.4}}}},
    }
    r.update(over)
    return r


ARTIFACTS = {"shallow_cue": {"methods": {"shallow_model": {
    "BoN": {"Chat": 0.4, "Writing": 0.35, "Reasoning": 0.65, "Safety": 0.3},
    "ci": {"BoN": {"Chat": [0.3, 0.5], "Writing": [0.3, 0.4], "Reasoning": [0.55, 0.75], "Safety": [0.2, 0.4]}}}}}}


def _status(v, key):
    return [r["cells"][key]["status"] for r in v["rows"]]


def test_rules_mark_cells_pass_fail_unclear_and_na_with_a_reason():
    v = vd.build_verdict(_report(), ARTIFACTS)
    assert [r["domain"] for r in v["rows"]] == list(DOMAINS)
    assert _status(v, "people") == ["pass", "fail", "unclear", "n/a"]
    assert _status(v, "agreement") == ["pass", "fail", "unclear", "n/a"]
    assert _status(v, "naturalness") == ["pass", "fail", "unclear", "n/a"]
    assert _status(v, "verified") == ["pass", "fail", "unclear", "n/a"]
    # cues below people (Chat) pass; cue estimate reaching people's lower bound (Writing 0.35 >= 0.2; Reasoning 0.65 >= 0.6) fails;
    # Safety has no people to compare with: unclear, and says why
    assert _status(v, "shallow_cue") == ["pass", "fail", "fail", "unclear"]
    assert "no human BoN" in v["rows"][3]["cells"]["shallow_cue"]["reason"]
    assert v["best_scorer"]["name"] == "rm"
    assert _status(v, "best_model") == ["pass", "fail", "unclear", "n/a"]
    for r in v["rows"]:
        for c in r["cells"].values():
            assert c["symbol"] in "✓✗?–" and c["word"] in ("pass", "fail", "unclear", "n/a") and c["colour"].startswith("#")
            if c["status"] == "n/a":
                assert c["reason"] and c["text"] == c["reason"]
    assert v["counts"] == {s: sum(_status(v, k).count(s) for k in vd.RULES) for s in vd.MARKS}
    # the rule line names every column's thresholds
    assert "0.8" in v["rule"] and "0.667" in v["rule"] and "±0.05" in v["rule"]


def test_a_zero_width_interval_is_unclear_not_pass_or_fail():
    """Two records that agree give every resample the same alpha: no spread seen is no evidence of none."""
    r = _report()
    r["human"]["ci"]["BoN"]["Chat"] = [0.92, 0.92]  # would pass at >= 0.8
    r["agreement"]["choice_alpha"]["Writing"]["ci"] = [0.3, 0.3]  # would fail below 0.667
    v = vd.build_verdict(r)
    for d, key in (("Chat", "people"), ("Writing", "agreement")):
        c = next(row for row in v["rows"] if row["domain"] == d)["cells"][key]
        assert c["status"] == "unclear" and "no width" in c["reason"], (d, key, c)
    # The agreement module now gives such an alpha no interval, with its reason: still unclear, and why.
    r["agreement"]["choice_alpha"]["Writing"].update(alpha=1.0, ci=None, ci_reason="every resample gives the same alpha")
    c = next(row for row in vd.build_verdict(r)["rows"] if row["domain"] == "Writing")["cells"]["agreement"]
    assert c["status"] == "unclear" and "every resample gives the same alpha" in c["reason"], c


def test_shallow_cue_not_computed_is_na_with_how_to_compute():
    v = vd.build_verdict(_report(), None)
    for r in v["rows"]:
        c = r["cells"]["shallow_cue"]
        assert c["status"] == "n/a" and c["reason"] == vd.NOT_COMPUTED and "rmgap-annot artifacts" in c["text"]
    assert "not computed" in v["sentence"]


def test_a_missing_interval_is_unclear_not_pass():
    r = _report()
    r["human"]["ci"]["BoN"]["Chat"] = None
    c = vd.build_verdict(r)["rows"][0]["cells"]["people"]
    assert c["status"] == "unclear" and "interval" in c["reason"]


def test_no_reward_model_is_na_with_a_reason():
    v = vd.build_verdict(_report(scorers={}))
    assert v["best_scorer"]["name"] is None and "rmgap-annot score" in v["best_scorer"]["reason"]
    assert set(_status(v, "best_model")) == {"n/a"}


def test_the_sentence_is_generated_from_the_numbers():
    r = _report()
    s = vd.build_verdict(r, ARTIFACTS)["sentence"]
    assert "People confirmed the designated winner on 90% [85, 95] of Chat items" in s
    assert "No Safety item is labelled yet." in s
    r2 = copy.deepcopy(r)
    r2["human"]["BoN"]["Chat"], r2["human"]["ci"]["BoN"]["Chat"] = 0.55, [0.4, 0.7]
    s2 = vd.build_verdict(r2, ARTIFACTS)["sentence"]
    assert "55% [40, 70] of Chat items" in s2 and s2 != s


# --- the report, the CLI, the export ------------------------------------------------------------


def test_the_sentence_changes_when_the_labels_change(engine, benchmark_id):
    win = winners(engine, benchmark_id)
    chat = [iid for iid, _, _, _, _, d in _items(engine, benchmark_id) if d == "Chat"]
    add_labels(engine, [{"annotator": "a", "item_id": i, "choice": win[i], "naturalness": 5} for i in chat])
    first = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    assert "on 100%" in first["verdict"]["sentence"]
    # two more annotators pick a wrong response on half the Chat items: the plurality flips there
    wrong = {i: next(k for k in KEYS if k != win[i]) for i in chat[::2]}
    add_labels(engine, [{"annotator": a, "item_id": i, "choice": k, "naturalness": 2} for i, k in wrong.items() for a in "bc"])
    second = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    h = second["human"]
    assert h["BoN"]["Chat"] == pytest.approx(0.5)
    assert second["verdict"]["sentence"] != first["verdict"]["sentence"]
    assert vd.pct_ci(h["BoN"]["Chat"], h["ci"]["BoN"]["Chat"]) + " of Chat items" in second["verdict"]["sentence"]


def test_cli_report_begins_with_the_verdict_and_json_has_the_keys(engine, benchmark_id, cli, tmp_path):
    _verified_by_construction(engine, benchmark_id)
    _scores(engine, benchmark_id, tmp_path, "m", lambda p: p == 0)
    out = cli("report", "--json", "--draws", "50")
    assert out.exit_code == 0
    data = json.loads(out.stdout)
    assert data["verdict"]["rows"][0]["cells"]["best_model"]["scorer"] == "m"
    assert data["verified_subset"]["scorers"]["m"]["difference"]["BoN"]["All"]["difference"] == 1.0
    from rmgap_annot.stats.verified import verified_markdown

    card = verified_markdown(data["verified_subset"])
    assert "| m | Chat | 33.3%" in card and "| 100.0% " in card  # all labelled 1/3, verified - rest +100 points
    text = cli("report", "--draws", "0")
    assert text.exit_code == 0
    assert text.stdout.startswith("Verdict at a glance")
    assert "The headline on the verified subset" in text.stdout


def test_card_and_report_html_open_with_the_verdict(engine, benchmark_id, tmp_path):
    _verified_by_construction(engine, benchmark_id)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "out", analytics=(report, None))
    card = (tmp_path / "out" / "README.md").read_text()
    assert card.index("## Verdict at a glance") < card.index("## Source")
    assert report["verdict"]["sentence"] in card
    assert any(f"| {mark} " in card or f"| {mark}:" in card or f" {mark}: " in card for mark in ("✓ pass", "✗ fail", "? unclear", "– n/a"))
    assert "## Reward models on the verified items" in card  # no scorer here: n/a with the reason
    assert "n/a (no reward model has scores on this benchmark" in card
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.index("Verdict at a glance") < page.index("The verified subset")
    assert 'id="verdict-sentence"' in page
    # no analytics: the card says why instead of a verdict
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "out2", analytics=(None, "n/a (analytics failed: X)"))
    assert "## Verdict at a glance\n\nn/a (analytics failed: X)" in (tmp_path / "out2" / "README.md").read_text()


def test_results_page_shows_the_verdict_first(engine, benchmark_id, db_url, monkeypatch, tmp_path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    _verified_by_construction(engine, benchmark_id)
    _scores(engine, benchmark_id, tmp_path, "m", lambda p: p == 0)
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    uid = create_user(engine=engine, name="res", role="researcher")
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["user_id"] = uid
    at.session_state["role"] = "researcher"
    at.run()
    assert not at.exception, at.exception
    order = [node.type for node in at.main.children.values()]
    kinds = [(getattr(node, "type", ""), getattr(node, "value", None)) for node in at.main.children.values()]
    first_sub = next(i for i, (t, v) in enumerate(kinds) if t == "subheader")
    assert kinds[first_sub][1] == "Verdict at a glance"
    assert first_sub < order.index("tab_container")
    report = build_report(engine=engine, benchmark_id=benchmark_id)
    assert any(report["verdict"]["sentence"][:60].replace("-", "\\-") in m.value or report["verdict"]["sentence"][:40] in m.value
               for m in at.markdown)
    assert any(c.value.startswith("Rule: ✓ pass") for c in at.caption)


def test_the_report_reads_the_cached_shallow_cue_fit(engine, benchmark_id):
    from rmgap_annot.stats.artifacts import artifact_checks

    _verified_by_construction(engine, benchmark_id)
    before = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)["verdict"]
    assert {r["cells"]["shallow_cue"]["status"] for r in before["rows"]} == {"n/a"}
    fitted = artifact_checks(engine=engine, benchmark_id=benchmark_id, draws=50)
    assert vd.shallow_cue_cached(engine=engine, benchmark_id=benchmark_id, draws=50, seed=0)
    after = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)["verdict"]
    model = fitted["shallow_cue"]["methods"]["shallow_model"]
    for r in after["rows"]:
        c = r["cells"]["shallow_cue"]
        assert c["status"] != "n/a" and c["value"] == model["BoN"][r["domain"]] and c["ci"] == model["ci"]["BoN"][r["domain"]]
    assert "shallow cues alone find the winner" in after["sentence"]
    # a report with other draws falls back to the default fit only: fitted with 50 draws so far, so still n/a ...
    other = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["verdict"]
    assert {r["cells"]["shallow_cue"]["status"] for r in other["rows"]} == {"n/a"}
    # ... until `rmgap-annot artifacts` (default draws) has run
    default = artifact_checks(engine=engine, benchmark_id=benchmark_id)["shallow_cue"]["methods"]["shallow_model"]
    other = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["verdict"]
    assert [r["cells"]["shallow_cue"]["value"] for r in other["rows"]] == [default["BoN"][d] for d in DOMAINS]


def test_the_report_verifies_exactly_the_items_the_export_rule_does(engine, benchmark_id):
    """The report rebuilds the rule's tallies from its item summary; the verdicts must equal ``export.verify``'s."""
    import random

    from rmgap_annot.stats.human_metrics import item_summary
    from rmgap_annot.stats.verified import verified_labelled

    rng = random.Random(5)
    rows = []
    for iid, _, _, _, w, _ in _items(engine, benchmark_id):
        for a in "abcde"[: rng.randint(0, 5)]:
            r = rng.random()
            choice = w if r < 0.6 else (None if r < 0.7 else rng.choice(KEYS))  # winner, Can't decide, or any key (ties happen)
            rows.append({"annotator": a, "item_id": iid, "choice": choice, "naturalness": rng.choice([None, 1, 2, 3, 4, 5])})
    add_labels(engine, rows)
    labels = counted_labels(engine=engine, benchmark_id=benchmark_id).labels
    want = verify(labels=labels, items=load_items(engine=engine, benchmark_id=benchmark_id), rule=Rule())
    got = verified_labelled(item_summary(labels))
    assert got == set(int(i) for i in want.loc[want["verified"], "item_id"])
    assert 0 < len(got) < len(set(labels["item_id"]))  # the case is not trivial


def test_verified_and_rest_blocks_equal_rmgap_metrics_on_each_subset(engine, benchmark_id, tmp_path):
    """The sides are computed in one vectorised pass; they must equal the scorer section's own code on each subset.

    Scores from {0, 1, 2, 3, null}: ties at the top, tied rankings and NaN items all occur.
    """
    import random

    from tests.reference_scorers import metric_intervals, scored_items
    from rmgap_annot.stats.human_metrics import item_summary, record_draws
    from rmgap_annot.stats.metrics import rmgap_metrics
    from rmgap_annot.stats.verified import verified_labelled

    _verified_by_construction(engine, benchmark_id, natural=lambda group, prompt: group % 2 == 0)  # whole groups on each side
    rng = random.Random(3)
    lines = [json.dumps({"record_id": rid, "group": g, "prompt_index": p, "scores": {k: rng.choice([0.0, 1.0, 2.0, 3.0, 3.0, None]) for k in KEYS}})
             for _, rid, g, p, _, _ in _items(engine, benchmark_id)]
    (tmp_path / "r.jsonl").write_text("\n".join(lines) + "\n")
    import_scores(engine=engine, benchmark_id=benchmark_id, path=tmp_path / "r.jsonl", name="noisy")
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=200)
    got = report["verified_subset"]["scorers"]["noisy"]
    summary = item_summary(counted_labels(engine=engine, benchmark_id=benchmark_id).labels)
    draws = record_draws(summary, draws=200, seed=0)
    verified = verified_labelled(summary)
    with session_scope(engine) as s:
        from rmgap_annot.models import Scorer
        sid = s.execute(select(Scorer.id).where(Scorer.name == "noisy")).scalar_one()
    items = scored_items(engine=engine, benchmark_id=benchmark_id, scorer_id=sid)
    for side, keep in (("verified", lambda i: i in verified), ("rest", lambda i: i not in verified)):
        subset = [it for i, it in items.items() if keep(i)]
        metrics = rmgap_metrics(subset, complete_groups_only=True)
        iv = metric_intervals(subset, metrics, draws, confidence=0.95)
        for d in (*DOMAINS, "Avg"):
            for m in ("Pair", "BoN", "Consistency"):
                assert got[side][m][d] == pytest.approx(metrics[m][d]), (side, m, d)
            assert got[side]["TopConsistency"][d] == pytest.approx(iv["TopConsistency"][d]), (side, d)
            assert got[side]["ci"]["BoN"][d] == pytest.approx(iv["ci"]["BoN"][d]), (side, d)
            assert got[side]["Consistency"][d] is not None and got[side]["TopConsistency"][d] is not None
    assert got["all"]["BoN"] == report["scorers"]["noisy"]["labelled_only"]["BoN"]
