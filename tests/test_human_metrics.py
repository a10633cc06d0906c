"""Human accuracy in RMGAP's terms, on small cases computed by hand."""

from __future__ import annotations

import pytest

from rmgap_annot.report import build_report
from tests.analytics_helpers import add_labels, item_ids, winners


def _other(winner: str) -> str:
    return "response1" if winner != "response1" else "response2"


@pytest.fixture
def coords(engine, benchmark_id):
    ids = item_ids(engine, benchmark_id)
    return ids, winners(engine, benchmark_id)


def _chat(ids):
    recs = sorted({r for r, _, _ in ids if r.startswith("chat")})
    return recs


def test_bon_ties_missing_and_one_label_items(engine, benchmark_id, coords):
    ids, win = coords
    rec = _chat(ids)[0]
    i_ok, i_tie, i_none, i_one = ids[(rec, 0, 0)], ids[(rec, 0, 1)], ids[(rec, 0, 2)], ids[(rec, 1, 0)]
    add_labels(engine, [
        # plurality = winner (2 of 3): right
        {"annotator": "a", "item_id": i_ok, "choice": win[i_ok]},
        {"annotator": "b", "item_id": i_ok, "choice": win[i_ok]},
        {"annotator": "c", "item_id": i_ok, "choice": _other(win[i_ok])},
        # a tie for first place between the winner and another: wrong, as RMGAP counts ties
        {"annotator": "a", "item_id": i_tie, "choice": win[i_tie]},
        {"annotator": "b", "item_id": i_tie, "choice": _other(win[i_tie])},
        # only Can't decide: no pick, wrong
        {"annotator": "a", "item_id": i_none, "choice": None},
        {"annotator": "b", "item_id": i_none, "choice": None},
        # one label that picks the winner: right
        {"annotator": "a", "item_id": i_one, "choice": win[i_one]},
    ])
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)
    human = report["human"]
    assert human["BoN"]["Chat"] == pytest.approx(2 / 4)
    assert human["BoN"]["Avg"] == pytest.approx(2 / 4)  # the only domain with labels
    assert human["BoN"]["Writing"] is None and human["reasons"]["BoN"]["Writing"]
    assert human["label_accuracy"]["Chat"] == pytest.approx(4 / 8)
    assert human["n"]["ties"]["Chat"] == 1 and human["n"]["no_pick"]["Chat"] == 1
    assert human["Pair"]["Chat"] is None and human["reasons"]["Pair"]["Chat"] == "no ranking-mode labels"
    items = {r["item_id"]: r for r in report["items"]}
    assert items[i_tie]["plurality_pick"] is None and items[i_tie]["tie"] is True
    assert items[i_ok]["agreement_share"] == pytest.approx(2 / 3)
    assert items[i_none]["agreement_share"] is None and items[i_none]["n_cant_decide"] == 2
    lo, hi = human["ci"]["BoN"]["Chat"]
    assert 0 <= lo <= 0.5 <= hi <= 1


def test_consistency_over_complete_groups(engine, benchmark_id, coords):
    ids, win = coords
    rec = _chat(ids)[0]
    rows = []
    for p in range(3):  # group 0: the same pick on all three prompts -> consistent
        rows.append({"annotator": "a", "item_id": ids[(rec, 0, p)], "choice": "response1"})
    for p, choice in enumerate(["response1", "response2", "response1"]):  # group 1: not
        rows.append({"annotator": "a", "item_id": ids[(rec, 1, p)], "choice": choice})
    rows.append({"annotator": "a", "item_id": ids[(rec, 2, 0)], "choice": "response1"})  # incomplete group: left out
    add_labels(engine, rows)
    human = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)["human"]
    assert human["TopConsistency"]["Chat"] == pytest.approx(0.5)
    assert human["n"]["groups"]["Chat"] == 2 and human["n"]["incomplete_groups"]["Chat"] == 1
    # RMGAP's Consistency compares full rankings: pick-only labels cannot give it.
    assert human["Consistency"]["Chat"] is None and "ranking" in human["reasons"]["Consistency"]["Chat"]


def test_ranking_mode_pair_by_hand(engine, benchmark_id, coords):
    ids, win = coords
    rec = _chat(ids)[0]
    i1, i2 = ids[(rec, 0, 0)], ids[(rec, 0, 1)]
    w = win[i1]
    others = [k for k in ("response1", "response2", "response3", "response4") if k != w]
    add_labels(engine, [
        {"annotator": "a", "item_id": i1, "choice": w, "ranking": [w, *others]},  # 3 of 3 pairs right
        {"annotator": "b", "item_id": i1, "choice": others[0], "ranking": [others[0], others[1], w, others[2]]},  # 1 of 3
        {"annotator": "a", "item_id": i2, "choice": others[0], "ranking": [others[0], others[1], others[2], w]},  # 0 of 3
    ])
    human = build_report(engine=engine, benchmark_id=benchmark_id, draws=100)["human"]
    assert human["Pair"]["Chat"] == pytest.approx(4 / 9)
    assert human["Pair"]["Avg"] == pytest.approx(4 / 9)
    assert human["n"]["ranking_labels"]["Chat"] == 3
    # Borda scores, scored as a reward model would be: item 1 gives w 4+2=6, others[0] 3+4=7 -> Pair 2/3 there.
    ranking = human["ranking"]
    assert ranking["Pair"]["Chat"] == pytest.approx((2 + 0) / 6)
    assert ranking["BoN"]["Chat"] == 0.0


def test_avg_is_the_plain_mean_of_domains_and_interval_reproducible(engine, benchmark_id, coords):
    ids, win = coords
    rows = []
    for (rid, g, p), iid in ids.items():
        if rid.startswith("chat"):
            rows.append({"annotator": "a", "item_id": iid, "choice": win[iid]})  # Chat: all right
        elif rid.startswith("writing"):
            rows.append({"annotator": "a", "item_id": iid, "choice": _other(win[iid])})  # Writing: all wrong
    add_labels(engine, rows)
    h1 = build_report(engine=engine, benchmark_id=benchmark_id, draws=200, seed=1)["human"]
    assert h1["BoN"]["Chat"] == 1.0 and h1["BoN"]["Writing"] == 0.0
    assert h1["BoN"]["Avg"] == pytest.approx(0.5)
    assert h1["TopConsistency"]["Chat"] == 1.0  # every prompt of a group picks its winner
    h2 = build_report(engine=engine, benchmark_id=benchmark_id, draws=200, seed=1)["human"]
    assert h1["ci"] == h2["ci"]
    # every draw is the same (all right / all wrong), but the interval is not degenerate
    lo, hi = h1["ci"]["BoN"]["Avg"]
    assert lo < 0.5 < hi
