"""Logging in without stalling anyone, lockout under parallel guesses, server-side sessions.

Runs on a real SQLite file and, where marked, on a real PostgreSQL server.
The hash check is *observed* (a wrapper around the real argon2 check looks
at the database from another connection while it runs), never replaced.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from rmgap_annot import accounts
from rmgap_annot.accounts import (
    AccountError,
    authenticate,
    change_own_password,
    create_invite,
    create_user,
    revoke_invites,
    set_active,
    set_password,
)
from rmgap_annot.annotation import LabelError, submit_label
from rmgap_annot.db import session_scope
from rmgap_annot.models import AuthSession, Item, LoginTicket, User, utcnow
from rmgap_annot.sessions import (
    SESSION_IDLE_HOURS,
    count_sessions,
    end_session,
    issue_ticket,
    redeem_ticket,
    resolve_session,
    start_session,
)

PASSWORD = "correct horse battery"


def _sqlite_path(db_url: str) -> Path:
    return Path(db_url.removeprefix("sqlite:///"))


class HashObserver:
    """Wraps the real password check; while it runs, probes the database from outside."""

    def __init__(self, monkeypatch, probe):  # noqa: ANN001
        self.calls = 0
        self.probes: list = []
        self._lock = threading.Lock()
        real = accounts.password_matches

        def observed(password_hash, password):  # noqa: ANN001, ANN202
            with self._lock:
                self.calls += 1
            self.probes.append(probe())
            return real(password_hash, password)

        monkeypatch.setattr(accounts, "password_matches", observed)


def _sqlite_probe(db_url: str, user_name: str):  # noqa: ANN202
    """Can another process take SQLite's write lock (and the app's writer turn) right now?
    And what failure count does it see for the user?"""
    path = _sqlite_path(db_url)

    def probe() -> dict:
        import fcntl

        out: dict = {}
        with open(f"{path}-writelock", "a+b") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                out["writer_turn_free"] = True
            except BlockingIOError:
                out["writer_turn_free"] = False
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            out["write_lock_free"] = True
            row = conn.execute('SELECT failed_logins, locked_until FROM "user" WHERE name = ?', (user_name,)).fetchone()
            out["failed_logins"] = row[0] if row else None
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            out["write_lock_free"] = False
        finally:
            conn.close()
        return out

    return probe


def test_no_write_lock_is_held_while_a_password_is_hashed_on_sqlite(engine, db_url, monkeypatch):
    create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    observer = HashObserver(monkeypatch, _sqlite_probe(db_url, "ann"))
    assert not authenticate(engine=engine, name="ann", password="a wrong guess").ok
    assert not authenticate(engine=engine, name="nobody-at-all", password="a wrong guess").ok
    assert authenticate(engine=engine, name="ann", password=PASSWORD).ok
    assert observer.calls == 3
    assert all(p["write_lock_free"] and p["writer_turn_free"] for p in observer.probes), observer.probes
    # The failed attempt was already counted when its hash was checked, and so
    # was the right one (cleared only after it matched).
    assert observer.probes[0]["failed_logins"] == 1
    assert observer.probes[2]["failed_logins"] == 2
    with session_scope(engine) as s:
        assert s.execute(select(User.failed_logins).where(User.name == "ann")).scalar_one() == 0


def test_locked_unknown_disabled_and_invite_only_accounts_all_spend_a_hash(engine, monkeypatch):
    create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    create_user(engine=engine, name="linkonly", role="annotator")
    set_active(engine=engine, user_id=create_user(engine=engine, name="gone", role="annotator", password=PASSWORD), active=False)
    for _ in range(accounts.MAX_FAILED_LOGINS):
        authenticate(engine=engine, name="ann", password="a wrong guess")
    observer = HashObserver(monkeypatch, lambda: None)
    answers = [authenticate(engine=engine, name=n, password=PASSWORD) for n in ("ann", "nobody", "gone", "linkonly")]
    assert observer.calls == 4  # the same ~190 ms of work for each: timing tells nothing
    assert not any(a.ok for a in answers)
    assert len({a.message for a in answers}) == 1


@pytest.mark.postgres
def test_no_row_lock_is_held_while_a_password_is_hashed_on_postgres(pg_url, monkeypatch):
    from rmgap_annot.db import get_engine, init_db

    init_db(pg_url)
    engine = get_engine(pg_url)
    create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    outside = create_engine(pg_url)

    def probe() -> dict:
        with outside.connect() as conn:
            conn.execute(text("SET lock_timeout = '1ms'"))
            try:
                n = conn.execute(text('SELECT failed_logins FROM "user" WHERE name = \'ann\' FOR UPDATE NOWAIT')).scalar_one()
                conn.rollback()
                return {"row_free": True, "failed_logins": n}
            except Exception:  # noqa: BLE001 - LockNotAvailable
                conn.rollback()
                return {"row_free": False}

    observer = HashObserver(monkeypatch, probe)
    assert not authenticate(engine=engine, name="ann", password="a wrong guess").ok
    assert observer.probes == [{"row_free": True, "failed_logins": 1}]
    outside.dispose()


def test_parallel_wrong_passwords_lock_the_account_after_five(backend_url, monkeypatch):
    """24 guesses at once: at most five are ever checked, then even the right password fails."""
    from rmgap_annot.db import get_engine, init_db

    init_db(backend_url)
    engine = get_engine(backend_url)
    create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    checked = []
    real = accounts.password_matches

    def counting(password_hash, password):  # noqa: ANN001, ANN202
        if password_hash != accounts._DUMMY_HASH:
            checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(accounts, "password_matches", counting)
    barrier = threading.Barrier(24)

    def guess(i: int) -> bool:
        barrier.wait()
        return authenticate(engine=engine, name="ann", password=f"wrong guess {i}").ok

    with ThreadPoolExecutor(24) as pool:
        assert not any(pool.map(guess, range(24)))
    assert len(checked) == accounts.MAX_FAILED_LOGINS
    assert not authenticate(engine=engine, name="ann", password=PASSWORD).ok


# --- server-side sessions ---------------------------------------------------------


def test_a_session_is_stored_hashed_and_resolves_to_its_user(engine, db_url):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    token = start_session(engine=engine, user_id=uid, via="password")
    assert len(token) >= 40
    path = _sqlite_path(db_url)
    stored = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    assert token.encode() not in stored
    who = resolve_session(engine=engine, token=token)
    assert who is not None and (who.user_id, who.name, who.role, who.via) == (uid, "ann", "annotator", "password")
    assert resolve_session(engine=engine, token=token + "x") is None
    assert resolve_session(engine=engine, token=None) is None
    end_session(engine=engine, token=token)
    assert resolve_session(engine=engine, token=token) is None


def test_a_session_idle_for_twelve_hours_is_dead_and_use_slides_it(engine):
    uid = create_user(engine=engine, name="ann", role="annotator")
    token = start_session(engine=engine, user_id=uid, via="invite")

    def age(hours: float) -> None:
        with session_scope(engine, write=True) as s:
            row = s.execute(select(AuthSession)).scalars().one()
            row.last_seen_at = utcnow() - timedelta(hours=hours)
            s.add(row)

    age(SESSION_IDLE_HOURS - 0.5)
    assert resolve_session(engine=engine, token=token) is not None  # used: slides
    with session_scope(engine) as s:
        seen = s.execute(select(AuthSession.last_seen_at)).scalar_one()
    assert seen > utcnow() - timedelta(minutes=1)
    age(SESSION_IDLE_HOURS + 0.1)
    assert resolve_session(engine=engine, token=token) is None
    assert count_sessions(engine=engine, user_id=uid) == 0
    # An idle session nobody comes back to is swept when a new one starts.
    stale = start_session(engine=engine, user_id=uid, via="invite")
    age(SESSION_IDLE_HOURS + 1)
    start_session(engine=engine, user_id=uid, via="password")
    assert count_sessions(engine=engine, user_id=uid) == 1
    assert resolve_session(engine=engine, token=stale) is None


def test_disable_revoke_and_password_change_end_sessions_at_once(engine):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    a = start_session(engine=engine, user_id=uid, via="password")
    set_active(engine=engine, user_id=uid, active=False)
    assert resolve_session(engine=engine, token=a) is None
    set_active(engine=engine, user_id=uid, active=True)
    assert resolve_session(engine=engine, token=a) is None  # enabling again does not revive it

    b = start_session(engine=engine, user_id=uid, via="invite")
    revoke_invites(engine=engine, user_id=uid)
    assert resolve_session(engine=engine, token=b) is None

    here, elsewhere = (start_session(engine=engine, user_id=uid, via="password") for _ in range(2))
    change_own_password(engine=engine, user_id=uid, current=PASSWORD, new="a brand new password", keep_session=here)
    assert resolve_session(engine=engine, token=here) is not None
    assert resolve_session(engine=engine, token=elsewhere) is None
    set_password(engine=engine, user_id=uid, password="set by a researcher")
    assert resolve_session(engine=engine, token=here) is None


def test_changing_ones_own_password_needs_the_current_one(engine):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    with pytest.raises(AccountError, match="current password"):
        change_own_password(engine=engine, user_id=uid, current="not it at all", new="a brand new password", keep_session=None)
    assert authenticate(engine=engine, name="ann", password=PASSWORD).ok
    link_only = create_user(engine=engine, name="bob", role="annotator")
    with pytest.raises(AccountError, match="invite link"):
        change_own_password(engine=engine, user_id=link_only, current="", new="a brand new password", keep_session=None)


def test_a_login_ticket_is_used_once_and_only_within_a_minute(engine):
    uid = create_user(engine=engine, name="ann", role="annotator")
    ticket = issue_ticket(engine=engine, user_id=uid, via="password")
    token = redeem_ticket(engine=engine, ticket=ticket)
    assert token and token != ticket
    assert resolve_session(engine=engine, token=token).user_id == uid
    assert redeem_ticket(engine=engine, ticket=ticket) is None
    late = issue_ticket(engine=engine, user_id=uid, via="password")
    with session_scope(engine, write=True) as s:
        row = s.execute(select(LoginTicket)).scalars().one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        s.add(row)
    assert redeem_ticket(engine=engine, ticket=late) is None
    disabled = issue_ticket(engine=engine, user_id=uid, via="password")
    set_active(engine=engine, user_id=uid, active=False)
    assert redeem_ticket(engine=engine, ticket=disabled) is None


def test_a_disabled_users_open_session_cannot_store_a_label(engine, benchmark_id):
    uid = create_user(engine=engine, name="ann", role="annotator")
    with session_scope(engine) as s:
        item_id = s.execute(select(Item.id).where(Item.benchmark_id == benchmark_id)).scalars().first()
        key = s.execute(text("SELECT key FROM response r JOIN item i ON i.record_pk = r.record_pk WHERE i.id = :i"),
                        {"i": item_id}).scalars().first()
    submit_label(engine=engine, user_id=uid, item_id=item_id, choice_key=key, naturalness=3)
    set_active(engine=engine, user_id=uid, active=False)
    with pytest.raises(LabelError, match="disabled"):
        submit_label(engine=engine, user_id=uid, item_id=item_id + 1, choice_key=None, reason="none_fits", naturalness=3)


# --- names and passwords ------------------------------------------------------------


def test_names_are_nfkc_normalised_and_look_alikes_refused(engine):
    create_user(engine=engine, name="alice", role="annotator", password=PASSWORD)
    for twin in ("\u0430lice", "ａｌｉｃｅ", "ALICE", "a\u200blice", "аlіcе"):
        with pytest.raises(AccountError):
            create_user(engine=engine, name=twin, role="annotator")
    uid = create_user(engine=engine, name="ｂｏｂ", role="annotator", password=PASSWORD)
    with session_scope(engine) as s:
        assert s.get(User, uid).name == "bob"
    assert authenticate(engine=engine, name="ｂｏｂ", password=PASSWORD).ok


def test_weak_passwords_are_refused_everywhere(engine):
    with pytest.raises(AccountError, match="8 characters"):
        create_user(engine=engine, name="ann", role="annotator", password="short")
    with pytest.raises(AccountError, match="spaces"):
        create_user(engine=engine, name="ann", role="annotator", password=" " * 8)
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    with pytest.raises(AccountError, match="spaces"):
        set_password(engine=engine, user_id=uid, password="\t" * 12)


def test_cli_disable_enable_and_set_password(cli, engine):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    token = start_session(engine=engine, user_id=uid, via="password")
    invite = create_invite(engine=engine, user_id=uid)
    result = cli("users", "disable", "ann")
    assert result.exit_code == 0, result.output
    assert resolve_session(engine=engine, token=token) is None
    assert not accounts.redeem_invite(engine=engine, token=invite).ok
    assert not authenticate(engine=engine, name="ann", password=PASSWORD).ok
    assert cli("users", "enable", "ann").exit_code == 0
    assert authenticate(engine=engine, name="ann", password=PASSWORD).ok
    weak = cli("users", "set-password", "ann", "--password-stdin", input="        \n")
    assert weak.exit_code == 2
    changed = cli("users", "set-password", "ann", "--password-stdin", input="another long one\n")
    assert changed.exit_code == 0, changed.output
    assert "another long one" not in changed.output
    assert authenticate(engine=engine, name="ann", password="another long one").ok
    assert cli("users", "disable", "nobody").exit_code == 2
    twin = cli("users", "add", "\u0430nn", "--role", "annotator", "--no-password")
    assert twin.exit_code == 2 and "looks like" in twin.output


def test_clearing_streamlits_caches_unlocks_nothing(engine):
    """Any visitor can make Streamlit clear st.cache_*: no lockout or session may live there."""
    import streamlit as st

    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    token = start_session(engine=engine, user_id=uid, via="password")
    for _ in range(accounts.MAX_FAILED_LOGINS):
        authenticate(engine=engine, name="ann", password="a wrong guess")
    st.cache_data.clear()
    st.cache_resource.clear()
    assert not authenticate(engine=engine, name="ann", password=PASSWORD).ok
    end_session(engine=engine, token=token)
    st.cache_resource.clear()
    assert resolve_session(engine=engine, token=token) is None
