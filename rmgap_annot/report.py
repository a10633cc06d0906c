"""The numbers a researcher reads, as plain JSON-ready data.

``build_report`` is the one entry point: the CLI prints it, the Results page
draws it, the export writes it into the dataset card and report.html. It
reads labels through ``labels_frame`` only, and every statistic comes from
``agreement`` / ``human_metrics`` / ``comparison``, every interval and test
from ``stats.bootstrap`` (whole records resampled within domains; a page
never computes a statistic).

Top-level keys: ``agreement``, ``human``, ``naturalness``, ``position_bias``,
``annotators``, ``items``, ``scorers``, ``referee`` (``stats.referee``), plus ``exclusions`` and
``truth_inference`` (and ``annotator_resampling`` on request) from the
``rmgap_annot.exclusions`` / ``rmgap_annot.stats`` modules, ``verified_subset``
(``rmgap_annot.stats.verified``), ``verdict`` (``rmgap_annot.verdict``), ``benchmark_metrics``
(the benchmark's own metrics, ``format_report``) and ``ratings`` (each rating question's alpha and
answers, ``stats.rating_report``), both through ``rmgap_annot.format_sections``. Undefined numbers are ``None`` with a
``reason`` next to them, never a silent 0. The README's analytics section
documents every key.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.stats import agreement as agr
from rmgap_annot.stats import human_metrics as hm
from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import counted_labels, exclusions_key
from rmgap_annot.stats.human_metrics import item_summary
from rmgap_annot.stats import bootstrap as bs
from rmgap_annot.models import Benchmark, Item, Label, Record, Response, User
from rmgap_annot.settings import DOMAINS

SLOTS = ("A", "B", "C", "D")
FAST_SECONDS = 5.0  # a label faster than this is unlikely to reflect reading four responses
NATURALNESS_SCALE = (1, 2, 3, 4, 5)
ALL = "All"


def _f(x: Any) -> Optional[float]:
    """A JSON-safe float: None for NaN / inf / None."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def report_fingerprint(*, engine: Engine, benchmark_id: int) -> tuple:
    """(label count, latest submission, latest label id): changes whenever a label does (cache key)."""
    with session_scope(engine) as session:
        row = session.execute(
            select(func.count(Label.id), func.max(Label.submitted_at), func.max(Label.id))
            .join(Item, Item.id == Label.item_id)
            .where(Item.benchmark_id == benchmark_id)
        ).one()
    # Exclusions change every number, so they are part of the key.
    return (int(row[0]), str(row[1]), row[2], exclusions_key(engine=engine))


