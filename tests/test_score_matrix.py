"""The scorer comparison over score matrices gives exactly the per-item reference's numbers.

tests/reference_scorers.py is the code the matrices replaced (one ScoredItem
at a time on rmgap_annot.stats.metrics' rules); every comparison here is of the
JSON text, so a float that differs in its last bit fails.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rmgap_annot.studies import item_study_id
from rmgap_annot.stats import metrics
from rmgap_annot.stats import score_matrix as sm
from rmgap_annot.stats.comparison import _SharedDraws, comparison_key, compare_matrix, pick_columns, scorer_section
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, init_db, session_scope
from rmgap_annot.stats.human_metrics import human_accuracy, item_summary, record_draws
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.stats.comparison import picks_from_summary
from rmgap_annot.models import Item, Label, Record, User
from rmgap_annot.scores_io import import_scores
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs
from tests.reference_scorers import compare_scorer, reference_scorer_section

NAN = float("nan")
KEY_POOL = ("response1", "response2", "response3", "response4", "b", "A", "a", "Zed", "k10", "k9")
# Few distinct values: ties at the top, in the middle and across prompts; NaN, infinities and signed zeros.
VALUES = (0.0, -0.0, 1.0, 2.0, 2.0, 3.0, -1.5, math.inf, -math.inf, NAN)


def same(a, b) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@st.composite
def benchmarks(draw):
    """A random benchmark, one scorer's score rows (in random order, some items missing) and human picks."""
    n_records = draw(st.integers(1, 7))
    items, responses, winners, keys_of = [], [], {}, {}
    item_id = 0
    names = draw(st.lists(st.sampled_from(["r1", "r10", "r2", "b", "A", "x-3", "r01", "zz"]), min_size=n_records,
                          max_size=n_records, unique=True))
    for pk, rid in enumerate(names, start=1):
        domain = draw(st.sampled_from(DOMAINS))
        keys = draw(st.lists(st.sampled_from(KEY_POOL), min_size=1, max_size=4, unique=True))
        keys_of[pk] = keys
        responses += [(pk, k) for k in keys]
        for g in range(draw(st.integers(1, 3))):
            winner = draw(st.sampled_from(keys))
            for p in range(draw(st.sampled_from([3, 3, 3, 2]))):  # now and then a group missing a prompt
                item_id += draw(st.integers(1, 3))
                items.append((item_id, domain, rid, g, winner, pk))
                winners[item_id] = winner
    scored = draw(st.sampled_from([1.0, 1.0, 0.7]))
    rows = []
    order = draw(st.permutations(range(len(items))))
    for i in order:
        it = items[i]
        if draw(st.floats(0, 1)) >= scored:
            continue
        keys = list(keys_of[it[5]])
        if draw(st.integers(0, 9)) == 0:
            keys = keys[:-1]  # an item missing a score: not counted
        for k in draw(st.permutations(keys)):
            rows.append((it[0], k, draw(st.sampled_from(VALUES))))
    picks = {}
    for it in items:
        choice = draw(st.integers(0, 4))
        if choice == 0:
            continue
        picks[it[0]] = None if choice == 1 else (winners[it[0]] if choice == 2 else draw(st.sampled_from(keys_of[it[5]])))
    return items, responses, rows, picks


