"""Labels and items as pandas frames: the one read path for every statistic.

Statistics, exports and reports all start from these two frames, so they
agree on what a label is (a ``choice_key`` of None means "Can't decide").
"""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import Item, Label, Record, User

LABEL_COLUMNS = [
    "label_id", "user_id", "annotator", "item_id", "record_id", "domain", "group", "prompt_index", "role",
    "winner_key", "choice_key", "ranking", "displayed_order", "naturalness", "reason", "comment", "seconds",
    "source", "shown_at", "first_submitted_at", "submitted_at", "revisions",
]
ITEM_COLUMNS = ["item_id", "record_pk", "record_id", "domain", "group", "group_index", "prompt_index", "role", "winner_key"]


def _json_list(value: str | None) -> list | None:
    return json.loads(value) if value else None


def load_labels(*, engine: Engine, benchmark_id: int) -> pd.DataFrame:
    """One row per label of the benchmark, with its item's coordinates."""
    stmt = (
        select(
            Label.id, Label.user_id, User.name, Label.item_id, Record.record_id, Item.domain, Item.group,
            Item.prompt_index, Item.role, Item.winner_key, Label.choice_key, Label.ranking_json,
            Label.displayed_order_json, Label.naturalness, Label.reason, Label.comment, Label.seconds,
            Label.source, Label.shown_at, Label.first_submitted_at, Label.submitted_at, Label.revisions,
        )
        .join(Item, Item.id == Label.item_id)
        .join(Record, Record.id == Item.record_pk)
        .join(User, User.id == Label.user_id)
        .where(Item.benchmark_id == benchmark_id)
        .order_by(Label.id)
    )
    with session_scope(engine) as session:
        rows = session.execute(stmt).all()
    df = pd.DataFrame(rows, columns=LABEL_COLUMNS)
    df["ranking"] = df["ranking"].map(_json_list)
    df["displayed_order"] = df["displayed_order"].map(_json_list)
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
