"""Truth inference: each item's answer by plurality, one-coin Dawid-Skene and MACE.

Plurality trusts every annotator equally. When annotators differ in care
(a spammer, a contrarian, a few experts) a model of annotator competence can
recover the right answer where the vote fails, and the competence estimates
themselves say whom to trust. The EM fits come from ``crowd-kit`` (the
maintained library; not re-implemented here):

- ``OneCoinDawidSkene``: one skill per annotator (probability of the right
  answer; a wrong answer is uniform over the others). The full Dawid-Skene
  model's per-class confusion matrices would mean nothing here, because a
  "class" is an arbitrary response key;
- ``MACE``: each annotator knows the answer with probability *competence*
  and otherwise guesses from a personal strategy (Hovy et al. 2013).

Response keys are recoded to their position in the record's response list
before fitting, so the number of classes is the number of responses per
item whatever the keys are called. "Can't decide" is not a vote; an item
with no decided label has no estimate (wrong, as for plurality). A posterior
whose top two answers tie (within 1e-9) gives no pick either.

**Caching.** A fit costs seconds on 40k labels (see the README), too slow for
the report's 2 s budget, so each fit is stored in the ``truthfit`` table
under a fingerprint: a SHA-256 of the exact (item, annotator, answer)
triples it saw, the method and its settings and the crowd-kit version.
Exclusions change the labels, hence the fingerprint. The report only reads
fits (``truth_inference.status`` says "not fitted yet" with the command to
run); ``rmgap-annot report --fit-truth`` or the Results page's button fits,
and ``export-verified --aggregate`` fits when it must.

**Intervals hold the aggregation fixed**: each item's aggregated answer is
computed once, and only whole records (the report's record draws, see
:func:`bon_by_aggregate`) are resampled.
The uncertainty of the fit itself is not in them.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from importlib.metadata import version
from typing import Mapping, Optional

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.stats.metrics import with_avg
from rmgap_annot.models import Record, Response, TruthFit
from rmgap_annot.settings import DOMAINS
from rmgap_annot.stats import bootstrap as bs

PLURALITY = "plurality"
DAWID_SKENE = "dawid-skene"
MACE_METHOD = "mace"
AGGREGATES = (PLURALITY, DAWID_SKENE, MACE_METHOD)
FITTED = (DAWID_SKENE, MACE_METHOD)
SETTINGS = {
    DAWID_SKENE: {"n_iter": 100, "tol": 1e-5},
    MACE_METHOD: {"n_restarts": 10, "n_iter": 50, "method": "vb", "random_state": 0},
}
TIE_EPS = 1e-9
KEEP_FITS = 4  # per benchmark and method; each fit is ~1 MB of JSON on the full benchmark
NOT_FITTED = "not fitted yet for these labels: run `rmgap-annot report --fit-truth` (or Fit on the Results page)"
INTERVAL_NOTE = (
    "intervals hold each aggregation fixed: items' aggregated answers are computed once and only items are "
    "resampled; the uncertainty of the Dawid-Skene / MACE fit itself is not included"
)


class TruthError(ValueError):
    """An aggregation that cannot be used as asked."""


def check_aggregate(name: str) -> str:
    if name not in AGGREGATES:
        raise TruthError(f"--aggregate must be one of {', '.join(AGGREGATES)}, got {name!r}")
    return name


# --- the data a fit sees ----------------------------------------------------------


def key_positions(*, engine: Engine, benchmark_id: int) -> dict[tuple[str, str], int]:
    """(record_id, response key) -> the key's position in the record's response list."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Record.record_id, Response.key, Response.position)
            .join(Record, Record.id == Response.record_pk)
            .where(Record.benchmark_id == benchmark_id)
        ).all()
    return {(r, k): int(p) for r, k, p in rows}


def crowd_frame(labels: pd.DataFrame, positions: Optional[Mapping[tuple[str, str], int]] = None) -> pd.DataFrame:
    """crowd-kit's (task, worker, label) frame: decided labels only, keys as positions.

    Without ``positions`` keys are coded globally (fine when every item has
    the same keys, as in RMGAP; the tests use it).
    """
    decided = labels[labels["choice_key"].notna()]
    if positions is None:
        codes = pd.Series(pd.factorize(decided["choice_key"], sort=True)[0], index=decided.index)
    else:
        table = pd.Series(positions, dtype=np.int64)
        lookup = pd.MultiIndex.from_arrays([decided["record_id"].astype(object), decided["choice_key"].astype(object)])
        codes = pd.Series(table.reindex(lookup).fillna(-1).to_numpy(dtype=np.int64), index=decided.index)
    data = pd.DataFrame({
        "task": decided["item_id"].astype(np.int64).to_numpy(),
        "worker": decided["annotator"].astype(str).to_numpy(),
        "label": codes.astype(np.int64).to_numpy(),
    })
    data = data[data["label"] >= 0]
    return data.sort_values(["task", "worker"], kind="stable").reset_index(drop=True)


