"""A crowd participant arriving through a study's public link (issue #14, items 1 and 8).

Real SQLite files (and PostgreSQL where arrivals race), the real server.py
middleware driven as ASGI, the real CLI.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from rmgap_annot.accounts import AccountError, create_user
from rmgap_annot.assignment import get_study, update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.crowd.arrival import ArrivalLimiter, ArrivalRefused, arrive, rotate_link
from rmgap_annot.crowd.links import new_study_token
from rmgap_annot.db import get_engine, init_db, session_scope
from rmgap_annot.models import StudyMember, User
from rmgap_annot.sessions import COOKIE_NAME, resolve_session
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.test_auth_routes import call, session_cookie

PID = "5f0c1e2d3a4b5c6d7e8f9a0b"
PID2 = "60aa11bb22cc33dd44ee55ff"


def open_link(engine, study_id: int) -> str:  # noqa: ANN001
    token = new_study_token()
    update_study(engine=engine, study_id=study_id, public_link=True, link_token=token)
    return token


@pytest.fixture
def study_id(engine, benchmark_id) -> int:
    return get_study(engine=engine, benchmark_id=benchmark_id).id


def prolific(token: str, pid: str = PID, session: str = "sess1") -> dict:
    return {"study": token, "PROLIFIC_PID": pid, "STUDY_ID": "st1", "SESSION_ID": session}


def members(engine) -> list[StudyMember]:  # noqa: ANN001
    with session_scope(engine) as s:
        return list(s.execute(select(StudyMember)).scalars())


def test_a_participant_arrives_as_a_password_less_annotator_with_the_platform_ids(engine, study_id):
    token = open_link(engine, study_id)
    arrived = arrive(engine=engine, params=prolific(token), limiter=ArrivalLimiter())
    assert arrived.created and arrived.study_id == study_id
    with session_scope(engine) as s:
        user = s.get(User, arrived.user_id)
        assert (user.name, user.role, user.password_hash, user.active) == (f"prolific:{PID}", "annotator", None, True)
    [m] = members(engine)
    assert (m.platform, m.participant_id, m.platform_study_id, m.platform_session_id, m.pseudonym_no) == (
        "prolific", PID, "st1", "sess1", 1)


def test_the_same_participant_on_two_devices_is_one_annotator(engine, study_id):
    token = open_link(engine, study_id)
    limiter = ArrivalLimiter()
    first = arrive(engine=engine, params=prolific(token), limiter=limiter)
    again = arrive(engine=engine, params=prolific(token, session="sess2"), limiter=limiter)
    assert again.user_id == first.user_id and not again.created
    [m] = members(engine)
    assert m.platform_session_id == "sess2"  # the latest session the platform sent


def test_a_closed_or_unknown_link_creates_nobody(engine, study_id):
    token = open_link(engine, study_id)
    update_study(engine=engine, study_id=study_id, public_link=False)
    with pytest.raises(ArrivalRefused) as exc:
        arrive(engine=engine, params=prolific(token), limiter=ArrivalLimiter())
    assert exc.value.code == "link"
    with pytest.raises(ArrivalRefused) as exc:
        arrive(engine=engine, params=prolific(new_study_token()), limiter=ArrivalLimiter())
    assert exc.value.code == "link"
    for bad in ({"study": token}, {"study": token, "PROLIFIC_PID": "{{%PROLIFIC_PID%}}"}, {"study": "short"}):
        with pytest.raises(ArrivalRefused):
            arrive(engine=engine, params=bad, limiter=ArrivalLimiter())
    assert members(engine) == []


def test_rotating_the_link_ends_the_old_one(engine, study_id):
    old = open_link(engine, study_id)
    arrive(engine=engine, params=prolific(old), limiter=ArrivalLimiter())
    new = rotate_link(engine=engine, study_id=study_id)
    assert new != old
    with pytest.raises(ArrivalRefused):
        arrive(engine=engine, params=prolific(old, pid=PID2), limiter=ArrivalLimiter())
    assert arrive(engine=engine, params=prolific(new, pid=PID2), limiter=ArrivalLimiter()).created


def test_a_participant_cannot_change_their_id_in_the_same_browser(engine, study_id):
    token = open_link(engine, study_id)
    first = arrive(engine=engine, params=prolific(token), limiter=ArrivalLimiter())
    with pytest.raises(ArrivalRefused) as exc:
        arrive(engine=engine, params=prolific(token, pid=PID2), current_user_id=first.user_id, limiter=ArrivalLimiter())
    assert exc.value.code == "switch"
    assert len(members(engine)) == 1


def test_a_study_takes_participants_of_one_platform(engine, study_id):
    token = open_link(engine, study_id)
    arrive(engine=engine, params=prolific(token), limiter=ArrivalLimiter())
    with pytest.raises(ArrivalRefused) as exc:
        arrive(engine=engine, params={"study": token, "pid": "someone"}, limiter=ArrivalLimiter())
    assert exc.value.code == "id"


def test_account_creation_is_rate_limited_per_address_and_per_link(engine, study_id):
    token = open_link(engine, study_id)
    now = [0.0]
    limiter = ArrivalLimiter(per_token=5, per_ip=2, clock=lambda: now[0])
    for i in range(2):
        arrive(engine=engine, params=prolific(token, pid=f"p{i}"), client="10.0.0.1", limiter=limiter)
    with pytest.raises(ArrivalRefused) as exc:
        arrive(engine=engine, params=prolific(token, pid="p2"), client="10.0.0.1", limiter=limiter)
    assert exc.value.code == "busy"
    # A returning participant is never limited; another address has its own window.
    assert not arrive(engine=engine, params=prolific(token, pid="p0"), client="10.0.0.1", limiter=limiter).created
    for i in range(3):
        arrive(engine=engine, params=prolific(token, pid=f"q{i}"), client=f"10.0.1.{i}", limiter=limiter)
    with pytest.raises(ArrivalRefused):  # the link's own limit: 5 in the minute
        arrive(engine=engine, params=prolific(token, pid="q9"), client="10.0.2.1", limiter=limiter)
    now[0] = 61.0  # a minute later both windows are free again
    assert arrive(engine=engine, params=prolific(token, pid="p2"), client="10.0.0.1", limiter=limiter).created
    assert len(members(engine)) == 6


def test_ordinary_accounts_cannot_take_a_participant_name(engine):
    for name in ("prolific:abc", "MTURK:A1B2", "Prolіfic:x", "generic:y"):  # one with a Cyrillic і
        with pytest.raises(AccountError, match="participants' namespace"):
            create_user(engine=engine, name=name, role="annotator")
    create_user(engine=engine, name="prolific fan", role="annotator")  # no colon: an ordinary name


def test_mturk_ids_that_look_alike_are_two_participants(engine, study_id):
    """The look-alike rule is for names people type; two workers' ids are two people."""
    token = open_link(engine, study_id)
    a = arrive(engine=engine, params={"study": token, "workerId": "A1B2C3", "assignmentId": "x", "hitId": "h"},
               limiter=ArrivalLimiter())
    b = arrive(engine=engine, params={"study": token, "workerId": "ALB2C3", "assignmentId": "y", "hitId": "h"},
               limiter=ArrivalLimiter())
    assert a.user_id != b.user_id


