"""Sample-size planning: the ICC estimate, the design-effect formula and the alpha simulation, each checked by simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rmgap_annot.stats import planning
from tests.test_report import _seed


def _beta_binomial_study(rng, *, records, m, p, icc):
    a, b = planning._beta_params(p, icc)
    ease = rng.beta(a, b, size=records)
    return (rng.random((records, m)) < ease[:, None]).astype(float)


def test_icc_anova_recovers_a_known_icc():
    rng = np.random.default_rng(0)
    y = _beta_binomial_study(rng, records=600, m=12, p=0.7, icc=0.3)
    est, why = planning.icc_anova(y.ravel(), np.repeat(np.arange(600), 12))
    assert why is None and est == pytest.approx(0.3, abs=0.05)
    flat, why = planning.icc_anova(np.ones(24), np.repeat(np.arange(2), 12))
    assert flat is None and "same outcome" in why
    assert planning.icc_anova(np.ones(3), np.zeros(3))[0] is None


def test_design_effect_formula_matches_simulated_spread():
    """The planned half-width at R records equals 1.96 x the SD of BoN over simulated clustered studies."""
    rng = np.random.default_rng(1)
    records, m, p, icc = 80, 12, 0.7, 0.25
    bons = [_beta_binomial_study(rng, records=records, m=m, p=p, icc=icc).mean() for _ in range(1500)]
    simulated = 1.96 * np.std(bons, ddof=1)
    planned = planning.proportion_half_width(p, icc, m, records, planning.z_value())
    assert planned == pytest.approx(simulated, rel=0.1)
    # Ignoring the clustering (ICC 0) would promise an interval far too narrow.
    assert planning.proportion_half_width(p, 0.0, m, records, planning.z_value()) < 0.6 * simulated
    needed = planning.records_for_proportion(p, icc, m, 0.05, planning.z_value())
    assert planning.proportion_half_width(p, icc, m, needed, planning.z_value()) <= 0.05
    assert planning.proportion_half_width(p, icc, m, needed - 1, planning.z_value()) > 0.05


def test_alpha_sqrt_scaling_matches_a_direct_simulation():
    """The plan's approximation (SD at 200 records scaled by 1/sqrt(R)) against studies simulated at R = 50."""
    kw = dict(accuracy=0.65, icc=0.2, items_per_record=12, labels_per_item=3)
    _, sd_ref = planning.alpha_spread(**kw, records=200, studies=300, seed=0)
    _, sd_50 = planning.alpha_spread(**kw, records=50, studies=300, seed=1)
    assert sd_ref * np.sqrt(200 / 50) == pytest.approx(sd_50, rel=0.2)
    # The simulated alpha is what krippendorff computes on the same counts.
    import krippendorff

    counts = planning.simulate_counts(np.random.default_rng(2), studies=1, records=5, items_per_record=12, labels_per_item=3,
                                      accuracy=0.65, icc=0.2)
    assert planning.nominal_alpha_of_counts(counts)[0] == pytest.approx(
        krippendorff.alpha(value_counts=counts[0], level_of_measurement="nominal"))


def test_plurality_correct_matches_monte_carlo():
    rng = np.random.default_rng(3)
    q, n = 0.6, 3
    right = rng.random((200_000, n)) < q
    wrong_key = rng.integers(1, 4, size=(200_000, n))
    keys = np.where(right, 0, wrong_key)
    counts = np.stack([(keys == k).sum(axis=1) for k in range(4)], axis=1)
    mc = np.mean(counts[:, 0] > counts[:, 1:].max(axis=1))
    assert planning.plurality_correct(n, q) == pytest.approx(mc, abs=0.005)
    assert planning.plurality_correct(5, q) > planning.plurality_correct(3, q)


def test_plan_cli_from_pilot_and_from_assumptions(engine, benchmark_id, cli):
    assert cli("plan", "--half-width", "0.05").exit_code == 2  # no pilot, no assumptions
    out = cli("plan", "--half-width", "0.05", "--accuracy", "0.7", "--icc", "0.1", "--json")
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    chat = res["domains"]["Chat"]
    assert chat["design_effect"] == pytest.approx(1 + 11 * 0.1)
    assert chat["records_needed"] == planning.records_for_proportion(0.7, 0.1, 12, 0.05, planning.z_value())
    _seed(engine, benchmark_id, n_annotators=3)
    pilot = json.loads(cli("plan", "--half-width", "0.1", "--metric", "label_accuracy", "--json").stdout)
    assert pilot["source"].startswith("pilot")
    assert pilot["domains"]["Safety"]["records_now"] == 2 and pilot["domains"]["Safety"]["half_width_now"] > 0
    text = cli("plan", "--half-width", "0.1", "--metric", "choice_alpha")
    assert text.exit_code == 0 and "simulation" in text.output and "Reasoning" in text.output
    assert cli("plan", "--half-width", "0.05", "--metric", "kappa").exit_code == 2
    assert cli("plan", "--half-width", "0.05", "--accuracy", "0.7").exit_code == 2
    assert cli("plan", "--half-width", "1.5").exit_code == 2


def test_report_and_card_carry_the_plan_the_command_prints(engine, benchmark_id, tmp_path):
    """The report's ``planning`` is ``plan`` on the same labels; the dataset card shows it."""
    from rmgap_annot.export import write_export
    from rmgap_annot.report import build_report

    empty = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)["planning"]
    assert "no labels yet" in empty["reason"]
    _seed(engine, benchmark_id)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=0)
    direct = planning.plan_for_benchmark(engine=engine, benchmark_id=benchmark_id, metric="BoN", half_width=0.05, labels_per_item=3)
    assert report["planning"]["BoN"]["domains"] == direct["domains"]
    assert any(e.get("records_needed") for e in report["planning"]["label_accuracy"]["domains"].values())
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "v")
    card = (tmp_path / "v" / "README.md").read_text(encoding="utf-8")
    assert "## Sample-size plan" in card
    needed = next(e["records_needed"] for e in report["planning"]["BoN"]["domains"].values() if e.get("records_needed"))
    assert f"| {needed} |" in card
