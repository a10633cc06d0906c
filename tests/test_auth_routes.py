"""server.py's cookie routes, driven as ASGI (no browser): the flags on the cookie,
the 303s that keep an invite token out of the history, the one-use ticket."""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie

import pytest
from starlette.routing import Router

from rmgap_annot.accounts import create_invite, create_user
from rmgap_annot.sessions import COOKIE_NAME, issue_ticket, resolve_session, start_session


@pytest.fixture
def server(engine, db_url, monkeypatch):
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    import server as server_module

    return server_module


def call(app, method: str, path: str, *, query: str = "", body: bytes = b"", headers: dict | None = None) -> dict:
    """One HTTP request through an ASGI app; returns status, headers (lower-case, repeated as lists)."""
    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "scheme": "http", "server": ("127.0.0.1", 8501), "client": ("127.0.0.1", 5000), "root_path": "",
        "http_version": "1.1",
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    out: dict = {"status": start["status"], "headers": {}}
    for k, v in start["headers"]:
        out["headers"].setdefault(k.decode(), []).append(v.decode())
    return out


def session_cookie(response: dict):  # noqa: ANN201
    for raw in response["headers"].get("set-cookie", []):
        cookie = SimpleCookie(raw)
        if COOKIE_NAME in cookie:
            return cookie[COOKIE_NAME], raw.lower()
    return None, ""


def test_an_old_invite_link_is_redirected_before_any_page_loads(server):
    async def app(scope, receive, send):  # noqa: ANN001 - the page server behind the middleware
        raise AssertionError("the page must not be served with the token in its address")

    out = call(server.InviteLinkRedirect(app), "GET", "/", query="invite=abc123")
    assert out["status"] == 303
    assert out["headers"]["location"] == ["/auth/invite?token=abc123"]


def test_an_invite_becomes_an_httponly_strict_cookie_and_a_303_to_a_clean_address(server, engine):
    uid = create_user(engine=engine, name="bob", role="annotator")
    token = create_invite(engine=engine, user_id=uid)
    out = call(Router(server.ROUTES), "GET", "/auth/invite", query=f"token={token}")
    assert out["status"] == 303 and out["headers"]["location"] == ["/"]
    cookie, raw = session_cookie(out)
    assert "httponly" in raw and "samesite=strict" in raw and "secure" not in raw
    assert resolve_session(engine=engine, token=cookie.value).user_id == uid
    refused = call(Router(server.ROUTES), "GET", "/auth/invite", query="token=not-a-token")
    assert refused["status"] == 303 and token not in refused["headers"]["location"][0]
    assert session_cookie(refused)[0] is None


def test_the_cookie_is_secure_behind_a_tls_proxy(server, engine):
    uid = create_user(engine=engine, name="ann", role="annotator")
    ticket = issue_ticket(engine=engine, user_id=uid, via="password")
    out = call(Router(server.ROUTES), "POST", "/auth/session", body=f"ticket={ticket}".encode(),
               headers={"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-Proto": "https"})
    assert out["status"] == 204
    cookie, raw = session_cookie(out)
    assert "secure" in raw and "httponly" in raw
    assert resolve_session(engine=engine, token=cookie.value).user_id == uid
    again = call(Router(server.ROUTES), "POST", "/auth/session", body=f"ticket={ticket}".encode())
    assert again["status"] == 403 and session_cookie(again)[0] is None


def test_logout_ends_the_session_and_clears_the_cookie(server, engine):
    uid = create_user(engine=engine, name="ann", role="annotator")
    token = start_session(engine=engine, user_id=uid, via="password")
    out = call(Router(server.ROUTES), "GET", "/auth/logout", headers={"Cookie": f"{COOKIE_NAME}={token}"})
    assert out["status"] == 303
    assert resolve_session(engine=engine, token=token) is None
    cookie, raw = session_cookie(out)
    assert cookie is not None and cookie.value == "" and ("max-age=0" in raw or "expires" in raw)
