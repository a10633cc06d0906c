"""A participant arriving through a study's public link: find or create their annotator, record the platform's ids.

The link is public (pasted into a recruitment page), so whoever holds it can
arrive; what keeps strangers in their place is that an arrival only ever
makes an annotator of that one study, keyed by (platform, participant id):
the same participant on two devices is one annotator, and the same id can
never be taken by an ordinary account (``accounts.validate_name`` refuses
the participants' namespace). The account is created here directly, not
through ``accounts.add_user``: its look-alike rule is for names people type
and would refuse MTurk's ``A1B2`` next to ``ALB2``.

Account creation is rate-limited in the process (``ArrivalLimiter``): at
most ``PER_TOKEN_PER_MINUTE`` new participants per study link and
``PER_IP_PER_MINUTE`` per client address in any 60 seconds (120 and 20;
``settings.arrivals_per_minute`` reads overrides from the environment). Returning
participants are never limited. The limit lives in memory: it is meant to
blunt a script creating accounts, not to count across restarts or servers
(behind several app servers each one applies it).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from rmgap_annot.crowd.links import LinkError, new_study_token, parse_arrival
from rmgap_annot.db import session_scope
from rmgap_annot.models import Study, StudyMember, User, utcnow
from rmgap_annot.settings import arrivals_per_minute
from rmgap_annot.studies import ensure_member

PER_TOKEN_PER_MINUTE, PER_IP_PER_MINUTE = arrivals_per_minute()  # 120 and 20 unless the environment says otherwise
WINDOW_SECONDS = 60.0

# Why an arrival was refused, as a short word the login page turns into a
# fixed sentence (the address never carries free text a stranger could write).
REFUSALS = {
    "link": "This study link is not valid or the study is closed. Open the study again from the platform's page, "
            "or contact the researcher.",
    "id": "The link does not carry a valid participant id. Open the study from the platform's page.",
    "busy": "Many participants are arriving at once. Please wait a minute and open the study link again.",
    "switch": "This browser already takes part in the study under another participant id. "
              "Use the link the platform gave you, or contact the researcher.",
    "closed": "Your account for this study is no longer active. Contact the researcher.",
}


class ArrivalRefused(Exception):
    """An arrival that creates no session; ``code`` is a key of REFUSALS, ``detail`` the reason for the log."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or REFUSALS[code])
        self.code = code
        self.detail = detail or REFUSALS[code]


