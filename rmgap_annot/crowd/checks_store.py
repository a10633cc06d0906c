"""Attention-check and qualification items in the database: the study's shape, the import.

A check file is validated against the shape of the study's real items (how
many candidates, a prompt, a conversation or a profile) so a check can
never tell itself apart by its layout; the whole file is written in one
transaction or not at all. Re-importing is idempotent per check: the same
content under the same id changes nothing (its labels stay valid), edited
content under an existing id replaces it, and ids missing from the new file
are kept, because labels point at them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.crowd.checks import CheckFile, CheckSpec, read_checks
from rmgap_annot.db import session_scope
from rmgap_annot.models import CheckItem, Item, Response, Study, StudyItem

KINDS = ("check", "qualification")


class CheckImportError(ValueError):
    """The import cannot go ahead (no items in the study to take the shape from, an unknown kind)."""


@dataclass(frozen=True)
class StudyShape:
    n_candidates: int
    context: str  # prompt | conversation | profile


@dataclass(frozen=True)
class CheckImport:
    kind: str
    added: int
    changed: int
    unchanged: int
    total: int  # the study's items of this kind after the import


def study_shape(*, engine: Engine, study_id: int) -> StudyShape:
    """How the study's real items look: the most common number of candidates, and their kind of context."""
    with session_scope(engine) as session:
        study = session.get(Study, study_id)
        if study is None:
            raise CheckImportError(f"no study with id {study_id}")
        items = session.execute(
            select(Item.record_pk, Item.context_json, Item.profile_json)
            .join(StudyItem, (StudyItem.item_id == Item.id) & (StudyItem.study_id == study_id)).limit(200)
        ).all()
        if not items:
            raise CheckImportError("the study has no items yet: a check takes the shape of the study's items")
        sizes = dict(session.execute(
            select(Response.record_pk, func.count()).where(Response.record_pk.in_({r.record_pk for r in items}))
            .group_by(Response.record_pk)
        ).all())
    n = Counter(sizes.get(r.record_pk, 0) for r in items).most_common(1)[0][0]
    if any(r.profile_json for r in items):
        context = "profile"
    elif any(r.context_json and len(json.loads(r.context_json)) > 1 for r in items):
        context = "conversation"
    else:
        context = "prompt"
    return StudyShape(n_candidates=n, context=context)


def _row_fields(spec: CheckSpec) -> dict:
    """What a CheckItem stores, in the same shape as a real Item (text = the last user turn, context = the turns)."""
    if spec.conversation is not None:
        prompt = spec.conversation[-1][1]
        context = json.dumps([{"role": r, "content": c} for r, c in spec.conversation], ensure_ascii=False)
    else:
        prompt, context = spec.prompt or "", None
    return {
        "prompt": prompt, "context_json": context,
        "profile_json": json.dumps([{"text": t} for t in spec.profile], ensure_ascii=False) if spec.profile else None,
        "responses_json": json.dumps([list(r) for r in spec.responses], ensure_ascii=False),
        "expected_json": json.dumps(list(spec.expected), ensure_ascii=False),
        "explanation": spec.explanation, "file_hash": spec.content_hash,
    }


def read_for_study(*, engine: Engine, study_id: int, path: str | Path) -> CheckFile:
    """The file read and validated against the study's shape (CheckFileError lists every problem)."""
    shape = study_shape(engine=engine, study_id=study_id)
    return read_checks(path, n_candidates=shape.n_candidates, context=shape.context)  # type: ignore[arg-type]


def import_checks(*, engine: Engine, study_id: int, path: str | Path, kind: str = "check") -> CheckImport:
    """Validate the file, then store its checks in one transaction (nothing on any error)."""
    if kind not in KINDS:
        raise CheckImportError(f"--kind is one of {', '.join(KINDS)}, not {kind!r}")
    checks = read_for_study(engine=engine, study_id=study_id, path=path)
    added = changed = unchanged = 0
    with session_scope(engine, write=True) as session:
        existing = {row.check_id: row for row in session.execute(
            select(CheckItem).where(CheckItem.study_id == study_id, CheckItem.kind == kind)).scalars()}
        for position, spec in enumerate(checks.checks):
            fields = _row_fields(spec)
            row = existing.get(spec.id)
            if row is None:
                session.add(CheckItem(study_id=study_id, kind=kind, check_id=spec.id, position=position, **fields))
                added += 1
                continue
            if row.file_hash == spec.content_hash:
                unchanged += 1
            else:
                changed += 1
                for name, value in fields.items():
                    setattr(row, name, value)
            row.position = position
            session.add(row)
        session.flush()
        total = session.execute(select(func.count()).select_from(CheckItem).where(
            CheckItem.study_id == study_id, CheckItem.kind == kind)).scalar_one()
    return CheckImport(kind=kind, added=added, changed=changed, unchanged=unchanged, total=total)
