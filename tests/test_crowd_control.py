"""Live quality control (issue #14 items 6-8): block, delete, exclude with an audit log, the crowd
report and payment CSV, several studies in report/export, and pseudonyms in everything published."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from rmgap_annot import assignment, audit
from rmgap_annot.annotation import LabelError, save_draft, submit_label
from rmgap_annot.crowd import monitor
from rmgap_annot.crowd.control import ControlError, delete_annotator, set_blocked
from rmgap_annot.db import session_scope
from rmgap_annot.exclusions import exclude_annotator, include_annotator
from rmgap_annot.models import (
    AuditEvent, CheckItem, CheckLabel, Draft, Item, Label, Lease, Study, StudyItem, StudyMember, User,
)
from rmgap_annot.report import build_report
from rmgap_annot.studies import ensure_member, list_studies
from tests.analytics_helpers import add_labels, item_ids, winners
from tests.test_report import _seed

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
PIDS = ("5f3a9c0b1d2e4f5a6b7c8d9e", "60aa11bb22cc33dd44ee55ff")


def _uid(engine, name: str) -> int:
    with session_scope(engine) as s:
        return s.execute(select(User.id).where(User.name == name)).scalar_one()


def _study(engine, benchmark_id) -> int:
    return assignment.get_study(engine=engine, benchmark_id=benchmark_id).id


def _participants(engine, benchmark_id) -> tuple[int, int, int]:
    """Two Prolific participants and a lab account in the benchmark's study, members in that order."""
    sid = _study(engine, benchmark_id)
    ids = []
    with session_scope(engine, write=True) as s:
        for i, pid in enumerate(PIDS):
            u = User(name=f"prolific:{pid}", role="annotator")
            s.add(u)
            s.flush()
            ensure_member(s, study_id=sid, user_id=u.id, platform="prolific", participant_id=pid,
                          platform_study_id="STUDY42", platform_session_id=f"sess{i}")
            ids.append(u.id)
        lab = User(name="alice", role="annotator")
        s.add(lab)
        s.flush()
        ensure_member(s, study_id=sid, user_id=lab.id)
        ids.append(lab.id)
    return tuple(ids)


def _timed_labels(engine, benchmark_id, user_id, n, *, seconds, start=T0, right=True):
    """n labels one after the other, each shown then submitted ``seconds`` later."""
    sid = _study(engine, benchmark_id)
    win = winners(engine, benchmark_id)
    items = sorted(win)[:n]
    t = start
    with session_scope(engine, write=True) as s:
        for iid in items:
            wrong = next(k for k in ("response1", "response2") if k != win[iid])
            s.add(Label(study_id=sid, user_id=user_id, item_id=iid, choice_key=win[iid] if right else wrong,
                        shown_at=t, first_submitted_at=t + timedelta(seconds=seconds),
                        submitted_at=t + timedelta(seconds=seconds)))
            t += timedelta(seconds=seconds)
    return items


def _check(engine, study_id, user_id, *, kind="check", correct=True, at=T0, n=0) -> None:
    with session_scope(engine, write=True) as s:
        item = CheckItem(study_id=study_id, kind=kind, check_id=f"{kind}-{user_id}-{n}", position=n, prompt="p",
                         responses_json=json.dumps([["a", "x"], ["b", "y"]]), expected_json=json.dumps(["a"]))
        s.add(item)
        s.flush()
        s.add(CheckLabel(study_id=study_id, user_id=user_id, check_item_id=item.id, choice_key="a" if correct else "b",
                         correct=correct, shown_at=at, submitted_at=at + timedelta(seconds=10)))


def _audit(engine) -> list[AuditEvent]:
    with session_scope(engine) as s:
        return list(s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars())


# --- block: one permission check for assignment and labels --------------------------------