def build_report(
    *,
    engine: Engine,
    benchmark_id: int,
    draws: int = agr.DRAWS,
    seed: int = agr.SEED,
    confidence: float = agr.CONFIDENCE,
    fast_seconds: float = FAST_SECONDS,
    include_scorers: bool = True,
    exclude: Sequence[str] = (),
    fit_truth: bool = False,
    resample: str = "records",
    adjust: str = "holm",
    study_ids: Optional[list[int]] = None,
) -> dict:
    """The whole report for one benchmark, intervals included (plain data).

    ``study_ids``: the studies whose labels count (None: every study of the
    benchmark, pooled). Annotators are named by their pseudonym in the study
    (``STUDY/ann-07`` when several are pooled: ``studies.coder_names``).

    Every interval resamples whole records within each domain: one set of
    record draws per domain (``human_metrics.record_draws``) is expanded to
    items, groups and labels, so alpha, accuracy, agreement and naturalness
    move together draw by draw. ``adjust``: the multiplicity adjustment of
    the scorers' p-values (holm, bh, none). ``exclude``: one-off what-if
    exclusions on top of the stored ones. ``fit_truth``: fit Dawid-Skene and
    MACE now if not cached (seconds); otherwise ``truth_inference`` shows
    cached fits or says how to fit. ``resample="annotators"``: add two-way
    record x annotator intervals.
    """
    if adjust not in bs.ADJUST_METHODS:
        raise ValueError(f"adjust must be one of {', '.join(bs.ADJUST_METHODS)}, not {adjust!r}")
    if resample not in ("records", "annotators"):
        raise ValueError(f"resample must be 'records' or 'annotators', not {resample!r}")
    counted = counted_labels(engine=engine, benchmark_id=benchmark_id, what_if=exclude, study_ids=study_ids)
    labels = counted.labels
    with session_scope(engine) as session:
        bench = session.get(Benchmark, benchmark_id)
        if bench is None:
            raise ValueError(f"no benchmark with id {benchmark_id}")
        item_counts = dict(
            session.execute(select(Item.domain, func.count()).where(Item.benchmark_id == benchmark_id).group_by(Item.domain)).all()
        )
        bench_name = bench.name
    summary = item_summary(labels)
    record_draws = hm.record_draws(summary, draws=draws, seed=seed)
    report: dict[str, Any] = label_sections(labels, summary, record_draws, draws=draws, seed=seed, confidence=confidence)
    report["agreement"]["summary"] = {
        "benchmark_id": benchmark_id,
        "benchmark": bench_name,
        "n_items": {d: int(item_counts.get(d, 0)) for d in DOMAINS},
        "n_items_labelled": {d: int((summary["domain"] == d).sum()) for d in DOMAINS},
        "n_labels": int(len(labels)),
        "n_annotators": int(labels["annotator"].nunique()) if len(labels) else 0,
        "n_cant_decide": int(labels["choice_key"].isna().sum()) if len(labels) else 0,
        **_studies_summary(engine, labels, study_ids),
    }
    report["position_bias"] = _position_bias(labels)
    report["annotators"] = _annotators(labels, report["agreement"], fast_seconds)
    report["items"] = _items(summary)
    scored: dict = {}  # each scorer's top picks (referee), read once with the scorer section
    tables: dict = {}  # each scorer's per-item outcomes (verified subset), likewise
    report["scorers"] = (
        _scorers(engine, benchmark_id, report["human"], summary, record_draws, draws=draws, seed=seed, confidence=confidence,
                 adjust=adjust, picks_out=scored, tables_out=tables)
        if include_scorers else {}
    )
    report["referee"] = _referee(engine, benchmark_id, summary, record_draws, scored, confidence=confidence, adjust=adjust)
    _extras(report, engine=engine, benchmark_id=benchmark_id, labels=labels, summary=summary, counted=counted,
            draws=draws, seed=seed, confidence=confidence, fit_truth=fit_truth, resample=resample, record_draws=record_draws)
    _verdict(report, engine=engine, benchmark_id=benchmark_id, summary=summary, record_draws=record_draws, scored=tables,
             confidence=confidence, adjust=adjust, draws=draws, seed=seed)
    # The benchmark's own metrics and the rating questions (rmgap_annot.format_sections).
    from rmgap_annot import format_sections  # noqa: PLC0415

    report["benchmark_metrics"] = format_sections.benchmark_metrics_section(
        engine=engine, benchmark_id=benchmark_id, exclude=exclude, draws=draws, seed=seed, study_ids=study_ids,
        labels=labels)  # the labels that count, read once for the whole report
    report["ratings"] = format_sections.ratings_report_section(
        engine=engine, benchmark_id=benchmark_id, labels=labels, draws=draws, seed=seed, confidence=confidence,
        study_ids=study_ids)
    return report


def _studies_summary(engine: Engine, labels: pd.DataFrame, study_ids: Optional[list[int]]) -> dict:
    """Which studies the labels come from, and (pooled) how many items one person labelled in two of them."""
    from rmgap_annot.models import Study  # noqa: PLC0415

    with session_scope(engine) as session:
        present = sorted({int(s) for s in labels["study_id"]}) if len(labels) else []
        wanted = present if study_ids is None else sorted(study_ids)
        names = dict(session.execute(select(Study.id, Study.name).where(Study.id.in_(wanted))).all()) if wanted else {}
    repeats = int(labels.duplicated(["user_id", "item_id"]).sum()) if len(labels) else 0
    return {
        "studies": [names[s] for s in wanted if s in names],
        # Pooled studies keep each study's labels as their own coder (STUDY/ann-07): a person who
        # labelled an item in two studies counts twice on it. This says how often that happened.
        "n_repeat_labels": repeats,
    }


def _verdict(report: dict, *, engine: Engine, benchmark_id: int, summary: pd.DataFrame, record_draws: dict, scored: dict,
             confidence: float, adjust: str, draws: int, seed: int) -> None:
    """``verified_subset`` (rmgap_annot.stats.verified) and ``verdict`` (rmgap_annot.verdict), the latter last: it reads the rest."""
    from rmgap_annot import verdict  # noqa: PLC0415
    from rmgap_annot.stats import verified  # noqa: PLC0415

    report["verified_subset"] = verified.verified_subset_section(
        engine=engine, benchmark_id=benchmark_id, summary=summary, record_draws=record_draws,
        scorers=report.get("scorers"), scored_tables=scored, confidence=confidence, adjust=adjust,
    )
    report["verdict"] = verdict.build_verdict(report, artifacts=verdict.cached_shallow_cue(engine=engine, benchmark_id=benchmark_id,
                                                                                          draws=draws, seed=seed))