# --- the server route ----------------------------------------------------------------


@pytest.fixture
def server(engine, db_url, monkeypatch):
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    import server as server_module

    return server_module


def test_the_link_gives_a_session_cookie_and_a_clean_address(server, engine, study_id):
    token = open_link(engine, study_id)

    async def page(scope, receive, send):  # noqa: ANN001
        raise AssertionError("the page must not be served with the participant id in its address")

    query = f"study={token}&PROLIFIC_PID={PID}&STUDY_ID=st1&SESSION_ID=s1"
    out = call(server.StudyLinkArrival(page), "GET", "/", query=query)
    assert out["status"] == 303 and out["headers"]["location"] == ["/"]
    cookie, raw = session_cookie(out)
    assert cookie is not None and "httponly" in raw and "samesite=strict" in raw
    who = resolve_session(engine=engine, token=cookie.value)
    assert who.name == f"prolific:{PID}" and who.role == "annotator" and who.via == "study-link"
    # The same browser again keeps its session; another id in that browser is refused.
    again = call(server.StudyLinkArrival(page), "GET", "/", query=query, headers={"Cookie": f"{COOKIE_NAME}={cookie.value}"})
    assert again["status"] == 303 and session_cookie(again)[0].value == cookie.value
    other = call(server.StudyLinkArrival(page), "GET", "/", query=f"study={token}&PROLIFIC_PID={PID2}",
                 headers={"Cookie": f"{COOKIE_NAME}={cookie.value}"})
    assert other["headers"]["location"] == ["/?crowd=switch"] and session_cookie(other)[0] is None
    refused = call(server.StudyLinkArrival(page), "GET", "/", query=f"study={new_study_token()}&PROLIFIC_PID={PID2}")
    assert refused["headers"]["location"] == ["/?crowd=link"]


