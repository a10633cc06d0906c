"""A crowd participant's stream (issue #14, items 2-5): consent, qualification, checks among real items, the end.

Real SQLite files (PostgreSQL for the stream's locked claim), real imports,
the real CLI; check answers must land in CheckLabel and never in Label.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rmgap_annot import annotation as ann
from rmgap_annot.assignment import get_study, update_study
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.crowd import stream
from rmgap_annot.crowd.arrival import ArrivalLimiter, arrive
from rmgap_annot.crowd.checks_store import import_checks, study_shape
from rmgap_annot.crowd.links import new_study_token
from rmgap_annot.db import get_engine, init_db, session_scope
from rmgap_annot.models import CheckItem, CheckLabel, Label, StudyMember, utcnow
from rmgap_annot.synthetic import make_records, write_jsonl


def check_rows(n: int, *, prefix: str = "c", expected: str = "a") -> list[dict]:
    """n attention checks in RMGAP's shape: four responses, one obviously right."""
    return [{"id": f"{prefix}{i}", "prompt": f"Please answer with the word yes ({prefix}{i}).",
             "responses": [{"key": "a", "text": f"yes ({i})"}, {"key": "b", "text": f"no ({i})"},
                           {"key": "c", "text": f"maybe ({i})"}, {"key": "d", "text": f"later ({i})"}],
             "expected": expected, "explanation": "The request asks for yes."} for i in range(n)]


def write_checks(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def crowd_study(engine, benchmark_id: int, **settings) -> tuple[int, str]:  # noqa: ANN001, ANN003
    """The benchmark's study with its public link on and the given settings; (study id, token)."""
    sid = get_study(engine=engine, benchmark_id=benchmark_id).id
    token = new_study_token()
    update_study(engine=engine, study_id=sid, public_link=True, link_token=token, completion_code="DONE123",
                 screenout_code="OUT456", **settings)
    return sid, token


def participant(engine, token: str, pid: str) -> int:  # noqa: ANN001
    return arrive(engine=engine, params={"study": token, "PROLIFIC_PID": pid}, limiter=ArrivalLimiter()).user_id


def answer(engine, uid: int, entry: int, *, right: bool | None = None) -> None:  # noqa: ANN001
    """Label an entry the way the page does; for a check, ``right`` picks an expected key or not."""
    view = ann.item_for_annotator(engine=engine, user_id=uid, item_id=entry)
    if stream.is_check_entry(entry):
        with session_scope(engine) as s:
            expected = json.loads(s.get(CheckItem, -entry).expected_json)
        choice = next(k for k in view.keys if (k in expected) == bool(right))
    else:
        choice = view.keys[0]
    ann.submit_label(engine=engine, user_id=uid, item_id=entry, choice_key=choice, naturalness=4,
                     displayed_order=list(view.keys))


def run_stream(engine, uid: int, sid: int, *, check_right: bool = True, limit: int = 50) -> list[int]:  # noqa: ANN001
    entries = []
    for _ in range(limit):
        entry = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
        if entry is None:
            break
        entries.append(entry)
        answer(engine, uid, entry, right=check_right)
    return entries


def counts(engine) -> tuple[int, int]:  # noqa: ANN001
    with session_scope(engine) as s:
        return (s.execute(select(func.count()).select_from(Label)).scalar_one(),
                s.execute(select(func.count()).select_from(CheckLabel)).scalar_one())


# --- checks import --------------------------------------------------------------------


def test_checks_import_is_idempotent_and_edits_in_place(engine, benchmark_id, tmp_path):
    sid = get_study(engine=engine, benchmark_id=benchmark_id).id
    assert study_shape(engine=engine, study_id=sid) == stream_shape(4, "prompt")
    path = write_checks(tmp_path / "c.jsonl", check_rows(3))
    first = import_checks(engine=engine, study_id=sid, path=path)
    assert (first.added, first.changed, first.unchanged, first.total) == (3, 0, 0, 3)
    again = import_checks(engine=engine, study_id=sid, path=path)
    assert (again.added, again.changed, again.unchanged) == (0, 0, 3)
    rows = check_rows(4)
    rows[1]["expected"] = "b"
    edited = import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "c2.jsonl", rows))
    assert (edited.added, edited.changed, edited.unchanged, edited.total) == (1, 1, 2, 4)
    with session_scope(engine) as s:
        assert json.loads(s.execute(select(CheckItem.expected_json).where(CheckItem.check_id == "c1")).scalar_one()) == ["b"]
    qual = import_checks(engine=engine, study_id=sid, path=path, kind="qualification")
    assert (qual.kind, qual.added, qual.total) == ("qualification", 3, 3)  # kinds are apart


