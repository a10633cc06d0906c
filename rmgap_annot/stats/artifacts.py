"""Artifact checks: do cheap surface cues give the winner away, and do the tailored prompts look organic?

Two of RMGAP's referee's concerns are not about people at all but about the
items themselves:

- **Shallow-cue ceiling.** If a logistic regression over surface features of
  (prompt, response) pairs (length, markdown markers, readability, word
  overlap, the style words a prompt asks with and their interaction with the
  response) finds the designated winner about as often as people do, the
  benchmark partly tests cue matching, not preference understanding. The
  model is trained and evaluated with folds grouped by record: the twelve
  items of an RMGAP record share their four responses, so a record split
  across train and test would let the model memorise responses.
- **Organic vs tailored.** A classifier separating the benchmark's prompts
  from organic user prompts: an AUC near 0.5 means the tailored prompts read
  like real requests; near 1, the features that separate them (persona
  statements, explicit style requests, length) say how they differ. Its
  out-of-fold scores sit next to the people's naturalness ratings.

Everything here runs on ``CandidateItem`` (item, candidates, winner, record,
domain), so any format the tool imports can be checked, whatever its number
of candidates. The fitted part depends only on the benchmark's texts (and the
organic file), so it is cached by their hashes; the human columns are read
from the labels on every call, which keeps them current while a study runs
without refitting anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Optional, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.stats.agreement import CONFIDENCE, DRAWS, SEED, percentile_ci
from rmgap_annot.formats.rmgap import InputFileError, LineError, read_text
from rmgap_annot.settings import DOMAINS, get_settings
from rmgap_annot.stats import bootstrap as bs

# Bump when a feature or the model changes: old cache files are then ignored.
ALGO_VERSION = "artifacts-3"
N_SPLITS = 5
AVG = "Avg"
ALL = "All"
MIN_ORGANIC = 5

Progress = Optional[Callable[[str], None]]


class OrganicFileError(InputFileError):
    """The organic prompts file is invalid; nothing was computed."""


@dataclass(frozen=True)
class CandidateItem:
    """One item of any format: a prompt, its candidates, the designated winner.

    ``record`` is the unit items share texts through (an RMGAP record, an RMB
    conversation): folds and bootstrap resamples never split it.
    """

    item_id: Hashable
    record: str
    domain: str
    prompt: str
    candidates: tuple[tuple[str, str], ...]  # (key, text)
    winner: str


# --- shallow features ------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)
_LATIN_WORD = re.compile(r"[A-Za-z]+")
_VOWELS = re.compile(r"[aeiouy]+", re.I)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
_LIST = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+", re.M)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s", re.M)
_FENCE = re.compile(r"```")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LATEX = re.compile(r"\$\$|\$[^$\n]+\$|\\\(|\\\[|\\[a-zA-Z]+\{")
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_TABLE = re.compile(r"^\s*\|.*\|\s*$", re.M)
_CONTRACTION = re.compile(r"\b\w+['\u2019](?:t|s|re|ve|ll|d|m)\b", re.I)

# Words a prompt uses to ask for a style; each request is crossed with the
# response feature that would satisfy it (a shallow model can match the two).
STYLE_REQUESTS: dict[str, re.Pattern] = {
    name: re.compile(pattern, re.I)
    for name, pattern in {
        "brief": r"\b(brief(ly)?|concise(ly)?|short(er)?|succinct|quick(ly)?|tl;?dr|to the point|in a few words|one sentence|keep it short)\b",
        "detailed": r"\b(detailed|in detail|thorough(ly)?|comprehensive|in[- ]depth|elaborate|step[- ]by[- ]step|extensive(ly)?|exhaustive)\b",
        "formal": r"\b(formal(ly)?|professional(ly)?|academic|scholarly|rigorous(ly)?|polished)\b",
        "casual": r"\b(casual(ly)?|informal(ly)?|friendly|conversational|chatty|relaxed|like a friend|laid[- ]back)\b",
        "structured": r"\b(bullet(s| points?)?|numbered|headings?|sections?|table|outline|structured|organi[sz]ed|list)\b",
        "simple": r"\b(simple|simply|layman'?s?|beginner|plain (english|language|words)|easy to understand|eli5|non-?technical)\b",
        "technical": r"\b(technical(ly)?|expert|specialist|jargon|precise(ly)?|advanced)\b",
    }.items()
}
_PERSONA = re.compile(
    r"\b(i am|i'm|i\u2019m) (a|an)\b|(?:^|[.!?]\s+)as an? [a-z]+|\bi work as\b|\bmy (job|role) (is|as)\b", re.I
)
_FORMAT_REQUEST = re.compile(
    r"\b(bullet(s| points?)?|table|numbered|headings?|markdown|json|paragraphs?|in (under |at most |about )?\d+ words|word limit)\b",
    re.I,
)

# (name, family, what it measures): the order of the model's columns.
RESPONSE_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("length_log", "length", "log characters of the response"),
    ("length_ratio", "length", "characters relative to the other candidates' mean"),
    ("list_items", "format", "list lines (bulleted or numbered), log count"),
    ("headings", "format", "markdown headings, log count"),
    ("code", "format", "code fences and inline code, log count"),
    ("latex", "format", "LaTeX markers, log count"),
    ("bold", "format", "bold spans, log count"),
    ("table_rows", "format", "table rows, log count"),
    ("readability", "readability", "Flesch reading ease (higher: plainer)"),
    ("contractions", "formality", "contractions per 100 words"),
    ("exclamations", "formality", "exclamation marks, log count"),
    ("prompt_overlap", "overlap", "share of the prompt's content words the response repeats"),
    ("tfidf_cosine", "overlap", "TF-IDF cosine between prompt and response"),
)
# (prompt request, response feature it is crossed with)
INTERACTIONS: tuple[tuple[str, str], ...] = (
    ("brief", "length_log"),
    ("detailed", "length_log"),
    ("structured", "format_markers"),
    ("formal", "contractions"),
    ("casual", "contractions"),
    ("formal", "readability"),
    ("casual", "readability"),
    ("simple", "readability"),
    ("technical", "readability"),
)


def feature_table() -> list[tuple[str, str, str]]:
    """Every column of the shallow-cue model: (name, family, description)."""
    rows = list(RESPONSE_FEATURES)
    for request, feat in INTERACTIONS:
        rows.append((f"asks_{request}*{feat}", "style request x response", f"prompt asks '{request}' times the response's {feat}"))
    return rows


def _flesch(text: str) -> float:
    """Flesch reading ease; a line counts as a sentence end, and sentences are capped at 100 words.

    Without the cap, text with no sentence punctuation (lists, code, generated
    filler) would score lower the longer it is, a second length feature.
    """
    words = _LATIN_WORD.findall(text)
    if not words:
        return float("nan")
    sentences = max(1, len(_SENTENCE_END.findall(text)), sum(1 for ln in text.splitlines() if ln.strip()))
    syllables = sum(max(1, len(_VOWELS.findall(w))) for w in words)
    return 206.835 - 1.015 * min(100.0, len(words) / sentences) - 84.6 * (syllables / len(words))


def _response_features(text: str) -> dict[str, float]:
    n_words = max(1, len(_WORD.findall(text)))
    return {
        "length": float(len(text)),
        "list_items": math.log1p(len(_LIST.findall(text))),
        "headings": math.log1p(len(_HEADING.findall(text))),
        "code": math.log1p(len(_FENCE.findall(text)) // 2 + len(_INLINE_CODE.findall(text))),
        "latex": math.log1p(len(_LATEX.findall(text))),
        "bold": math.log1p(len(_BOLD.findall(text))),
        "table_rows": math.log1p(len(_TABLE.findall(text))),
        "readability": _flesch(text),
        "contractions": 100.0 * len(_CONTRACTION.findall(text)) / n_words,
        "exclamations": math.log1p(text.count("!")),
    }


def _content_words(text: str) -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS and len(w) > 2)


def style_requests(prompt: str) -> dict[str, float]:
    """1.0 for each style the prompt asks for in words, else 0.0."""
    return {name: float(bool(rx.search(prompt))) for name, rx in STYLE_REQUESTS.items()}


def _tfidf_cosines(items: Sequence[CandidateItem]) -> list[np.ndarray]:
    """Per item, the TF-IDF cosine of the prompt with each candidate.

    Fitted without labels on all texts (prompts and distinct responses), so
    it leaks nothing about winners into the cross-validation.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    prompts = sorted({it.prompt for it in items})
    responses = sorted({t for it in items for _, t in it.candidates})
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", dtype=np.float32)
    vec.fit(prompts + responses)
    p_index = {t: i for i, t in enumerate(prompts)}
    r_index = {t: i for i, t in enumerate(responses)}
    P = vec.transform(prompts)
    R = vec.transform(responses)
    rows_p = np.array([p_index[it.prompt] for it in items for _ in it.candidates], dtype=np.int64)
    rows_r = np.array([r_index[t] for it in items for _, t in it.candidates], dtype=np.int64)
    cos = np.asarray(P[rows_p].multiply(R[rows_r]).sum(axis=1)).ravel() if len(rows_p) else np.zeros(0)
    out, pos = [], 0
    for it in items:
        out.append(cos[pos : pos + len(it.candidates)].astype(float))
        pos += len(it.candidates)
    return out


