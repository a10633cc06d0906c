"""Server-side login sessions: the one thing a browser's cookie points at.

A login (password, invite link or SSO) creates a row holding the sha256 of a
random token; the browser keeps the token in an HttpOnly cookie set by the
app's own routes (``server.py``), so the page script never sees it and a
refresh (F5) finds the same session. Logging out, disabling the account,
revoking its invites or changing its password deletes the rows: every open
browser loses its login on its next rerun, and ``submit_label`` refuses an
inactive account as a backstop.

The page script cannot set a cookie, so after a password or SSO login it
gets a one-use ticket (valid a minute) that its browser posts to
``/auth/session`` in exchange for the cookie. Nothing here lives in a
Streamlit cache: any visitor can clear those.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import AuthSession, LoginTicket, User, utcnow

COOKIE_NAME = "rmgap_session"
SESSION_IDLE_HOURS = 12
TICKET_SECONDS = 60
# A session's last_seen_at is written at most this often: a rerun per click
# must not cost a database write each.
TOUCH_SECONDS = 60
VIAS = ("password", "invite", "sso", "study-link")
# Set by server.py: without its routes no browser can receive a session cookie.
ROUTES_MOUNTED = False


@dataclass(frozen=True)
class SessionUser:
    """Who a live session belongs to, read fresh from the database."""

    user_id: int
    name: str
    role: str
    via: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(*, engine: Engine, user_id: int, via: str) -> str:
    """A new session for an (already authenticated) user; returns the cookie's token."""
    if via not in VIAS:
        raise ValueError(f"unknown way in: {via!r}")
    token = secrets.token_urlsafe(32)
    with session_scope(engine, write=True) as session:
        _sweep_idle(session)
        session.add(AuthSession(user_id=user_id, token_hash=token_hash(token), via=via))
    return token


def _sweep_idle(session) -> None:  # noqa: ANN001
    """Dead sessions go when new ones come, so the table holds live logins only."""
    cutoff = utcnow() - timedelta(hours=SESSION_IDLE_HOURS)
    session.execute(delete(AuthSession).where(AuthSession.last_seen_at <= cutoff))


def issue_ticket(*, engine: Engine, user_id: int, via: str) -> str:
    """A one-use ticket the page script gives its own browser to fetch the cookie."""
    if via not in VIAS:
        raise ValueError(f"unknown way in: {via!r}")
    ticket = secrets.token_urlsafe(32)
    now = utcnow()
    with session_scope(engine, write=True) as session:
        # Expired tickets are swept here, so the table stays a handful of rows.
        session.execute(delete(LoginTicket).where(LoginTicket.expires_at <= now))
        session.add(LoginTicket(user_id=user_id, ticket_hash=token_hash(ticket), via=via,
                                expires_at=now + timedelta(seconds=TICKET_SECONDS)))
    return ticket


def redeem_ticket(*, engine: Engine, ticket: str) -> str | None:
    """Exchange a ticket for a session token (once); None when unknown, used or expired."""
    with session_scope(engine, write=True) as session:
        row = session.execute(
            select(LoginTicket).where(LoginTicket.ticket_hash == token_hash(ticket)).with_for_update()
        ).scalars().first()
        if row is None:
            return None
        session.delete(row)
        user = session.get(User, row.user_id)
        if row.expires_at <= utcnow() or user is None or not user.active:
            return None
        token = secrets.token_urlsafe(32)
        _sweep_idle(session)
        session.add(AuthSession(user_id=row.user_id, token_hash=token_hash(token), via=row.via))
        return token


def resolve_session(*, engine: Engine, token: str | None) -> SessionUser | None:
    """The live session's user (active accounts only), sliding its idle expiry; else None."""
    if not token:
        return None
    now = utcnow()
    with session_scope(engine) as session:
        found = session.execute(
            select(AuthSession, User).join(User, User.id == AuthSession.user_id)
            .where(AuthSession.token_hash == token_hash(token))
        ).first()
    if found is None:
        return None
    row, user = found
    if not user.active or row.last_seen_at <= now - timedelta(hours=SESSION_IDLE_HOURS):
        end_session(engine=engine, token=token)
        return None
    if row.last_seen_at <= now - timedelta(seconds=TOUCH_SECONDS):
        with session_scope(engine, write=True) as session:
            live = session.get(AuthSession, row.id)
            if live is not None:
                live.last_seen_at = now
                session.add(live)
    return SessionUser(user.id, user.name, user.role, row.via)


def end_session(*, engine: Engine, token: str | None) -> None:
    """Log one browser out (idempotent)."""
    if not token:
        return
    with session_scope(engine, write=True) as session:
        session.execute(delete(AuthSession).where(AuthSession.token_hash == token_hash(token)))


def end_user_sessions(*, engine: Engine, user_id: int, keep_token: str | None = None) -> int:
    """Log every browser of a user out (all but ``keep_token``'s); returns how many ended."""
    with session_scope(engine, write=True) as session:
        stmt = delete(AuthSession).where(AuthSession.user_id == user_id)
        if keep_token:
            stmt = stmt.where(AuthSession.token_hash != token_hash(keep_token))
        ended = session.execute(stmt).rowcount or 0
        session.execute(delete(LoginTicket).where(LoginTicket.user_id == user_id))
        return ended


def count_sessions(*, engine: Engine, user_id: int) -> int:
    with session_scope(engine) as session:
        return len(session.execute(select(AuthSession.id).where(AuthSession.user_id == user_id)).all())