def stream_shape(n: int, context: str):  # noqa: ANN201
    from rmgap_annot.crowd.checks_store import StudyShape

    return StudyShape(n_candidates=n, context=context)


def test_a_bad_check_file_writes_nothing_and_names_file_and_line(cli, db_url, small_file, tmp_path):
    engine = get_engine(db_url)
    import_benchmark(engine=engine, path=small_file, name="small")
    rows = check_rows(3)
    rows[2]["responses"] = rows[2]["responses"][:2]  # a pairwise check in a four-response study
    path = write_checks(tmp_path / "bad.jsonl", rows)
    out = cli("checks", "import", str(path))
    assert out.exit_code == 2
    assert f"{path}:3: responses: holds 2 response(s); this study's items have 4" in out.output
    assert counts(engine) == (0, 0)
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(CheckItem)).scalar_one() == 0
    good = cli("checks", "import", str(write_checks(tmp_path / "ok.jsonl", check_rows(2))), "--kind", "qualification")
    assert good.exit_code == 0 and "qualification items: 2 added" in good.stdout
    assert cli("checks", "import", str(path), "--kind", "gold").exit_code == 2


# --- the stream ----------------------------------------------------------------------------


@pytest.fixture
def study(engine, benchmark_id, tmp_path):
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=3, check_rate=0.25, check_fail_limit=1)
    import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "c.jsonl", check_rows(4)))
    return sid, token


def test_nothing_before_consent_and_declining_screens_out(engine, study):
    sid, token = study
    uid = participant(engine, token, "p1")
    assert stream.crowd_state(engine=engine, user_id=uid, study_id=sid).needs_consent
    assert stream.next_entry(engine=engine, user_id=uid, study_id=sid) is None
    stream.decline_consent(engine=engine, user_id=uid, study_id=sid)
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert state.status == "screened out" and state.screened_out_reason == stream.SCREENED_DECLINED
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)  # too late: declining stands
    assert stream.next_entry(engine=engine, user_id=uid, study_id=sid) is None


def test_a_quota_of_three_holds_one_check_and_check_answers_never_become_labels(engine, study):
    sid, token = study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    assert ann.guidelines_confirmed(engine=engine, user_id=uid, study_id=sid)
    entries = run_stream(engine, uid, sid)
    checks = [e for e in entries if stream.is_check_entry(e)]
    assert len(entries) == 4 and len(checks) == 1  # rate 1/4: one check per three real items
    assert counts(engine) == (3, 1)
    with session_scope(engine) as s:
        assert s.execute(select(func.count()).select_from(Label).where(Label.item_id < 0)).scalar_one() == 0
        cl = s.execute(select(CheckLabel)).scalars().one()
        assert cl.correct is True and cl.submitted_at is not None and cl.choice_key == "a"
        assert json.loads(cl.ratings_json) == {"naturalness": 4}
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert (state.status, state.real_done, state.checks_passed) == ("completed", 3, 1)
    progress = stream.stream_progress(state)
    assert (progress.done, progress.target) == (4, 4)  # checks count like items, so the counter never stalls


def test_a_check_is_drawn_exactly_like_a_real_item(engine, study):
    sid, token = study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    real = check = None
    while real is None or check is None:
        entry = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
        view = ann.item_for_annotator(engine=engine, user_id=uid, item_id=entry)
        if stream.is_check_entry(entry):
            check = view
        else:
            real = view
        answer(engine, uid, entry, right=True)
    assert type(check) is type(real)
    shape = lambda v: {f.name: type(getattr(v, f.name)) for f in dataclasses.fields(v)}  # noqa: E731
    assert shape(check) == shape(real)
    assert (check.mode, len(check.responses), check.conversation, check.profile, check.study_id) == (
        real.mode, len(real.responses), real.conversation, real.profile, real.study_id)
    assert [letter for letter, _ in check.responses] == ["A", "B", "C", "D"]
    assert ann.label_for(engine=engine, user_id=uid, item_id=check.item_id) is None
    with pytest.raises(ann.LabelError, match="cannot be changed"):
        answer(engine, uid, check.item_id, right=False)