def shallow_features(items: Sequence[CandidateItem], *, progress: Progress = None) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """The model's design matrix, one row per (item, candidate), centred within each item.

    Centring makes the model compare an item's candidates with each other
    (a conditional-logit reading): a cue that is equal for every candidate,
    the prompt's own wording included, cannot pick a winner and drops out;
    only its interaction with a response feature remains. Returns (X, the
    row's item index, the TF-IDF cosines per item).
    """
    if progress:
        progress("reading the responses' surface features")
    by_text: dict[str, dict[str, float]] = {}
    words: dict[str, frozenset[str]] = {}
    for it in items:
        for _, t in it.candidates:
            if t not in by_text:
                by_text[t] = _response_features(t)
                words[t] = _content_words(t)
    if progress:
        progress("TF-IDF cosines between prompts and responses")
    cosines = _tfidf_cosines(items)
    names = [n for n, _, _ in RESPONSE_FEATURES]
    rows: list[list[float]] = []
    row_item: list[int] = []
    prompt_words: dict[str, frozenset[str]] = {}
    for i, it in enumerate(items):
        feats = [by_text[t] for _, t in it.candidates]
        lengths = np.array([f["length"] for f in feats])
        pw = prompt_words.get(it.prompt)
        if pw is None:
            pw = prompt_words[it.prompt] = _content_words(it.prompt)
        asks = style_requests(it.prompt)
        for j, ((_, t), f) in enumerate(zip(it.candidates, feats)):
            others = np.delete(lengths, j)
            ratio = f["length"] / others.mean() if len(others) and others.mean() > 0 else 1.0
            base = {
                **f,
                "length_log": math.log1p(f["length"]),
                "length_ratio": ratio,
                "prompt_overlap": len(pw & words[t]) / len(pw) if pw else 0.0,
                "tfidf_cosine": float(cosines[i][j]),
            }
            base["format_markers"] = base["list_items"] + base["headings"] + base["table_rows"] + base["bold"]
            row = [base[n] for n in names]
            row += [asks[req] * base[feat] for req, feat in INTERACTIONS]
            rows.append(row)
            row_item.append(i)
    X = np.array(rows, dtype=float).reshape(len(rows), len(feature_table()))
    # Non-Latin text has no Flesch score: impute the column median (then it carries no cue).
    for c in range(X.shape[1]):
        bad = ~np.isfinite(X[:, c])
        if bad.any():
            X[bad, c] = np.nanmedian(np.where(bad, np.nan, X[:, c])) if (~bad).any() else 0.0
    idx = np.array(row_item, dtype=np.int64)
    if len(idx):
        counts = np.bincount(idx, minlength=len(items)).astype(float)
        for c in range(X.shape[1]):
            X[:, c] -= (np.bincount(idx, weights=X[:, c], minlength=len(items)) / np.maximum(counts, 1))[idx]
    return X, idx, cosines