def test_block_stops_assignment_and_labels_but_keeps_what_was_given(engine, benchmark_id):
    p1, p2, lab = _participants(engine, benchmark_id)
    sid = _study(engine, benchmark_id)
    first = assignment.next_item(engine=engine, user_id=p1, study_id=sid)
    submit_label(engine=engine, user_id=p1, item_id=first, choice_key="response1", naturalness=3, study_id=sid)
    held = assignment.next_item(engine=engine, user_id=p1, study_id=sid)
    assert held is not None

    assert set_blocked(engine=engine, study_id=sid, name=f"prolific:{PIDS[0]}", blocked=True, actor="res")
    assert assignment.next_item(engine=engine, user_id=p1, study_id=sid) is None
    assert assignment.hold_item(engine=engine, user_id=p1, item_id=held, study_id=sid) is False
    with session_scope(engine) as s:  # the item they held went back to the pool
        assert s.execute(select(func.count()).select_from(Lease).where(Lease.user_id == p1)).scalar_one() == 0
    with pytest.raises(LabelError, match="no longer take part"):
        submit_label(engine=engine, user_id=p1, item_id=held, choice_key="response1", naturalness=3, study_id=sid)
    with session_scope(engine) as s:  # the label given before the block stays
        assert s.execute(select(func.count()).select_from(Label).where(Label.user_id == p1)).scalar_one() == 1
    assert assignment.next_item(engine=engine, user_id=p2, study_id=sid) is not None  # others go on
    assert monitor.study_quality(engine=engine, study_id=sid).annotators[0].status == "blocked"
    assert not set_blocked(engine=engine, study_id=sid, name=f"prolific:{PIDS[0]}", blocked=True, actor="res")

    assert set_blocked(engine=engine, study_id=sid, name=f"prolific:{PIDS[0]}", blocked=False, actor="res")
    assert assignment.next_item(engine=engine, user_id=p1, study_id=sid) is not None
    events = _audit(engine)
    assert [(e.action, e.target, e.actor) for e in events] == [("block", "ann-01", "res"), ("unblock", "ann-01", "res")]
    assert not any(PIDS[0] in e.target + e.detail_json for e in events)


def test_a_disabled_account_gets_no_item_either(engine, benchmark_id):
    from rmgap_annot.accounts import set_active

    p1, _, _ = _participants(engine, benchmark_id)
    set_active(engine=engine, user_id=p1, active=False, actor="res")
    assert assignment.next_item(engine=engine, user_id=p1, benchmark_id=benchmark_id) is None
    set_active(engine=engine, user_id=p1, active=False, actor="res")  # no change: no second event
    set_active(engine=engine, user_id=p1, active=True, actor="res")
    assert assignment.next_item(engine=engine, user_id=p1, benchmark_id=benchmark_id) is not None
    assert [(e.action, e.target, e.actor) for e in _audit(engine)] == [("disable", "ann-01", "res"), ("enable", "ann-01", "res")]


def test_block_cli_and_its_errors(engine, benchmark_id, cli):
    _participants(engine, benchmark_id)
    assert cli("annotators", "block", "alice").exit_code == 0
    assert "already blocked" in cli("annotators", "block", "alice").output
    assert cli("annotators", "unblock", "alice").exit_code == 0
    assert cli("annotators", "block", "nobody").exit_code == 2
    from rmgap_annot.accounts import create_user

    create_user(engine=engine, name="outsider", role="annotator")
    bad = cli("annotators", "block", "outsider")
    assert bad.exit_code == 2 and "not in this study" in bad.stderr


# --- delete: a participant who withdraws consent --------------------------------------------


