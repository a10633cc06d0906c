"""RMGAP's metrics for many scorers at once, over (items x responses) score matrices.

Why: the report compares people with RMGAP's 24 reward models on 13,164
items. ``metrics`` states each rule per item in plain Python (the reference:
tests check this module gives exactly its numbers on random score matrices
with ties and NaNs), which costs seconds per scorer. Here a benchmark's
structure is read once and shared by every scorer (``Layout``: each item's
record, group, domain, winner column and its record's response keys in
sorted order), a scorer is a float matrix over those columns, and every
rule is an array operation:

- columns follow the response keys sorted as strings, so a stable sort of
  the negated scores breaks ties by response key exactly like RMGAP's
  evaluator (and ``metrics.ranking``);
- an item counts for a scorer only when every response of its record has a
  score row (as ``comparison`` always required); a stored NULL is NaN;
- items keep the order of their first score row (the score's id), the order
  the per-item reference saw on SQLite: float sums that depend on order
  (the design effect) then agree to the last bit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.stats.metrics import PROMPTS_PER_GROUP, mark_undefined, with_avg
from rmgap_annot.models import Item, Record, Response, Score
from rmgap_annot.settings import DOMAINS

NO_PICK = -1  # top column of an item with a tie at the top or a NaN


@dataclass(frozen=True)
class Layout:
    """Every item of one benchmark, as arrays in item-id order (shared by all scorers)."""

    item_id: np.ndarray  # (n,) sorted
    domain: np.ndarray  # (n,) str (object)
    record_id: np.ndarray  # (n,) str (object)
    record_code: np.ndarray  # (n,) rank of the record id among the benchmark's sorted record ids
    group_code: np.ndarray  # (n,) one code per (domain, record id, group)
    winner_col: np.ndarray  # (n,) column of the designated winner (-1: not a response key)
    n_keys: np.ndarray  # (n,) responses of the item's record
    record_keys: tuple  # per item: its record's response keys, sorted (the columns)
    width: int  # the most responses any record has
    key_pair: np.ndarray  # sorted codes record_row * n_vocab + key code, one per response
    key_col: np.ndarray  # the column of each ``key_pair``
    vocab: dict  # response key -> key code
    record_row: np.ndarray  # (n,) row of the item's record (for ``key_pair``)
    records: np.ndarray  # the distinct record ids, sorted: ``record_code`` indexes it

    @property
    def n_items(self) -> int:
        return len(self.item_id)

    def positions(self, item_ids: np.ndarray) -> np.ndarray:
        """Row of each item id; -1 for an id not in this benchmark."""
        pos = np.searchsorted(self.item_id, item_ids)
        pos = np.minimum(pos, max(self.n_items - 1, 0))
        ok = (self.item_id[pos] == item_ids) if self.n_items else np.zeros(len(item_ids), bool)
        return np.where(ok, pos, -1)

    def column(self, pos: np.ndarray, key_code: np.ndarray) -> np.ndarray:
        """Column of each (item row, key code); -1 where the key is not a response of that record."""
        pair = self.record_row[pos] * max(len(self.vocab), 1) + key_code
        at = np.minimum(np.searchsorted(self.key_pair, pair), max(len(self.key_pair) - 1, 0))
        ok = (key_code >= 0) & (self.key_pair[at] == pair) if len(self.key_pair) else np.zeros(len(pos), bool)
        return np.where(ok, self.key_col[at], -1)

    def key_codes(self, keys) -> np.ndarray:  # noqa: ANN001 - a sequence of response keys (or None)
        codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
        lookup = np.array([self.vocab.get(k, -1) for k in uniques] + [-1], dtype=np.int64)
        return lookup[codes]  # factorize's -1 (missing) picks the trailing -1


def load_layout(*, engine: Engine, benchmark_id: int) -> Layout:
    """The benchmark's items and response keys, read once for all scorers."""
    with session_scope(engine) as session:
        items = plain_rows(session, select(Item.id, Item.domain, Record.record_id, Item.group, Item.winner_key, Item.record_pk)
                           .join(Record, Record.id == Item.record_pk)
                           .where(Item.benchmark_id == benchmark_id).order_by(Item.id))
        responses = plain_rows(session, select(Response.record_pk, Response.key).join(Record, Record.id == Response.record_pk)
                               .where(Record.benchmark_id == benchmark_id))
    return layout_from_rows(items, responses)