# --- exclusions, truth inference, annotator resampling (rmgap_annot.stats) --------------


def _extras(report: dict, *, engine: Engine, benchmark_id: int, labels: pd.DataFrame, summary: pd.DataFrame, counted,
            draws: int, seed: int, confidence: float, fit_truth: bool, resample: str, record_draws: dict) -> None:  # noqa: ANN001
    """``exclusions``, ``truth_inference`` and (on request) ``annotator_resampling``."""
    from rmgap_annot.stats import truth  # noqa: PLC0415

    report["exclusions"] = counted.section()
    report["planning"] = _planning(engine, benchmark_id, labels, summary)
    report["truth_inference"] = truth.report_section(
        engine=engine, benchmark_id=benchmark_id, labels=labels, summary=summary, excluded=counted.excluded_names,
        fit=fit_truth, draws=draws, seed=seed, confidence=confidence, record_draws=record_draws,
    )
    if resample == "annotators":
        from rmgap_annot.stats import twoway  # noqa: PLC0415

        report["annotator_resampling"] = twoway.two_way_section(labels, draws=draws, seed=seed, confidence=confidence)


def _planning(engine: Engine, benchmark_id: int, labels: pd.DataFrame, summary: pd.DataFrame) -> dict:
    """``planning``: records needed per domain for a 95% interval of half-width 0.05 (``stats.planning``)."""
    from rmgap_annot.assignment import get_study  # noqa: PLC0415
    from rmgap_annot.stats import planning  # noqa: PLC0415

    shape = planning.structure(engine=engine, benchmark_id=benchmark_id)
    return planning.report_section(labels=labels, summary=summary, labels_per_item=get_study(engine=engine, benchmark_id=benchmark_id).labels_per_item,
                                   items_per_record=shape["items_per_record"], n_keys=shape["n_keys"])


def label_sections(
    labels: pd.DataFrame, summary: pd.DataFrame, record_draws: dict, *, draws: int, seed: int, confidence: float
) -> dict[str, Any]:
    """``agreement``, ``human`` and ``naturalness`` from a labels frame: the report's statistics without a database.

    Split out so the coverage simulation (tests, bench/coverage.py) checks the
    very code the report runs. ``record_draws``: ``human_metrics.record_draws``.
    """
    domain_units = {d: summary.index[summary["domain"] == d].to_numpy() for d in DOMAINS}
    weights = {d: record_draws[d].bind(summary.loc[summary["domain"] == d, "record_id"].to_numpy()) for d in record_draws}
    out: dict[str, Any] = {}
    out["agreement"] = _agreement(labels, domain_units, weights, confidence)
    out["agreement"]["percent_agreement"] = _percent_agreement_ci(out["agreement"]["percent_agreement"], summary, weights, confidence)
    out["agreement"]["bootstrap"] = hm.bootstrap_info(draws=draws, seed=seed, confidence=confidence)
    out["human"] = hm.human_accuracy(
        summary=summary, labels=labels, draws_by_domain=record_draws, draws=draws, seed=seed, confidence=confidence
    )
    out["naturalness"] = _naturalness(labels)
    _naturalness_ci(out["naturalness"], labels, record_draws, confidence)
    return out


# --- agreement -----------------------------------------------------------------


def _domain_units(labels: pd.DataFrame, domain_units: dict[str, np.ndarray], value: pd.Series, n_missing: pd.Series) -> dict:
    """Per domain: unit positions (columns of that domain's weights) and codes of usable labels."""
    out = {}
    for d in DOMAINS:
        ids = domain_units[d]
        pos = pd.Series(np.arange(len(ids)), index=ids)
        sel = (labels["domain"] == d).to_numpy()
        usable = sel & value.notna().to_numpy()
        out[d] = agr.DomainUnits(
            n_units=len(ids),
            unit_idx=pos.reindex(labels.loc[usable, "item_id"]).to_numpy(dtype=np.int64),
            value_code=value[usable].to_numpy(dtype=np.int64),
            n_missing=int(n_missing[sel].sum()),
        )
    return out