def test_delete_removes_everything_of_the_person_and_records_it(engine, benchmark_id, cli):
    p1, p2, lab = _participants(engine, benchmark_id)
    sid = _study(engine, benchmark_id)
    items = _timed_labels(engine, benchmark_id, p1, 3, seconds=20)
    _timed_labels(engine, benchmark_id, p2, 3, seconds=20)
    _check(engine, sid, p1, correct=False)
    held = assignment.next_item(engine=engine, user_id=p1, study_id=sid)
    save_draft(engine=engine, user_id=p1, item_id=held, state={"choice": "A"}, study_id=sid)
    exclude_annotator(engine=engine, name=f"prolific:{PIDS[0]}", reason="withdrew", study_id=sid)
    with session_scope(engine) as s:
        assert s.execute(select(StudyItem.n_labels).where(StudyItem.study_id == sid,
                                                          StudyItem.item_id == items[0])).scalar_one() == 2

    res = cli("annotators", "delete", f"prolific:{PIDS[0]}", "--yes")
    assert res.exit_code == 0, res.output
    with session_scope(engine) as s:
        for table in (Label, Draft, Lease, CheckLabel, StudyMember):
            assert s.execute(select(func.count()).select_from(table).where(table.user_id == p1)).scalar_one() == 0, table
        assert s.get(User, p1) is None
        # The counters follow (database triggers): the item has p2's label only.
        assert s.execute(select(StudyItem.n_labels).where(StudyItem.study_id == sid,
                                                          StudyItem.item_id == items[0])).scalar_one() == 1
        assert s.execute(select(func.count()).select_from(Label).where(Label.user_id == p2)).scalar_one() == 3
    deleted = [e for e in _audit(engine) if e.action == "delete"]
    assert [(e.target, json.loads(e.detail_json)["labels"]) for e in deleted] == [("ann-01", 3)]
    log = json.dumps([(e.target, e.detail_json) for e in _audit(engine)])
    assert PIDS[0] not in log and "prolific:" not in log
    # The next arrival does not inherit the deleted participant's pseudonym.
    with session_scope(engine, write=True) as s:
        u = User(name="newcomer", role="annotator")
        s.add(u)
        s.flush()
        assert ensure_member(s, study_id=sid, user_id=u.id).pseudonym_no == 4


def test_delete_refuses_researchers_and_unknown_names_and_asks_first(engine, benchmark_id, cli):
    from rmgap_annot.accounts import create_user

    _participants(engine, benchmark_id)
    create_user(engine=engine, name="res", role="researcher")
    with pytest.raises(ControlError, match="researcher"):
        delete_annotator(engine=engine, name="res", actor="cli")
    assert cli("annotators", "delete", "ghost", "--yes").exit_code == 2
    kept = cli("annotators", "delete", "alice", input="n\n")
    assert kept.exit_code == 1 and _uid(engine, "alice")


# --- exclusion and settings in the audit log -----------------------------------------------


def test_exclusions_and_settings_changes_are_audited_under_pseudonyms(engine, benchmark_id, cli):
    p1, _, _ = _participants(engine, benchmark_id)
    sid = _study(engine, benchmark_id)
    assert cli("annotators", "exclude", f"prolific:{PIDS[1]}", "--reason", "too fast").exit_code == 0
    assert cli("annotators", "include", f"prolific:{PIDS[1]}").exit_code == 0
    assignment.update_study(engine=engine, study_id=sid, labels_per_item=5, quota_per_annotator=10,
                            completion_code="C0DE42", actor="res")
    assignment.update_study(engine=engine, study_id=sid, labels_per_item=5, actor="res")  # no change: no event
    assert cli("study", "set", "--check-rate", "0.1").exit_code == 0
    events = _audit(engine)
    assert [(e.action, e.target) for e in events] == [
        ("exclude", "ann-02"), ("include", "ann-02"),
        ("settings", "labels_per_item, quota_per_annotator, completion_code"), ("settings", "check_rate"),
    ]
    assert json.loads(events[0].detail_json)["reason"] == "too fast"
    assert json.loads(events[2].detail_json)["labels_per_item"] == {"from": 3, "to": 5}
    assert events[2].actor == "res" and events[3].actor == "cli"
    shown = audit.events(engine=engine, study_id=sid)
    assert [r.action for r in shown] == ["settings", "settings", "include", "exclude"]  # newest first
    assert not any(PIDS[1] in e.target + e.detail_json for e in events)


# --- the crowd report and the payment CSV ----------------------------------------------------


