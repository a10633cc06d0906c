"""`make demo`'s seeding step: a database with the bundled sample and accounts.

Idempotent: the sample is imported by content hash and accounts are created
only when missing, so running it again reuses everything and loses nothing.

So that the researcher pages show real numbers from the first minute, the
first run also stores labels from three *simulated* annotators (accounts
``sim-1..3``, no password; labels marked ``source="demo"``) on half
of the sample's records, and scores every item with the ``length``
baseline. The other half is left for the demo's real annotators. The
artifact checks (against the bundled organic sample) are fitted and cached
too, so the Results page shows them without a wait.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from rmgap_annot.accounts import add_user, create_user, get_user_by_name, new_password
from rmgap_annot.annotation import displayed_order
from rmgap_annot.assignment import get_study
from rmgap_annot.formats.rmgap import ImportResult, import_benchmark, sample_path
from rmgap_annot.studies import ensure_members
from rmgap_annot.db import init_db, session_scope
from rmgap_annot.models import Item, Label, Record, Response, utcnow

DEMO_ACCOUNTS = (("researcher", "researcher"), ("alice", "annotator"), ("bob", "annotator"), ("carol", "annotator"))
# "sim-" marks simulated annotators wherever a name shows (pages say so), so their
# labels are never taken for people's.
SIMULATED_PREFIX = "sim-"
CROWD = tuple(f"{SIMULATED_PREFIX}{i}" for i in (1, 2, 3))


def is_simulated(name: str) -> bool:
    return name.startswith(SIMULATED_PREFIX)


def simulated_note(names: Iterable[str]) -> Optional[str]:
    """The warning every page showing these names' labels carries, or None when all are people:
    one check and one wording, so no page counts simulated labels as people's."""
    sims = sorted(n for n in names if is_simulated(n))
    if not sims:
        return None
    return (f"Annotators named `{SIMULATED_PREFIX}...` ({', '.join(sims)}) are **simulated** (the demo's crowd): "
            "their labels are not people's.")

def labellers_of(*, engine: Engine, benchmark_id: int) -> list[str]:
    """The account names with a label on this benchmark (any of its studies): whose labels its numbers show."""
    from rmgap_annot.models import Item, Label, User

    with session_scope(engine) as session:
        return sorted(session.execute(
            select(User.name).distinct().join(Label, Label.user_id == User.id).join(Item, Item.id == Label.item_id)
            .where(Item.benchmark_id == benchmark_id)
        ).scalars())


# How often a simulated annotator picks the designated winner (else a random
# other response): different skills give the agreement statistics something to show.
CROWD_SKILL = (0.85, 0.7, 0.55)


@dataclass
class SeedResult:
    benchmark: ImportResult
    new_accounts: list[tuple[str, str, str]]  # (name, role, one-time password)


def seed_demo(*, engine: Engine) -> SeedResult:
    init_db(engine.url.render_as_string(hide_password=False))
    result = import_benchmark(engine=engine, path=sample_path(), name="sample")
    created = []
    for name, role in DEMO_ACCOUNTS:
        with session_scope(engine) as session:
            exists = get_user_by_name(session=session, name=name) is not None
        if not exists:
            password = new_password()
            create_user(engine=engine, name=name, role=role, password=password)
            created.append((name, role, password))
    if result.created:
        seed_crowd_labels(engine=engine, benchmark_id=result.benchmark_id)
        seed_length_baseline(engine=engine, benchmark_id=result.benchmark_id)
        seed_artifact_checks(engine=engine, benchmark_id=result.benchmark_id)
    return SeedResult(result, created)


def seed_crowd_labels(*, engine: Engine, benchmark_id: int, seed: int = 0) -> int:
    """Simulated labels on every other record (sorted by id); returns how many.

    The simulated annotators label all 12 items of their records (people get
    at most one item per record), so that Consistency has whole groups to
    show. The study is materialised first so its label counters include these.
    """
    study_id = get_study(engine=engine, benchmark_id=benchmark_id).id
    rng = random.Random(seed)
    with session_scope(engine, write=True) as session:
        users = [add_user(session=session, name=name, role="annotator").id for name in CROWD]
        records = session.execute(select(Record.id).where(Record.benchmark_id == benchmark_id).order_by(Record.record_id)).scalars().all()
        chosen = set(records[::2])
        keys: dict[int, list[str]] = {}
        for pk, key in session.execute(select(Response.record_pk, Response.key).where(Response.record_pk.in_(chosen))).all():
            keys.setdefault(pk, []).append(key)
        items = session.execute(
            select(Item.id, Item.record_pk, Item.winner_key).where(Item.record_pk.in_(chosen)).order_by(Item.id)
        ).all()
        now = utcnow()
        rows = []
        for item_id, pk, winner in items:
            for user_id, skill in zip(users, CROWD_SKILL):
                others = sorted(k for k in keys[pk] if k != winner)
                choice = winner if rng.random() < skill else rng.choice(others)
                rows.append({
                    "study_id": study_id, "user_id": user_id, "item_id": item_id, "choice_key": choice,
                    "naturalness": rng.choices((2, 3, 4, 5), weights=(1, 2, 4, 3))[0],
                    "displayed_order_json": json.dumps(displayed_order(user_id=user_id, item_id=item_id, keys=keys[pk])),
                    "source": "demo", "seconds": round(rng.lognormvariate(3.3, 0.5), 1),
                    "first_submitted_at": now, "submitted_at": now,
                })
        ensure_members(session, study_id=study_id, user_ids=users)
        session.execute(insert(Label), rows)
    return len(rows)


def seed_length_baseline(*, engine: Engine, benchmark_id: int) -> None:
    """The response-length baseline: cheap, needs no model, and is RMGAP's reason to exist."""
    from rmgap_annot.scoring.runner import run_scoring

    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="length", name="length", items="all")


def seed_artifact_checks(*, engine: Engine, benchmark_id: int) -> None:
    """Fit and cache the artifact checks with the bundled organic sample (a second or two on the sample)."""
    from rmgap_annot.stats.artifacts import artifact_checks, organic_sample_path, read_organic_prompts

    artifact_checks(engine=engine, benchmark_id=benchmark_id, organic=read_organic_prompts(organic_sample_path()))