def test_checks_are_shuffled_per_participant(engine, study):
    sid, token = study
    orders = set()
    for pid in ("p1", "p2", "p3", "p4", "p5", "p6"):
        uid = participant(engine, token, pid)
        stream.give_consent(engine=engine, user_id=uid, study_id=sid)
        for entry in run_stream(engine, uid, sid):
            if stream.is_check_entry(entry):
                orders.add(ann.item_for_annotator(engine=engine, user_id=uid, item_id=entry).keys)
    assert len(orders) > 1


def test_a_failed_check_at_the_limit_screens_out(engine, study):
    sid, token = study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    entries = run_stream(engine, uid, sid, check_right=False)
    assert stream.is_check_entry(entries[-1])  # the stream stops at the failed check
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert (state.status, state.screened_out_reason, state.checks_failed) == ("screened out", stream.SCREENED_CHECKS, 1)
    assert stream.next_entry(engine=engine, user_id=uid, study_id=sid) is None
    with session_scope(engine) as s:
        assert s.execute(select(StudyMember.screened_out_at).where(StudyMember.user_id == uid)).scalar_one() is not None


def test_with_the_warn_action_a_failed_check_only_reminds(engine, study):
    sid, token = study
    update_study(engine=engine, study_id=sid, check_action="warn")
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    entries = run_stream(engine, uid, sid, check_right=False)
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert len(entries) == 4 and state.status == "completed" and state.warned


def test_a_check_shown_but_not_answered_stays_due(engine, study):
    sid, token = study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    while True:
        entry = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
        if stream.is_check_entry(entry):
            break
        answer(engine, uid, entry)
    assert stream.next_entry(engine=engine, user_id=uid, study_id=sid) == entry  # a refresh cannot dodge it
    ann.skip_item(engine=engine, user_id=uid, item_id=entry)  # skipped: met, neither passed nor failed
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert (state.checks_passed, state.checks_failed, state.status) != (0, 1, "screened out")
    assert stream.next_entry(engine=engine, user_id=uid, study_id=sid) != entry


def test_another_participants_check_cannot_be_opened_or_answered(engine, study):
    sid, token = study
    a, b = participant(engine, token, "p1"), participant(engine, token, "p2")
    stream.give_consent(engine=engine, user_id=a, study_id=sid)
    while not stream.is_check_entry(entry := stream.next_entry(engine=engine, user_id=a, study_id=sid)):
        answer(engine, a, entry)
    with pytest.raises(ann.LabelError):
        ann.item_for_annotator(engine=engine, user_id=b, item_id=entry)
    with pytest.raises(ann.LabelError):
        ann.submit_label(engine=engine, user_id=b, item_id=entry, choice_key="a", naturalness=3)


def test_running_out_of_items_before_the_quota_ends_the_stream(engine, benchmark_id):
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=50)
    update_study(engine=engine, study_id=sid, records_per_domain=1, labels_per_item=1)
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    entries = run_stream(engine, uid, sid, limit=100)
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert 0 < len(entries) < 50 and state.status == "active"  # the page shows the completion code and says why


# --- qualification -------------------------------------------------------------------------


@pytest.fixture
def qual_study(engine, benchmark_id, tmp_path):
    sid, token = crowd_study(engine, benchmark_id, quota_per_annotator=2, qualification_items=2, qualification_pass=1.0)
    import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "q.jsonl", check_rows(3, prefix="q")),
                  kind="qualification")
    return sid, token


