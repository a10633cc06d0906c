"""RMGAP's metrics by hand, human plurality picks, agreement and exact McNemar."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import select

from rmgap_annot.studies import item_study_id
from rmgap_annot.stats.comparison import mcnemar_exact, plurality_picks, scorer_section
from rmgap_annot.stats.metrics import top_pick
from rmgap_annot.db import session_scope
from rmgap_annot.stats.metrics import ScoredItem, rmgap_metrics
from rmgap_annot.models import Item, Label, Record, User
from rmgap_annot.scores_io import import_scores

NAN = float("nan")


def test_metrics_hand_case_with_ties_and_nan():
    def it(group, prompt, winner, scores):
        return ScoredItem("Chat", "rec", group, prompt, winner, dict(zip(("r1", "r2", "r3", "r4"), scores)))

    items = [
        it(0, 0, "r1", (3, 1, 1, 0)),  # 3/3 pairs, BoN
        it(0, 1, "r1", (2, 2, 1, 0)),  # tie with r2 loses: 2/3, no BoN
        it(0, 2, "r1", (NAN, 2, 1, 0)),  # skipped; its group is inconsistent
        it(1, 0, "r2", (1, 1, 0, 0)),  # 2/3 each, ranking by key on ties: r1 r2 r3 r4
        it(1, 1, "r2", (1, 1, 0, 0)),
        it(1, 2, "r2", (5, 5, 2, 2)),
    ]
    m = rmgap_metrics(items)
    assert m["Pair"]["Chat"] == pytest.approx(11 / 15)
    assert m["BoN"]["Chat"] == pytest.approx(1 / 5)
    assert m["Consistency"]["Chat"] == 0.5
    assert m["Pair"]["Avg"] == m["Pair"]["Chat"] and m["Pair"]["Writing"] is None
    assert m["n_nan_items"] == 1


def test_top_pick_and_mcnemar_by_hand():
    assert top_pick({"a": 1.0, "b": 3.0, "c": 2.0}) == "b"
    assert top_pick({"a": 3.0, "b": 3.0}) is None
    assert top_pick({"a": NAN, "b": 1.0}) is None
    res = mcnemar_exact([True, True, False, False, False, True], [False, True, True, True, True, True])
    b, c, n = 1, 3, 4
    want = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n)
    assert (res["human_only_correct"], res["scorer_only_correct"]) == (b, c)
    assert res["p_value"] == pytest.approx(want)
    assert mcnemar_exact([True], [True])["p_value"] == 1.0


def _add_labels(engine, votes_by_item: dict[int, list]):
    with session_scope(engine, write=True) as session:
        users = [User(name=f"ann{i}") for i in range(3)]
        session.add_all(users)
        session.flush()
        for item_id, votes in votes_by_item.items():
            for user, choice in zip(users, votes):
                session.add(Label(study_id=item_study_id(session, item_id), user_id=user.id, item_id=item_id, choice_key=choice))


def test_scorer_section_side_by_side(engine, benchmark_id, tmp_path):
    with session_scope(engine) as session:
        items = session.execute(
            select(Item.id, Record.record_id, Item.group, Item.prompt_index, Item.winner_key, Item.domain)
            .join(Record, Record.id == Item.record_pk).where(Item.benchmark_id == benchmark_id).order_by(Item.id)
        ).all()
    keys = ["response1", "response2", "response3", "response4"]
    path = tmp_path / "oracle.jsonl"
    path.write_text("".join(
        json.dumps({"record_id": r, "group": g, "prompt_index": p, "scores": {k: float(k == w) for k in keys}}) + "\n"
        for _, r, g, p, w, _ in items
    ))
    import_scores(engine=engine, benchmark_id=benchmark_id, path=path, name="oracle")
    chat = [(i, w) for i, _, _, _, w, d in items if d == "Chat"][:10]
    other = {w: next(k for k in keys if k != w) for _, w in chat}
    votes = {}
    for n, (item_id, winner) in enumerate(chat):
        if n < 6:
            votes[item_id] = [winner, winner, None]  # plurality = winner
        elif n < 8:
            votes[item_id] = [other[winner]] * 3  # unanimous, wrong
        else:
            votes[item_id] = [winner, other[winner], None]  # three-way tie: no pick
    _add_labels(engine, votes)

    picks = plurality_picks(engine=engine, benchmark_id=benchmark_id)
    assert len(picks) == 10 and sum(p is None for p in picks.values()) == 2

    section = scorer_section(engine=engine, benchmark_id=benchmark_id)["oracle"]
    assert section["BoN"]["Avg"] == 1.0 and section["Pair"]["Safety"] == 1.0 and section["Consistency"]["Chat"] == 1.0
    assert section["n_items"] == 96 and section["truncated"] == 0 and section["family"] == "imported"
    labelled = section["labelled_only"]
    assert labelled["n_items"] == 10 and labelled["BoN"]["Chat"] == 1.0 and labelled["BoN"]["Writing"] is None
    assert section["agreement_with_human"]["Chat"] == pytest.approx(6 / 8)
    assert section["agreement_with_human"]["n_items"]["Chat"] == 8
    test = section["mcnemar"]["Chat"]
    assert (test["n_items"], test["human_only_correct"], test["scorer_only_correct"]) == (10, 0, 4)
    assert test["human_bon"] == 0.6 and test["scorer_bon"] == 1.0
    assert test["p_value"] == pytest.approx(2 / 16)
    assert section["mcnemar"]["All"]["p_value"] == pytest.approx(2 / 16)
    json.dumps(section, allow_nan=False)  # report --json must serialise it

    from rmgap_annot.report import build_report

    via_report = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["scorers"]["oracle"]
    assert via_report["mcnemar"] == section["mcnemar"]
    assert via_report["human"]["BoN"]["Chat"] == pytest.approx(test["human_bon"])