def layout_from_rows(items, responses) -> Layout:  # noqa: ANN001
    """The layout from (item id, domain, record id, group, winner key, record pk) rows in item-id order
    and (record pk, response key) rows: ``load_layout`` without a database (tests build one directly)."""
    keys_of: dict[int, list[str]] = {}
    for pk, key in responses:
        keys_of.setdefault(pk, []).append(key)
    sorted_keys = {pk: tuple(sorted(ks)) for pk, ks in keys_of.items()}
    vocab = {k: i for i, k in enumerate(sorted({k for ks in sorted_keys.values() for k in ks}))}
    pks = sorted(sorted_keys)
    row_of = {pk: r for r, pk in enumerate(pks)}
    n_vocab = max(len(vocab), 1)
    pairs = sorted((row_of[pk] * n_vocab + vocab[k], c) for pk in pks for c, k in enumerate(sorted_keys[pk]))
    records = sorted({row[2] for row in items})
    record_rank = {rid: r for r, rid in enumerate(records)}
    group_codes: dict[tuple, int] = {}
    col_of = {pk: {k: c for c, k in enumerate(ks)} for pk, ks in sorted_keys.items()}
    return Layout(
        item_id=np.array([r[0] for r in items], dtype=np.int64),
        domain=np.array([r[1] for r in items], dtype=object),
        record_id=np.array([r[2] for r in items], dtype=object),
        record_code=np.array([record_rank[r[2]] for r in items], dtype=np.int64),
        group_code=np.array([group_codes.setdefault((r[1], r[2], r[3]), len(group_codes)) for r in items], dtype=np.int64),
        winner_col=np.array([col_of.get(r[5], {}).get(r[4], -1) for r in items], dtype=np.int64),
        n_keys=np.array([len(sorted_keys.get(r[5], ())) for r in items], dtype=np.int64),
        record_keys=tuple(sorted_keys.get(r[5], ()) for r in items),
        width=max((len(ks) for ks in sorted_keys.values()), default=1),
        key_pair=np.array([p for p, _ in pairs], dtype=np.int64),
        key_col=np.array([c for _, c in pairs], dtype=np.int64),
        vocab=vocab,
        record_row=np.array([row_of.get(r[5], -1) for r in items], dtype=np.int64),
        records=np.array(records, dtype=object),
    )


@dataclass(frozen=True)
class ScoreMatrix:
    """One scorer's complete items: ``values[j]`` are the scores of item row ``rows[j]``."""

    rows: np.ndarray  # (m,) layout rows, in the order of each item's first score row
    values: np.ndarray  # (m, width) float; NaN for a NULL score and for columns past the record's responses
    n_truncated: int = 0  # score rows on this benchmark whose input was truncated


