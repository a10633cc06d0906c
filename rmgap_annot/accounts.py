"""Users and passwords.

Passwords are hashed with argon2id (memory-hard); the clear text is never
stored or logged. Accounts created by a label import or reachable only by
invite link have no password hash and cannot log in with a password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rmgap_annot.db import session_scope
from rmgap_annot.models import Label, User

ROLES = ("annotator", "researcher")
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A user-facing problem with an account operation."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A readable one-time password for seeded demo accounts."""
    return secrets.token_urlsafe(9)


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: str
    has_password: bool
    active: bool
    n_labels: int


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def add_user(*, session: Session, name: str, role: str, password: str | None = None) -> User:
    name = name.strip()
    if not name:
        raise AccountError("user name must not be empty")
    validate_role(role)
    if session.execute(select(User.id).where(User.name == name)).first() is not None:
        raise AccountError(f"user {name!r} already exists")
    user = User(name=name, role=role, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def create_user(*, engine: Engine, name: str, role: str, password: str | None = None) -> int:
    with session_scope(engine, write=True) as session:
        return add_user(session=session, name=name, role=role, password=password).id


def get_user_by_name(*, session: Session, name: str) -> User | None:
    return session.execute(select(User).where(User.name == name)).scalars().first()


def list_users(*, engine: Engine) -> list[UserInfo]:
    with session_scope(engine) as session:
        counts = dict(session.execute(select(Label.user_id, func.count()).group_by(Label.user_id)).all())
        users = session.execute(select(User).order_by(User.name)).scalars().all()
        return [UserInfo(u.id, u.name, u.role, bool(u.password_hash), u.active, counts.get(u.id, 0)) for u in users]
