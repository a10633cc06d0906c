"""Do the report's 95% intervals cover the truth, and do its tests keep their level?

Simulated studies with a known population (``rmgap_annot.stats.simulation``):
RMGAP-shaped records (12 items over one set of responses), 3 labels per
item, a record effect on the logit of a correct pick of sd 0 (independent),
1 (moderate) or 2 (strong). For every study the report's own code
(``report.label_sections``) computes each interval twice: resampling whole
records (what the report does) and resampling items (what it did before
issue 11, same code with every item its own cluster). Truths: closed form
for human BoN and label accuracy, a 5,000-record study for the rest.

Tests under the null: human vs scorer with equal population BoN but their
own record effects (clustered McNemar of Durkalski vs the exact item-level
McNemar), a scorer exactly at chance with within-record correlation (the
clustered test vs chance), and 24 null scorers tested against the human
column (family-wise rate with and without Holm).

    .venv/bin/python bench/coverage.py [--studies 200] [--records 100] [--draws 500]

Prints the tables quoted in the README (section "Statistics you can trust").
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from scipy import stats as sps

from rmgap_annot.stats.human_metrics import item_summary, record_draws
from rmgap_annot.report import label_sections
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.stats import simulation as sim

METRICS = {
    "human BoN": lambda r: (r["human"]["BoN"]["Chat"], r["human"]["ci"]["BoN"]["Chat"]),
    "label accuracy": lambda r: (r["human"]["label_accuracy"]["Chat"], r["human"]["ci"]["label_accuracy"]["Chat"]),
    "TopConsistency": lambda r: (r["human"]["TopConsistency"]["Chat"], r["human"]["ci"]["TopConsistency"]["Chat"]),
    "pick alpha": lambda r: (r["agreement"]["choice_alpha"]["Chat"]["alpha"], r["agreement"]["choice_alpha"]["Chat"]["ci"]),
    "naturalness alpha": lambda r: (r["agreement"]["naturalness_alpha"]["Chat"]["alpha"], r["agreement"]["naturalness_alpha"]["Chat"]["ci"]),
    "percent agreement": lambda r: (r["agreement"]["percent_agreement"]["Chat"]["value"], r["agreement"]["percent_agreement"]["Chat"]["ci"]),
    "naturalness mean": lambda r: (r["naturalness"]["by_domain"]["Chat"]["mean"], r["naturalness"]["by_domain"]["Chat"]["ci_mean"]),
}


def sections(labels, *, draws: int, by_item: bool) -> dict:
    if by_item:
        labels = labels.assign(record_id=labels["item_id"].map(lambda i: f"item{i:06d}"))
    summary = item_summary(labels)
    return label_sections(labels, summary, record_draws(summary, draws=draws, seed=1), draws=draws, seed=1, confidence=0.95)


def truths(record_sd: float, rng: np.random.Generator, n_records: int = 5000) -> dict[str, float]:
    big = sections(sim.label_frame(rng, n_records=n_records, record_sd=record_sd), draws=0, by_item=False)
    out = {m: f(big)[0] for m, f in METRICS.items()}
    out.update({"human BoN": sim.true_accuracy(record_sd)["BoN"], "label accuracy": sim.true_accuracy(record_sd)["label_accuracy"]})
    return out


def coverage(setting: str, record_sd: float, *, studies: int, records: int, draws: int) -> dict:
    rng = np.random.default_rng([11, int(record_sd * 10)])
    truth = truths(record_sd, rng)
    hits = {(m, u): 0 for m in METRICS for u in ("record", "item")}
    width = {(m, u): [] for m in METRICS for u in ("record", "item")}
    for _ in range(studies):
        labels = sim.label_frame(rng, n_records=records, record_sd=record_sd)
        for unit in ("record", "item"):
            res = sections(labels, draws=draws, by_item=unit == "item")
            for m, f in METRICS.items():
                if unit == "item" and m == "TopConsistency":
                    continue
                _, ci = f(res)
                if ci is not None:
                    hits[(m, unit)] += ci[0] <= truth[m] <= ci[1]
                    width[(m, unit)].append(ci[1] - ci[0])
    return {"hits": {k: v / studies for k, v in hits.items()}, "width": {k: float(np.mean(v)) if v else None for k, v in width.items()}}


def tests(record_sd: float, *, studies: int, records: int, draws: int) -> dict:
    rng = np.random.default_rng([12, int(record_sd * 10)])
    icc = {0.0: 0.0, 1.0: 0.15, 2.0: 0.35}[record_sd]
    out = {k: 0 for k in ("clustered McNemar", "item McNemar", "vs chance clustered", "vs chance item binomial",
                          "24 scorers, no adjustment", "24 scorers, Holm", "difference covers 0 (record)",
                          "difference covers 0 (item)")}
    for _ in range(studies):
        human, scorers, rec = sim.paired_outcomes(rng, n_records=records, record_sd=record_sd, n_scorers=24)
        s = scorers[0]
        out["clustered McNemar"] += bs.clustered_score_test(human - s, rec)["p_value"] < 0.05
        b, c = int(((human == 1) & (s == 0)).sum()), int(((human == 0) & (s == 1)).sum())
        out["item McNemar"] += sps.binomtest(b, b + c, 0.5).pvalue < 0.05
        w_rec = bs.cluster_draws(rec, draws=draws, seed=2).expand(rec)
        w_item = bs.cluster_draws(np.arange(len(rec)), draws=draws, seed=2).weights
        for unit, w in (("record", w_rec), ("item", w_item)):
            ci = bs.paired_difference(human, s, rec, w)["ci"]
            out[f"difference covers 0 ({unit})"] += ci[0] <= 0 <= ci[1]
        p = [bs.clustered_score_test(human - sc, rec)["p_value"] for sc in scorers]
        out["24 scorers, no adjustment"] += min(p) < 0.05
        out["24 scorers, Holm"] += min(bs.adjust(p, "holm")) < 0.05
        y, crec = sim.chance_outcomes(rng, n_records=records, icc=icc)
        out["vs chance clustered"] += bs.clustered_score_test(y - 0.25, crec)["p_value"] < 0.05
        out["vs chance item binomial"] += sps.binomtest(int(y.sum()), len(y), 0.25).pvalue < 0.05
    return {k: v / studies for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    t0 = time.perf_counter()
    settings = list(sim.SETTINGS.items())
    cov = {name: coverage(name, sd, studies=args.studies, records=args.records, draws=args.draws) for name, sd in settings}
    print(f"Coverage of 95% intervals: {args.studies} studies x {args.records} records x 12 items x 3 labels, "
          f"{args.draws} draws (record bootstrap / item bootstrap; mean width record / item)")
    print("| interval | " + " | ".join(name for name, _ in settings) + " |")
    print("|---|" + "---|" * len(settings))
    for m in METRICS:
        def cell(n: str, m: str = m) -> str:
            if m == "TopConsistency":  # a group's prompts are split up when items are their own clusters
                return f"{cov[n]['hits'][(m, 'record')]:.2f} / n/a (w {cov[n]['width'][(m, 'record')]:.3f})"
            return (f"{cov[n]['hits'][(m, 'record')]:.2f} / {cov[n]['hits'][(m, 'item')]:.2f} "
                    f"(w {cov[n]['width'][(m, 'record')]:.3f} / {cov[n]['width'][(m, 'item')]:.3f})")

        cells = [cell(n) for n, _ in settings]
        print(f"| {m} | " + " | ".join(cells) + " |")
    n_tests = args.studies * 2
    rates = {name: tests(sd, studies=n_tests, records=args.records, draws=args.draws) for name, sd in settings}
    print()
    print(f"Rejection rates of true nulls at the 5% level ({n_tests} studies; coverage of the paired difference interval)")
    print("| test | " + " | ".join(name for name, _ in settings) + " |")
    print("|---|" + "---|" * len(settings))
    for k in rates[settings[0][0]]:
        print(f"| {k} | " + " | ".join(f"{rates[n][k]:.3f}" for n, _ in settings) + " |")
    print()
    print(f"total {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