def _logistic(class_weight: Optional[str] = None):  # noqa: ANN202
    """Standardise, then an L2 logistic regression; Newton-Cholesky suits few features over many rows (3x lbfgs here)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("logit", LogisticRegression(C=1.0, solver="newton-cholesky", max_iter=200, class_weight=class_weight))])


def cross_validated_scores(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, n_splits: int = N_SPLITS, stratified: bool = False,
    class_weight: Optional[str] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold decision scores, the fold each row was tested in, and the standardised coefficients per fold.

    Folds are grouped (``GroupKFold``, or ``StratifiedGroupKFold`` when both
    classes must appear in each fold): no group ever sits in a fold's
    training and test rows at once.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    k = min(n_splits, n_groups)
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 records, found {n_groups}")
    splitter = StratifiedGroupKFold(n_splits=k) if stratified else GroupKFold(n_splits=k)
    scores = np.full(len(y), np.nan)
    fold = np.full(len(y), -1, dtype=np.int64)
    coefs = []
    for f, (train, test) in enumerate(splitter.split(X, y, groups)):
        model = _logistic(class_weight).fit(X[train], y[train])
        scores[test] = model.decision_function(X[test])
        fold[test] = f
        coefs.append(model.named_steps["logit"].coef_.ravel().copy())
    return scores, fold, np.vstack(coefs)


def _weights_table(coefs: np.ndarray, table: Sequence[tuple[str, str, str]]) -> list[dict]:
    """Features by mean standardised coefficient magnitude, with the spread over folds."""
    mean, sd = coefs.mean(axis=0), coefs.std(axis=0, ddof=1) if len(coefs) > 1 else np.zeros(coefs.shape[1])
    rows = [
        {"feature": n, "family": fam, "description": desc, "weight": float(m), "weight_sd": float(s)}
        for (n, fam, desc), m, s in zip(table, mean, sd)
    ]
    return sorted(rows, key=lambda r: -abs(r["weight"]))


# --- evaluation (any format) ---------------------------------------------------------------


def _record_bootstrap(group_strata: np.ndarray, *, draws: int, seed: int) -> np.ndarray:
    """How often each group (record) appears in each draw, shape (draws, n_groups).

    Groups are resampled with replacement within their stratum (domain), so a
    domain keeps its size and items sharing a record move together: the
    report's own stratified cluster bootstrap (``stats.bootstrap``), one
    group per unit.
    """
    groups = np.arange(len(group_strata))
    return bs.unit_weights(bs.stratified_draws(groups, group_strata, draws=draws, seed=seed), groups, group_strata)


def ordered_domains(domains: Sequence[str]) -> list[str]:
    """RMGAP's domains in their usual order first, then any other format's categories."""
    present = set(domains)
    return [d for d in DOMAINS if d in present] + sorted(present - set(DOMAINS))


def _record_groups(items: Sequence[CandidateItem]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(domains in order, each item's record code, each record's domain code): the bootstrap's units."""
    domains = ordered_domains([it.domain for it in items])
    d_code = {d: i for i, d in enumerate(domains)}
    g_code: dict[tuple[str, str], int] = {}
    item_group = np.array([g_code.setdefault((it.domain, it.record), len(g_code)) for it in items], dtype=np.int64)
    g_domain = np.zeros(len(g_code), dtype=np.int64)
    for (d, _), g in g_code.items():
        g_domain[g] = d_code[d]
    return domains, item_group, g_domain


