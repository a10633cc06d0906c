"""The app as an ASGI application: ``app.py``'s pages plus the routes that own the login cookie.

Start it with ``streamlit run server.py`` (Streamlit finds the ``st.App``
below and serves it with uvicorn; every ``--server.*`` flag still applies).

The page script cannot set an HttpOnly cookie, so these routes do:

- ``POST /auth/session`` (body ``ticket=...``): the browser posts the one-use
  ticket the page script gave it after a password or SSO login, and gets the
  session cookie.
- ``GET /auth/invite?token=...``: exchanges a personal invite link for a
  session and answers 303 to ``/``, so the token is never left in the
  address bar or the history. Old ``/?invite=TOKEN`` links are sent here
  first (also with a 303).
- ``GET /auth/logout``: ends the session and clears the cookie.
- ``GET /?study=TOKEN&PROLIFIC_PID=...`` (a crowd study's public link, any
  path): finds or creates the participant's annotator
  (``crowd.arrival.arrive``), starts a session and answers 303 to ``/``, so
  the participant id is not left in the address bar; a refused arrival goes
  to ``/?crowd=REASON`` and the login page says what to do.

The cookie is HttpOnly, SameSite=Strict, and Secure when the request came
over https (directly or through a reverse proxy's ``X-Forwarded-Proto``).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from rmgap_annot import sessions
from rmgap_annot.accounts import redeem_invite
from rmgap_annot.crowd import arrival
from rmgap_annot.db import get_engine
from rmgap_annot.db_guard import DatabaseUnavailable, ensure_ready, require_existing_file
from rmgap_annot.settings import resolve_db_url

sessions.ROUTES_MOUNTED = True
LOG = logging.getLogger("rmgap_annot.server")


def _engine():  # noqa: ANN202
    """The same process-wide engine the pages use, after the same database check.

    A route never creates a database: a missing or replaced SQLite file, or a
    schema behind, raises ``DatabaseUnavailable`` (answered with a 503 below).
    """
    url = resolve_db_url()
    require_existing_file(url)
    engine = get_engine(url)
    ensure_ready(engine)
    return engine


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """What a route answers when the database is gone or behind (never a traceback, never a path)."""
    return PlainTextResponse(getattr(exc, "public", "The database is not available."), status_code=503,
                             headers={"Cache-Control": "no-store"})


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"


def _with_cookie(response: Response, request: Request, token: str) -> Response:
    # No Max-Age: the browser drops it when it closes; the server ends it
    # after SESSION_IDLE_HOURS idle either way.
    response.set_cookie(sessions.COOKIE_NAME, token, path="/", httponly=True, samesite="strict", secure=_secure(request))
    response.headers["Cache-Control"] = "no-store"
    return response


async def session_from_ticket(request: Request) -> Response:
    body = (await request.body()).decode("utf-8", "replace")
    ticket = (parse_qs(body).get("ticket") or [""])[0]
    token = await run_in_threadpool(lambda: sessions.redeem_ticket(engine=_engine(), ticket=ticket)) if ticket else None
    if token is None:
        return Response("This login has expired; log in again.", status_code=403, headers={"Cache-Control": "no-store"})
    return _with_cookie(Response(status_code=204), request, token)


def _exchange_invite(invite: str) -> str | None:
    engine = _engine()
    result = redeem_invite(engine=engine, token=invite)
    if not result.ok:
        return None
    return sessions.start_session(engine=engine, user_id=result.user_id, via="invite")


async def session_from_invite(request: Request) -> Response:
    invite = request.query_params.get("token", "")
    token = await run_in_threadpool(_exchange_invite, invite) if invite else None
    if token is None:
        # The login page explains; the token itself is not carried along.
        return RedirectResponse("/?" + urlencode({"login": "invite-refused"}), status_code=303,
                                headers={"Cache-Control": "no-store"})
    return _with_cookie(RedirectResponse("/", status_code=303), request, token)


async def logout(request: Request) -> Response:
    token = request.cookies.get(sessions.COOKIE_NAME)
    if token:
        await run_in_threadpool(lambda: sessions.end_session(engine=_engine(), token=token))
    response = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_secure(request))
    # Streamlit's own SSO identity cookies too, or the login page would turn
    # the still-known SSO identity straight into a new session.
    for name in request.cookies:
        if name.startswith("_streamlit_user"):
            response.delete_cookie(name, path="/")
    return response


class InviteLinkRedirect:
    """Sends ``/any-page?invite=TOKEN`` (the links already handed out) to ``/auth/invite``.

    A 303 on the very first request means the browser never records the
    address with the token in its history.
    """

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http" and scope["method"] == "GET" and b"invite=" in scope.get("query_string", b""):
            query = parse_qs(scope["query_string"].decode("latin-1"))
            if "invite" in query and not scope["path"].startswith(("/_stcore", "/static", "/media", "/auth/")):
                target = "/auth/invite?" + urlencode({"token": query["invite"][0]})
                await RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _client(scope) -> str | None:  # noqa: ANN001
    """The client's address for the arrival rate limit: a reverse proxy's X-Forwarded-For first hop, else the peer.

    A forged header only moves a client into another per-address window; the
    per-link limit still caps account creation.
    """
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            first = value.decode("latin-1").split(",")[0].strip()
            if first:
                return first
    client = scope.get("client")
    return client[0] if client else None


def _arrive(params: dict, client: str | None, cookie: str | None) -> tuple[str | None, str | None]:
    """(session token, refusal code) for a study-link arrival."""
    engine = _engine()
    who = sessions.resolve_session(engine=engine, token=cookie) if cookie else None
    try:
        arrived = arrival.arrive(engine=engine, params=params, client=client,
                                 current_user_id=who.user_id if who is not None else None)
    except arrival.ArrivalRefused as exc:
        LOG.info("study link refused (%s): %s", exc.code, exc.detail)  # the researcher's clue; the page says less
        return None, exc.code
    if cookie and who is not None and who.user_id == arrived.user_id:
        return cookie, None  # the same participant again in this browser: keep the session
    if cookie:
        sessions.end_session(engine=engine, token=cookie)  # one browser, one login
    return sessions.start_session(engine=engine, user_id=arrived.user_id, via="study-link"), None


class StudyLinkArrival:
    """Turns ``/?study=TOKEN&<participant id>`` into a session cookie and a clean ``/`` (303).

    Handled before Streamlit sees the request, so the participant id never
    reaches the page's address, its history entry or the page script.
    """

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http" and scope["method"] == "GET" and b"study=" in scope.get("query_string", b""):
            query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            if "study" in query and not scope["path"].startswith(("/_stcore", "/static", "/media", "/auth/")):
                request = Request(scope)
                cookie = request.cookies.get(sessions.COOKIE_NAME)
                params = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
                try:
                    token, refused = await run_in_threadpool(_arrive, params, _client(scope), cookie)
                except DatabaseUnavailable as exc:
                    await (await _database_unavailable(request, exc))(scope, receive, send)
                    return
                if token is None:
                    response = RedirectResponse("/?" + urlencode({"crowd": refused}), status_code=303,
                                                headers={"Cache-Control": "no-store"})
                else:
                    response = _with_cookie(RedirectResponse("/", status_code=303), request, token)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


ROUTES = [
    Route("/auth/session", session_from_ticket, methods=["POST"]),
    Route("/auth/invite", session_from_invite, methods=["GET"]),
    Route("/auth/logout", logout, methods=["GET", "POST"]),
]

app = st.App("app.py", routes=ROUTES, middleware=[Middleware(InviteLinkRedirect), Middleware(StudyLinkArrival)],
             exception_handlers={DatabaseUnavailable: _database_unavailable})