def fingerprint(data: pd.DataFrame, method: str) -> str:
    """What a fit depends on: the exact triples, the method, its settings, crowd-kit's version."""
    digest = hashlib.sha256()
    digest.update(json.dumps([method, SETTINGS[method], version("crowd-kit")]).encode())
    digest.update(pd.util.hash_pandas_object(data[["task", "worker", "label"]], index=False).to_numpy().tobytes())
    return digest.hexdigest()


# --- fitting ------------------------------------------------------------------------


def _picks_from_probas(probas: pd.DataFrame) -> tuple[dict[int, Optional[int]], dict[int, float]]:
    """task -> the unique most probable code (None on a tie), and its posterior."""
    if probas is None or probas.empty:
        return {}, {}
    p = probas.fillna(0.0).to_numpy(dtype=float)
    cols = np.asarray(probas.columns)
    order = np.argsort(-p, axis=1, kind="stable")
    top = p[np.arange(len(p)), order[:, 0]]
    second = p[np.arange(len(p)), order[:, 1]] if p.shape[1] > 1 else np.zeros(len(p))
    unique = top - second > TIE_EPS
    picks = {int(t): (int(cols[o]) if u else None) for t, o, u in zip(probas.index, order[:, 0], unique)}
    return picks, {int(t): float(v) for t, v in zip(probas.index, top)}


def fit(data: pd.DataFrame, method: str) -> dict:
    """Fit one method on a crowd frame: picks (codes), posteriors and competence per annotator."""
    from crowdkit.aggregation import MACE, OneCoinDawidSkene  # noqa: PLC0415 - a heavy import, only when fitting

    if method not in FITTED:
        raise TruthError(f"no fit for {method!r}; fitted methods: {', '.join(FITTED)}")
    t0 = time.perf_counter()
    if data.empty:
        return {"picks": {}, "posterior": {}, "competence": {}, "seconds": 0.0}
    with warnings.catch_warnings():
        # crowd-kit's own pandas deprecation warnings, thousands per fit: not the user's concern.
        warnings.filterwarnings("ignore", module=r"crowdkit(\..*)?$")
        model = OneCoinDawidSkene(**SETTINGS[method]) if method == DAWID_SKENE else MACE(**SETTINGS[method])
        model.fit(data)
    if method == DAWID_SKENE:
        competence = {str(w): float(s) for w, s in model.skills_.items()}
    else:
        # MACE's workers are in pd.factorize order; spamming_[:, 1] is P(knows the answer).
        names = pd.factorize(data["worker"])[1]
        competence = {str(w): float(s) for w, s in zip(names, model.spamming_[:, 1])}
    picks, posterior = _picks_from_probas(model.probas_)
    return {"picks": picks, "posterior": posterior, "competence": competence, "seconds": time.perf_counter() - t0}


def _decode(fitted: dict, labels: pd.DataFrame, positions: Optional[Mapping[tuple[str, str], int]]) -> dict[int, Optional[str]]:
    """Codes back to response keys, per item."""
    if positions is None:
        names = pd.factorize(labels.loc[labels["choice_key"].notna(), "choice_key"], sort=True)[1]
        return {t: (None if c is None else str(names[c])) for t, c in fitted["picks"].items()}
    by_record: dict[str, dict[int, str]] = {}
    for (rid, key), pos in positions.items():
        by_record.setdefault(rid, {})[pos] = key
    record_of = dict(zip(labels["item_id"].astype(int), labels["record_id"]))
    return {t: (None if c is None else by_record[record_of[t]][c]) for t, c in fitted["picks"].items()}


