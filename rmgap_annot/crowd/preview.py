"""A researcher's look at what an annotator sees, for any item of a study or any check, storing nothing.

The preview is built by the same functions that build an annotator's view
(``annotation.item_for_annotator``, ``stream.view_of_check``), shuffled for
the researcher as it would be for any one person, and reads only: no lease,
no label, no CheckLabel, no membership. Unlike an annotator's view it names
the expected answer of a check (the researcher wrote it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.annotation import AnnotatorItem, item_for_annotator
from rmgap_annot.crowd.stream import view_of_check
from rmgap_annot.db import session_scope
from rmgap_annot.models import CheckItem, Item, Record, Study, StudyItem


@dataclass(frozen=True)
class Preview:
    view: AnnotatorItem
    label: str  # what the researcher picked, in their words
    expected_letters: Optional[tuple[str, ...]] = None  # checks only
    explanation: Optional[str] = None


def previewable(*, engine: Engine, study_id: int, limit: int = 500) -> dict[str, list[tuple[int, str]]]:
    """What can be previewed: the study's items (record id and prompt start) and its checks, by kind."""
    with session_scope(engine) as session:
        items = session.execute(
            select(Item.id, Record.record_id, Item.group_index, Item.prompt_index, Item.text)
            .join(StudyItem, (StudyItem.item_id == Item.id) & (StudyItem.study_id == study_id))
            .join(Record, Record.id == Item.record_pk).order_by(Item.id).limit(limit)
        ).all()
        checks = session.execute(select(CheckItem.id, CheckItem.kind, CheckItem.check_id).where(
            CheckItem.study_id == study_id).order_by(CheckItem.kind, CheckItem.position)).all()
    out: dict[str, list[tuple[int, str]]] = {"item": [
        (i.id, f"{i.record_id} · group {i.group_index} prompt {i.prompt_index}: {i.text[:60]}") for i in items]}
    for cid, kind, check_id in checks:
        out.setdefault(kind, []).append((cid, check_id))
    return out


def preview_item(*, engine: Engine, researcher_id: int, study_id: int, item_id: int) -> Preview:
    view = item_for_annotator(engine=engine, user_id=researcher_id, item_id=item_id, study_id=study_id)
    return Preview(view=view, label=f"item {item_id}")


def preview_check(*, engine: Engine, researcher_id: int, check_item_id: int) -> Preview:
    with session_scope(engine) as session:
        ci = session.get(CheckItem, check_item_id)
        if ci is None:
            raise LookupError(f"no check item with id {check_item_id}")
        view = view_of_check(ci, session.get(Study, ci.study_id), user_id=researcher_id)
        expected = json.loads(ci.expected_json)
        label, explanation = f"{ci.kind} {ci.check_id}", ci.explanation
    letters = tuple(view.letter_for(k) for k in expected if k in view.keys)
    return Preview(view=view, label=label, expected_letters=letters, explanation=explanation)