def _agreement(labels: pd.DataFrame, domain_units: dict, weights: dict, confidence: float) -> dict:
    if labels.empty:
        empty_alpha = {d: {"alpha": None, "ci": None, "n_items": 0, "n_values": 0, "n_missing": 0, "reason": "no labels yet"} for d in (*DOMAINS, ALL)}
        none = {d: {"value": None, "n_items": 0, "reason": "no labels yet"} for d in (*DOMAINS, ALL)}
        return {
            "choice_alpha": empty_alpha,
            "naturalness_alpha": {k: dict(v) for k, v in empty_alpha.items()},
            "percent_agreement": none,
            "fleiss_kappa": {d: {"kappa": None, "n_items": 0, "reason": "no labels yet"} for d in (*DOMAINS, ALL)},
            "cohen_kappa": {"annotators": [], "kappa": [], "n_shared": [], "min_shared": 2},
            "cant_decide": {d: 0 for d in (*DOMAINS, ALL)},
        }
    codes, key_names = pd.factorize(labels["choice_key"], use_na_sentinel=True)
    choice_code = pd.Series(np.where(codes >= 0, codes, np.nan), index=labels.index)
    cant = labels["choice_key"].isna()
    choice_units = _domain_units(labels, domain_units, choice_code, cant)
    nat = pd.to_numeric(labels["naturalness"], errors="coerce")
    nat_code = nat.where(nat.between(1, 5)) - 1
    nat_units = _domain_units(labels, domain_units, nat_code, nat_code.isna())
    n_keys = max(len(key_names), 1)

    out: dict[str, Any] = {}
    out["choice_alpha"] = agr.alpha_by_domain(choice_units, level="nominal", n_values=n_keys, weights=weights, confidence=confidence)
    out["naturalness_alpha"] = agr.alpha_by_domain(nat_units, level="ordinal", n_values=5, weights=weights, confidence=confidence)
    for section in ("choice_alpha", "naturalness_alpha"):
        for d in DOMAINS:
            if not len(domain_units[d]):
                out[section][d]["reason"] = f"no labelled {d} items"

    percent, fleiss = {}, {}
    all_counts = []
    for d in DOMAINS:
        du = choice_units[d]
        counts = agr.value_counts_matrix(du.unit_idx, du.value_code, n_units=du.n_units, n_values=n_keys)
        all_counts.append(counts)
        percent[d] = agr.percent_agreement(counts)
        fleiss[d] = agr.fleiss_kappa(counts)
    from scipy import sparse

    stacked = sparse.vstack(all_counts).tocsr()
    percent[ALL] = agr.percent_agreement(stacked)
    fleiss[ALL] = agr.fleiss_kappa(stacked)
    out["percent_agreement"] = percent
    out["fleiss_kappa"] = fleiss
    decided = labels[~cant]
    out["cohen_kappa"] = agr.cohen_kappa_matrix(decided["annotator"].tolist(), decided["item_id"].tolist(), decided["choice_key"].tolist())
    out["cant_decide"] = {d: int(cant[labels["domain"] == d].sum()) for d in DOMAINS}
    out["cant_decide"][ALL] = int(cant.sum())

    # Leave-one-out: the pooled pick alpha without each annotator.
    item_pos = pd.Series(np.arange(len(labels["item_id"].unique())), index=np.sort(labels["item_id"].unique()))
    rater_codes, rater_names = pd.factorize(decided["annotator"])
    loo = agr.leave_one_out_alpha(
        item_pos.reindex(decided["item_id"]).to_numpy(dtype=np.int64),
        choice_code[~cant].to_numpy(dtype=np.int64),
        rater_codes,
        n_units=len(item_pos),
        n_values=n_keys,
    )
    out["_loo"] = {str(rater_names[c]): a for c, a in loo.items()}
    return out


def _percent_agreement_ci(percent: dict, summary: pd.DataFrame, weights: dict, confidence: float) -> dict:
    """Record-clustered intervals for percent agreement (the mean over items with two or more decided labels).

    An item's share of agreeing pairs is rebuilt from its vote counts, so it
    is exactly ``agreement.percent_agreement``'s per-item term.
    """
    shares, ok, domain_boots = {}, {}, {}
    for d in DOMAINS:
        rows = summary[summary["domain"] == d]
        m = rows["n_decided"].to_numpy(dtype=float)
        sq = rows["votes_sq"].to_numpy(dtype=float)
        usable = m >= 2
        share = np.where(usable, (sq - m) / np.where(usable, m * (m - 1), 1), 0.0)
        shares[d], ok[d] = share, usable.astype(float)
        entry = percent[d]
        boot = None
        if d in weights and entry.get("value") is not None:
            domain_boots[d] = (weights[d].sum(share), weights[d].sum(ok[d]))
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = domain_boots[d][0] / domain_boots[d][1]
        entry.update(bs.interval(entry.get("value"), boot, confidence=confidence))
        if entry["ci"] is not None:
            entry.pop("ci_reason", None)
    entry = percent[ALL]
    boot = None
    if domain_boots and entry.get("value") is not None:
        num = sum(b[0] for b in domain_boots.values())
        den = sum(b[1] for b in domain_boots.values())
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = num / den
    entry.update(bs.interval(entry.get("value"), boot, confidence=confidence))
    if entry["ci"] is not None:
        entry.pop("ci_reason", None)
    return percent