def item_outcomes(items: Sequence[CandidateItem], scores: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(BoN correct, pairs won, pairs total) per item; a tie is a loss, as in RMGAP."""
    bon, won, total = [], [], []
    for it, s in zip(items, scores):
        keys = [k for k, _ in it.candidates]
        v = np.asarray(s, dtype=float)
        w = v[keys.index(it.winner)]
        others = np.delete(v, keys.index(it.winner))
        n_won = int((w > others).sum())
        bon.append(float(n_won == len(others) and len(others) > 0))
        won.append(float(n_won))
        total.append(float(len(others)))
    return np.array(bon), np.array(won), np.array(total)


def summarise_outcomes(
    items: Sequence[CandidateItem], bon: np.ndarray, won: np.ndarray, total: np.ndarray, *,
    draws: int = DRAWS, seed: int = SEED, confidence: float = CONFIDENCE,
) -> dict:
    """BoN and Pair per domain (and RMGAP's plain-mean Avg) with record-clustered percentile intervals."""
    domains, item_group, g_domain = _record_groups(items)
    n_g = len(g_domain)
    sums = {name: np.bincount(item_group, weights=arr, minlength=n_g) for name, arr in
            (("bon", bon), ("won", won), ("total", total), ("n", np.ones(len(items))))}
    W = _record_bootstrap(g_domain, draws=draws, seed=seed) if draws else None
    out: dict[str, Any] = {"BoN": {}, "Pair": {}, "ci": {"BoN": {}, "Pair": {}}, "n_items": {}, "n_records": {}}
    boots: dict[str, list[np.ndarray]] = {"BoN": [], "Pair": []}
    for d in domains:
        cols = np.flatnonzero(g_domain == domains.index(d))
        for metric, num, den in (("BoN", "bon", "n"), ("Pair", "won", "total")):
            nsum, dsum = sums[num][cols], sums[den][cols]
            out[metric][d] = float(nsum.sum() / dsum.sum()) if dsum.sum() else None
            if W is not None and dsum.sum():
                with np.errstate(divide="ignore", invalid="ignore"):
                    b = (W[:, cols] @ nsum) / (W[:, cols] @ dsum)
                boots[metric].append(b)
                out["ci"][metric][d] = percentile_ci(b, confidence)
            else:
                out["ci"][metric][d] = None
        out["n_items"][d] = int(sums["n"][cols].sum())
        out["n_records"][d] = int(len(cols))
    for metric in ("BoN", "Pair"):
        vals = [out[metric][d] for d in domains if out[metric][d] is not None]
        out[metric][AVG] = float(np.mean(vals)) if vals else None
        out["ci"][metric][AVG] = percentile_ci(np.nanmean(np.vstack(boots[metric]), axis=0), confidence) if boots[metric] else None
    return out


def paired_bon_difference(
    items: Sequence[CandidateItem], a: np.ndarray, b: np.ndarray, *, draws: int = DRAWS, seed: int = SEED,
    confidence: float = CONFIDENCE,
) -> dict:
    """Share correct for a and b on the same items, and a - b, per domain and Avg.

    Both sides are resampled with the same record draws (a paired bootstrap),
    so the difference's interval reflects only how the two disagree.
    """
    domains, item_group, g_domain = _record_groups(items)
    sa, sb, sn = (np.bincount(item_group, weights=v, minlength=len(g_domain)) for v in (a, b, np.ones(len(items))))
    W = _record_bootstrap(g_domain, draws=draws, seed=seed) if draws else None
    out: dict[str, Any] = {"a": {}, "b": {}, "difference": {}, "ci": {"a": {}, "b": {}, "difference": {}}, "n_items": {}, "n_records": {}}
    boots: dict[str, list[np.ndarray]] = {"a": [], "b": [], "difference": []}
    for d in domains:
        cols = np.flatnonzero(g_domain == domains.index(d))
        n = sn[cols].sum()
        point = {"a": sa[cols].sum() / n, "b": sb[cols].sum() / n}
        point["difference"] = point["a"] - point["b"]
        if W is not None:
            wn = W[:, cols] @ sn[cols]
            bt = {"a": (W[:, cols] @ sa[cols]) / wn, "b": (W[:, cols] @ sb[cols]) / wn}
            bt["difference"] = bt["a"] - bt["b"]
        for k in ("a", "b", "difference"):
            out[k][d] = float(point[k])
            out["ci"][k][d] = percentile_ci(bt[k], confidence) if W is not None else None
            if W is not None:
                boots[k].append(bt[k])
        out["n_items"][d] = int(n)
        out["n_records"][d] = int(len(cols))
    for k in ("a", "b", "difference"):
        vals = [out[k][d] for d in domains]
        out[k][AVG] = float(np.mean(vals)) if vals else None
        out["ci"][k][AVG] = percentile_ci(np.mean(np.vstack(boots[k]), axis=0), confidence) if boots[k] else None
    return out


def shallow_cue_ceiling(
    items: Sequence[CandidateItem], *, draws: int = DRAWS, seed: int = SEED, n_splits: int = N_SPLITS, progress: Progress = None,
) -> dict:
    """How well cheap cues alone find the winner: the grouped-CV model and two zero-training baselines."""
    if not items:
        return {"reason": "no items"}
    n_records = len({(it.domain, it.record) for it in items})
    if n_records < 2:
        return {"reason": f"cross-validation grouped by record needs at least 2 records, found {n_records}"}
    X, row_item, cosines = shallow_features(items, progress=progress)
    y = np.array([float(k == it.winner) for it in items for k, _ in it.candidates])
    records = np.array([f"{it.domain}\x00{it.record}" for it in items])[row_item]
    if progress:
        progress(f"cross-validating the shallow-cue model ({min(n_splits, len(set(records)))} folds grouped by record)")
    scores, fold, coefs = cross_validated_scores(X, y, records, n_splits=n_splits)
    per_item = _split_rows(scores, row_item, len(items))
    lengths = [[float(len(t)) for _, t in it.candidates] for it in items]
    if progress:
        progress("bootstrap intervals over records")
    methods = {}
    for name, s in (("shallow_model", per_item), ("tfidf_cosine", cosines), ("longest", lengths)):
        methods[name] = summarise_outcomes(items, *item_outcomes(items, s), draws=draws, seed=seed)
    chance = float(np.mean([1.0 / len(it.candidates) for it in items]))
    features = _weights_table(coefs, feature_table())
    ablation = _family_ablation(items, X, y, records, row_item, methods["shallow_model"]["BoN"][AVG], n_splits=n_splits, progress=progress)
    carried = max(ablation, key=lambda r: r["BoN_drop"]) if ablation else None
    return {
        "methods": methods,
        "method_labels": {
            "shallow_model": "shallow-cue model (logistic regression, grouped CV)",
            "tfidf_cosine": "TF-IDF cosine (prompt, response)",
            "longest": "longest response",
        },
        "chance": {"BoN": chance, "Pair": 0.5},
        "features": features,
        "top_feature": features[0]["feature"] if features else None,
        "top_family": features[0]["family"] if features else None,
        # Correlated cues share (or trade) coefficients; refitting without a family says which one the model needs.
        "family_ablation": ablation,
        "carried_by": carried["family"] if carried and carried["BoN_drop"] > 0 else None,
        "n_folds": int(fold.max() + 1),
        # The fold each item was tested in (every row of an item shares it): kept so the grouping is checkable.
        "_item_folds": [int(f[0]) for f in _split_rows(fold, row_item, len(items))],
        # Per item, whether the model's pick is the winner: compared with people on the labelled items at read time.
        "_item_ids": [str(it.item_id) for it in items],
        "_item_bon": [int(b) for b in item_outcomes(items, per_item)[0]],
        "n_items": len(items),
        "n_records": int(len(set(records))),
        "method": (
            "logistic regression (scikit-learn Pipeline: StandardScaler + LogisticRegression C=1) on one row per "
            "(item, candidate), features centred within the item; GroupKFold by record; each item's candidate with "
            "the highest out-of-fold score is its pick (a tie is a loss). Weights: standardised coefficients, mean "
            "(and sd) over the folds; family_ablation: BoN Avg of the same CV refitted without each cue family. Intervals: "
            "percentile bootstrap over records within each domain."
        ),
    }


def _family_ablation(
    items: Sequence[CandidateItem], X: np.ndarray, y: np.ndarray, records: np.ndarray, row_item: np.ndarray,
    full_bon: Optional[float], *, n_splits: int, progress: Progress,
) -> list[dict]:
    """BoN (Avg) of the same grouped CV refitted without each cue family, largest drop first."""
    table = feature_table()
    families = list(dict.fromkeys(fam for _, fam, _ in table))
    rows = []
    for fam in families:
        keep = [j for j, (_, f, _) in enumerate(table) if f != fam]
        if progress:
            progress(f"refitting without the {fam} cues")
        scores, _, _ = cross_validated_scores(X[:, keep], y, records, n_splits=n_splits)
        outcome = summarise_outcomes(items, *item_outcomes(items, _split_rows(scores, row_item, len(items))), draws=0)
        without = outcome["BoN"][AVG]
        rows.append({
            "family": fam, "BoN_without": without,
            "BoN_drop": None if without is None or full_bon is None else float(full_bon - without),
        })
    return sorted(rows, key=lambda r: -(r["BoN_drop"] or 0.0))


def _split_rows(values: np.ndarray, row_item: np.ndarray, n_items: int) -> list[np.ndarray]:
    """Rows are item-major and contiguous: cut them back into one array per item."""
    bounds = np.searchsorted(row_item, np.arange(n_items + 1))
    return [values[bounds[i] : bounds[i + 1]] for i in range(n_items)]


# --- organic vs tailored ------------------------------------------------------------------------

PROMPT_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("length_log", "length", "log characters of the prompt"),
    ("persona", "persona", "a persona statement ('I am a ...', 'As a ...')"),
    ("style_request", "style request", "asks for a style in words (brief, formal, detailed, casual, ...)"),
    ("format_request", "format request", "asks for a format (bullets, a table, N words, ...)"),
    ("question", "form", "contains a question mark"),
    ("sentence_words", "form", "mean words per sentence"),
    ("word_chars", "form", "mean characters per word"),
    ("multiline", "form", "spans several lines"),
    ("code_or_latex", "form", "holds code or LaTeX"),
)


def prompt_features(text: str) -> list[float]:
    """The organic-vs-tailored features of one prompt, in ``PROMPT_FEATURES`` order.

    Presence flags and means rather than counts, so a prompt and the same
    prompt written twice differ only in length.
    """
    words = _WORD.findall(text)
    n_words = max(1, len(words))
    sentences = max(1, len(_SENTENCE_END.findall(text.strip() + " ")))
    return [
        math.log1p(len(text)),
        float(bool(_PERSONA.search(text))),
        float(any(rx.search(text) for rx in STYLE_REQUESTS.values())),
        float(bool(_FORMAT_REQUEST.search(text))),
        float("?" in text),
        n_words / sentences,
        sum(len(w) for w in words) / n_words,
        float("\n" in text.strip()),
        float(bool(_FENCE.search(text) or _LATEX.search(text))),
    ]


def _weighted_auc(u_idx: np.ndarray, is_pos: np.ndarray, w: np.ndarray, n_unique: int) -> float:
    """ROC AUC with row weights (ties count half), from scores ranked once (``u_idx``)."""
    pos = np.bincount(u_idx[is_pos], weights=w[is_pos], minlength=n_unique)
    neg = np.bincount(u_idx[~is_pos], weights=w[~is_pos], minlength=n_unique)
    wp, wn = pos.sum(), neg.sum()
    if wp <= 0 or wn <= 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (wp * wn))