class ArrivalLimiter:
    """Sliding one-minute windows of new accounts, per study token and per client address (thread-safe)."""

    def __init__(self, *, per_token: int = PER_TOKEN_PER_MINUTE, per_ip: int = PER_IP_PER_MINUTE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_token, self.per_ip, self.clock = per_token, per_ip, clock
        self._seen: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()

    def _window(self, key: tuple[str, str], now: float) -> deque:
        q = self._seen.setdefault(key, deque())
        while q and q[0] <= now - WINDOW_SECONDS:
            q.popleft()
        return q

    def allow(self, *, token: str, client: Optional[str]) -> bool:
        """Whether one more account may be created now; counts it when so."""
        now = self.clock()
        with self._lock:
            keys = [(("token", token), self.per_token)]
            if client:
                keys.append((("ip", client), self.per_ip))
            windows = [(self._window(k, now), limit) for k, limit in keys]
            if any(len(q) >= limit for q, limit in windows):
                return False
            for q, _ in windows:
                q.append(now)
            # Forget empty windows, so a flood of addresses does not grow memory for ever.
            for key in [k for k, q in self._seen.items() if not q]:
                del self._seen[key]
            return True


LIMITER = ArrivalLimiter()


@dataclass(frozen=True)
class Arrived:
    user_id: int
    study_id: int
    created: bool  # a new annotator (False: a returning participant)


def study_platform(session, study_id: int) -> Optional[str]:  # noqa: ANN001
    """The platform the study's participants come from: the first crowd member's, or None before anyone arrived.

    A study runs on one platform; a Prolific participant who edits the link
    into ``pid=...`` would otherwise become a second annotator the platform
    knows nothing of.
    """
    return session.execute(
        select(StudyMember.platform).where(StudyMember.study_id == study_id, StudyMember.platform.is_not(None))
        .order_by(StudyMember.id).limit(1)
    ).scalar_one_or_none()


def arrive(*, engine: Engine, params: Mapping[str, object], client: Optional[str] = None,
           current_user_id: Optional[int] = None, limiter: ArrivalLimiter = LIMITER) -> Arrived:
    """The annotator for whoever opened the study link with ``params`` (the query), created on their first visit.

    ``current_user_id`` is who this browser is already logged in as (from
    its session cookie): a participant of the same study arriving under
    another id is refused, so nobody changes their participant id without a
    new link. Raises ArrivalRefused with the reason.
    """
    try:
        first = parse_arrival(params)
    except LinkError as exc:
        raise ArrivalRefused("id" if "participant" in str(exc) or "worker" in str(exc) else "link", str(exc)) from None
    if first is None:
        raise ArrivalRefused("link", "no study token")
    for attempt in range(2):  # a second try after another server created the same participant at once
        try:
            return _arrive(engine=engine, params=params, token=first.token, client=client,
                           current_user_id=current_user_id, limiter=limiter)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _arrive(*, engine: Engine, params: Mapping[str, object], token: str, client: Optional[str],
            current_user_id: Optional[int], limiter: ArrivalLimiter) -> Arrived:
    with session_scope(engine, write=True) as session:
        # Locked on PostgreSQL, so two devices of one participant arriving together make one member.
        study = session.execute(select(Study).where(Study.link_token == token).with_for_update()).scalars().first()
        if study is None or not study.public_link:
            raise ArrivalRefused("link", "unknown study token, or the study's public link is off")
        try:
            arrival = parse_arrival(params, platform=study_platform(session, study.id))
        except LinkError as exc:
            raise ArrivalRefused("id", str(exc)) from None
        if current_user_id is not None:
            mine = session.execute(select(StudyMember).where(
                StudyMember.study_id == study.id, StudyMember.user_id == current_user_id)).scalars().first()
            if mine is not None and mine.participant_id is not None and (
                    mine.participant_id, mine.platform) != (arrival.participant_id, arrival.platform):
                raise ArrivalRefused("switch", "this browser is another participant of the study")
        user = session.execute(select(User).where(User.name == arrival.user_name)).scalars().first()
        created = False
        if user is None:
            if not limiter.allow(token=token, client=client):
                raise ArrivalRefused("busy", "too many new participants in the last minute")
            user = User(name=arrival.user_name, role="annotator", password_hash=None)
            session.add(user)
            session.flush()
            created = True
        elif not user.active or user.role != "annotator":
            raise ArrivalRefused("closed", "the participant's account is disabled")
        member = session.execute(select(StudyMember).where(
            StudyMember.study_id == study.id, StudyMember.user_id == user.id)).scalars().first()
        if member is None:
            member = ensure_member(session, study_id=study.id, user_id=user.id, platform=arrival.platform,
                                   participant_id=arrival.participant_id, joined_at=utcnow())
        # The latest study and session ids the platform sent (a participant may return in a new session).
        member.platform_study_id = arrival.platform_study_id or member.platform_study_id
        member.platform_session_id = arrival.platform_session_id or member.platform_session_id
        session.add(member)
        return Arrived(user_id=user.id, study_id=study.id, created=created)


def rotate_link(*, engine: Engine, study_id: int) -> str:
    """A fresh token for the study's link: the old link stops working at once (those who arrived keep their sessions)."""
    with session_scope(engine, write=True) as session:
        study = session.execute(select(Study).where(Study.id == study_id).with_for_update()).scalars().one()
        study.link_token = new_study_token()
        study.updated_at = utcnow()
        session.add(study)
        return study.link_token