def score_matrix(layout: Layout, item_ids, keys, values, *, n_truncated: int = 0) -> ScoreMatrix:  # noqa: ANN001 - parallel columns of score rows
    """A scorer's score rows (in score-id order) as a matrix over the items that have every response scored.

    A row of another benchmark's item, or whose key is not a response of its
    item's record (no writer stores one), is left out.
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    pos = layout.positions(item_ids)
    col = layout.column(np.maximum(pos, 0), layout.key_codes(keys))
    vals = np.asarray(values, dtype=float)
    keep = (pos >= 0) & (col >= 0)
    pos, col, vals = pos[keep], col[keep], vals[keep]
    count = np.bincount(pos, minlength=layout.n_items)
    _, first = np.unique(pos, return_index=True)
    seen = pos[np.sort(first)]
    rows = seen[count[seen] == layout.n_keys[seen]]
    matrix = np.full((layout.n_items, layout.width), np.nan)
    matrix[pos, col] = vals
    return ScoreMatrix(rows=rows, values=matrix[rows], n_truncated=n_truncated)


def plain_rows(session, statement) -> list[tuple]:  # noqa: ANN001
    """The driver's plain tuples: wrapping 50,000 rows per scorer in Row objects costs more than the query."""
    result = session.connection().execute(statement)
    cursor = getattr(result, "cursor", None)
    rows = cursor.fetchall() if cursor is not None else [tuple(r) for r in result.all()]
    result.close()
    return rows


def load_scores(*, engine: Engine, layout: Layout, scorer_id: int) -> ScoreMatrix:
    """One scorer's matrix; the rows come straight from the scorer's index (no join), filtered by the layout."""
    with session_scope(engine) as session:
        rows = plain_rows(session, select(Score.item_id, Score.response_key, Score.value, Score.truncated)
                          .where(Score.scorer_id == scorer_id).order_by(Score.id))
    if not rows:
        return score_matrix(layout, [], [], [])
    table = np.fromiter(itertools.chain.from_iterable(rows), dtype=object, count=4 * len(rows)).reshape(len(rows), 4)
    item_ids = table[:, 0].astype(np.int64)
    in_benchmark = layout.positions(item_ids) >= 0
    truncated = int(table[:, 3].astype(bool)[in_benchmark].sum())
    return score_matrix(layout, item_ids, table[:, 1], table[:, 2].astype(float), n_truncated=truncated)


# --- per item and per group ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """What RMGAP's rules make of each complete item of one scorer (arrays in the matrix's order)."""

    rows: np.ndarray  # layout rows
    nan: np.ndarray  # bool: a NaN score (skipped for Pair and BoN, makes its group inconsistent)
    won: np.ndarray  # pairs the winner wins strictly (0 for a NaN item)
    total: np.ndarray  # pairs (responses - 1; 0 for a NaN item)
    best: np.ndarray  # bool: BoN correct
    top: np.ndarray  # column of the unique top score, NO_PICK on a tie at the top or a NaN
    order: np.ndarray  # (m, width) full ranking as columns, best first (ties by response key)


def outcomes(layout: Layout, matrix: ScoreMatrix) -> Outcomes:
    """Pair, BoN, ranking and top pick of every item, as ``metrics.item_outcomes`` / ``ranking`` / ``top_pick`` define them."""
    rows, v = matrix.rows, matrix.values
    m, width = v.shape if v.ndim == 2 else (0, layout.width)
    cols = np.arange(width)
    n_keys = layout.n_keys[rows]
    valid = cols[None, :] < n_keys[:, None]
    nan = np.isnan(np.where(valid, v, 0.0)).any(axis=1)
    winner = layout.winner_col[rows]
    has_winner = winner >= 0
    w = v[np.arange(m), np.maximum(winner, 0)]
    others = valid & (cols[None, :] != winner[:, None])
    won = np.where(nan, 0, (others & (w[:, None] > v)).sum(axis=1))
    total = np.where(nan, 0, others.sum(axis=1))
    best = ~nan & has_winner & (won == total) & (total > 0)
    # Padding columns sort last; a stable sort keeps key order among equal scores.
    neg = np.where(valid, -np.where(np.isnan(v), 0.0, v), np.inf)
    order = np.argsort(neg, axis=1, kind="stable")
    top_value = np.where(valid, v, -np.inf).max(axis=1, initial=-np.inf)
    n_top = (valid & (v == top_value[:, None])).sum(axis=1)
    top = np.where(nan | (n_top != 1) | (n_keys == 0), NO_PICK, order[:, 0])
    return Outcomes(rows=rows, nan=nan, won=won.astype(np.int64), total=total.astype(np.int64), best=best,
                    top=top.astype(np.int64), order=order)


