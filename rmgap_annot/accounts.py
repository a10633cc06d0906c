"""Users and passwords.

Passwords are hashed with argon2id (memory-hard); the clear text is never
stored or logged. Accounts created by a label import or reachable only by
invite link have no password hash and cannot log in with a password.
"""

from __future__ import annotations

import os
import secrets
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from rmgap_annot.db import session_scope
from rmgap_annot.models import Label, User
from rmgap_annot.sessions import end_user_sessions

ROLES = ("annotator", "researcher")
MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()


class AccountError(ValueError):
    """A user-facing problem with an account operation."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# Password checks run on a few worker threads at a lowered CPU priority
# (nice 19 on Linux; argon2's own lane threads inherit it). argon2 is built
# to eat CPU, so a storm of logins with made-up names would otherwise starve
# the annotators' submits of cores; this way logins queue and labelling keeps
# the machine. HASH_SLOTS checks at most run at once per process.
HASH_SLOTS = int(os.environ.get("RMGAP_ANNOT_HASH_SLOTS") or max(1, (os.cpu_count() or 2) // 2))
HASH_NICE = 19  # the lowest: labelling always wins the CPU


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: plain priority
        pass


def _new_hash_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=HASH_SLOTS, thread_name_prefix="password-check", initializer=_lower_priority)


_hash_pool = _new_hash_pool()


def _fresh_pool_after_fork() -> None:
    # A forked child inherits the pool object but not its threads.
    global _hash_pool  # noqa: PLW0603
    _hash_pool = _new_hash_pool()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_pool_after_fork)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    return _hash_pool.submit(_verify, password_hash, password).result()


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


# Common Cyrillic and Greek letters drawn like Latin ones (after casefolding).
# Hand-written rather than Unicode's full confusables table: user names here
# are typed by researchers, and these are the letters that actually pass for
# Latin in a user list.
_HOMOGLYPHS = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ӏ": "l", "ԛ": "q", "ԝ": "w", "ɡ": "g", "һ": "h", "ѵ": "v",
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ζ": "z", "ϲ": "c", "ϳ": "j",
    "0": "o", "1": "l", "|": "l",
})


def normalise_name(name: str) -> str:
    """The stored form of a user name: NFKC (so full-width or ligature letters
    become their plain forms) and no surrounding blanks."""
    return unicodedata.normalize("NFKC", name).strip()


def name_skeleton(name: str) -> str:
    """What a name looks like on screen: two names with one skeleton can pass
    for each other (``аlice`` with a Cyrillic ``а`` and ``alice``)."""
    return normalise_name(name).casefold().translate(_HOMOGLYPHS)


def validate_name(name: str) -> str:
    name = normalise_name(name)
    if not name:
        raise AccountError("user name must not be empty")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise AccountError("user name must not contain control or invisible characters")
    return name


def validate_password(password: str) -> str:
    """Refused here, not only in a form, so no path stores a weak password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not password.strip():
        raise AccountError("password must not be only spaces")
    return password


