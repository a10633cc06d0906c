"""Run a scorer over a benchmark's items and store the scores.

Why it is shaped this way:
- Units (templated sequences) are deduplicated by key, then sorted by
  length and cut into batches padded to their own longest: on long-tailed
  RMGAP lengths that is most of the speed (padding to a global or
  random-batch maximum wastes the bulk of the compute). Longest first, so an
  out-of-memory shows up in the first batch, not after an hour.
- An item's four scores are committed in the transaction that follows the
  batch which completes it, so an interrupted run loses at most one batch
  and the next run resumes with the items still missing.
- The scorer row carries a fingerprint (model files + settings). The same
  name with the same fingerprint on already scored items does no model work
  at all (not even a tokenizer load); a different fingerprint under the same
  name is refused unless ``replace`` is asked for, so scores from two
  different models never mix under one name.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Optional

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import Item, Label, Record, Response, Score, Scorer
from rmgap_annot.scoring import BaseScorer, ItemInput, ScoringError, ScoringOptions, build_scorer, default_name, parse_spec

ITEM_SETS = ("all", "labelled")
Progress = Callable[[int, int], None]
Phase = Callable[[str], None]  # "loading model" | "preparing inputs" | "scoring": what a job shows before counts move


@dataclass
class RunResult:
    scorer_id: int
    name: str
    n_items: int  # items in the requested set
    n_already: int  # of those, already scored before this run
    n_scored: int  # scored by this run
    n_units: int  # distinct sequences (after dedupe) this run scored
    n_batches: int
    n_truncated: int  # scores of this scorer computed on truncated inputs
    n_unparseable: int


def _ensure_scorer_row(*, engine: Engine, name: str, spec: str, family: str, fingerprint: str, options: ScoringOptions, replace: bool) -> int:
    config = json.dumps({k: v for k, v in options.to_dict().items() if k not in ("device", "batch_size", "concurrency")}, sort_keys=True)
    with session_scope(engine, write=True) as session:
        row = session.execute(select(Scorer).where(Scorer.name == name)).scalars().first()
        if row is None:
            row = Scorer(name=name, family=family, spec=spec, config_json=config, fingerprint=fingerprint)
            session.add(row)
            session.flush()
            return row.id
        if row.fingerprint != fingerprint:
            if not replace:
                raise ScoringError(
                    f"a scorer named {name!r} already exists with a different model or settings ({row.spec}); "
                    "choose another --name, or pass --replace to discard its scores"
                )
            session.execute(delete(Score).where(Score.scorer_id == row.id))
            row.n_truncated = row.n_unparseable = 0
        row.family, row.spec, row.config_json, row.fingerprint = family, spec, config, fingerprint
        session.add(row)
        return row.id


def item_ids(*, engine: Engine, benchmark_id: int, items: str = "all") -> list[int]:
    """The requested item set: every item, or only items with at least one label."""
    if items not in ITEM_SETS:
        raise ScoringError(f"--items must be one of {', '.join(ITEM_SETS)}, got {items!r}")
    stmt = select(Item.id).where(Item.benchmark_id == benchmark_id).order_by(Item.id)
    if items == "labelled":
        stmt = stmt.where(Item.id.in_(select(Label.item_id).distinct()))
    with session_scope(engine) as session:
        return list(session.execute(stmt).scalars())


def _pending(*, engine: Engine, scorer_id: int, ids: list[int]) -> list[int]:
    """Items not yet holding a score for every response of their record."""
    wanted = set(ids)
    with session_scope(engine) as session:
        have = dict(
            session.execute(
                select(Score.item_id, func.count()).where(Score.scorer_id == scorer_id).group_by(Score.item_id)
            ).all()
        )
        need = dict(
            session.execute(
                select(Item.id, func.count(Response.id))
                .join(Response, Response.record_pk == Item.record_pk)
                .where(Item.id.in_(select(Score.item_id).where(Score.scorer_id == scorer_id)))
                .group_by(Item.id)
            ).all()
        ) if have else {}
    return [i for i in ids if i in wanted and (i not in have or have[i] < need.get(i, 0))]


def load_inputs(*, engine: Engine, ids: list[int]) -> list[ItemInput]:
    """Prompt and responses of each item, in the given order."""
    out: dict[int, ItemInput] = {}
    with session_scope(engine) as session:
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            rows = session.execute(
                select(Item.id, Item.record_pk, Item.group, Item.prompt_index, Item.text, Record.record_id, Item.context_json)
                .join(Record, Record.id == Item.record_pk)
                .where(Item.id.in_(chunk))
            ).all()
            pks = {r.record_pk for r in rows}
            responses: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
            for pk, pos, key, text in session.execute(
                select(Response.record_pk, Response.position, Response.key, Response.text).where(Response.record_pk.in_(pks))
            ).all():
                responses[pk].append((pos, key, text))
            for r in rows:
                resp = tuple((k, t) for _, k, t in sorted(responses[r.record_pk]))
                context = tuple((m["role"], m["content"]) for m in json.loads(r.context_json)) if r.context_json else None
                out[r.id] = ItemInput(r.id, f"{r.record_id}/{r.group}/{r.prompt_index}", r.text, resp, context)
    return [out[i] for i in ids]


def run_scoring(
    *,
    engine: Engine,
    benchmark_id: int,
    spec: str,
    name: Optional[str] = None,
    options: Optional[ScoringOptions] = None,
    items: str = "all",
    replace: bool = False,
    scorer: Optional[BaseScorer] = None,
    progress: Optional[Progress] = None,
    show_progress: bool = False,
    phase: Optional[Phase] = None,
) -> RunResult:
    """Score the requested items that are not scored yet; returns what it did.

    ``scorer``: a prebuilt scorer for ``spec`` (tests count its model calls);
    ``progress(done, total)`` is called after every committed batch (the
    page's job writes it to ScoringJob); ``show_progress`` draws tqdm;
    ``phase(name)`` is called as each phase begins, so a job shows what it is
    doing from its first second (a model load or tokenizing can take a minute
    before the first batch moves the count).
    """
    phase = phase or (lambda _name: None)
    options = options or ScoringOptions()
    family = parse_spec(spec).family
    phase("loading model")
    scorer = scorer or build_scorer(spec, options)
    name = name or default_name(spec, options)
    scorer_id = _ensure_scorer_row(
        engine=engine, name=name, spec=spec, family=family, fingerprint=scorer.fingerprint(), options=options, replace=replace
    )
    wanted = item_ids(engine=engine, benchmark_id=benchmark_id, items=items)
    todo = _pending(engine=engine, scorer_id=scorer_id, ids=wanted)
    n_units = n_batches = 0
    if todo:
        n_units, n_batches = _score_items(engine=engine, scorer=scorer, scorer_id=scorer_id, todo=todo, batch_size=options.batch_size,
                                          progress=progress, show_progress=show_progress, phase=phase)
    elif progress:
        progress(0, 0)
    with session_scope(engine, write=True) as session:
        row = session.get(Scorer, scorer_id)
        row.n_truncated = session.execute(
            select(func.count()).select_from(Score).where(Score.scorer_id == scorer_id, Score.truncated.is_(True))
        ).scalar_one()
        row.n_unparseable += scorer.n_unparseable
        session.add(row)
        n_trunc, n_unp = row.n_truncated, row.n_unparseable
    return RunResult(scorer_id, name, len(wanted), len(wanted) - len(todo), len(todo), n_units, n_batches, n_trunc, n_unp)


def _score_items(*, engine: Engine, scorer: BaseScorer, scorer_id: int, todo: list[int], batch_size: int,
                 progress: Optional[Progress], show_progress: bool, phase: Phase) -> tuple[int, int]:
    phase("preparing inputs")
    inputs = load_inputs(engine=engine, ids=todo)
    per_item = scorer.units(inputs)
    unique: dict = {}
    owners: dict = defaultdict(list)  # unit key -> item positions waiting on it
    remaining = [0] * len(inputs)
    for pos, units in enumerate(per_item):
        for u in units:
            if u.key not in unique:
                unique[u.key] = u
            owners[u.key].append(pos)
            remaining[pos] += 1
    order = sorted(unique.values(), key=lambda u: -u.length)
    values: dict = {}
    done = 0
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(inputs), unit="item", desc="scoring")
    n_batches = 0
    phase("scoring")
    try:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            results = scorer.score_batch(batch)
            n_batches += 1
            finished: list[int] = []
            for u, vals in zip(batch, results):
                if len(vals) != len(u.response_keys):
                    raise ScoringError(f"{scorer.family} returned {len(vals)} values for {len(u.response_keys)} responses")
                values[u.key] = vals
                for pos in owners[u.key]:
                    remaining[pos] -= 1
                    if remaining[pos] == 0:
                        finished.append(pos)
            if finished:
                _commit(engine=engine, scorer_id=scorer_id, inputs=inputs, per_item=per_item, values=values, positions=finished)
                done += len(finished)
                if bar is not None:
                    bar.update(len(finished))
            if progress:
                progress(done, len(inputs))
    finally:
        if bar is not None:
            bar.close()
    return len(order), n_batches


def _commit(*, engine: Engine, scorer_id: int, inputs: list[ItemInput], per_item, values: dict, positions: list[int]) -> None:  # noqa: ANN001
    rows = []
    for pos in positions:
        # A response's value is the sum of its units' values: one unit for most families, while a
        # pairwise judge's comparisons add up to the response's wins.
        totals: dict[str, list] = {}
        for u in per_item[pos]:
            for key, v in zip(u.response_keys, values[u.key]):
                acc = totals.setdefault(key, [0.0, False])
                acc[0] += float(v)
                acc[1] = acc[1] or bool(u.truncated)
        for key, (v, truncated) in totals.items():
            rows.append({"scorer_id": scorer_id, "item_id": inputs[pos].item_id, "response_key": key,
                         "value": None if math.isnan(v) else v, "truncated": truncated})
    ids = [inputs[pos].item_id for pos in positions]
    with session_scope(engine, write=True) as session:
        session.execute(delete(Score).where(Score.scorer_id == scorer_id, Score.item_id.in_(ids)))
        session.execute(insert(Score), rows)
