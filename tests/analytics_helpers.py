"""Helpers shared by the analytics tests: insert labels straight into the database."""

from __future__ import annotations

import json

from sqlalchemy import select

from rmgap_annot.studies import item_study_id
from rmgap_annot.db import session_scope
from rmgap_annot.models import Item, Label, Record, User


def item_ids(engine, benchmark_id: int) -> dict[tuple[str, int, int], int]:
    """(record_id, group, prompt_index) -> item id."""
    with session_scope(engine) as s:
        rows = s.execute(
            select(Record.record_id, Item.group, Item.prompt_index, Item.id)
            .join(Record, Record.id == Item.record_pk)
            .where(Item.benchmark_id == benchmark_id)
        ).all()
    return {(r, g, p): i for r, g, p, i in rows}


def winners(engine, benchmark_id: int) -> dict[int, str]:
    with session_scope(engine) as s:
        return dict(s.execute(select(Item.id, Item.winner_key).where(Item.benchmark_id == benchmark_id)).all())


def add_labels(engine, rows: list[dict]) -> None:
    """rows: {annotator, item_id, choice, naturalness?, ranking?, displayed_order?, seconds?}."""
    with session_scope(engine, write=True) as s:
        users = dict(s.execute(select(User.name, User.id)).all())
        for r in rows:
            if r["annotator"] not in users:
                u = User(name=r["annotator"], role="annotator")
                s.add(u)
                s.flush()
                users[u.name] = u.id
            s.add(
                Label(
                    study_id=item_study_id(s, r["item_id"]), user_id=users[r["annotator"]], item_id=r["item_id"], choice_key=r.get("choice"),
                    naturalness=r.get("naturalness"), seconds=r.get("seconds"),
                    ranking_json=json.dumps(r["ranking"]) if r.get("ranking") else None,
                    displayed_order_json=json.dumps(r["displayed_order"]) if r.get("displayed_order") else None,
                )
            )
