"""Users and passwords.

Passwords are hashed with argon2id (memory-hard); the clear text is never
stored or logged. Accounts created by a label import or reachable only by
invite link have no password hash and cannot log in with a password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

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


def user_id_by_name(*, engine: Engine, name: str) -> int | None:
    with session_scope(engine) as session:
        user = get_user_by_name(session=session, name=name)
        return user.id if user is not None else None


def list_users(*, engine: Engine) -> list[UserInfo]:
    with session_scope(engine) as session:
        counts = dict(session.execute(select(Label.user_id, func.count()).group_by(Label.user_id)).all())
        users = session.execute(select(User).order_by(User.name)).scalars().all()
        return [UserInfo(u.id, u.name, u.role, bool(u.password_hash), u.active, counts.get(u.id, 0)) for u in users]


# --- logging in ----------------------------------------------------------------

MAX_FAILED_LOGINS = 5
LOCKOUT_SECONDS = 300
INVITE_TTL_DAYS = 14


class AccessDenied(PermissionError):
    """The caller's role may not do this (enforced in the logic, not only the menu)."""


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    user_id: int | None = None
    role: str | None = None
    name: str | None = None
    message: str = ""


def _hash_token(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def authenticate(*, engine: Engine, name: str, password: str) -> AuthResult:
    """Check a password; after MAX_FAILED_LOGINS failures the user is locked for a while.

    The message never says whether the name exists.
    """
    from datetime import timedelta

    from rmgap_annot.models import utcnow

    generic = "Unknown user name or wrong password."
    with session_scope(engine, write=True) as session:
        user = get_user_by_name(session=session, name=name.strip())
        if user is None or not user.active:
            # Spend the same time as a real check, so timing does not reveal names.
            password_matches(_DUMMY_HASH, password)
            return AuthResult(False, message=generic)
        now = utcnow()
        if user.locked_until is not None and user.locked_until > now:
            wait = int((user.locked_until - now).total_seconds()) + 1
            return AuthResult(False, message=f"Too many failed attempts; try again in {wait} seconds.")
        # Invite-only accounts (no hash) still pay for one verification, so the
        # response time does not tell an attacker which accounts have passwords.
        ok = password_matches(user.password_hash or _DUMMY_HASH, password) and user.password_hash is not None
        if not ok:
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILED_LOGINS:
                user.locked_until = now + timedelta(seconds=LOCKOUT_SECONDS)
                user.failed_logins = 0
            session.add(user)
            return AuthResult(False, message=generic)
        user.failed_logins = 0
        user.locked_until = None
        if _hasher.check_needs_rehash(user.password_hash):
            # Stronger default parameters since this hash was made: upgrade it now,
            # the only moment the clear password is at hand.
            user.password_hash = hash_password(password)
        session.add(user)
        return AuthResult(True, user.id, user.role, user.name)


_DUMMY_HASH = hash_password("not-a-real-password")


def create_invite(*, engine: Engine, user_id: int, ttl_days: int = INVITE_TTL_DAYS) -> str:
    """A personal login link token; only its hash is stored. Shown once."""
    from datetime import timedelta

    from rmgap_annot.models import Invite, utcnow

    token = secrets.token_urlsafe(24)
    with session_scope(engine, write=True) as session:
        if session.get(User, user_id) is None:
            raise AccountError(f"no user with id {user_id}")
        session.add(Invite(user_id=user_id, token_hash=_hash_token(token), expires_at=utcnow() + timedelta(days=ttl_days)))
    return token


def app_root(page_url: str, *, base_path: str = "") -> str:
    """The app's root address from the address of any of its pages.

    An invite link must open the app's entry page: built from the current
    page (``/team``) it would open "Page not found". ``base_path`` is
    Streamlit's ``server.baseUrlPath`` (an app served under a sub-path).
    """
    parts = urlsplit(page_url)
    prefix = base_path.strip("/")
    return f"{parts.scheme}://{parts.netloc}/" + (f"{prefix}/" if prefix else "")


def invite_link(base_url: str, token: str) -> str:
    """The link app.py reads (`?invite=TOKEN`) on the app's address, any query dropped."""
    return f"{base_url.split('?')[0]}?invite={token}"


def redeem_invite(*, engine: Engine, token: str) -> AuthResult:
    from rmgap_annot.models import Invite, utcnow

    with session_scope(engine, write=True) as session:
        invite = session.execute(select(Invite).where(Invite.token_hash == _hash_token(token))).scalars().first()
        now = utcnow()
        if invite is None or invite.revoked_at is not None or invite.expires_at <= now:
            return AuthResult(False, message="This invite link is invalid, expired or revoked. Ask your researcher for a new one.")
        user = session.get(User, invite.user_id)
        if user is None or not user.active:
            return AuthResult(False, message="This account is disabled.")
        invite.last_used_at = now
        session.add(invite)
        return AuthResult(True, user.id, user.role, user.name)


def revoke_invites(*, engine: Engine, user_id: int) -> int:
    """Revoke every live invite of a user; returns how many were revoked."""
    from rmgap_annot.models import Invite, utcnow

    with session_scope(engine, write=True) as session:
        invites = session.execute(select(Invite).where(Invite.user_id == user_id, Invite.revoked_at.is_(None))).scalars().all()
        for inv in invites:
            inv.revoked_at = utcnow()
            session.add(inv)
        return len(invites)


def require_role(*, engine: Engine, user_id: int | None, role: str = "researcher") -> None:
    """Raise AccessDenied unless the user exists, is active and has ``role``.

    Every researcher-only function and page calls this with the session's
    user id: hiding a menu entry is not access control.
    """
    if user_id is None:
        raise AccessDenied("Please log in.")
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None or not user.active or user.role != role:
            raise AccessDenied(f"This page is for {role}s only.")


MIN_PASSWORD_LENGTH = 8


def set_password(*, engine: Engine, user_id: int, password: str | None) -> None:
    """Set (or, with None, remove) a user's password; also lifts a lockout.

    Short passwords are refused here, not only in the UI, so no path stores one.
    """
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    with session_scope(engine, write=True) as session:
        user = session.get(User, user_id)
        if user is None:
            raise AccountError(f"no user with id {user_id}")
        user.password_hash = hash_password(password) if password is not None else None
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)


def change_own_password(*, engine: Engine, user_id: int, current: str, new: str) -> None:
    """A user changes their own password: the current one is checked (through the
    lockout) when there is one; an invite-only account sets its first password."""
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise AccountError(f"no user with id {user_id}")
        name, has_password = user.name, user.password_hash is not None
    if has_password and not authenticate(engine=engine, name=name, password=current).ok:
        raise AccountError("The current password is wrong.")
    set_password(engine=engine, user_id=user_id, password=new)


def set_active(*, engine: Engine, user_id: int, active: bool) -> None:
    """Enable or disable an account; disabling also revokes its invite links.

    Labels stay: a disabled annotator's past work still counts in the study.
    """
    with session_scope(engine, write=True) as session:
        user = session.get(User, user_id)
        if user is None:
            raise AccountError(f"no user with id {user_id}")
        user.active = active
        session.add(user)
    if not active:
        revoke_invites(engine=engine, user_id=user_id)