def test_other_requests_pass_through(server):
    seen = []

    async def page(scope, receive, send):  # noqa: ANN001
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    assert call(server.StudyLinkArrival(page), "GET", "/", query="")["status"] == 200
    assert call(server.StudyLinkArrival(page), "GET", "/_stcore/health", query="study=x")["status"] == 200
    assert seen == ["/", "/_stcore/health"]


# --- the CLI ---------------------------------------------------------------------------


def test_crowd_link_needs_the_public_link_and_rotate_replaces_it(cli, db_url, small_file):
    engine = get_engine(db_url)
    import_benchmark(engine=engine, path=small_file, name="small")
    off = cli("crowd", "link")
    assert off.exit_code == 2 and "--public-link on" in off.output
    assert cli("study", "set", "--public-link", "on").exit_code == 0
    first = cli("crowd", "link", "--url", "https://annot.example.org/")
    token = get_study(engine=engine, benchmark_id=1).link_token
    assert first.exit_code == 0
    assert first.stdout.strip() == (f"https://annot.example.org/?study={token}&PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}"
                                    "&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}")
    generic = cli("crowd", "link", "--platform", "generic")
    assert generic.stdout.strip().endswith(f"?study={token}&pid=PARTICIPANT_ID")
    rotated = cli("crowd", "link", "--rotate")
    new = get_study(engine=engine, benchmark_id=1).link_token
    assert rotated.exit_code == 0 and new != token and f"study={new}" in rotated.stdout
    assert cli("crowd", "link", "--platform", "nope").exit_code == 2
    # Bad arguments with --rotate rotate nothing: the link already pasted keeps working.
    assert cli("crowd", "link", "--rotate", "--platform", "nope").exit_code == 2
    assert cli("crowd", "link", "--rotate", "--url", "annot.example.org").exit_code == 2
    assert get_study(engine=engine, benchmark_id=1).link_token == new


def test_crowd_link_writes_the_mturk_hit_layout(cli, db_url, small_file, tmp_path):
    engine = get_engine(db_url)
    import_benchmark(engine=engine, path=small_file, name="small")
    assert cli("study", "set", "--public-link", "on").exit_code == 0
    token = get_study(engine=engine, benchmark_id=1).link_token
    plain = cli("crowd", "link", "--platform", "mturk", "--url", "https://annot.example.org/")
    assert plain.exit_code == 0 and plain.stdout.strip() == f"https://annot.example.org/?study={token}"
    assert "--hit-layout" in plain.stderr  # the researcher learns the link needs a HIT around it
    folder = tmp_path / "layouts"
    folder.mkdir()
    out = folder / "hit.html"
    made = cli("crowd", "link", "--platform", "mturk", "--url", "https://annot.example.org/", "--hit-layout", str(out))
    assert made.exit_code == 0, made.output
    layout = out.read_text(encoding="utf-8")
    assert f'href="https://annot.example.org/?study={token}"' in layout and 'name="completion_code"' in layout
    assert [p.name for p in folder.iterdir()] == ["hit.html"]  # no partial file left beside it
    wrong = cli("crowd", "link", "--hit-layout", str(folder / "p.html"))  # Prolific takes the link itself
    assert wrong.exit_code == 2 and "--platform mturk" in wrong.output and not (folder / "p.html").exists()
    unwritable = cli("crowd", "link", "--platform", "mturk", "--hit-layout", str(folder / "no" / "hit.html"))
    assert unwritable.exit_code == 1 and "cannot write the HIT layout" in unwritable.output


# --- PostgreSQL: two devices of one participant at once ----------------------------------


def test_simultaneous_arrivals_of_one_participant_make_one_annotator(backend_url, tmp_path):
    init_db(backend_url)
    engine = get_engine(backend_url)
    path = write_jsonl(tmp_path / "b.jsonl", make_records({"Chat": 1}, seed=3, long_text=False))
    bid = import_benchmark(engine=engine, path=path, name="b").benchmark_id
    token = open_link(engine, get_study(engine=engine, benchmark_id=bid).id)
    limiter = ArrivalLimiter()
    results, errors = [], []
    barrier = threading.Barrier(6)

    def go(i: int) -> None:
        try:
            barrier.wait()
            results.append(arrive(engine=engine, params=prolific(token, session=f"s{i}"), limiter=limiter).user_id)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert len(members(engine)) == 1


def test_the_arrival_limits_come_from_the_environment(monkeypatch):
    from rmgap_annot.settings import arrivals_per_minute

    assert arrivals_per_minute() == (120, 20)
    monkeypatch.setenv("RMGAP_ANNOT_ARRIVALS_PER_MINUTE", "500")
    monkeypatch.setenv("RMGAP_ANNOT_ARRIVALS_PER_IP", "0")  # not positive: the default stands
    assert arrivals_per_minute() == (500, 20)