def cached_fit(*, engine: Engine, benchmark_id: int, method: str, fp: str) -> Optional[dict]:
    with session_scope(engine) as session:
        row = session.execute(
            select(TruthFit).where(TruthFit.benchmark_id == benchmark_id, TruthFit.method == method, TruthFit.fingerprint == fp)
        ).scalar_one_or_none()
        if row is None:
            return None
        out = json.loads(row.result_json)
        out.update(fitted_at=row.fitted_at.isoformat(), seconds=row.seconds, fingerprint=fp)
        return out


def _store(*, engine: Engine, benchmark_id: int, method: str, fp: str, result: dict) -> None:
    payload = {
        "picks": {str(k): v for k, v in result["picks"].items()},
        "posterior": {str(k): v for k, v in result["posterior"].items()},
        "competence": result["competence"],
        "settings": SETTINGS[method],
        "crowd_kit": version("crowd-kit"),
    }
    with session_scope(engine, write=True) as session:
        exists = session.execute(
            select(TruthFit.id).where(TruthFit.benchmark_id == benchmark_id, TruthFit.method == method, TruthFit.fingerprint == fp)
        ).scalar_one_or_none()
        if exists is None:  # a concurrent fit of the same labels stored the same thing
            session.add(TruthFit(benchmark_id=benchmark_id, method=method, fingerprint=fp, seconds=result["seconds"],
                                 result_json=json.dumps(payload)))
            session.flush()
        # Old fits are of label sets that no longer exist (or what-ifs): keep the newest few, not every one.
        stale = session.execute(
            select(TruthFit.id).where(TruthFit.benchmark_id == benchmark_id, TruthFit.method == method)
            .order_by(TruthFit.id.desc()).offset(KEEP_FITS)
        ).scalars().all()
        if stale:
            session.execute(delete(TruthFit).where(TruthFit.id.in_(stale)))


def aggregated_picks(
    *, engine: Engine, benchmark_id: int, labels: pd.DataFrame, method: str, fit_if_missing: bool,
    positions: Optional[Mapping[tuple[str, str], int]] = None, data: Optional[pd.DataFrame] = None,
) -> Optional[dict]:
    """{"picks": item -> key or None, "competence", "posterior", "fitted_at", "seconds", "fingerprint"}; None when not fitted.

    Plurality is not a fit: use ``human_metrics.item_summary`` for it.
    ``positions`` / ``data``: pass them when calling for several methods.
    """
    if positions is None:
        positions = key_positions(engine=engine, benchmark_id=benchmark_id)
    if data is None:
        data = crowd_frame(labels, positions)
    fp = fingerprint(data, method)
    found = cached_fit(engine=engine, benchmark_id=benchmark_id, method=method, fp=fp)
    if found is None:
        if not fit_if_missing:
            return None
        result = fit(data, method)
        result["picks"] = _decode(result, labels, positions)  # stored as response keys: nothing to decode on read
        _store(engine=engine, benchmark_id=benchmark_id, method=method, fp=fp, result=result)
        found = cached_fit(engine=engine, benchmark_id=benchmark_id, method=method, fp=fp)
    found["picks"] = {int(k): v for k, v in found["picks"].items()}
    found["posterior"] = {int(k): v for k, v in found["posterior"].items()}
    return found


# --- intervals (ONE place to switch to the record bootstrap) ---------------------------


def bon_by_aggregate(
    summary: pd.DataFrame, picks: Mapping[str, Mapping[int, Optional[str]]], *, draws: int, seed: int, confidence: float,
    record_draws: Optional[Mapping[str, "bs.ClusterDraws"]] = None,
) -> tuple[dict, dict]:
    """BoN per domain and Avg under each aggregation, with record-clustered intervals.

    One resampling shared by all aggregations: the report's own record draws
    (``human_metrics.record_draws``), so the plurality row equals
    ``human.ci.BoN`` and the rows move together draw by draw. The interval
    rule (percentile, Wilson fallback at 0 or 1) is ``stats.bootstrap.interval``.
    """
    from rmgap_annot.stats.human_metrics import record_draws as make_record_draws  # noqa: PLC0415

    methods = list(picks)
    if draws and record_draws is None:
        record_draws = make_record_draws(summary, draws=draws, seed=seed)
    point: dict[str, dict[str, Optional[float]]] = {m: {} for m in methods}
    boots: dict[str, dict[str, np.ndarray]] = {m: {} for m in methods}
    cis: dict[str, dict[str, Optional[list]]] = {m: {} for m in methods}
    for d in DOMAINS:
        rows = summary[summary["domain"] == d]
        if rows.empty:
            for m in methods:
                point[m][d] = cis[m][d] = None
            continue
        ids = rows["item_id"].astype(np.int64)
        winner = rows["winner_key"].to_numpy(dtype=object)
        rec = rows["record_id"].to_numpy()
        cd = (record_draws or {}).get(d) if draws else None
        n = len(rows)
        for m in methods:
            correct = (ids.map(picks[m]).to_numpy(dtype=object) == winner).astype(float)
            point[m][d] = float(correct.mean())
            boot = cd.total(rec, correct) / n if cd is not None else None
            if boot is not None:
                boots[m][d] = boot
            clus = bs.clustering(correct, rec)
            cis[m][d] = bs.interval(point[m][d], boot, confidence=confidence, successes=float(correct.sum()), trials=float(n),
                                    design_effect=clus["design_effect"], n_clusters=int(len(np.unique(rec))))["ci"]
    values = {}
    for m in methods:
        values[m] = with_avg(point[m])
        present = [d for d in DOMAINS if point[m][d] is not None]
        if draws and present:
            cis[m]["Avg"] = bs.mean_of_strata_interval(
                values[m]["Avg"], [boots[m][d] for d in present if d in boots[m]], [cis[m][d] for d in present], confidence
            )["ci"]
        else:
            cis[m]["Avg"] = None
    return values, cis