def add_user(*, session: Session, name: str, role: str, password: str | None = None) -> User:
    name = validate_name(name)
    from rmgap_annot.crowd.links import is_participant_name  # links imports this module

    if is_participant_name(name):
        # Only the study link creates these (crowd.arrival): an ordinary
        # account named "prolific:..." could stand for a participant.
        raise AccountError(f"user name {name!r} lies in the crowd participants' namespace (prolific:, mturk:, generic:);"
                           " choose another name")
    validate_role(role)
    if password is not None:
        validate_password(password)
    skeleton = name_skeleton(name)
    for (existing,) in session.execute(select(User.name)).all():
        if existing == name:
            raise AccountError(f"user {name!r} already exists")
        if name_skeleton(existing) == skeleton:
            raise AccountError(f"user name {name!r} looks like the existing user {existing!r}; choose another name")
    user = User(name=name, role=role, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def create_user(*, engine: Engine, name: str, role: str, password: str | None = None) -> int:
    with session_scope(engine, write=True) as session:
        return add_user(session=session, name=name, role=role, password=password).id


def get_user_by_name(*, session: Session, name: str) -> User | None:
    return session.execute(select(User).where(User.name == normalise_name(name))).scalars().first()


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


LOGIN_FAILED = (f"Unknown user name or wrong password. After {MAX_FAILED_LOGINS} failed attempts "
                f"an account is locked for {LOCKOUT_SECONDS // 60} minutes.")


@dataclass(frozen=True)
class _Attempt:
    """What the counting write learned, carried to the hash check outside it."""

    user_id: int | None
    password_hash: str | None
    may_check: bool


def _count_attempt(*, engine: Engine, name: str) -> _Attempt:
    """Count this attempt as failed *before* the password is checked (one short write).

    The row is locked for the read-modify-write (``FOR UPDATE`` on PostgreSQL,
    ``BEGIN IMMEDIATE`` on SQLite), so parallel guesses each get their own
    number and at most MAX_FAILED_LOGINS of them are ever checked; the
    attempt that reaches the limit locks the account. A correct password
    later clears the count (``_record_success``).
    """
    from datetime import timedelta

    from rmgap_annot.models import utcnow

    with session_scope(engine) as session:
        known = session.execute(select(User.id).where(User.name == name)).first() is not None
    if not known:
        # A made-up name takes no write turn at all: a storm of them must not
        # queue with the annotators' submits.
        return _Attempt(None, None, False)
    with session_scope(engine, write=True) as session:
        user = session.execute(select(User).where(User.name == name).with_for_update()).scalars().first()
        if user is None:
            return _Attempt(None, None, False)
        now = utcnow()
        if user.locked_until is not None:
            if user.locked_until > now:
                return _Attempt(user.id, None, False)
            user.locked_until = None
            user.failed_logins = 0
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until = now + timedelta(seconds=LOCKOUT_SECONDS)
        session.add(user)
        may_check = user.active and user.password_hash is not None
        return _Attempt(user.id, user.password_hash if may_check else None, may_check)


def _record_success(*, engine: Engine, user_id: int, password: str, old_hash: str) -> AuthResult | None:
    """Clear the failure count after a correct password (one short write).

    None when the account was disabled, or its password changed, while the
    hash was being checked.
    """
    # A rehash with stronger default parameters costs a full hash: done
    # before the write, never inside it.
    new_hash = hash_password(password) if _hasher.check_needs_rehash(old_hash) else None
    with session_scope(engine, write=True) as session:
        user = session.execute(select(User).where(User.id == user_id).with_for_update()).scalars().first()
        if user is None or not user.active or user.password_hash != old_hash:
            return None
        user.failed_logins = 0
        user.locked_until = None
        if new_hash is not None:
            user.password_hash = new_hash
        session.add(user)
        return AuthResult(True, user.id, user.role, user.name)


def authenticate(*, engine: Engine, name: str, password: str) -> AuthResult:
    """Check a password: count, then hash with no transaction open, then record.

    The argon2 check (~190 ms) never runs inside a database write: on SQLite
    that would hold the one write turn every annotator's submit waits for,
    so anyone could stall labelling by typing made-up names. Unknown,
    disabled, locked and password-less accounts spend the same hash on a
    dummy and get the same message, so neither the answer nor its timing
    tells an attacker which names exist or are locked.
    """
    attempt = _count_attempt(engine=engine, name=normalise_name(name))
    if not attempt.may_check:
        password_matches(_DUMMY_HASH, password)
        return AuthResult(False, message=LOGIN_FAILED)
    if not password_matches(attempt.password_hash, password):
        return AuthResult(False, message=LOGIN_FAILED)
    result = _record_success(engine=engine, user_id=attempt.user_id, password=password, old_hash=attempt.password_hash)
    return result if result is not None else AuthResult(False, message=LOGIN_FAILED)


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
    """The link server.py trades for a session (`?invite=TOKEN`) on the app's address, any query dropped."""
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
    """Revoke every live invite of a user and end their sessions; returns how many
    invites were revoked (a browser logged in through one must not stay in)."""
    from rmgap_annot.models import Invite, utcnow

    with session_scope(engine, write=True) as session:
        invites = session.execute(select(Invite).where(Invite.user_id == user_id, Invite.revoked_at.is_(None))).scalars().all()
        for inv in invites:
            inv.revoked_at = utcnow()
            session.add(inv)
        n = len(invites)
    end_user_sessions(engine=engine, user_id=user_id)
    return n


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


def require_active(*, engine: Engine, user_id: int | None) -> None:
    """Raise AccessDenied unless the user exists and is active (every page, every write)."""
    if user_id is None:
        raise AccessDenied("Please log in.")
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise AccessDenied("This account is disabled. Ask your researcher.")


def set_password(*, engine: Engine, user_id: int, password: str | None, keep_session: str | None = None) -> None:
    """Set (or, with None, remove) a user's password; also lifts a lockout.

    Every session of the user ends (whoever knew the old password is out),
    except ``keep_session``: the browser that changed it. Weak passwords are
    refused here, not only in the UI, so no path stores one.
    """
    if password is not None:
        validate_password(password)
    new_hash = hash_password(password) if password is not None else None  # outside the write
    with session_scope(engine, write=True) as session:
        user = session.get(User, user_id)
        if user is None:
            raise AccountError(f"no user with id {user_id}")
        user.password_hash = new_hash
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
    end_user_sessions(engine=engine, user_id=user_id, keep_token=keep_session)


def change_own_password(*, engine: Engine, user_id: int, current: str, new: str, keep_session: str | None) -> None:
    """A logged-in user's own change: the current password first (a left-open
    browser must not be enough to take the account over); other sessions end."""
    validate_password(new)
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        name = user.name if user is not None else ""
        if user is not None and user.password_hash is None:
            raise AccountError("this account logs in by invite link and has no password; ask your researcher")
    if not authenticate(engine=engine, name=name, password=current).ok:
        raise AccountError("the current password is wrong")
    set_password(engine=engine, user_id=user_id, password=new, keep_session=keep_session)


def set_active(*, engine: Engine, user_id: int, active: bool, actor: str = "cli") -> None:
    """Enable or disable an account; disabling also revokes its invite links
    and ends its sessions, so an open browser cannot label one more item.

    Labels stay: a disabled annotator's past work still counts in the study.
    A change is written to the audit log (under the person's pseudonym in
    the study they joined last), like a block in one study.
    """
    from rmgap_annot import audit  # noqa: PLC0415
    from rmgap_annot.crowd.control import target_name  # noqa: PLC0415
    from rmgap_annot.models import StudyMember  # noqa: PLC0415

    with session_scope(engine, write=True) as session:
        user = session.get(User, user_id)
        if user is None:
            raise AccountError(f"no user with id {user_id}")
        changed = bool(user.active) != bool(active)
        user.active = active
        session.add(user)
        if changed:
            study_id = session.execute(
                select(StudyMember.study_id).where(StudyMember.user_id == user_id)
                .order_by(StudyMember.joined_at.desc(), StudyMember.id.desc()).limit(1)
            ).scalar_one_or_none()
            audit.record(session, actor=actor, study_id=study_id, action="enable" if active else "disable",
                         target=target_name(session, study_id=study_id, user_id=user_id))
    if not active:
        revoke_invites(engine=engine, user_id=user_id)
        end_user_sessions(engine=engine, user_id=user_id)