def test_qualification_comes_first_and_passing_opens_real_items(engine, qual_study):
    sid, token = qual_study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    entries = run_stream(engine, uid, sid, check_right=True)
    assert [stream.is_check_entry(e) for e in entries] == [True, True, False, False]
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert (state.qualification, state.status, state.real_done) == ("passed", "completed", 2)
    assert state.last_feedback.correct and state.last_feedback.explanation == "The request asks for yes."
    view = ann.item_for_annotator(engine=engine, user_id=uid, item_id=entries[1])
    assert state.last_feedback.expected_letters == (view.letter_for("a"),)
    with session_scope(engine) as s:
        assert s.execute(select(StudyMember.qualified_at).where(StudyMember.user_id == uid)).scalar_one() is not None


def test_failing_the_qualification_screens_out_after_the_whole_round(engine, qual_study):
    sid, token = qual_study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    first = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
    answer(engine, uid, first, right=False)
    # Decided on all items, never early: the participant sees the whole round with its feedback.
    assert stream.crowd_state(engine=engine, user_id=uid, study_id=sid).status == "qualifying"
    second = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
    assert stream.is_check_entry(second) and second != first
    answer(engine, uid, second, right=True)
    state = stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
    assert (state.status, state.screened_out_reason) == ("screened out", stream.SCREENED_QUALIFICATION)
    assert stream.next_entry(engine=engine, user_id=uid, study_id=sid) is None
    assert counts(engine) == (0, 2)


# --- check labels never count --------------------------------------------------------------


def test_a_hundred_wrong_check_labels_change_no_statistic(cli, db_url, tmp_path):
    """Labels export, the report (agreement included) and the verified export, before and after."""
    init_db(db_url)
    engine = get_engine(db_url)
    path = write_jsonl(tmp_path / "b.jsonl", make_records({"Chat": 2, "Writing": 2}, seed=5, long_text=False))
    bid = import_benchmark(engine=engine, path=path, name="b").benchmark_id
    sid, token = crowd_study(engine, bid, labels_per_item=3, one_item_per_record=False)
    people = [participant(engine, token, f"p{i}") for i in range(4)]
    from rmgap_annot.assignment import next_item

    for uid in people[:3]:
        for _ in range(16):
            item = next_item(engine=engine, user_id=uid, study_id=sid)
            view = ann.item_for_annotator(engine=engine, user_id=uid, item_id=item)
            ann.submit_label(engine=engine, user_id=uid, item_id=item, choice_key=sorted(view.keys)[item % 2],
                             naturalness=3 + item % 3, study_id=sid)

    def snapshot(tag: str) -> dict:
        out = tmp_path / tag
        assert cli("labels", "export", "--out", str(tmp_path / f"{tag}.csv")).exit_code == 0
        report = cli("report", "--json", "--draws", "50")
        assert report.exit_code == 0, report.output
        exported = cli("export-verified", "--out", str(out), "--min-labels", "2", "--min-agreement", "0.5",
                       "--min-naturalness", "0")
        assert exported.exit_code == 0, exported.output
        data = json.loads(report.stdout)
        for volatile in ("generated_at", "timing", "seconds"):
            data.pop(volatile, None)
        files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                 if p.is_file() and p.suffix in (".jsonl", ".csv")}
        return {"labels": (tmp_path / f"{tag}.csv").read_bytes(), "report": data, "files": files}

    before = snapshot("before")
    rows = check_rows(25)
    import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "c.jsonl", rows))
    import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "q.jsonl", check_rows(25, prefix="q")),
                  kind="qualification")
    with session_scope(engine, write=True) as s:
        checks = list(s.execute(select(CheckItem).order_by(CheckItem.id)).scalars())
        n = 0
        for uid in people:
            for ci in checks[(uid % 2) * 25:(uid % 2) * 25 + 25]:
                s.add(CheckLabel(study_id=sid, user_id=uid, check_item_id=ci.id, choice_key="d", correct=False,
                                 ratings_json=json.dumps({"naturalness": 1}), displayed_order_json='["a","b","c","d"]',
                                 submitted_at=utcnow()))
                n += 1
    assert n == 100 and counts(engine)[1] == 100
    after = snapshot("after")
    assert after["labels"] == before["labels"]
    assert after["files"] == before["files"] and before["files"]
    assert after["report"] == before["report"]
    assert before["labels"].count(b"\n") == 49  # header + the 48 real labels: the snapshot sees labels
    assert "agreement" in json.dumps(before["report"])