# --- the report's section ------------------------------------------------------------------


def report_section(
    *, engine: Engine, benchmark_id: int, labels: pd.DataFrame, summary: pd.DataFrame, excluded: list[str],
    fit: bool, draws: int, seed: int, confidence: float, record_draws: Optional[Mapping] = None,
) -> dict:
    """``report --json``'s ``truth_inference`` (reads cached fits; fits only when ``fit``)."""
    out: dict = {
        "methods": list(AGGREGATES),
        "status": {PLURALITY: {"fitted": True, "note": "no fit needed"}},
        "interval_note": INTERVAL_NOTE,
        "bootstrap": {"draws": draws, "seed": seed, "confidence": confidence,
                      "unit": "record",
                      "method": "cluster bootstrap: whole records resampled within each domain (Avg: mean of domains draw by draw); aggregation held fixed"},
        "excluded_annotators": list(excluded),
    }
    if labels.empty:
        out.update(BoN={}, ci={}, competence=[], disagreements=[], n_disagreements=None,
                   reason="no labels yet")
        return out
    picks: dict[str, dict[int, Optional[str]]] = {
        PLURALITY: {int(i): (p if isinstance(p, str) else None) for i, p in zip(summary["item_id"], summary["plurality_pick"])}
    }
    fits: dict[str, dict] = {}
    positions = key_positions(engine=engine, benchmark_id=benchmark_id)
    data = crowd_frame(labels, positions)
    for method in FITTED:
        found = aggregated_picks(engine=engine, benchmark_id=benchmark_id, labels=labels, method=method, fit_if_missing=fit,
                                 positions=positions, data=data)
        if found is None:
            out["status"][method] = {"fitted": False, "reason": NOT_FITTED}
            continue
        fits[method] = found
        picks[method] = found["picks"]
        out["status"][method] = {"fitted": True, "fitted_at": found["fitted_at"], "seconds": found["seconds"],
                                 "fingerprint": found["fingerprint"], "settings": found["settings"],
                                 "crowd_kit": found["crowd_kit"]}
    out["BoN"], out["ci"] = bon_by_aggregate(summary, picks, draws=draws, seed=seed, confidence=confidence, record_draws=record_draws)
    for method in FITTED:
        if method not in fits:
            out["BoN"][method] = {d: None for d in (*DOMAINS, "Avg")}
            out["ci"][method] = {d: None for d in (*DOMAINS, "Avg")}
    out["competence"] = _competence(labels, fits)
    out["disagreements"] = _disagreements(summary, picks, fits) if fits else []
    out["n_disagreements"] = len(out["disagreements"]) if fits else None
    if not fits:
        out["disagreements_reason"] = out["n_disagreements_reason"] = "no fitted aggregation to compare with plurality yet"
    out["reasons"] = _null_reasons(summary, out, draws=draws)
    return out