def test_crowd_report_figures_statuses_and_payment_csv(engine, benchmark_id, cli, tmp_path):
    p1, p2, lab = _participants(engine, benchmark_id)
    sid = _study(engine, benchmark_id)
    assignment.update_study(engine=engine, study_id=sid, quota_per_annotator=4, check_fail_limit=2,
                            completion_code="DONE1")
    _timed_labels(engine, benchmark_id, p1, 4, seconds=30)  # 4 x 30 s, no pause: 2 minutes
    _check(engine, sid, p1, correct=True, at=T0 + timedelta(minutes=2), n=1)  # +10 s
    _timed_labels(engine, benchmark_id, p2, 2, seconds=3, right=False)
    _check(engine, sid, p2, correct=False, at=T0 + timedelta(seconds=6), n=1)
    _check(engine, sid, p2, correct=False, at=T0 + timedelta(seconds=16), n=2)
    with session_scope(engine, write=True) as s:
        m = s.execute(select(StudyMember).where(StudyMember.user_id == p1)).scalar_one()
        m.completed_at = T0 + timedelta(minutes=3)

    q = monitor.study_quality(engine=engine, study_id=sid)
    a, b, c = q.annotators
    assert (a.pseudonym, a.status, a.labels, a.checks_passed, a.checks_failed) == ("ann-01", "completed", 4, 1, 0)
    assert a.median_seconds == 30 and a.fast_share == 0 and a.minutes_worked == pytest.approx(130 / 60)
    # Checks are paid work that looks like real items: their times count (2 labels of 3 s, 2 checks of 10 s).
    assert (b.status, b.checks_failed, b.fast_share, b.median_seconds) == ("screened out", 2, 0.5, 6.5)
    assert b.minutes_worked == pytest.approx(26 / 60)
    assert (c.status, c.labels, c.minutes_worked, c.participant_id) == ("active", 0, None, None)
    assert "minutes_worked" in c.reasons and "loo_alpha" in c.reasons
    for r in (a, b):  # not fitted yet: null, with the command that fits
        assert r.competence == {"dawid-skene": None, "mace": None} and "--fit-truth" in r.reasons["mace"]
    assert a.loo_alpha is None or isinstance(a.loo_alpha, float)

    out = tmp_path / "pay" / "payment.csv"
    res = cli("crowd", "report", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert PIDS[0] in res.output and "screened out" in res.output
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["participant_id", "platform", "status", "labels", "minutes_worked", "completion_code_given"]
    assert [(r["participant_id"], r["status"], r["labels"], r["minutes_worked"], r["completion_code_given"]) for r in rows] == [
        (PIDS[0], "completed", "4", "2.2", "yes"), (PIDS[1], "screened out", "2", "0.4", "no"),
        ("alice", "active", "0", "n/a (no label submitted yet)", "no"),
    ]
    data = json.loads(cli("crowd", "report", "--json").stdout)
    assert data["annotators"][0]["platform_session_id"] == "sess0"


def test_crowd_report_shows_competence_once_the_study_is_fitted(engine, benchmark_id, cli):
    _seed(engine, benchmark_id, n_annotators=4)
    sid = _study(engine, benchmark_id)
    exclude_annotator(engine=engine, name="ann3", reason="spam")
    before = monitor.study_quality(engine=engine, study_id=sid)
    assert all(r.competence["mace"] is None for r in before.annotators)
    assert cli("report", "--fit-truth", "--draws", "0").exit_code == 0
    after = {r.name: r for r in monitor.study_quality(engine=engine, study_id=sid).annotators}
    for name in ("ann0", "ann1", "ann2"):
        assert 0 <= after[name].competence["mace"] <= 1 and 0 <= after[name].competence["dawid-skene"] <= 1
    assert after["ann3"].competence["mace"] is None and "excluded" in after["ann3"].reasons["mace"]
    assert after["ann3"].excluded and after["ann3"].exclusion_reason == "spam"
    assert after["ann0"].loo_alpha is not None and after["ann0"].agreement is not None


# --- several studies: report and export by study, or pooled -----------------------------------


def _two_studies(engine, benchmark_id):
    """The first study with ann0..ann2 on every item; a main run where ann0 labels every item again."""
    _seed(engine, benchmark_id, n_annotators=3)
    main = assignment.create_study(engine=engine, name="main", benchmark_id=benchmark_id).id
    uid = _uid(engine, "ann0")
    win = winners(engine, benchmark_id)
    with session_scope(engine, write=True) as s:
        for iid, w in win.items():
            s.add(Label(study_id=main, user_id=uid, item_id=iid, choice_key=w, naturalness=4))
    return _study(engine, benchmark_id), main


def test_report_and_export_by_study_or_pooled(engine, benchmark_id, cli, tmp_path):
    first, main = _two_studies(engine, benchmark_id)
    for cmd in (["report", "--draws", "0"], ["export-verified", "--out", str(tmp_path / "x")]):
        res = cli(*cmd)
        assert res.exit_code == 2 and "--study" in res.stderr and "main" in res.stderr
    one = json.loads(cli("report", "--json", "--draws", "0", "--study", "main").stdout)
    assert one["agreement"]["summary"]["n_labels"] == 96 and [a["annotator"] for a in one["annotators"]] == ["ann-01"]
    assert one["agreement"]["summary"]["studies"] == ["main"]
    pooled = json.loads(cli("report", "--json", "--draws", "0", "--study", "all").stdout)
    s = pooled["agreement"]["summary"]
    assert s["n_labels"] == 4 * 96 and s["n_annotators"] == 4 and s["n_repeat_labels"] == 96
    first_name = assignment.get_study(engine=engine, study_id=first).name
    assert {a["annotator"] for a in pooled["annotators"]} == {f"{first_name}/ann-0{i}" for i in (1, 2, 3)} | {"main/ann-01"}
    # The pooled report is the report of all labels; the study report equals one over that study's labels only.
    assert build_report(engine=engine, benchmark_id=benchmark_id, draws=0, study_ids=[first, main])["agreement"] == pooled["agreement"]
    res = cli("export-verified", "--out", str(tmp_path / "main"), "--study", "main", "--min-labels", "1", "--min-naturalness", "0")
    assert res.exit_code == 0, res.output
    import pandas as pd

    assert set(pd.read_parquet(tmp_path / "main" / "labels.parquet")["annotator"]) == {"ann-01"}


def test_exclusion_in_one_study_equals_deleting_and_include_restores(engine, benchmark_id):
    first, main = _two_studies(engine, benchmark_id)
    before = build_report(engine=engine, benchmark_id=benchmark_id, draws=50, study_ids=[first])
    exclude_annotator(engine=engine, name="ann1", reason="careless")
    excluded = build_report(engine=engine, benchmark_id=benchmark_id, draws=50, study_ids=[first])
    assert excluded["agreement"] != before["agreement"]
    include_annotator(engine=engine, name="ann1")
    assert build_report(engine=engine, benchmark_id=benchmark_id, draws=50, study_ids=[first]) == before
    with session_scope(engine, write=True) as s:
        s.execute(Label.__table__.delete().where(Label.user_id == _uid(engine, "ann1")))
    deleted = build_report(engine=engine, benchmark_id=benchmark_id, draws=50, study_ids=[first])
    for key in ("agreement", "human", "naturalness", "annotators", "items", "position_bias"):
        assert deleted[key] == excluded[key], key


# --- pseudonyms: nothing published names a person ------------------------------------------------


def test_published_files_name_pseudonyms_never_user_names_or_platform_ids(engine, benchmark_id, cli, tmp_path):
    p1, p2, lab = _participants(engine, benchmark_id)
    ids, win = item_ids(engine, benchmark_id), winners(engine, benchmark_id)
    names = {p1: f"prolific:{PIDS[0]}", p2: f"prolific:{PIDS[1]}", lab: "alice"}
    add_labels(engine, [{"annotator": n, "item_id": iid, "choice": win[iid], "naturalness": 4}
                        for iid in ids.values() for n in names.values()])
    cli("annotators", "exclude", "alice", "--reason", "lab pilot only")
    out, hf, paper = tmp_path / "out", tmp_path / "hf", tmp_path / "paper"
    assert cli("export-verified", "--out", str(out), "--hf", str(hf), "--min-naturalness", "0").exit_code == 0
    assert cli("labels", "export", "--out", str(tmp_path / "labels.csv")).exit_code == 0
    assert cli("labels", "export", "--out", str(tmp_path / "labels.jsonl")).exit_code == 0
    assert cli("paper", "--out", str(paper), "--no-figures", "--draws", "0").exit_code == 0
    report = cli("report", "--json", "--draws", "0").stdout
    files = [p for folder in (out, hf, paper) for p in folder.rglob("*") if p.is_file()]
    files += [tmp_path / "labels.csv", tmp_path / "labels.jsonl"]
    secrets = [PIDS[0], PIDS[1], "prolific:", "alice", "STUDY42", "sess0"]
    for path in files:
        blob = path.read_bytes()
        assert not [s for s in secrets if s.encode() in blob], path
    assert not [s for s in secrets if s in report]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| ann-03 | lab pilot only |" in card
    assert {"ann-01", "ann-02"} <= {a["annotator"] for a in json.loads(report)["annotators"]}
    assert not any("user_id" in a for a in json.loads(report)["annotators"])  # no account id beside a pseudonym
    assert "ann-01" in (out / "labels.csv").read_text(encoding="utf-8")
    assert "ann-01" in (tmp_path / "labels.csv").read_text(encoding="utf-8")
    # A researcher's own backup keeps the names, and imports back onto the same accounts.
    assert cli("labels", "export", "--out", str(tmp_path / "backup.csv"), "--real-names").exit_code == 0
    assert "alice" in (tmp_path / "backup.csv").read_text(encoding="utf-8")


# --- the Quality page ------------------------------------------------------------------------------


def _quality_page(db_url, monkeypatch, uid, role="researcher"):
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "quality.py"), default_timeout=60)
    at.session_state["user_id"] = uid
    at.session_state["user_name"] = "res"
    at.session_state["role"] = role
    return at