@dataclass(frozen=True)
class BenchmarkPrompt:
    item_id: Hashable
    record: str
    domain: str
    text: str


def organic_vs_tailored(
    prompts: Sequence[BenchmarkPrompt], organic: Sequence[str], *, draws: int = DRAWS, seed: int = SEED,
    confidence: float = CONFIDENCE, n_splits: int = N_SPLITS, progress: Progress = None,
) -> dict:
    """How separable the benchmark's prompts are from organic ones (grouped CV, ROC AUC with a bootstrap interval).

    Groups: a benchmark record (its prompts are paraphrases of each other) or
    one distinct organic prompt. Positive class: the benchmark ("tailored").
    """
    if len(set(organic)) < MIN_ORGANIC:
        return {"reason": f"needs at least {MIN_ORGANIC} distinct organic prompts, found {len(set(organic))}"}
    n_records = len({(p.domain, p.record) for p in prompts})
    if n_records < 2:
        return {"reason": f"cross-validation grouped by record needs at least 2 benchmark records, found {n_records}"}
    # One row per distinct (record, text): the same prompt twice in a record adds nothing.
    bench_rows: dict[tuple[str, str, str], list] = {}
    for p in prompts:
        bench_rows.setdefault((p.domain, p.record, p.text), []).append(p.item_id)
    org_texts = sorted(set(organic))
    texts = [k[2] for k in bench_rows] + org_texts
    y = np.array([1.0] * len(bench_rows) + [0.0] * len(org_texts))
    domains = ordered_domains([k[0] for k in bench_rows])
    strata_names = [*domains, "organic"]
    g_code: dict[tuple, int] = {}
    groups = np.array(
        [g_code.setdefault(("b", k[0], k[1]), len(g_code)) for k in bench_rows] + [g_code.setdefault(("o", t), len(g_code)) for t in org_texts],
        dtype=np.int64,
    )
    g_stratum = np.zeros(len(g_code), dtype=np.int64)
    for key, g in g_code.items():
        g_stratum[g] = strata_names.index(key[1]) if key[0] == "b" else len(domains)
    if progress:
        progress(f"prompt features ({len(texts):,} prompts)")
    X = np.array([prompt_features(t) for t in texts], dtype=float)
    n_splits = min(n_splits, len(org_texts), int((g_stratum < len(domains)).sum()))
    if progress:
        progress("cross-validating the organic-vs-tailored classifier")
    scores, fold, coefs = cross_validated_scores(X, y, groups, n_splits=n_splits, stratified=True, class_weight="balanced")
    from scipy.special import expit

    prob = expit(scores)
    uniq, u_idx = np.unique(scores, return_inverse=True)
    is_pos = y == 1.0
    row_domain = np.array([strata_names.index(k[0]) for k in bench_rows] + [len(domains)] * len(org_texts))
    subsets = {ALL: np.ones(len(y), dtype=bool)}
    for i, d in enumerate(domains):
        subsets[d] = (row_domain == i) | ~is_pos
    point = {name: _weighted_auc(u_idx[m], is_pos[m], np.ones(int(m.sum())), len(uniq)) for name, m in subsets.items()}
    ci: dict[str, Optional[list[float]]] = {name: None for name in subsets}
    if draws:
        if progress:
            progress("bootstrap interval for the AUC (records and organic prompts resampled)")
        W = _record_bootstrap(g_stratum, draws=draws, seed=seed)
        boot = {name: np.empty(draws) for name in subsets}
        parts = {name: (u_idx[m], is_pos[m], groups[m]) for name, m in subsets.items()}
        for b in range(draws):
            for name, (u, pos, g) in parts.items():
                boot[name][b] = _weighted_auc(u, pos, W[b, g], len(uniq))
        ci = {name: percentile_ci(boot[name], confidence) for name in subsets}
    by_domain = {}
    for i, d in enumerate(domains):
        rows = row_domain[: len(bench_rows)] == i
        by_domain[d] = {
            "auc": _nan_to_none(point[d]), "ci": ci[d], "n_prompts": int(rows.sum()),
            "mean_p_tailored": float(prob[: len(bench_rows)][rows].mean()) if rows.any() else None,
        }
    item_p = {str(item_id): float(prob[r]) for r, ids in enumerate(bench_rows.values()) for item_id in ids}
    features = _weights_table(coefs, PROMPT_FEATURES)
    return {
        "auc": _nan_to_none(point[ALL]),
        "ci": ci[ALL],
        "by_domain": by_domain,
        "n_benchmark_prompts": len(bench_rows),
        "n_organic": len(org_texts),
        "n_folds": int(fold.max() + 1),
        "mean_p_tailored_organic": float(prob[len(bench_rows):].mean()),
        "features": features,
        "top_feature": features[0]["feature"],
        "method": (
            "logistic regression (StandardScaler + LogisticRegression, balanced class weights) on prompt features; "
            "StratifiedGroupKFold (a benchmark record or a distinct organic prompt is a group); ROC AUC of the "
            "out-of-fold scores, tailored = positive. Interval: percentile bootstrap over records (within domain) "
            "and organic prompts. A positive weight means the feature looks tailored."
        ),
        "_item_p_tailored": item_p,
    }


