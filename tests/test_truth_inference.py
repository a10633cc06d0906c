"""Truth inference (crowd-kit's one-coin Dawid-Skene and MACE), its cache, the report section, --aggregate."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from rmgap_annot.db import session_scope
from rmgap_annot.models import TruthFit
from rmgap_annot.report import build_report
from rmgap_annot.stats import truth
from rmgap_annot.stats.twoway import two_way_section, weighted_alpha
from tests.analytics_helpers import add_labels, item_ids, winners

KEYS = [f"response{i}" for i in range(1, 5)]


def _crowd(seed=0, n_tasks=400):
    """Three careful annotators (85% right), two who are always wrong (a random wrong answer).

    The first 100 tasks are labelled by one careful annotator and both bad
    ones: plurality there is a tie or a wrong answer, never the truth.
    """
    rng = np.random.default_rng(seed)
    good = ["a", "b", "c"]
    rows, truth_of = [], {}
    for t in range(n_tasks):
        y = int(rng.integers(4))
        truth_of[t] = y
        who = [good[t % 3], "d", "e"] if t < 100 else list(rng.choice(good + ["d", "e"], 3, replace=False))
        for a in who:
            if a in good and rng.random() < 0.85:
                lab = y
            else:
                lab = int(rng.choice([k for k in range(4) if k != y]))
            rows.append((t, str(a), lab))
    return pd.DataFrame(rows, columns=["task", "worker", "label"]), truth_of


def _plurality(data):
    def pick(s):
        vc = s.value_counts()
        return vc.index[0] if len(vc) == 1 or vc.iloc[0] > vc.iloc[1] else None

    return data.groupby("task")["label"].agg(pick).to_dict()


@pytest.mark.parametrize("method", truth.FITTED)
def test_always_wrong_annotators_get_near_zero_competence_and_the_truth_is_recovered(method):
    data, truth_of = _crowd()
    fitted = truth.fit(data, method)
    comp = fitted["competence"]
    assert comp["d"] < 0.05 and comp["e"] < 0.05
    assert min(comp["a"], comp["b"], comp["c"]) > 0.5
    hard = range(100)
    plurality = _plurality(data)
    assert sum(plurality[t] == truth_of[t] for t in hard) == 0  # the vote fails on every hard task
    recovered = np.mean([fitted["picks"][t] == truth_of[t] for t in hard])
    assert recovered > 0.7, recovered


def test_a_posterior_tie_gives_no_pick():
    probas = pd.DataFrame([[0.5, 0.5, 0, 0], [0.7, 0.1, 0.1, 0.1]], index=[1, 2], columns=[0, 1, 2, 3])
    picks, post = truth._picks_from_probas(probas)
    assert picks == {1: None, 2: 0} and post[2] == pytest.approx(0.7)


def _seed_bad_crowd(engine, benchmark_id, seed=0):
    rng = np.random.default_rng(seed)
    ids, win = item_ids(engine, benchmark_id), winners(engine, benchmark_id)
    rows = []
    for n, iid in enumerate(sorted(ids.values())):
        who = ["ann0", "bad1", "bad2"] if n % 4 == 0 else list(rng.choice(["ann0", "ann1", "ann2", "bad1", "bad2"], 3, replace=False))
        for a in who:
            right = a.startswith("ann") and rng.random() < 0.9
            choice = win[iid] if right else str(rng.choice([k for k in KEYS if k != win[iid]]))
            rows.append({"annotator": str(a), "item_id": iid, "choice": choice, "naturalness": 4})
    add_labels(engine, rows)


def test_report_reads_cached_fits_only_and_fits_on_request(engine, benchmark_id, cli):
    _seed_bad_crowd(engine, benchmark_id)
    first = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)["truth_inference"]
    assert first["status"]["dawid-skene"]["fitted"] is False
    assert "--fit-truth" in first["status"]["mace"]["reason"]
    assert first["BoN"]["mace"]["Avg"] is None and first["n_disagreements"] is None
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(TruthFit)).scalar_one() == 0

    fitted = build_report(engine=engine, benchmark_id=benchmark_id, draws=50, fit_truth=True)["truth_inference"]
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(TruthFit)).scalar_one() == 2
    # The cache is read back without --fit-truth, with the same numbers.
    again = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)["truth_inference"]
    assert again["BoN"] == fitted["BoN"] and again["status"]["mace"]["fitted"]
    # Plurality row = the report's human BoN, intervals included (the same resampling).
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)
    assert report["truth_inference"]["BoN"]["plurality"] == report["human"]["BoN"]
    assert report["truth_inference"]["ci"]["plurality"] == report["human"]["ci"]["BoN"]
    # The model-based answers beat the vote here, and the bad annotators are found.
    assert fitted["BoN"]["dawid-skene"]["Avg"] > fitted["BoN"]["plurality"]["Avg"] + 0.1
    from tests.test_report import pseudonym_of

    comp = {r["annotator"]: r for r in fitted["competence"]}  # named by pseudonym: map the test's names
    comp.update({name: comp[pseudonym_of(engine, name)] for name in ("bad1", "ann0")})
    for m in truth.FITTED:
        assert comp["bad1"][m] < 0.1 and comp["ann0"][m] > 0.5
    assert fitted["n_disagreements"] == len(fitted["disagreements"]) > 0
    d = fitted["disagreements"][0]
    assert {"plurality", "dawid-skene", "mace", "winner_key", "votes"} <= set(d)
    assert "aggregation fixed" in fitted["interval_note"]
    json.dumps(fitted, allow_nan=False)
    # A new label changes the fingerprint: the old fit no longer applies.
    iid = sorted(item_ids(engine, benchmark_id).values())[1]
    add_labels(engine, [{"annotator": "late", "item_id": iid, "choice": "response1"}])
    assert build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["truth_inference"]["status"]["mace"]["fitted"] is False


def test_export_aggregate_uses_the_fitted_answers_and_says_so(engine, benchmark_id, cli, tmp_path):
    _seed_bad_crowd(engine, benchmark_id)
    plain = cli("export-verified", "--out", str(tmp_path / "p"), "--level", "item", "--min-naturalness", "0", "--min-agreement", "0")
    assert plain.exit_code == 0, plain.output
    ds = cli("export-verified", "--out", str(tmp_path / "d"), "--level", "item", "--min-naturalness", "0",
             "--min-agreement", "0", "--aggregate", "dawid-skene")
    assert ds.exit_code == 0, ds.output
    n_plain = sum(1 for _ in open(tmp_path / "p" / "items.jsonl"))
    n_ds = sum(1 for _ in open(tmp_path / "d" / "items.jsonl"))
    assert n_ds > n_plain  # Dawid-Skene recovers winners the vote loses to the bad annotators
    assert "`--aggregate dawid-skene`" in (tmp_path / "d" / "README.md").read_text()
    assert "`--aggregate plurality`" in (tmp_path / "p" / "README.md").read_text()
    bad = cli("export-verified", "--out", str(tmp_path / "x"), "--aggregate", "vote")
    assert bad.exit_code == 2 and "--aggregate" in bad.stderr


# --- two-way record x annotator bootstrap ------------------------------------------------


def _frame(seed=1, n_items=80):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        w = KEYS[int(rng.integers(4))]
        for a in rng.choice(["a", "b", "c", "d"], 3, replace=False):
            c = w if rng.random() < 0.6 else (None if rng.random() < 0.1 else KEYS[int(rng.integers(4))])
            rows.append(dict(item_id=i, record_id=f"r{i // 4}", annotator=str(a), choice_key=c, winner_key=w, domain="Chat"))
    return pd.DataFrame(rows)


def test_weighted_alpha_is_krippendorff_at_unit_weights_and_never_pairs_a_label_with_its_copy():
    import krippendorff

    lab = _frame()
    table = lab.pivot(index="annotator", columns="item_id", values="choice_key")
    data = table.apply(lambda s: s.map({k: i for i, k in enumerate(KEYS)})).to_numpy(dtype=float)
    assert weighted_alpha(lab, {}) == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    # Everyone drawn twice: as reliable as before (pairs are still between distinct labels) ...
    assert weighted_alpha(lab, {a: 2.0 for a in "abcd"}) == pytest.approx(weighted_alpha(lab, {}), abs=0.01)
    # ... whereas copying labels as new raters would pair each label with its copy and inflate alpha.
    copied = pd.concat([lab, lab.assign(annotator=lab["annotator"] + "'")])
    assert weighted_alpha(copied, {}) > weighted_alpha(lab, {}) + 0.1


def test_two_way_intervals_are_wider_than_record_only_with_few_annotators():
    lab = _frame(n_items=200)
    # One annotator is always wrong: which people are in the pool matters.
    lab.loc[lab["annotator"] == "d", "choice_key"] = "wrong"
    out = two_way_section(lab, draws=300, seed=0, confidence=0.95)
    lo, hi = out["label_accuracy"]["ci"]["Chat"]
    point = ((lab["choice_key"] == lab["winner_key"]).mean())
    assert lo < point < hi
    # Records-only spread of label accuracy (annotator weights all 1).
    from rmgap_annot.stats.twoway import _Domain

    ann_codes, _ = pd.factorize(lab["annotator"], sort=True)
    keys = pd.Index(sorted(set(lab["choice_key"].dropna()) | set(lab["winner_key"])))
    dom = _Domain(lab, ann_codes, keys)
    rng = np.random.default_rng(0)
    rec = rng.multinomial(dom.n_records, np.full(dom.n_records, 1 / dom.n_records), size=300).astype(float)
    acc = dom.draws(np.ones((300, dom.n_labels)), rec[:, dom.item_record])["label_accuracy"]
    r_lo, r_hi = np.percentile(acc, [2.5, 97.5])
    assert (hi - lo) > 1.5 * (r_hi - r_lo)
    assert out["choice_alpha"]["ci"]["All"] is not None and out["BoN"]["ci"]["Avg"] is not None


def test_report_resample_annotators(engine, benchmark_id, cli):
    _seed_bad_crowd(engine, benchmark_id)
    plain = build_report(engine=engine, benchmark_id=benchmark_id, draws=50)
    assert "annotator_resampling" not in plain
    out = cli("report", "--json", "--draws", "100", "--resample", "annotators")
    assert out.exit_code == 0
    tw = json.loads(out.stdout)["annotator_resampling"]
    assert "never paired with its own copy" in tw["method"]
    for d in ("Chat", "Avg"):
        lo, hi = tw["BoN"]["ci"][d]
        assert 0 <= lo <= hi <= 1
    assert cli("report", "--resample", "people").exit_code == 2


def test_only_the_newest_fits_are_kept(engine, benchmark_id, monkeypatch):
    """Each new label set gets its own fit; older ones are pruned (the newest KEEP_FITS stay)."""
    monkeypatch.setattr(truth, "KEEP_FITS", 2)
    ids = sorted(item_ids(engine, benchmark_id).values())
    from rmgap_annot.labels_frame import load_labels

    fps = []
    for n in range(3):
        add_labels(engine, [{"annotator": f"a{n}", "item_id": i, "choice": KEYS[(i + n) % 4]} for i in ids[:20]])
        labels = load_labels(engine=engine, benchmark_id=benchmark_id)
        fps.append(truth.aggregated_picks(engine=engine, benchmark_id=benchmark_id, labels=labels, method="dawid-skene",
                                          fit_if_missing=True)["fingerprint"])
    with session_scope(engine) as s:
        kept = set(s.execute(select(TruthFit.fingerprint)).scalars())
    assert kept == set(fps[1:])
