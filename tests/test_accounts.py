"""Accounts: hashing, lockout, invites, SSO mapping, all on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from rmgap_annot import accounts
from rmgap_annot.accounts import (
    AccountError,
    authenticate,
    create_invite,
    create_user,
    redeem_invite,
    revoke_invites,
    set_active,
    set_password,
)
from rmgap_annot.db import session_scope
from rmgap_annot.models import Invite, User, utcnow
from rmgap_annot.sso import SsoOptions, sso_enabled, sso_options, user_for_identity

PASSWORD = "correct horse battery"


def _db_bytes(db_url: str) -> bytes:
    """The database file and its WAL, where a clear-text secret would show up."""
    path = Path(db_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_password_is_stored_as_argon2id_hash_only(engine, db_url):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    with session_scope(engine) as s:
        stored = s.get(User, uid).password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD.encode() not in _db_bytes(db_url)
    assert authenticate(engine=engine, name="ann", password=PASSWORD).ok


def test_wrong_password_and_unknown_user_get_the_same_message(engine):
    create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    wrong = authenticate(engine=engine, name="ann", password="nope-nope")
    unknown = authenticate(engine=engine, name="nobody", password="nope-nope")
    assert not wrong.ok and not unknown.ok
    assert wrong.message == unknown.message
    assert wrong.user_id is None and wrong.role is None


def test_lockout_after_repeated_failures_even_with_the_right_password(engine):
    create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    for _ in range(accounts.MAX_FAILED_LOGINS):
        assert not authenticate(engine=engine, name="ann", password="guess-guess").ok
    locked = authenticate(engine=engine, name="ann", password=PASSWORD)
    assert not locked.ok
    # A locked account answers exactly like an unknown name (no enumeration).
    assert locked.message == authenticate(engine=engine, name="nobody", password=PASSWORD).message
    assert "locked" in locked.message


def test_lockout_expires(engine):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    for _ in range(accounts.MAX_FAILED_LOGINS):
        authenticate(engine=engine, name="ann", password="guess-guess")
    # Move the lock into the past instead of sleeping LOCKOUT_SECONDS.
    with session_scope(engine, write=True) as s:
        user = s.get(User, uid)
        assert user.locked_until is not None
        user.locked_until = utcnow() - timedelta(seconds=1)
        s.add(user)
    result = authenticate(engine=engine, name="ann", password=PASSWORD)
    assert result.ok and result.user_id == uid and result.role == "annotator"


def test_success_resets_the_failure_count(engine):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    for _ in range(accounts.MAX_FAILED_LOGINS - 1):
        authenticate(engine=engine, name="ann", password="guess-guess")
    assert authenticate(engine=engine, name="ann", password=PASSWORD).ok
    with session_scope(engine) as s:
        assert s.get(User, uid).failed_logins == 0
    assert not authenticate(engine=engine, name="ann", password="guess-guess").ok
    assert authenticate(engine=engine, name="ann", password=PASSWORD).ok


def test_invite_only_and_disabled_accounts_cannot_log_in_with_a_password(engine):
    create_user(engine=engine, name="linkonly", role="annotator", password=None)
    assert not authenticate(engine=engine, name="linkonly", password="").ok
    assert not authenticate(engine=engine, name="linkonly", password="anything-at-all").ok
    uid = create_user(engine=engine, name="gone", role="annotator", password=PASSWORD)
    set_active(engine=engine, user_id=uid, active=False)
    assert not authenticate(engine=engine, name="gone", password=PASSWORD).ok


def test_duplicate_names_and_bad_roles_are_refused(engine):
    create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    with pytest.raises(AccountError):
        create_user(engine=engine, name="ann", role="annotator")
    with pytest.raises(AccountError):
        create_user(engine=engine, name="x", role="admin")
    with pytest.raises(AccountError):
        create_user(engine=engine, name="   ", role="annotator")


def test_set_password_refuses_short_ones_and_lifts_a_lock(engine):
    uid = create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)
    with pytest.raises(AccountError):
        set_password(engine=engine, user_id=uid, password="short")
    for _ in range(accounts.MAX_FAILED_LOGINS):
        authenticate(engine=engine, name="ann", password="guess-guess")
    set_password(engine=engine, user_id=uid, password="a new long password")
    assert authenticate(engine=engine, name="ann", password="a new long password").ok
    assert not authenticate(engine=engine, name="ann", password=PASSWORD).ok


def test_invite_token_is_stored_hashed_and_logs_in(engine, db_url):
    uid = create_user(engine=engine, name="ann", role="annotator")
    token = create_invite(engine=engine, user_id=uid)
    assert len(token) >= 32
    assert token.encode() not in _db_bytes(db_url)
    result = redeem_invite(engine=engine, token=token)
    assert result.ok and result.user_id == uid and result.role == "annotator"
    assert not redeem_invite(engine=engine, token=token + "x").ok
    assert not redeem_invite(engine=engine, token="").ok


def test_tokens_are_unique(engine):
    uid = create_user(engine=engine, name="ann", role="annotator")
    tokens = {create_invite(engine=engine, user_id=uid) for _ in range(20)}
    assert len(tokens) == 20


def test_expired_and_revoked_invites_are_refused(engine):
    uid = create_user(engine=engine, name="ann", role="annotator")
    expired = create_invite(engine=engine, user_id=uid, ttl_days=0)
    assert not redeem_invite(engine=engine, token=expired).ok
    live = create_invite(engine=engine, user_id=uid)
    other = create_invite(engine=engine, user_id=create_user(engine=engine, name="bob", role="annotator"))
    assert revoke_invites(engine=engine, user_id=uid) >= 1
    refused = redeem_invite(engine=engine, token=live)
    assert not refused.ok and "revoked" in refused.message
    assert redeem_invite(engine=engine, token=other).ok  # only that user's links die


def test_disabling_a_user_revokes_their_links(engine):
    uid = create_user(engine=engine, name="ann", role="annotator")
    token = create_invite(engine=engine, user_id=uid)
    set_active(engine=engine, user_id=uid, active=False)
    assert not redeem_invite(engine=engine, token=token).ok
    with session_scope(engine) as s:
        assert all(i.revoked_at is not None for i in s.execute(select(Invite)).scalars())


def test_invite_for_missing_user_is_an_account_error(engine):
    with pytest.raises(AccountError):
        create_invite(engine=engine, user_id=12345)


def test_cli_reads_password_from_stdin_and_never_prints_it(cli, engine, db_url):
    result = cli("users", "add", "ann", "--role", "annotator", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert authenticate(engine=engine, name="ann", password=PASSWORD).ok
    short = cli("users", "add", "bob", "--password-stdin", input="short\n")
    assert short.exit_code == 2
    assert "8 characters" in short.output


# --- single sign-on mapping ----------------------------------------------------


def test_sso_is_off_without_an_auth_section():
    assert not sso_enabled({})
    assert not sso_enabled({"auth": {}})
    assert sso_enabled({"auth": {"redirect_uri": "http://localhost:8501/oauth2callback"}})

    class Unreadable:
        def __contains__(self, key):
            raise FileNotFoundError("no secrets.toml")

    assert not sso_enabled(Unreadable())


def test_sso_maps_identity_to_existing_account_with_its_database_role(engine):
    uid = create_user(engine=engine, name="Prof@Lab.example.org", role="researcher")
    result = user_for_identity(engine=engine, email="prof@lab.example.org", email_verified=True)
    assert result.ok and result.user_id == uid and result.role == "researcher"


def test_sso_refuses_unknown_unverified_and_disabled(engine):
    assert not user_for_identity(engine=engine, email="who@else.org").ok
    assert "users add" in user_for_identity(engine=engine, email="who@else.org").message
    assert not user_for_identity(engine=engine, email=None).ok
    uid = create_user(engine=engine, name="a@lab.org", role="annotator")
    assert not user_for_identity(engine=engine, email="a@lab.org", email_verified=False).ok
    set_active(engine=engine, user_id=uid, active=False)
    assert not user_for_identity(engine=engine, email="a@lab.org").ok


def test_sso_auto_creates_only_annotators_from_listed_domains(engine):
    opts = sso_options({"rmgap_sso": {"auto_create_domains": ["@Lab.org"]}})
    assert opts == SsoOptions(auto_create_domains=("lab.org",))
    first = user_for_identity(engine=engine, email="new@lab.org", options=opts)
    assert first.ok and first.role == "annotator"
    again = user_for_identity(engine=engine, email="NEW@lab.org", options=opts)
    assert again.ok and again.user_id == first.user_id
    assert not user_for_identity(engine=engine, email="x@evil.org", options=opts).ok
    assert not user_for_identity(engine=engine, email="x@sub.lab.org.evil.org", options=opts).ok


def test_invite_links_point_at_the_app_root_not_the_current_page():
    from rmgap_annot.accounts import app_root, invite_link

    assert invite_link(app_root("http://host:8501/team?x=1"), "tok") == "http://host:8501/?invite=tok"
    assert app_root("https://lab.example.org/annot/team", base_path="/annot/") == "https://lab.example.org/annot/"
    assert app_root("http://host:8501/") == "http://host:8501/"