def test_quality_page_shows_everyone_and_blocks_excludes_deletes_with_an_audit_log(engine, benchmark_id, db_url, monkeypatch):
    from rmgap_annot.accounts import create_user

    p1, p2, lab = _participants(engine, benchmark_id)
    _timed_labels(engine, benchmark_id, p1, 3, seconds=20)
    res = create_user(engine=engine, name="res", role="researcher")
    at = _quality_page(db_url, monkeypatch, res).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["pseudonym"]) == ["ann-01", "ann-02", "ann-03"]
    assert list(table["participant id"])[:2] == list(PIDS) and list(table["labels"]) == [3, 0, 0]
    assert "No block" in " ".join(c.value for c in at.caption)
    assert at.dataframe[0].proto.placeholder == "n/a"  # undefined figures read n/a, never None or blank

    at.selectbox(key="quality_person").set_value(next(o for o in at.selectbox(key="quality_person").options if "ann-01" in o))
    at.button(key="quality_block").click().run()
    assert not at.exception, at.exception
    sid = _study(engine, benchmark_id)
    assert assignment.next_item(engine=engine, user_id=p1, study_id=sid) is None
    assert at.dataframe[0].value["status"].iloc[0] == "blocked"
    at.text_input(key="quality_reason").input("straight-lined")
    at.button(key="quality_exclude").click().run()
    assert at.dataframe[0].value["excluded"].iloc[0] == "straight-lined"
    at.button(key="quality_include").click().run()
    assert at.dataframe[0].value["excluded"].iloc[0] == ""

    at.selectbox(key="quality_person").set_value(next(o for o in at.selectbox(key="quality_person").options if "ann-02" in o))
    at.run()
    assert at.button(key="quality_delete").disabled
    at.checkbox(key="quality_delete_sure").check().run()
    at.button(key="quality_delete").click().run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["pseudonym"]) == ["ann-01", "ann-03"]
    assert at.checkbox(key="quality_delete_sure").value is False  # not left ticked for the next person
    log = at.dataframe[1].value
    assert list(log["action"]) == ["delete", "include", "exclude", "block"]
    assert list(log["target"]) == ["ann-02", "ann-01", "ann-01", "ann-01"] and set(log["who"]) == {"res"}