def _naturalness_ci(nat: dict, labels: pd.DataFrame, record_draws: dict, confidence: float) -> None:
    """Record-clustered intervals of the mean rating and the share rated 4-5, per domain, All, role and both."""
    if labels.empty:
        for entry in (*nat["by_domain"].values(), *nat["by_role"].values(), *(e for dr in nat["by_domain_role"].values() for e in dr.values())):
            entry.update(ci_mean=None, ci_share_4_5=None, ci_reason="no naturalness ratings")
        return
    v = pd.to_numeric(labels["naturalness"], errors="coerce")
    ok = v.between(1, 5)
    frame = pd.DataFrame({"domain": labels["domain"], "record_id": labels["record_id"], "role": labels["role"],
                          "v": v.where(ok, 0.0), "n": ok.astype(float), "top": (ok & (v >= 4)).astype(float)})
    sums: dict = {}  # (domain, role) -> per-draw weighted sums of ratings, rating counts, ratings 4-5
    for d in DOMAINS:
        cd = record_draws.get(d)
        part = frame[frame["domain"] == d]
        if cd is None or cd.draws == 0 or part.empty:
            continue
        for role in ("base", "rewrite"):
            sel = part[part["role"] == role]
            rec = sel["record_id"].to_numpy()
            sums[(d, role)] = tuple(cd.total(rec, sel[c].to_numpy()) for c in ("v", "n", "top"))

    def fill(entry: dict, keys: list) -> None:
        parts = [sums[k] for k in keys if k in sums]
        if entry["n"] == 0 or not parts:
            entry.update(ci_mean=None, ci_share_4_5=None, ci_reason=entry.get("reason") or "no bootstrap (draws=0)")
            return
        tv, tn, tt = (sum(p[i] for p in parts) for i in range(3))
        with np.errstate(invalid="ignore", divide="ignore"):
            entry["ci_mean"] = bs.interval(entry["mean"], tv / tn, confidence=confidence)["ci"]
            entry["ci_share_4_5"] = bs.interval(
                entry["share_4_5"], tt / tn, confidence=confidence, successes=entry["share_4_5"] * entry["n"],
                trials=entry["n"], n_clusters=int(frame.loc[frame["n"] > 0, "record_id"].nunique()),
            )["ci"]

    for d in DOMAINS:
        fill(nat["by_domain"][d], [(d, "base"), (d, "rewrite")])
    fill(nat["by_domain"][ALL], [(d, r) for d in DOMAINS for r in ("base", "rewrite")])
    for r in ("base", "rewrite"):
        fill(nat["by_role"][r], [(d, r) for d in DOMAINS])
    for d in DOMAINS:
        for r in ("base", "rewrite"):
            fill(nat["by_domain_role"][d][r], [(d, r)])


# --- naturalness, position bias ------------------------------------------------


def _nat_stats(counts: dict[int, int]) -> dict:
    """Distribution, mean and share rated 4-5 from counts per scale point."""
    by_point = {str(k): int(counts.get(k, 0)) for k in NATURALNESS_SCALE}
    n = sum(by_point.values())
    if n == 0:
        return {"n": 0, "counts": by_point, "mean": None, "share_4_5": None, "reason": "no naturalness ratings"}
    mean = sum(k * by_point[str(k)] for k in NATURALNESS_SCALE) / n
    return {"n": n, "counts": by_point, "mean": mean, "share_4_5": (by_point["4"] + by_point["5"]) / n}


