"""Labels and items as pandas frames: the one read path for every statistic.

Statistics, exports and reports all start from these two frames, so they
agree on what a label is (a ``choice_key`` of None means "Can't decide").
"""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import String, select, type_coerce
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import Item, Label, Record, User

LABEL_COLUMNS = [
    "label_id", "user_id", "annotator", "item_id", "record_id", "domain", "group", "prompt_index", "role",
    "winner_key", "choice_key", "ranking", "displayed_order", "naturalness", "reason", "comment", "seconds",
    "source", "shown_at", "first_submitted_at", "submitted_at", "revisions", "study_id", "ratings_json",
]
ITEM_COLUMNS = ["item_id", "record_pk", "record_id", "domain", "group", "group_index", "prompt_index", "role", "winner_key"]


def _json_list(value: str | None) -> list | None:
    return json.loads(value) if value else None


def _json_lists(values: pd.Series) -> pd.Series:
    """Parse JSON lists; each row gets its own list (rows may be mutated safely)."""
    parsed = {v: _json_list(v) for v in set(values.dropna().tolist())}
    return pd.Series([list(parsed[v]) if v in parsed else None for v in values], index=values.index, dtype=object)


def _raw_time(column):  # noqa: ANN001, ANN202
    """The stored timestamp without SQLAlchemy's per-value parsing (pandas parses the column at once)."""
    return type_coerce(column, String)


def load_labels(*, engine: Engine, benchmark_id: int, study_ids: list[int] | None = None) -> pd.DataFrame:
    """One row per label of the benchmark (in the studies given, else all), with its item's coordinates."""
    stmt = (
        select(
            Label.id, Label.user_id, User.name, Label.item_id, Record.record_id, Item.domain, Item.group,
            Item.prompt_index, Item.role, Item.winner_key, Label.choice_key, Label.ranking_json,
            Label.displayed_order_json, Label.naturalness, Label.reason, Label.comment, Label.seconds,
            Label.source, _raw_time(Label.shown_at), _raw_time(Label.first_submitted_at),
            _raw_time(Label.submitted_at), Label.revisions, Label.study_id, Label.ratings_json,
        )
        .join(Item, Item.id == Label.item_id)
        .join(Record, Record.id == Item.record_pk)
        .join(User, User.id == Label.user_id)
        .where(Item.benchmark_id == benchmark_id)
        .order_by(Label.id)
    )
    if study_ids is not None:
        stmt = stmt.where(Label.study_id.in_(study_ids))
    # Core rows, built column-wise, JSON parsed once per distinct text and
    # timestamps parsed by pandas: the report must read ~40k labels fast.
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    columns = list(zip(*rows)) if rows else [()] * len(LABEL_COLUMNS)
    df = pd.DataFrame({name: list(col) for name, col in zip(LABEL_COLUMNS, columns)}, columns=LABEL_COLUMNS)
    for col in ("ranking", "displayed_order"):
        df[col] = _json_lists(df[col])
    for col in ("shown_at", "first_submitted_at", "submitted_at"):
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    return df


def load_items(*, engine: Engine, benchmark_id: int) -> pd.DataFrame:
    """One row per item of the benchmark (no texts: those are fetched on demand)."""
    stmt = (
        select(Item.id, Item.record_pk, Record.record_id, Item.domain, Item.group, Item.group_index,
               Item.prompt_index, Item.role, Item.winner_key)
        .join(Record, Record.id == Item.record_pk)
        .where(Item.benchmark_id == benchmark_id)
        .order_by(Item.id)
    )
    with session_scope(engine) as session:
        rows = session.execute(stmt).all()
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)