def reference_items(items, rows) -> dict[int, metrics.ScoredItem]:
    """What the reference's scored_items builds from the same rows (first-row order, complete items only)."""
    meta = {it[0]: it for it in items}
    scores: dict[int, dict] = {}
    for item_id, key, value in rows:
        scores.setdefault(item_id, {})[key] = value
    out = {}
    for item_id, s in scores.items():
        _, domain, rid, g, winner, pk = meta[item_id]
        out[item_id] = metrics.ScoredItem(domain, rid, g, 0, winner, s)
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(benchmarks(), st.booleans())
def test_metrics_equal_the_reference_on_random_score_matrices(bench, complete_groups_only):
    items, responses, rows, _ = bench
    layout = sm.layout_from_rows(items, responses)
    matrix = sm.score_matrix(layout, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    n_keys = {pk: sum(1 for p, _ in responses if p == pk) for pk in {r[0] for r in responses}}
    pk_of = {it[0]: it[5] for it in items}
    ref_items = {i: s for i, s in reference_items(items, rows).items() if len(s.scores) == n_keys[pk_of[i]]}
    assert [int(layout.item_id[r]) for r in matrix.rows] == list(ref_items)  # the reference's item order
    out = sm.outcomes(layout, matrix)
    for j, item in enumerate(ref_items.values()):
        ref = metrics.item_outcomes(item)
        assert bool(out.nan[j]) == (ref is None)
        if ref is not None:
            assert (out.won[j], out.total[j], bool(out.best[j])) == ref
            assert tuple(layout.record_keys[out.rows[j]][c] for c in out.order[j][: len(item.scores)]) == metrics.ranking(item.scores)
        top = metrics.top_pick(item.scores)
        assert (out.top[j] == sm.NO_PICK) == (top is None)
        if top is not None:
            assert layout.record_keys[out.rows[j]][out.top[j]] == top
    sel = np.arange(len(out.rows))
    grp = sm.groups(layout, out, sel)
    ref_groups = metrics.group_outcomes(ref_items.values())
    got = sorted((str(r), bool(c), bool(t)) for r, c, t, ok in zip(grp.record_id, grp.consistent, grp.top_consistent, grp.complete) if ok)
    assert got == sorted((g.record_id, g.consistent, g.top_consistent) for g in ref_groups)
    new = sm.rmgap_metrics(layout, out, sel, grp, complete_groups_only=complete_groups_only)
    assert same(new, metrics.rmgap_metrics(ref_items.values(), complete_groups_only=complete_groups_only))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(benchmarks(), st.sampled_from([0, 25]), st.booleans())
def test_scorer_comparison_equals_the_reference(bench, draws, report_draws):
    """Every number of a scorer's section, intervals and tests included, for the matrix and the per-item code."""
    items, responses, rows, picks = bench
    layout = sm.layout_from_rows(items, responses)
    matrix = sm.score_matrix(layout, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    n_keys = {pk: sum(1 for p, _ in responses if p == pk) for pk in {r[0] for r in responses}}
    pk_of = {it[0]: it[5] for it in items}
    ref_items = {i: s for i, s in reference_items(items, rows).items() if len(s.scores) == n_keys[pk_of[i]]}
    human_draws = None
    if report_draws and draws:
        # The report's draws: over every labelled record (string ids), not only the scored ones.
        dom = {it[0]: (it[1], it[2]) for it in items}
        by_domain: dict[str, set] = {}
        for i in picks:
            by_domain.setdefault(dom[i][0], set()).add(dom[i][1])
        human_draws = {d: bs.cluster_draws(sorted(r), draws=draws, seed=3, stream=bs.stream_for(d)) for d, r in by_domain.items()}
    ref = compare_scorer(items=ref_items, picks=picks, n_benchmark_items=len(items), human_draws=human_draws, draws=draws, seed=3)
    pick_col, labelled = pick_columns(layout, picks)
    new = compare_matrix(layout=layout, matrix=matrix, pick_col=pick_col, labelled=labelled,
                         shared=_SharedDraws(layout, draws=draws, seed=3), human_draws=human_draws)
    assert same(new, ref)


def _add_labels(engine, votes_by_item):
    with session_scope(engine, write=True) as session:
        users = [User(name=f"ann{i}") for i in range(3)]
        session.add_all(users)
        session.flush()
        for item_id, votes in votes_by_item.items():
            for user, choice in zip(users, votes):
                session.add(Label(study_id=item_study_id(session, item_id), user_id=user.id, item_id=item_id, choice_key=choice))


def _scores_file(path, items, value_of):
    keys = ["response1", "response2", "response3", "response4"]
    lines = []
    for n, (_, rid, g, p, w, _) in enumerate(items):
        values = value_of(n, w, keys)
        if values is not None:
            lines.append(json.dumps({"record_id": rid, "group": g, "prompt_index": p, "scores": dict(zip(keys, values))}))
    path.write_text("\n".join(lines) + "\n")
    return path


def _seed_scorers(engine, benchmark_id, tmp_path):
    with session_scope(engine) as session:
        items = session.execute(
            select(Item.id, Record.record_id, Item.group, Item.prompt_index, Item.winner_key, Item.domain)
            .join(Record, Record.id == Item.record_pk).where(Item.benchmark_id == benchmark_id).order_by(Item.id)
        ).all()
    rng = np.random.default_rng(5)
    judge = lambda n, w, keys: [float(rng.integers(1, 4)) + (k == w) for k in keys]  # noqa: E731 - ties
    nans = lambda n, w, keys: [None if n % 7 == 0 and k == "response2" else float(rng.normal()) for k in keys]  # noqa: E731
    half = lambda n, w, keys: None if n % 2 else [float(k == w) for k in keys]  # noqa: E731 - incomplete groups
    for name, fn in (("judge", judge), ("nans", nans), ("half", half)):
        import_scores(engine=engine, benchmark_id=benchmark_id, path=_scores_file(tmp_path / f"{name}.jsonl", items, fn), name=name)
    rng_votes = np.random.default_rng(1)
    keys = ["response1", "response2", "response3", "response4"]
    _add_labels(engine, {i: [w if rng_votes.random() < 0.6 else str(rng_votes.choice(keys)), w, None] for i, _, _, _, w, _ in items[:60]})
    return items


def test_scorer_section_equals_the_reference_on_a_database(backend_url, small_file, tmp_path):
    """SQLite and PostgreSQL: the scores come through the driver's own cursor, so both drivers are checked."""
    init_db(backend_url)
    engine = get_engine(backend_url)
    benchmark_id = import_benchmark(engine=engine, path=small_file, name="small").benchmark_id
    _seed_scorers(engine, benchmark_id, tmp_path)
    new = scorer_section(engine=engine, benchmark_id=benchmark_id, draws=200)
    assert set(new) == {"judge", "nans", "half"}
    assert new["nans"]["n_nan_items"] > 0 and new["half"]["n_items"] < 96
    assert same(new, reference_scorer_section(engine=engine, benchmark_id=benchmark_id, draws=200))
    # As the report calls it: its picks, its human section and its record draws.
    labels = counted_labels(engine=engine, benchmark_id=benchmark_id).labels
    summary = item_summary(labels)
    rdraws = record_draws(summary, draws=200)
    human = human_accuracy(summary=summary, labels=labels, draws_by_domain=rdraws, draws=200)
    kwargs = dict(engine=engine, benchmark_id=benchmark_id, human=human, picks=picks_from_summary(summary), human_draws=rdraws,
                  draws=200, adjust="bh")
    assert same(scorer_section(**kwargs), reference_scorer_section(**kwargs))


def test_comparison_key_changes_with_scores_and_labels(engine, benchmark_id, tmp_path):
    """The pages cache the comparison by this key: a stale table after new scores or labels would be wrong."""
    items = _seed_scorers(engine, benchmark_id, tmp_path)
    before = comparison_key(engine=engine, benchmark_id=benchmark_id)
    assert comparison_key(engine=engine, benchmark_id=benchmark_id) == before
    # The same scorer's scores replaced by another file (same name, same number of rows).
    path = _scores_file(tmp_path / "judge2.jsonl", items, lambda n, w, keys: [float(k == w) for k in keys])
    import_scores(engine=engine, benchmark_id=benchmark_id, path=path, name="judge", replace=True)
    replaced = comparison_key(engine=engine, benchmark_id=benchmark_id)
    assert replaced != before
    _add_labels_one(engine, items[70][0], items[70][4])
    assert comparison_key(engine=engine, benchmark_id=benchmark_id) != replaced


def _add_labels_one(engine, item_id, choice):
    with session_scope(engine, write=True) as session:
        user = User(name="late")
        session.add(user)
        session.flush()
        session.add(Label(study_id=item_study_id(session, item_id), user_id=user.id, item_id=item_id, choice_key=choice))


def test_a_score_row_of_an_unknown_key_or_item_is_left_out():
    items = [(1, "Chat", "r", 0, "a", 1), (2, "Chat", "r", 0, "a", 1), (3, "Chat", "r", 0, "a", 1)]
    layout = sm.layout_from_rows(items, [(1, "a"), (1, "b")])
    matrix = sm.score_matrix(layout, [1, 1, 2, 2, 9, 3], ["b", "a", "a", "zz", "a", "a"], [1.0, 2.0, 1.0, 0.0, 3.0, 1.0])
    assert layout.item_id[matrix.rows].tolist() == [1]  # item 2's "zz" is no response, item 3 lacks "b", 9 is elsewhere
    assert matrix.values.tolist() == [[2.0, 1.0]]  # columns in key order: a, b
    with pytest.raises(ValueError):
        _SharedDraws(layout, draws=5, seed=0).unit_draws(bs.cluster_draws(["other"], draws=5), np.array([0]))