def _naturalness(labels: pd.DataFrame) -> dict:
    table: dict[tuple[str, str], dict[int, int]] = {}
    if not labels.empty:
        nat = pd.to_numeric(labels["naturalness"], errors="coerce")
        ok = nat.between(1, 5)
        grouped = pd.DataFrame({"domain": labels["domain"][ok], "role": labels["role"][ok], "v": nat[ok].astype(int)})
        for (d, r, v), n in grouped.groupby(["domain", "role", "v"]).size().items():
            table.setdefault((d, r), {})[int(v)] = int(n)

    def pooled(domains, roles) -> dict[int, int]:  # noqa: ANN001
        out: dict[int, int] = {}
        for (d, r), c in table.items():
            if d in domains and r in roles:
                for v, n in c.items():
                    out[v] = out.get(v, 0) + n
        return out

    roles = ("base", "rewrite")
    out: dict[str, Any] = {"scale": list(NATURALNESS_SCALE), "by_domain": {}, "by_role": {}, "by_domain_role": {}}
    for d in DOMAINS:
        out["by_domain"][d] = _nat_stats(pooled({d}, roles))
        out["by_domain_role"][d] = {r: _nat_stats(pooled({d}, {r})) for r in roles}
    out["by_domain"][ALL] = _nat_stats(pooled(set(DOMAINS), roles))
    for r in roles:
        out["by_role"][r] = _nat_stats(pooled(set(DOMAINS), {r}))
    return out


def _slot_test(slots: list[int]) -> dict:
    counts = [slots.count(i) for i in range(len(SLOTS))]
    out: dict[str, Any] = {"counts": dict(zip(SLOTS, counts)), "n": int(sum(counts))}
    n = sum(counts)
    if n == 0:
        out.update(share=None, chi2=None, p_value=None, dof=len(SLOTS) - 1, reason="no picked label with a recorded display order")
        return out
    res = stats.chisquare(counts)
    out.update(
        share={s: c / n for s, c in zip(SLOTS, counts)}, chi2=_f(res.statistic), p_value=_f(res.pvalue), dof=len(SLOTS) - 1
    )
    if n < 5 * len(SLOTS):
        out["warning"] = "fewer than 5 expected picks per slot: the chi-square approximation is rough"
    return out


def _position_bias(labels: pd.DataFrame) -> dict:
    """How often each displayed slot was picked, with a chi-square test against uniform."""
    slots_by_domain: dict[str, list[int]] = {d: [] for d in DOMAINS}
    if not labels.empty:
        for d, order, choice in zip(labels["domain"].tolist(), labels["displayed_order"].tolist(), labels["choice_key"].tolist()):
            if isinstance(order, list) and choice in order and order.index(choice) < len(SLOTS):
                slots_by_domain.setdefault(d, []).append(order.index(choice))  # another format: its own categories
    out = _slot_test([s for d in DOMAINS for s in slots_by_domain[d]])
    out["by_domain"] = {d: _slot_test(slots_by_domain[d]) for d in DOMAINS}
    return out


# --- annotators, items ------------------------------------------------------------


def label_seconds(labels: pd.DataFrame) -> pd.Series:
    """Seconds on each label: the recorded ``seconds``, else first submission minus shown time."""
    secs = pd.to_numeric(labels["seconds"], errors="coerce")
    shown = pd.to_datetime(labels["shown_at"], utc=True, errors="coerce")
    first = pd.to_datetime(labels["first_submitted_at"], utc=True, errors="coerce")
    derived = (first - shown).dt.total_seconds()
    return secs.fillna(derived)


def _annotators(labels: pd.DataFrame, agreement: dict, fast_seconds: float) -> list[dict]:
    loo = agreement.pop("_loo", {})
    if labels.empty:
        return []
    pooled = agreement["choice_alpha"][ALL]["alpha"]
    lab = labels.assign(
        _secs=label_seconds(labels),
        _match=(labels["choice_key"] == labels["winner_key"]) & labels["choice_key"].notna(),
        _nat=pd.to_numeric(labels["naturalness"], errors="coerce"),
    )
    rows = []
    for name, g in lab.groupby("annotator", sort=True):
        secs = g["_secs"].dropna()
        a = loo.get(str(name))
        a = _f(a)
        row = {
            "annotator": str(name),  # the pseudonym; no account id, which would link studies' pseudonyms
            "n_labels": int(len(g)),
            "n_cant_decide": int(g["choice_key"].isna().sum()),
            "accuracy": float(g["_match"].mean()),
            "loo_alpha": a,
            "loo_alpha_change": None if a is None or pooled is None else a - pooled,
            "median_seconds": _f(secs.median()) if len(secs) else None,
            "share_fast": _f((secs < fast_seconds).mean()) if len(secs) else None,
            "fast_threshold_seconds": fast_seconds,
            "mean_naturalness": _f(g["_nat"].mean()),
        }
        if a is None:
            row["loo_alpha_reason"] = "alpha without this annotator is undefined (no item keeps two labels, or one value only)"
        if not len(secs):
            row["seconds_reason"] = "no timing recorded"
        rows.append(row)
    return rows