def test_quality_page_refuses_annotators(engine, benchmark_id, db_url, monkeypatch):
    p1, _, _ = _participants(engine, benchmark_id)
    at = _quality_page(db_url, monkeypatch, p1, role="annotator").run()
    assert at.error and not at.dataframe


def test_study_page_lists_studies_edits_the_chosen_one_and_creates_another(engine, benchmark_id, db_url, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from rmgap_annot.accounts import create_user

    first, main = _two_studies(engine, benchmark_id)
    res = create_user(engine=engine, name="res", role="researcher")
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "pages" / "study.py"), default_timeout=60)
    at.session_state["user_id"] = res
    at.session_state["user_name"] = "res"
    at.session_state["role"] = "researcher"
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    first_name = assignment.get_study(engine=engine, study_id=first).name
    assert list(table["study"]) == [first_name, "main"] and list(table["labels"]) == [3 * 96, 96]
    # The latest study is chosen; edit its crowd settings only (the code above, consent and link in the crowd section).
    at.text_input[0].input("DONE-7")  # completion code
    next(b for b in at.button if b.label == "Save settings").click().run()
    assert not at.exception, at.exception
    next(t for t in at.text_area if t.label.startswith("Consent text")).input("# Consent\nYou may stop at any time.")
    next(c for c in at.checkbox if c.label == "Public study link on").check()
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception, at.exception
    m = assignment.get_study(engine=engine, study_id=main)
    assert (m.completion_code, m.public_link, m.consent_md.startswith("# Consent")) == ("DONE-7", True, True)
    assert m.link_token and assignment.get_study(engine=engine, study_id=first).completion_code is None
    code, consent = [e for e in _audit(engine) if e.action == "settings"]
    assert (code.study_id, code.actor, code.target) == (main, "res", "completion_code")
    assert (consent.study_id, consent.actor) == (main, "res")
    assert set(consent.target.split(", ")) == {"consent_md", "public_link", "link_token"}
    # A new study, copying the chosen one's settings.
    at.text_input(key="new_study_name").input("domain-chat")
    next(b for b in at.button if b.label == "Create study").click().run()
    assert not at.exception, at.exception
    made = next(s for s in list_studies(engine=engine) if s.name == "domain-chat")
    assert assignment.get_study(engine=engine, study_id=made.id).completion_code is None  # codes are per study
    assert assignment.get_study(engine=engine, study_id=made.id).consent_md.startswith("# Consent")