@dataclass(frozen=True)
class Groups:
    """Per group of a subset of items: its members, and the two consistency flags of complete groups."""

    code: np.ndarray  # (g,) group codes present
    domain: np.ndarray  # (g,) str
    record_code: np.ndarray  # (g,)
    record_id: np.ndarray  # (g,) str
    complete: np.ndarray  # bool: all PROMPTS_PER_GROUP prompts in the subset
    consistent: np.ndarray  # bool (complete groups): no NaN, identical full rankings
    top_consistent: np.ndarray  # bool (complete groups): the same unique top pick on every prompt


def groups(layout: Layout, out: Outcomes, sel: np.ndarray) -> Groups:
    """Groups of the selected items (``sel``: positions into ``out``), as ``metrics.group_outcomes`` forms them."""
    rows = out.rows[sel]
    gcode = layout.group_code[rows]
    order = np.argsort(gcode, kind="stable")
    gsorted = gcode[order]
    codes, start, size = np.unique(gsorted, return_index=True, return_counts=True)
    complete = size == PROMPTS_PER_GROUP
    first_row = rows[order[start]] if len(start) else rows[:0]
    consistent = np.zeros(len(codes), dtype=bool)
    top_consistent = np.zeros(len(codes), dtype=bool)
    if complete.any():
        members = sel[order][start[complete][:, None] + np.arange(PROMPTS_PER_GROUP)[None, :]]  # (c, 3) into out
        nan = out.nan[members].any(axis=1)
        rank = out.order[members]  # (c, 3, width)
        same = (rank == rank[:, :1, :]).all(axis=(1, 2))
        consistent[complete] = ~nan & same
        top = out.top[members]
        top_consistent[complete] = (top != NO_PICK).all(axis=1) & (top == top[:, :1]).all(axis=1)
    return Groups(code=codes, domain=layout.domain[first_row], record_code=layout.record_code[first_row],
                  record_id=layout.record_id[first_row], complete=complete, consistent=consistent,
                  top_consistent=top_consistent)


def rmgap_metrics(layout: Layout, out: Outcomes, sel: np.ndarray, grp: Groups, *, complete_groups_only: bool = False) -> dict:
    """``metrics.rmgap_metrics`` of the selected items (``grp`` = ``groups(layout, out, sel)``), number for number."""
    rows = out.rows[sel]
    domain = layout.domain[rows]
    nan = out.nan[sel]
    pair, bon, cons = {}, {}, {}
    n_items: dict[str, int] = {}
    n_groups: dict[str, int] = {}
    defined: dict[str, dict[str, bool]] = {"Pair": {}, "BoN": {}}
    reasons: dict[str, dict[str, str]] = {"Pair": {}, "BoN": {}}
    for d in DOMAINS:
        in_d = domain == d
        ok = in_d & ~nan
        n_items[d] = int(in_d.sum())
        won, total, n_ok = int(out.won[sel][ok].sum()), int(out.total[sel][ok].sum()), int(ok.sum())
        pair[d] = won / total if total else None
        bon[d] = int(out.best[sel][ok].sum()) / n_ok if n_ok else None
        mark_undefined({"Pair": pair, "BoN": bon}, d, n_items[d], defined, reasons)
        g_in = grp.domain == d
        counted = g_in & grp.complete if complete_groups_only else g_in
        n_flags = int(counted.sum())
        cons[d] = int((counted & grp.complete & grp.consistent).sum()) / n_flags if n_flags else None
        n_groups[d] = n_flags
    return {
        "Pair": with_avg(pair),
        "BoN": with_avg(bon),
        "Consistency": with_avg(cons),
        "n_items": n_items,
        "n_groups": n_groups,
        "n_nan_items": int(nan.sum()),
        "defined": defined,
        "reasons": reasons,
    }