def _items(summary: pd.DataFrame) -> list[dict]:
    """The item table as JSON-ready dicts (built column-wise: 13k rows must be quick)."""
    if summary.empty:
        return []
    df = summary.drop(columns=["pair_won", "pair_total", "votes_sq"])
    columns = {}
    for col in df.columns:
        values = df[col].tolist()
        if col in ("agreement_share", "mean_naturalness"):
            values = [_f(v) for v in values]
        elif col == "plurality_pick":
            values = [v if isinstance(v, str) else None for v in values]
        columns[col] = values
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def _scorers(engine: Engine, benchmark_id: int, human: dict, summary: pd.DataFrame, record_draws: dict, **options) -> dict:  # noqa: ANN003
    """The reward-model section, on the plurality picks and record draws this report already computed."""
    from rmgap_annot.stats import comparison  # noqa: PLC0415

    return comparison.scorer_section(
        engine=engine, benchmark_id=benchmark_id, human=human, picks=comparison.picks_from_summary(summary),
        human_draws=record_draws, **options,
    )


def _referee(engine: Engine, benchmark_id: int, summary: pd.DataFrame, record_draws: dict, scored: dict, *,
             confidence: float, adjust: str) -> dict:
    """``referee``: style profiles, base vs rewrite, between domains (``stats.referee``), on this report's draws."""
    from rmgap_annot.stats import referee  # noqa: PLC0415

    labelled = set(summary.index.tolist())
    picks = {name: {i: p for i, p in top.items() if i in labelled} for name, top in scored.items()}
    styles = referee.load_styles(engine=engine, benchmark_id=benchmark_id)
    return referee.referee_section(summary, record_draws, styles, picks, confidence=confidence, adjust=adjust)


# --- one item, on demand -------------------------------------------------------------


def item_detail(*, engine: Engine, item_id: int) -> dict:
    """An item's full text, its winner and every label on it (for the Results page)."""
    with session_scope(engine) as session:
        item = session.get(Item, item_id)
        if item is None:
            raise ValueError(f"no item with id {item_id}")
        rec = session.get(Record, item.record_pk)
        responses = session.execute(
            select(Response.key, Response.text).where(Response.record_pk == item.record_pk).order_by(Response.position)
        ).all()
        labs = session.execute(
            select(User.name, Label.choice_key, Label.ranking_json, Label.naturalness, Label.reason, Label.comment, Label.seconds, Label.submitted_at)
            .join(User, User.id == Label.user_id)
            .where(Label.item_id == item_id)
            .order_by(Label.id)
        ).all()
        return {
            "item_id": item.id, "record_id": rec.record_id, "domain": item.domain, "group": item.group,
            "prompt_index": item.prompt_index, "role": item.role, "prompt": item.text, "winner_key": item.winner_key,
            "responses": [{"key": k, "text": t} for k, t in responses],
            "labels": [
                {"annotator": n, "choice": c, "ranking": r, "naturalness": nat, "reason": rs, "comment": cm, "seconds": s,
                 "submitted_at": str(t)}
                for n, c, r, nat, rs, cm, s, t in labs
            ],
        }


# --- text rendering for the CLI --------------------------------------------------------