def test_block_delete_and_report_on_both_backends(backend_url, small_file):
    """Foreign keys are enforced at once on PostgreSQL: the deletion's order and the counter triggers hold there too."""
    from rmgap_annot.formats.rmgap import import_benchmark
    from rmgap_annot.db import get_engine, init_db

    init_db(backend_url)
    engine = get_engine(backend_url)
    bid = import_benchmark(engine=engine, path=small_file, name="small").benchmark_id
    p1, p2, _ = _participants(engine, bid)
    sid = _study(engine, bid)
    done = []
    for uid in (p1, p2):
        item = assignment.next_item(engine=engine, user_id=uid, study_id=sid)
        submit_label(engine=engine, user_id=uid, item_id=item, choice_key="response1", naturalness=3, study_id=sid)
        done.append(item)
    _check(engine, sid, p1)
    assert set_blocked(engine=engine, study_id=sid, name=f"prolific:{PIDS[1]}", blocked=True, actor="res")
    assert assignment.next_item(engine=engine, user_id=p2, study_id=sid) is None
    removed = delete_annotator(engine=engine, name=f"prolific:{PIDS[0]}", actor="res")
    assert removed["label"] == 1 and removed["checklabel"] == 1 and removed["studymember"] == 1
    with session_scope(engine) as s:
        counts = dict(s.execute(select(StudyItem.item_id, StudyItem.n_labels).where(StudyItem.study_id == sid,
                                                                                    StudyItem.item_id.in_(done))).all())
    assert counts[done[0]] == (1 if done[0] == done[1] else 0) and counts[done[1]] >= 1
    rows = monitor.study_quality(engine=engine, study_id=sid).annotators
    assert [(r.pseudonym, r.status) for r in rows] == [("ann-02", "blocked"), ("ann-03", "active")]
    assert [e.action for e in _audit(engine)] == ["block", "delete"]


