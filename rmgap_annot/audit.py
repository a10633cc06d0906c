"""The audit log: who blocked, disabled, excluded, deleted or changed what, and when.

A paid study is a record of decisions about people (who was screened out,
whose labels were left out, who withdrew). Each such decision writes one
``AuditEvent`` in the same transaction as the change itself, so the log
cannot claim a change that did not happen or miss one that did. The target
is a pseudonym (``ann-07``) or a setting's name, never a platform id: the
log is shown on the Quality page and may be shared with a paper's reviewers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rmgap_annot.db import session_scope
from rmgap_annot.models import AuditEvent, Study

ACTIONS = ("block", "unblock", "disable", "enable", "exclude", "include", "delete", "settings", "assign")


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    actor: str
    study: Optional[str]
    action: str
    target: str
    detail: dict


def record(session: Session, *, actor: str, study_id: Optional[int], action: str, target: str = "",
           detail: Optional[dict[str, Any]] = None) -> AuditEvent:
    """Add one event inside the caller's write transaction (committed with the change it records)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; one of {', '.join(ACTIONS)}")
    event = AuditEvent(actor=actor or "unknown", study_id=study_id, action=action, target=target,
                       detail_json=json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str))
    session.add(event)
    return event


def events(*, engine: Engine, study_id: Optional[int] = None, limit: int = 200) -> list[AuditRow]:
    """The newest events first (of one study, plus events of no study, when ``study_id`` is given)."""
    with session_scope(engine) as session:
        stmt = select(AuditEvent, Study.name).outerjoin(Study, Study.id == AuditEvent.study_id)
        if study_id is not None:
            stmt = stmt.where((AuditEvent.study_id == study_id) | AuditEvent.study_id.is_(None))
        rows = session.execute(stmt.order_by(AuditEvent.id.desc()).limit(limit)).all()
    return [AuditRow(e.at, e.actor, name, e.action, e.target, json.loads(e.detail_json or "{}")) for e, name in rows]