def _fmt(v: Optional[float], pct: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{v * 100:.1f}%" if pct else f"{v:.3f}"


def _fmt_ci(ci: Optional[list], pct: bool = False) -> str:
    return "" if not ci else f" [{_fmt(ci[0], pct)}, {_fmt(ci[1], pct)}]"


def _referee_lines(ref: Optional[dict]) -> list[str]:
    """Three lines of the referee analyses for the text report (the JSON holds every cell)."""
    if not ref:
        return []
    lines = ["", "Referee analyses (All domains; see --json referee)"]
    bd = ref["between_domains"]["BoN"]
    lines.append("  human BoN differs between domains: " + (
        f"chi2={bd['statistic']:.2f} on {bd['df']} df, p={_fmt(bd['p_value'])}" if bd.get("p_value") is not None
        else f"n/a ({bd.get('reason')})"))
    diff = (ref["base_vs_rewrite"]["by_domain"].get("All") or {}).get("BoN", {}).get("difference", {})
    lines.append("  BoN base minus rewrite prompts: " + (
        f"{_fmt(diff['difference'], True)}{_fmt_ci(diff.get('ci'), True)} p={_fmt(diff.get('p_value'))}"
        if diff.get("difference") is not None else f"n/a ({diff.get('reason') or ref['base_vs_rewrite'].get('reason')})"))
    sp = ref["style_profiles"]
    dims = ((sp.get("by_domain") or {}).get("All") or {}).get("dimensions") or {}
    if "Conciseness" in dims:
        leans = []
        for who, e in dims["Conciseness"]["wrong_picks"].items():
            v = e["lean"].get("value")
            leans.append(f"{who[:24]} {v:+.2f}" if v is not None else f"{who[:24]} n/a")
        lines.append("  Conciseness lean of wrong picks (levels, + = verbose): " + "; ".join(leans))
    else:
        lines.append(f"  style profiles: n/a ({sp.get('reason', 'no labelled items')})")
    return lines


def format_report(report: dict) -> str:
    """A plain-text summary of the report (the JSON holds everything); the verdict at a glance comes first."""
    from rmgap_annot.stats.verified import format_verified  # noqa: PLC0415
    from rmgap_annot.verdict import format_verdict  # noqa: PLC0415

    head = [format_verdict(report["verdict"]), ""] if report.get("verdict") else []
    a = report["agreement"]
    s = a.get("summary", {})
    lines = [
        f"Benchmark {s.get('benchmark')!r}: {s.get('n_labels', 0)} labels by {s.get('n_annotators', 0)} annotators "
        f"on {sum(s.get('n_items_labelled', {}).values())} items ({s.get('n_cant_decide', 0)} Can't decide)",
        "",
        f"{'':<12}{'pick alpha':>26}{'naturalness alpha':>28}{'% agree':>10}",
    ]
    for d in (*DOMAINS, ALL):
        ca, na = a["choice_alpha"][d], a["naturalness_alpha"][d]
        pa = a["percent_agreement"][d]["value"]
        lines.append(
            f"{d:<12}{_fmt(ca['alpha']) + _fmt_ci(ca['ci']):>26}{_fmt(na['alpha']) + _fmt_ci(na['ci']):>28}{_fmt(pa, True):>10}"
        )
    h = report["human"]
    shown = ("Pair", "BoN", "Consistency", "TopConsistency")
    lines += ["", "Human accuracy (RMGAP metrics; 95% intervals resample whole records)",
              f"{'':<12}" + "".join(f"{m:>28}" for m in shown) + f"{'ICC':>8}{'deff':>7}"]
    for d in (*DOMAINS, "Avg"):
        c = h["clustering"].get(d, {})
        lines.append(f"{d:<12}" + "".join(f"{_fmt(h[m][d], True) + _fmt_ci(h['ci'][m][d], True):>28}" for m in shown)
                     + f"{_fmt(c.get('icc')) if c else '':>8}{_fmt(c.get('design_effect')) if c else '':>7}")
    for name, sec in (report.get("scorers") or {}).items():
        t = sec["vs_human"]["All"]
        ch = sec["vs_chance"]["BoN"]["All"]
        lines.append(
            f"{name[:30]}: human - scorer BoN {_fmt(t.get('difference'), True)}{_fmt_ci(t.get('ci'), True)} "
            f"p={_fmt(t.get('p_value'))} adj={_fmt(t.get('p_adjusted'))}; BoN vs chance {_fmt(ch.get('value'), True)} "
            f"p={_fmt(ch.get('p_value'))} adj={_fmt(ch.get('p_adjusted'))}"
        )
    lines += _referee_lines(report.get("referee"))
    nat = report["naturalness"]["by_domain"]
    lines += ["", "Naturalness (share rated 4-5, mean)"]
    for d in (*DOMAINS, ALL):
        lines.append(f"{d:<12}{_fmt(nat[d]['share_4_5'], True):>10}{_fmt(nat[d]['mean']):>10}   n={nat[d]['n']}")
    pb = report["position_bias"]
    lines += ["", "Position bias (picks per displayed slot)", "  " + "  ".join(f"{k}: {v}" for k, v in pb["counts"].items())
              + (f"   chi2={pb['chi2']:.2f} p={pb['p_value']:.3g}" if pb.get("chi2") is not None else f"   ({pb.get('reason')})")]
    if report["annotators"]:
        lines += ["", f"{'annotator':<20}{'labels':>8}{'accuracy':>10}{'LOO alpha':>11}{'median s':>10}{'fast':>8}"]
        for r in report["annotators"]:
            lines.append(
                f"{r['annotator'][:19]:<20}{r['n_labels']:>8}{_fmt(r['accuracy'], True):>10}{_fmt(r['loo_alpha']):>11}"
                f"{_fmt(r['median_seconds']):>10}{_fmt(r['share_fast'], True):>8}"
            )
    if report.get("verified_subset"):
        lines += ["", format_verified(report["verified_subset"])]
    return "\n".join(head + lines)