def test_an_exclusion_without_a_study_is_filed_under_the_persons_latest_study(engine, benchmark_id):
    _participants(engine, benchmark_id)
    main = assignment.create_study(engine=engine, name="main", benchmark_id=benchmark_id).id
    with session_scope(engine, write=True) as s:
        ensure_member(s, study_id=main, user_id=_uid(engine, "alice"))
    exclude_annotator(engine=engine, name="alice", reason="pilot only", actor="res")  # as the Results page does
    (event,) = _audit(engine)
    assert (event.study_id, event.target, event.actor) == (main, "ann-01", "res")


def test_researcher_pages_can_show_each_account_with_its_public_names(engine, benchmark_id):
    """The Results page picks people by account; the report names them by pseudonym: both are shown together."""
    from rmgap_annot.accounts import create_user
    from rmgap_annot.annotation import submit_label
    from rmgap_annot.assignment import create_study
    from rmgap_annot.studies import public_names_by_account

    alice = create_user(engine=engine, name="alice", role="annotator")
    bob = create_user(engine=engine, name="bob", role="annotator")
    main = create_study(engine=engine, name="main-run", benchmark_id=benchmark_id)
    with session_scope(engine) as s:
        item = s.execute(select(Item.id).order_by(Item.id)).scalars().first()
    submit_label(engine=engine, user_id=bob, item_id=item, choice_key="response1", naturalness=3)
    submit_label(engine=engine, user_id=alice, item_id=item, choice_key="response1", naturalness=3)
    submit_label(engine=engine, user_id=alice, item_id=item, choice_key="response2", naturalness=3, study_id=main.id)
    names = public_names_by_account(engine=engine, benchmark_id=benchmark_id)
    # Two studies over the benchmark: each coder is named with their study (bob labelled first in the first one).
    assert names == {"bob": "small/ann-01", "alice": "main-run/ann-01, small/ann-02"}


def test_assigning_lab_annotators_moves_them_to_a_new_study_and_is_audited(engine, benchmark_id, cli):
    """A main run after a pilot: assigned people label the main run next; their pilot labels stay in the pilot."""
    from rmgap_annot.accounts import create_user
    from rmgap_annot.annotation import submit_label
    from rmgap_annot.assignment import create_study, next_item
    from rmgap_annot.studies import study_for_user

    alice = create_user(engine=engine, name="alice", role="annotator")
    create_user(engine=engine, name="rita", role="researcher", password="correct horse")
    first = study_for_user(engine=engine, user_id=alice)
    item = next_item(engine=engine, user_id=alice, study_id=first)
    submit_label(engine=engine, user_id=alice, item_id=item, choice_key="response1", naturalness=3, study_id=first)
    main = create_study(engine=engine, name="main-run", benchmark_id=benchmark_id)
    assert study_for_user(engine=engine, user_id=alice) == first
    refused = cli("study", "assign", "alice", "rita", "nobody", "--study", "main-run")
    assert refused.exit_code == 2 and "'rita': a researcher" in refused.output and "'nobody': no such account" in refused.output
    assert study_for_user(engine=engine, user_id=alice) == first  # nothing changed
    done = cli("study", "assign", "alice", "--study", "main-run")
    assert done.exit_code == 0, done.output
    assert study_for_user(engine=engine, user_id=alice) == main.id
    with session_scope(engine) as s:
        assert s.execute(select(Label.study_id).where(Label.user_id == alice)).scalars().all() == [first]
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "assign")).scalars().one()
        assert event.study_id == main.id and event.target == "ann-01"


def test_a_code_that_cannot_go_into_the_return_url_is_refused(engine, benchmark_id, cli):
    """Prolific's return link carries the completion code: study set takes only the link module's charset."""
    res = cli("study", "set", "--completion-code", "DONE 42")
    assert res.exit_code == 2 and "completion code" in res.output
    with session_scope(engine) as s:
        assert s.execute(select(Study.completion_code)).scalar_one() is None
    assert cli("study", "set", "--completion-code", "DONE-42").exit_code == 0
