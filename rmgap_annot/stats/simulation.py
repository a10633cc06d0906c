"""Simulated labels with a known population truth: how an interval method is checked.

An interval is only as good as its resampling unit, and the only way to see
that is coverage: draw many studies from a population whose true values are
known, and count how often the 95% interval holds the truth. Records here
are RMGAP-shaped (4 groups x 3 prompts = 12 items over one set of four
responses) and carry a random effect on the logit of "a label picks the
winner" (sd ``record_sd``: 0 independent, 1 moderate, 2 strong within-record
correlation), and one on the naturalness scale. The frames have the columns
``labels_frame.load_labels`` gives, so ``report.label_sections`` runs on them
unchanged. Used by tests/test_clustered_stats.py and bench/coverage.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

SETTINGS = {"independent": 0.0, "moderate": 1.0, "strong": 2.0}
KEYS = ("response1", "response2", "response3", "response4")
GROUPS, PROMPTS = 4, 3


def label_frame(
    rng: np.random.Generator, *, n_records: int, record_sd: float, labels_per_item: int = 3, accuracy_logit: float = 0.4,
    domain: str = "Chat",
) -> pd.DataFrame:
    """One study's labels: every item of every record labelled by ``labels_per_item`` annotators.

    A label picks the winner with probability expit(accuracy_logit + u_record),
    else one of the three other responses uniformly; naturalness is a 1-5
    rating around 3.5 + 0.5 u_record + an item effect + noise.
    """
    n_items = n_records * GROUPS * PROMPTS
    rec = np.repeat(np.arange(n_records), GROUPS * PROMPTS)
    group = np.tile(np.repeat(np.arange(GROUPS), PROMPTS), n_records)
    prompt = np.tile(np.arange(PROMPTS), n_records * GROUPS)
    u = rng.normal(0.0, record_sd, n_records) if record_sd > 0 else np.zeros(n_records)
    item_nat = rng.normal(0.0, 0.7, n_items) + 0.5 * u[rec]
    k = labels_per_item
    item = np.repeat(np.arange(n_items), k)
    p = special.expit(accuracy_logit + u[rec[item]])
    correct = rng.random(item.size) < p
    winner = group[item]  # group g's winner is response g+1
    wrong = (winner + rng.integers(1, 4, item.size)) % 4
    choice = np.where(correct, winner, wrong)
    nat = np.clip(np.rint(3.5 + item_nat[item] + rng.normal(0.0, 0.8, item.size)), 1, 5).astype(int)
    keys = np.array(KEYS, dtype=object)
    annot = np.tile(np.arange(k), n_items)
    return pd.DataFrame({
        "label_id": np.arange(item.size), "user_id": annot, "annotator": [f"a{a}" for a in annot], "item_id": item,
        "record_id": [f"r{r:05d}" for r in rec[item]], "domain": domain, "group": group[item], "prompt_index": prompt[item],
        "role": np.where(prompt[item] == 0, "base", "rewrite"), "winner_key": keys[winner], "choice_key": keys[choice],
        "ranking": None, "displayed_order": None, "naturalness": nat,
    })


def true_accuracy(record_sd: float, *, accuracy_logit: float = 0.4, labels_per_item: int = 3) -> dict[str, float]:
    """Population label accuracy and plurality BoN, by Gauss-Hermite quadrature over the record effect.

    With three labels and wrong picks uniform over three responses, the
    plurality is the winner when two or three labels pick it; one right label
    and two different wrong ones is a three-way tie (no pick, wrong).
    """
    if labels_per_item != 3:
        raise ValueError("the closed form covers three labels per item")
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    p = special.expit(accuracy_logit + record_sd * x)
    bon = p**3 + 3 * p**2 * (1 - p)
    return {"label_accuracy": float((w * p).sum()), "BoN": float((w * bon).sum())}


def paired_outcomes(rng: np.random.Generator, *, n_records: int, record_sd: float, n_scorers: int = 1, accuracy_logit: float = 0.0):
    """(human correct, scorers correct (n_scorers x items), record) under the null of equal accuracy.

    Each side has its own record effect (people find some records easy, a
    scorer others), drawn from the same distribution: the population
    accuracies are equal, but within a record the two sides differ the same
    way on all twelve items, which is what an item-level McNemar test ignores.
    """
    n_items = n_records * GROUPS * PROMPTS
    rec = np.repeat(np.arange(n_records), GROUPS * PROMPTS)

    def side(n: int) -> np.ndarray:
        u = rng.normal(0.0, record_sd, (n, n_records)) if record_sd > 0 else np.zeros((n, n_records))
        return (rng.random((n, n_items)) < special.expit(accuracy_logit + u[:, rec])).astype(float)

    return side(1)[0], side(n_scorers), rec


def chance_outcomes(rng: np.random.Generator, *, n_records: int, icc: float, chance: float = 0.25):
    """(BoN correct, record) for a scorer exactly at chance on average, with within-record correlation ``icc``.

    A record's accuracy is Beta with mean ``chance`` and a + b = 1/icc - 1, so
    items of one record share it (icc 0: every item independent).
    """
    n_items = n_records * GROUPS * PROMPTS
    rec = np.repeat(np.arange(n_records), GROUPS * PROMPTS)
    if icc > 0:
        total = 1 / icc - 1
        q = rng.beta(chance * total, (1 - chance) * total, n_records)[rec]
    else:
        q = np.full(n_items, chance)
    return (rng.random(n_items) < q).astype(float), rec