def _nan_to_none(v: float) -> Optional[float]:
    return None if v is None or not math.isfinite(v) else float(v)


# --- the organic prompts file ---------------------------------------------------------------------


@dataclass(frozen=True)
class OrganicPrompts:
    path: str
    sha256: str
    prompts: tuple[str, ...]


def organic_sample_path() -> Path:
    """The bundled organic sample: short user requests written for this project (not from a dataset)."""
    return Path(__file__).resolve().parents[1] / "data" / "organic_prompts.jsonl"


def read_organic_prompts(path: str | Path) -> OrganicPrompts:
    """JSONL with a ``prompt`` field per line, or plain text with one prompt per line.

    JSONL when the file name ends in .jsonl/.jsonl.gz or its first non-blank
    line starts with ``{``. Blank lines are skipped. Every problem is a
    ``FILE:LINE: field: message`` error.
    """
    p = Path(path)
    if not p.is_file():
        raise OrganicFileError([LineError(str(path), 0, "(file)", "no such file")])
    text, sha = read_text(p, error=OrganicFileError)
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    is_jsonl = p.name.endswith((".jsonl", ".jsonl.gz")) or first.lstrip().startswith("{")
    prompts: list[str] = []
    errors: list[LineError] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not is_jsonl:
            prompts.append(line.strip())
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(LineError(str(path), n, "(line)", f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(data, dict):
            errors.append(LineError(str(path), n, "(line)", f"expected a JSON object, found {type(data).__name__}"))
        elif "prompt" not in data:
            errors.append(LineError(str(path), n, "prompt", "missing"))
        elif not isinstance(data["prompt"], str) or not data["prompt"].strip():
            errors.append(LineError(str(path), n, "prompt", "must be a non-empty string"))
        else:
            prompts.append(data["prompt"].strip())
    if not errors and len(set(prompts)) < MIN_ORGANIC:
        errors.append(LineError(str(path), max(1, len(lines)), "(file)", f"needs at least {MIN_ORGANIC} distinct prompts, found {len(set(prompts))}"))
    if errors:
        raise OrganicFileError(errors)
    return OrganicPrompts(str(path), sha, tuple(prompts))


# --- from the database -----------------------------------------------------------------------------


def load_candidate_items(*, engine: Engine, benchmark_id: int) -> list[CandidateItem]:
    """Every item of an imported benchmark with its candidates' texts (any format lands in these tables)."""
    from rmgap_annot.db import session_scope
    from rmgap_annot.formats.store import responses_by_record
    from rmgap_annot.models import Item, Record

    with session_scope(engine) as session:
        responses = responses_by_record(session, benchmark_id)
        rows = session.execute(
            select(Item.id, Item.record_pk, Record.record_id, Item.domain, Item.text, Item.winner_key)
            .join(Record, Record.id == Item.record_pk)
            .where(Item.benchmark_id == benchmark_id)
            .order_by(Item.id)
        ).all()
    return [
        CandidateItem(item_id=int(i), record=str(rid), domain=d, prompt=t, candidates=tuple(responses.get(pk, ())), winner=w)
        for i, pk, rid, d, t, w in rows
    ]


def cache_dir(*, engine: Engine) -> Path:
    """``<db dir>/cache`` for a SQLite file; the exports folder's ``cache`` for any other database."""
    from rmgap_annot.db import _sqlite_file

    db_file = _sqlite_file(engine.url.render_as_string(hide_password=False))
    base = db_file.resolve().parent if db_file is not None else get_settings().exports_dir.resolve()
    return base / "cache"


def cache_key(*, benchmark_hash: str, organic_hash: Optional[str], draws: int, seed: int) -> str:
    parts = {"v": ALGO_VERSION, "benchmark": benchmark_hash, "organic": organic_hash, "draws": draws, "seed": seed}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _cache_files(
    *, engine: Engine, benchmark_id: int, organic: Optional[OrganicPrompts], draws: int, seed: int,
) -> tuple[Path, Optional[Path], dict]:
    """(shallow-cue file, organic file or None, benchmark info).

    Two files: the shallow-cue fit does not depend on the organic prompts, so
    switching organic files (or asking without one, as the verdict does)
    reuses it.
    """
    from rmgap_annot.db import session_scope
    from rmgap_annot.models import Benchmark

    with session_scope(engine) as session:
        bench = session.get(Benchmark, benchmark_id)
        if bench is None:
            raise ValueError(f"no benchmark with id {benchmark_id}")
        info = {"benchmark_id": benchmark_id, "benchmark": bench.name, "benchmark_sha256": bench.file_hash}
    folder = cache_dir(engine=engine)
    shallow = folder / f"artifacts-{cache_key(benchmark_hash=bench.file_hash, organic_hash=None, draws=draws, seed=seed)}.json"
    if organic is None:
        return shallow, None, info
    key = cache_key(benchmark_hash=bench.file_hash, organic_hash=organic.sha256, draws=draws, seed=seed)
    return shallow, folder / f"artifacts-{key}-organic.json", info


def _read_json(path: Optional[Path]) -> Optional[dict]:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)  # readers never see half a file


NO_ORGANIC = {"reason": "no organic prompts given (--organic FILE)"}


def _assemble(shallow: dict, organic_part: Optional[dict], draws: int, seed: int) -> dict:
    return {
        "shallow_cue": shallow,
        "organic": organic_part if organic_part is not None else dict(NO_ORGANIC),
        "fit_seconds": round(shallow.get("fit_seconds", 0.0) + (organic_part or {}).get("fit_seconds", 0.0), 3),
        "bootstrap": {"draws": draws, "seed": seed, "confidence": CONFIDENCE, "unit": "record, within domain (organic prompts: each its own)"},
    }


def cached_artifact_checks(
    *, engine: Engine, benchmark_id: int, organic: Optional[OrganicPrompts] = None, draws: int = DRAWS, seed: int = SEED,
) -> Optional[dict]:
    """The checks if their fitted parts are cached, with current human columns; None when not computed yet."""
    shallow_path, organic_path, info = _cache_files(engine=engine, benchmark_id=benchmark_id, organic=organic, draws=draws, seed=seed)
    shallow, organic_part = _read_json(shallow_path), _read_json(organic_path)
    if shallow is None or (organic is not None and organic_part is None):
        return None
    fitted = _assemble(shallow, organic_part, draws, seed)
    return _with_people(engine=engine, benchmark_id=benchmark_id, fitted=fitted, info=info, cached=True, draws=draws, seed=seed)


def artifact_checks(
    *, engine: Engine, benchmark_id: int, organic: Optional[OrganicPrompts] = None, draws: int = DRAWS, seed: int = SEED,
    refit: bool = False, progress: Progress = None,
) -> dict:
    """The artifact checks for one benchmark: each part fitted once per benchmark (and organic file) hash, then cached."""
    shallow_path, organic_path, info = _cache_files(engine=engine, benchmark_id=benchmark_id, organic=organic, draws=draws, seed=seed)
    shallow = None if refit else _read_json(shallow_path)
    organic_part = None if refit else _read_json(organic_path)
    cached = shallow is not None and (organic is None or organic_part is not None)
    items = None
    if shallow is None or (organic is not None and organic_part is None):
        if progress:
            progress("reading the benchmark's items")
        items = load_candidate_items(engine=engine, benchmark_id=benchmark_id)
    if shallow is None:
        started = time.perf_counter()
        shallow = shallow_cue_ceiling(items, draws=draws, seed=seed, progress=progress)
        shallow["fit_seconds"] = round(time.perf_counter() - started, 3)
        _write_json(shallow_path, shallow)
    if organic is not None and organic_part is None:
        started = time.perf_counter()
        prompts = [BenchmarkPrompt(it.item_id, it.record, it.domain, it.prompt) for it in items]
        organic_part = organic_vs_tailored(prompts, organic.prompts, draws=draws, seed=seed, progress=progress)
        organic_part.update(file=Path(organic.path).name, sha256=organic.sha256, fit_seconds=round(time.perf_counter() - started, 3))
        _write_json(organic_path, organic_part)
    fitted = _assemble(shallow, organic_part, draws, seed)
    return _with_people(engine=engine, benchmark_id=benchmark_id, fitted=fitted, info=info, cached=cached, draws=draws, seed=seed)


def _with_people(*, engine: Engine, benchmark_id: int, fitted: dict, info: dict, cached: bool, draws: int, seed: int) -> dict:
    """Join the current labels' human columns (accuracy, naturalness) to the fitted part."""
    from scipy.stats import spearmanr

    from rmgap_annot.stats.human_metrics import human_accuracy, item_summary
    from rmgap_annot.exclusions import counted_labels

    # Excluded annotators count nowhere, here included.
    labels = counted_labels(engine=engine, benchmark_id=benchmark_id).labels
    summary = item_summary(labels)
    result: dict[str, Any] = {**info, "cached": cached, **fitted}
    result["shallow_cue"] = {k: v for k, v in fitted["shallow_cue"].items() if not k.startswith("_")}
    private = fitted["shallow_cue"]
    if labels.empty:
        result["human"] = {"reason": "no labels yet"}
        result["shallow_cue"]["on_labelled_items"] = {"reason": "no labels yet"}
    else:
        h = human_accuracy(summary=summary, labels=labels, draws=draws, seed=seed)
        result["human"] = {
            "BoN": h["BoN"], "ci": {"BoN": h["ci"]["BoN"]}, "n_items": h["n"]["items"], "reasons": h["reasons"]["BoN"],
            "method": "plurality pick equals the designated winner; " + h["bootstrap"]["method"],
        }
        if "_item_bon" in private:
            model_bon = dict(zip(private["_item_ids"], private["_item_bon"]))
            rows = summary[summary["item_id"].astype(str).isin(model_bon.keys())]
            sub = [CandidateItem(i, str(r), d, "", (), "") for i, r, d in zip(rows["item_id"], rows["record_id"], rows["domain"])]
            pair = paired_bon_difference(
                sub, rows["matches_winner"].to_numpy(dtype=float), np.array([model_bon[str(i)] for i in rows["item_id"]], dtype=float),
                draws=draws, seed=seed,
            )
            result["shallow_cue"]["on_labelled_items"] = {
                "people_BoN": pair["a"], "shallow_model_BoN": pair["b"], "difference": pair["difference"], "ci": {
                    "people_BoN": pair["ci"]["a"], "shallow_model_BoN": pair["ci"]["b"], "difference": pair["ci"]["difference"],
                },
                "n_items": pair["n_items"], "n_records": pair["n_records"],
                "method": "the same labelled items for both; people minus model; paired percentile bootstrap over records within domain",
            }
    organic = dict(result["organic"])
    item_p = organic.pop("_item_p_tailored", None)
    result["organic"] = organic
    if item_p is not None:
        nat = summary[["item_id", "domain", "mean_naturalness"]].dropna() if not summary.empty else None
        for d, row in organic["by_domain"].items():
            ratings = labels.loc[labels["domain"] == d, "naturalness"] if not labels.empty else None
            vals = ratings.dropna().astype(float) if ratings is not None else []
            row["naturalness_mean"] = float(np.mean(vals)) if len(vals) else None
            row["naturalness_share_4_5"] = float(np.mean(np.asarray(vals) >= 4)) if len(vals) else None
            row["naturalness_n"] = int(len(vals))
            if not len(vals):
                row["naturalness_reason"] = "no naturalness ratings"
        rho: dict[str, Any] = {"rho": None, "p_value": None, "n_items": 0}
        if nat is not None and len(nat):
            p = np.array([item_p.get(str(i), np.nan) for i in nat["item_id"]])
            ok = np.isfinite(p)
            rho["n_items"] = int(ok.sum())
            if ok.sum() >= 3 and np.ptp(p[ok]) > 0 and np.ptp(nat["mean_naturalness"].to_numpy()[ok]) > 0:
                r = spearmanr(p[ok], nat["mean_naturalness"].to_numpy()[ok])
                rho.update(rho=_nan_to_none(r.statistic), p_value=_nan_to_none(r.pvalue))
            else:
                rho["reason"] = "fewer than 3 rated items, or no variation in ratings or scores"
        else:
            rho["reason"] = "no naturalness ratings"
        organic["naturalness_spearman"] = rho
    return result


# --- text for the CLI ------------------------------------------------------------------------------


def _pct(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _ci(ci: Optional[list]) -> str:
    return "" if not ci else f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]"


def format_artifacts(result: dict) -> str:
    """A plain-text summary (``--json`` prints everything)."""
    sc = result["shallow_cue"]
    lines = [f"Artifact checks for {result['benchmark']!r}" + (" (cached)" if result.get("cached") else f" (fitted in {result.get('fit_seconds')} s)")]
    if "reason" in sc:
        lines.append(f"Shallow-cue ceiling: n/a ({sc['reason']})")
    else:
        domains = [d for d in sc["methods"]["shallow_model"]["BoN"]]
        lines += ["", f"Shallow-cue ceiling: BoN with 95% record-clustered intervals ({sc['n_items']:,} items, "
                      f"{sc['n_records']:,} records, {sc['n_folds']} grouped folds; chance BoN {_pct(sc['chance']['BoN'])})"]
        short = {"shallow_model": "shallow-cue model (grouped CV)", "tfidf_cosine": "TF-IDF cosine", "longest": "longest response"}
        lines.append(f"{'':<31}" + "".join(f"{d:>24}" for d in domains))
        for name in sc["method_labels"]:
            m = sc["methods"][name]
            lines.append(f"{short.get(name, name)[:30]:<31}" + "".join(f"{_pct(m['BoN'][d]) + _ci(m['ci']['BoN'][d]):>24}" for d in domains))
        h = result.get("human", {})
        if "BoN" in h:
            lines.append(f"{'people (plurality pick)':<31}" + "".join(f"{_pct(h['BoN'].get(d)) + _ci(h['ci']['BoN'].get(d)):>24}" for d in domains))
        else:
            lines.append(f"people: n/a ({h.get('reason')})")
        on = sc.get("on_labelled_items", {})
        if "difference" in on:
            lines += ["", "On the labelled items only (paired record bootstrap): people minus shallow-cue model, BoN points"]
            lines.append("  " + "   ".join(
                f"{d}: {on['difference'][d] * 100:+.1f}" + ("" if not on['ci']['difference'][d] else
                f" [{on['ci']['difference'][d][0] * 100:+.1f}, {on['ci']['difference'][d][1] * 100:+.1f}]") for d in on["difference"]))
        lines += ["", "Cue families (BoN Avg when the model is refitted without them):"]
        for r in sc.get("family_ablation", []):
            drop = "n/a" if r["BoN_drop"] is None else f"{r['BoN_drop'] * 100:+.1f} points"
            lines.append(f"  {r['family']:<28}{_pct(r['BoN_without']):>8}  (drop {drop})")
        lines += ["", "Top cues (standardised weight, sd over folds):"]
        for f in sc["features"][:8]:
            lines.append(f"  {f['feature']:<34}{f['weight']:>+8.3f} ({f['weight_sd']:.3f})  {f['family']}")
    org = result["organic"]
    lines.append("")
    if "reason" in org:
        lines.append(f"Organic vs tailored: n/a ({org['reason']})")
    else:
        lines.append(
            f"Organic vs tailored ({org['n_benchmark_prompts']:,} benchmark prompts vs {org['n_organic']} organic from {org['file']}): "
            f"ROC AUC {org['auc']:.3f}" + ("" if not org["ci"] else f" [{org['ci'][0]:.3f}, {org['ci'][1]:.3f}]")
        )
        lines.append(f"{'':<12}{'AUC':>22}{'mean P(tailored)':>18}{'naturalness mean':>18}{'rated 4-5':>11}")
        for d, r in org["by_domain"].items():
            auc = "n/a" if r["auc"] is None else f"{r['auc']:.3f}" + ("" if not r["ci"] else f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]")
            nm = r.get("naturalness_mean")
            lines.append(f"{d:<12}{auc:>22}{r['mean_p_tailored']:>18.3f}{'n/a' if nm is None else f'{nm:.2f}':>18}{_pct(r.get('naturalness_share_4_5')):>11}")
        rho = org.get("naturalness_spearman", {})
        lines.append(
            "Spearman (P(tailored), item mean naturalness): "
            + ("n/a (" + str(rho.get("reason")) + ")" if rho.get("rho") is None else f"{rho['rho']:+.3f} (p {rho['p_value']:.3g}, {rho['n_items']} items)")
        )
        lines.append("Top separating features (positive: looks tailored):")
        for f in org["features"][:6]:
            lines.append(f"  {f['feature']:<20}{f['weight']:>+8.3f} ({f['weight_sd']:.3f})  {f['description']}")
    return "\n".join(lines)