def _null_reasons(summary: pd.DataFrame, out: Mapping, *, draws: int) -> dict:
    """Per aggregation and domain, why its BoN or interval is null (every null in the report says why)."""
    reasons: dict[str, dict[str, str]] = {}
    for m in out["methods"]:
        for d in (*DOMAINS, "Avg"):
            value, ci = out["BoN"].get(m, {}).get(d), (out["ci"].get(m) or {}).get(d)
            if value is not None and ci is not None:
                continue
            if not out["status"][m]["fitted"]:
                why = out["status"][m]["reason"]
            elif d != "Avg" and not (summary["domain"] == d).any():
                why = f"no labelled {d} items"
            elif value is None:
                why = "no domain has a value"
            elif not draws:
                why = "no intervals: the report was built with draws=0"
            else:
                why = "no interval: too few records resampled"
            reasons.setdefault(m, {})[d] = why
    return reasons


def _competence(labels: pd.DataFrame, fits: Mapping[str, dict]) -> list[dict]:
    """Per annotator: each method's competence next to their raw label accuracy."""
    match = (labels["choice_key"] == labels["winner_key"]) & labels["choice_key"].notna()
    acc = match.groupby(labels["annotator"]).mean()
    n = labels.groupby("annotator").size()
    rows = []
    for name in sorted(n.index):
        row: dict = {"annotator": str(name), "n_labels": int(n[name]), "label_accuracy": float(acc[name])}
        for method in FITTED:
            if method in fits:
                v = fits[method]["competence"].get(str(name))
                row[method] = v
                if v is None:
                    row[f"{method}_reason"] = "only Can't decide labels: nothing to estimate competence from"
            else:
                row[method] = None
                row[f"{method}_reason"] = NOT_FITTED
        rows.append(row)
    return rows


def _disagreements(summary: pd.DataFrame, picks: Mapping[str, Mapping[int, Optional[str]]], fits: Mapping[str, dict]) -> list[dict]:
    """Items whose answer depends on the aggregation (only fitted methods compared)."""
    methods = [PLURALITY, *fits]
    ids = summary["item_id"].astype(np.int64)
    answers = pd.DataFrame({m: ids.map(picks[m]).astype(object).to_numpy() for m in methods}, index=summary.index)
    filled = answers.fillna("\x00no pick")
    differ = np.zeros(len(filled), dtype=bool)
    for m in methods[1:]:
        differ |= (filled[m] != filled[PLURALITY]).to_numpy()
    rows = []
    for r, ans in zip(summary[differ].itertuples(index=False), answers[differ].itertuples(index=False)):
        item = int(r.item_id)
        row = {"item_id": item, "record_id": r.record_id, "domain": r.domain, "group": int(r.group),
               "prompt_index": int(r.prompt_index), "winner_key": r.winner_key, "votes": dict(r.votes)}
        row.update({m: (a if isinstance(a, str) else None) for m, a in zip(methods, ans)})
        for m in fits:
            row[f"{m}_posterior"] = fits[m]["posterior"].get(item)
        rows.append(row)
    return rows


# --- the export rule ------------------------------------------------------------------------


def override_picks(stats: pd.DataFrame, picks: Mapping[int, Optional[str]]) -> pd.DataFrame:
    """``export.item_stats`` with another aggregation's pick: agreement is the share choosing it.

    A fitted pick is unique by construction (a posterior tie gives none), so
    ``tie`` is True exactly where there is no pick among decided labels.
    """
    out = stats.copy()
    chosen = [picks.get(int(i)) for i in out["item_id"]]
    out["pick"] = pd.Series(chosen, index=out.index, dtype=object)
    out["top_count"] = [int(v.get(p, 0)) if p is not None else 0 for v, p in zip(out["votes"], chosen)]
    out["tie"] = [p is None and n > 0 for p, n in zip(chosen, out["n_decided"])]
    return out


def fit_all(*, engine: Engine, benchmark_id: int, what_if=()) -> dict[str, float]:  # noqa: ANN001
    """Fit (or find cached) every fitted method on the counted labels: method -> seconds the fit took."""
    from rmgap_annot.exclusions import counted_labels  # noqa: PLC0415

    labels = counted_labels(engine=engine, benchmark_id=benchmark_id, what_if=what_if).labels
    out = {}
    positions = key_positions(engine=engine, benchmark_id=benchmark_id)
    data = crowd_frame(labels, positions)
    for method in FITTED:
        found = aggregated_picks(engine=engine, benchmark_id=benchmark_id, labels=labels, method=method, fit_if_missing=True,
                                 positions=positions, data=data)
        out[method] = float(found["seconds"]) if found else 0.0
    return out