def test_a_checks_draft_survives_like_a_real_items_and_the_answer_replaces_it(engine, study):
    sid, token = study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    while not stream.is_check_entry(entry := stream.next_entry(engine=engine, user_id=uid, study_id=sid)):
        answer(engine, uid, entry)
    ann.save_draft(engine=engine, user_id=uid, item_id=entry, state={"pick": "B", "comment": "half"})
    assert ann.load_draft(engine=engine, user_id=uid, item_id=entry) == {"pick": "B", "comment": "half"}
    answer(engine, uid, entry, right=True)
    assert ann.load_draft(engine=engine, user_id=uid, item_id=entry) is None
    with session_scope(engine) as s:
        assert json.loads(s.execute(select(CheckLabel.ratings_json)).scalar_one()) == {"naturalness": 4}


def test_skipping_a_check_does_not_move_the_counter_as_skipping_an_item_does_not(engine, study):
    sid, token = study
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    while not stream.is_check_entry(entry := stream.next_entry(engine=engine, user_id=uid, study_id=sid)):
        answer(engine, uid, entry)
    before = stream.stream_progress(stream.crowd_state(engine=engine, user_id=uid, study_id=sid))
    ann.skip_item(engine=engine, user_id=uid, item_id=entry)
    after = stream.stream_progress(stream.crowd_state(engine=engine, user_id=uid, study_id=sid))
    assert (after.done, after.target) == (before.done, before.target)


def test_a_due_check_requested_twice_at_once_is_shown_once(backend_url, tmp_path):
    """Two tabs asking together: the Study row's lock (PostgreSQL) or the write lock (SQLite) makes one CheckLabel."""
    import threading

    init_db(backend_url)
    engine = get_engine(backend_url)
    path = write_jsonl(tmp_path / "b.jsonl", make_records({"Chat": 2}, seed=4, long_text=False))
    bid = import_benchmark(engine=engine, path=path, name="b").benchmark_id
    sid, token = crowd_study(engine, bid, quota_per_annotator=4, check_rate=0.5)  # one check per real item, from slot 0
    import_checks(engine=engine, study_id=sid, path=write_checks(tmp_path / "c.jsonl", check_rows(4)))
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    got, errors = [], []
    barrier = threading.Barrier(4)

    def ask() -> None:
        try:
            barrier.wait()
            got.append(stream.next_entry(engine=engine, user_id=uid, study_id=sid))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(got)) == 1 and stream.is_check_entry(got[0])
    assert counts(engine) == (0, 1)


def test_a_tie_is_an_answer_to_a_two_response_check_as_to_a_real_pair(engine, tmp_path):
    from rmgap_annot.crowd.checks_store import StudyShape

    path = write_jsonl(tmp_path / "b.jsonl", make_records({"Chat": 1}, seed=6, long_text=False))
    bid = import_benchmark(engine=engine, path=path, name="b").benchmark_id
    sid, token = crowd_study(engine, bid, quota_per_annotator=2, check_rate=0.5)
    rows = [{"id": "t1", "prompt": "Say yes.", "responses": [{"key": "a", "text": "yes"}, {"key": "b", "text": "no"}],
             "expected": "a"}]
    path = write_checks(tmp_path / "c.jsonl", rows)
    from rmgap_annot.crowd.checks import read_checks

    # RMGAP items have four responses, so a pair is refused here; store the pair through the reader's own shape.
    assert study_shape(engine=engine, study_id=sid) == StudyShape(4, "prompt")
    spec = read_checks(path, n_candidates=2, context="prompt").checks[0]
    from rmgap_annot.crowd.checks_store import _row_fields

    with session_scope(engine, write=True) as s:
        s.add(CheckItem(study_id=sid, kind="check", check_id=spec.id, position=0, **_row_fields(spec)))
    uid = participant(engine, token, "p1")
    stream.give_consent(engine=engine, user_id=uid, study_id=sid)
    entry = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
    assert stream.is_check_entry(entry) and ann.item_for_annotator(engine=engine, user_id=uid, item_id=entry).ties_allowed
    ann.submit_label(engine=engine, user_id=uid, item_id=entry, choice_key="tie_good", naturalness=3)
    with session_scope(engine) as s:
        assert s.execute(select(CheckLabel.correct)).scalar_one() is False
