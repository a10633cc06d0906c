"""The annotator's workbench on the server: drafts, late labels, skip, flag, the guidelines gate, settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import (
    LabelError,
    confirm_guidelines,
    flag_counts,
    flag_item,
    flags_for_benchmark,
    guidelines_confirmed,
    item_for_annotator,
    keyboard_shortcuts,
    load_draft,
    save_draft,
    set_keyboard_shortcuts,
    skip_item,
    submit_label,
)
from rmgap_annot.assignment import next_item, overview, progress, update_study
from rmgap_annot.db import session_scope
from rmgap_annot.keymap import Draft
from rmgap_annot.models import Label, Lease, utcnow


@pytest.fixture
def db_url(backend_url: str) -> str:
    """Every test here runs on a SQLite file and on PostgreSQL."""
    return backend_url


def users(engine, *names: str) -> list[int]:
    return [create_user(engine=engine, name=n, role="annotator") for n in names]


def give(engine, uid: int, item: int) -> int:
    view = item_for_annotator(engine=engine, user_id=uid, item_id=item)
    return submit_label(engine=engine, user_id=uid, item_id=item, choice_key=view.keys[0], naturalness=4,
                        displayed_order=list(view.keys))


def stored(engine, label_id: int) -> Label:
    with session_scope(engine) as s:
        return s.get(Label, label_id)


def test_draft_is_kept_per_annotator_and_item_and_survives_a_new_session(engine, benchmark_id):
    alice, bob = users(engine, "alice", "bob")
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    draft = Draft(pick="B", naturalness=3, comment="line one\nline two")
    save_draft(engine=engine, user_id=alice, item_id=item, state=draft.to_json())
    save_draft(engine=engine, user_id=alice, item_id=item, state=(draft.__class__(pick="C", comment="later")).to_json())
    # What a new browser session gets back knows only the user id and the item.
    assert Draft.from_json(load_draft(engine=engine, user_id=alice, item_id=item)) == Draft(pick="C", comment="later")
    assert load_draft(engine=engine, user_id=bob, item_id=item) is None
    # A refresh finds the same item (the lease), hence the same draft.
    assert next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id) == item


def test_submitting_deletes_the_draft(engine, benchmark_id):
    (alice,) = users(engine, "alice")
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    save_draft(engine=engine, user_id=alice, item_id=item, state=Draft(pick="A").to_json())
    give(engine, alice, item)
    assert load_draft(engine=engine, user_id=alice, item_id=item) is None


def expire_leases(engine) -> None:
    with session_scope(engine, write=True) as s:
        s.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))


def test_a_label_after_the_lease_expired_is_stored_flagged_late_and_counted(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=1)
    alice, bob = users(engine, "alice", "bob")
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    expire_leases(engine)
    # Bob is given the item alice let lapse, and fills it.
    assert next_item(engine=engine, user_id=bob, benchmark_id=benchmark_id) == item
    on_time = give(engine, bob, item)
    late = give(engine, alice, item)  # no error: her work is kept
    assert stored(engine, on_time).late is False
    assert stored(engine, late).late is True
    ov = overview(engine=engine, benchmark_id=benchmark_id)
    assert ov.late_labels == 1 and ov.over_target_items == 1
    # A revision of the late label stays late (it was still given without a lease).
    assert stored(engine, give(engine, alice, item)).late is True


def test_a_label_under_a_live_lease_is_not_late(engine, benchmark_id):
    (alice,) = users(engine, "alice")
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    assert stored(engine, give(engine, alice, item)).late is False
    assert overview(engine=engine, benchmark_id=benchmark_id).late_labels == 0


def test_skip_returns_the_item_to_the_pool_and_to_me_only_when_nothing_else_is_left(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, records_per_domain=1, one_item_per_record=False)
    alice, bob = users(engine, "alice", "bob")
    first = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    skip_item(engine=engine, user_id=alice, item_id=first)
    skip_item(engine=engine, user_id=alice, item_id=first)  # twice is harmless
    seen = []
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    while item is not None and item != first:
        seen.append(item)
        give(engine, alice, item)
        item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    # Four records of twelve items: the 47 others first, then the skipped one.
    assert len(seen) == 47 and first not in seen
    assert item == first
    # For others the skipped item was never taken out of the pool.
    assert progress(engine=engine, user_id=bob, benchmark_id=benchmark_id).remaining == 48


def test_a_flagged_item_never_comes_back_to_its_flagger_and_researchers_see_the_flag(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, one_item_per_record=False)
    alice, bob = users(engine, "alice", "bob")
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    before = progress(engine=engine, user_id=alice, benchmark_id=benchmark_id).remaining
    flag_item(engine=engine, user_id=alice, item_id=item, reason="gives_away")
    assert next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id) != item
    assert progress(engine=engine, user_id=alice, benchmark_id=benchmark_id).remaining == before - 1
    assert progress(engine=engine, user_id=bob, benchmark_id=benchmark_id).remaining == before  # others still may
    rows = flags_for_benchmark(engine=engine, benchmark_id=benchmark_id)
    assert [(r.item_id, r.reason, r.annotator) for r in rows] == [(item, "gives_away", "alice")]
    assert rows[0].record_id and rows[0].prompt
    assert flag_counts(engine=engine, benchmark_id=benchmark_id) == {item: 1}
    with pytest.raises(LabelError, match="reason"):
        flag_item(engine=engine, user_id=bob, item_id=item, reason="boring")


def test_guidelines_gate_is_per_study_and_confirming_twice_is_harmless(engine, benchmark_id, tmp_path, record_factory):
    (alice,) = users(engine, "alice")
    assert not guidelines_confirmed(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    confirm_guidelines(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    confirm_guidelines(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    assert guidelines_confirmed(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    from rmgap_annot.formats.rmgap import import_benchmark
    from rmgap_annot.synthetic import write_jsonl

    other = import_benchmark(engine=engine, path=write_jsonl(tmp_path / "o.jsonl", [record_factory()]), name="o").benchmark_id
    assert not guidelines_confirmed(engine=engine, user_id=alice, benchmark_id=other)


def test_keyboard_shortcuts_are_on_until_switched_off(engine):
    alice, bob = users(engine, "alice", "bob")
    assert keyboard_shortcuts(engine=engine, user_id=alice)
    set_keyboard_shortcuts(engine=engine, user_id=alice, enabled=False)
    assert not keyboard_shortcuts(engine=engine, user_id=alice)
    assert keyboard_shortcuts(engine=engine, user_id=bob)
    set_keyboard_shortcuts(engine=engine, user_id=alice, enabled=True)
    assert keyboard_shortcuts(engine=engine, user_id=alice)


def test_late_labels_do_not_count_as_on_time_for_the_load_check(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=1)
    alice, bob = users(engine, "alice", "bob")
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    expire_leases(engine)
    next_item(engine=engine, user_id=bob, benchmark_id=benchmark_id)
    give(engine, bob, item)
    give(engine, alice, item)
    with session_scope(engine) as s:
        lates = s.execute(select(Label.late).where(Label.item_id == item).order_by(Label.id)).scalars().all()
    assert lates == [False, True]


def test_holding_an_open_item_renews_its_lease_and_retakes_it_only_while_it_has_room(engine, benchmark_id):
    update_study(engine=engine, benchmark_id=benchmark_id, labels_per_item=1)
    from rmgap_annot.assignment import hold_item

    alice, bob = users(engine, "alice", "bob")
    item = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    with session_scope(engine) as s:
        before = s.execute(select(Lease.expires_at).where(Lease.user_id == alice)).scalar_one()
    assert hold_item(engine=engine, user_id=alice, item_id=item, now=utcnow() + timedelta(seconds=60))
    with session_scope(engine) as s:
        assert s.execute(select(Lease.expires_at).where(Lease.user_id == alice)).scalar_one() > before
    expire_leases(engine)
    assert hold_item(engine=engine, user_id=alice, item_id=item)  # lapsed but free: taken again, so on time
    assert stored(engine, give(engine, alice, item)).late is False
    # Another item: alice's lease lapses, bob takes and fills it; alice can no longer hold it.
    item2 = next_item(engine=engine, user_id=alice, benchmark_id=benchmark_id)
    expire_leases(engine)
    assert hold_item(engine=engine, user_id=bob, item_id=item2)  # bob opens it (e.g. by Back or a new claim)
    assert not hold_item(engine=engine, user_id=alice, item_id=item2)
    give(engine, bob, item2)
    assert not hold_item(engine=engine, user_id=alice, item_id=item2)
    assert stored(engine, give(engine, alice, item2)).late is True
