"""Benchmarks of the other formats, built straight in the database, for the annotate page's tests.

One function (``add_format_benchmark``) makes them, so the tests can switch
to the format importers (``rmgap-annot import-benchmark --format ...``) in
one place once those land. Every value an annotator must never see carries
a sentinel (generator names, rubric aspects, narrative, entry ids, post
ids), and the candidate keys are each format's own (``chosen``/``reject``,
``bon_best``/``loser_N``, ``chosen``/``rejected``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from sqlalchemy import select

from rmgap_annot.formats.rmgap import create_first_study
from rmgap_annot.db import session_scope
from rmgap_annot.models import Benchmark, Item, Record, Response, Study, StudyMember, utcnow

# Field names of hidden metadata: the annotator's browser never receives them (nor their values).
HIDDEN_FIELDS = ("llm_name", "chosen_model", "rubric_aspects", "narrative", "models")


@dataclass
class Entry:
    """One entry of a benchmark, as the annotate page needs it (one item)."""

    entry_id: str
    prompt: str
    candidates: list[tuple[str, str]]  # (key, text)
    correct: list[str]
    conversation: list[dict] | None = None  # [{role, content}], the last the user's (its content is ``prompt``)
    profile: list[dict] | None = None  # [{id, category, text}]
    hidden: dict = field(default_factory=dict)
    category_path: str = "Chat"


def add_format_benchmark(engine, *, fmt: str, name: str, entries: list[Entry]) -> tuple[int, int]:  # noqa: ANN001
    """Insert a benchmark of ``fmt`` with one item per entry; returns (benchmark id, its first study's id)."""
    with session_scope(engine, write=True) as s:
        bench = Benchmark(name=name, file_hash=hashlib.sha256(name.encode()).hexdigest(), source_path=f"{name}.json",
                          n_records=len(entries), format=fmt)
        s.add(bench)
        s.flush()
        for line, e in enumerate(entries, start=1):
            raw = {"id": e.entry_id, "prompt": e.prompt, "candidates": e.candidates, **e.hidden}
            domain = e.category_path.split("/")[0]
            rec = Record(benchmark_id=bench.id, record_id=e.entry_id, line_no=line, file_path=f"{name}.json",
                         domain=domain, raw_json=json.dumps(raw))
            s.add(rec)
            s.flush()
            for pos, (key, text) in enumerate(e.candidates):
                s.add(Response(record_pk=rec.id, key=key, position=pos, text=text))
            s.add(Item(
                benchmark_id=bench.id, record_pk=rec.id, domain=domain, group=0, group_index=0, prompt_index=0,
                role="", text=e.prompt, winner_key=e.correct[0], correct_keys_json=json.dumps(e.correct),
                context_json=json.dumps(e.conversation) if e.conversation else None,
                profile_json=json.dumps(e.profile) if e.profile else None,
                category_path=e.category_path, group_key=f"{name}:{line}",
                hidden_json=json.dumps(e.hidden) if e.hidden else None,
            ))
        s.flush()
        create_first_study(s, bench.id)
        bench_id = bench.id
    with session_scope(engine) as s:
        study_id = s.execute(select(Study.id).where(Study.benchmark_id == bench_id)).scalar_one()
    return bench_id, study_id


def join(engine, *, study_id: int, user_id: int) -> None:  # noqa: ANN001
    """Make the person a member of the study (the annotate page opens the study they joined last)."""
    from rmgap_annot.studies import ensure_member

    with session_scope(engine, write=True) as s:
        ensure_member(s, study_id=study_id, user_id=user_id, joined_at=utcnow())


def member_of(engine, user_id: int) -> list[int]:  # noqa: ANN001
    with session_scope(engine) as s:
        return list(s.execute(select(StudyMember.study_id).where(StudyMember.user_id == user_id)).scalars())


# --- the four items the tests and screenshots use ------------------------------------------------

LONG_POST = ("I have been trying to get back into running after a knee injury last spring. My physio says "
             "to keep it slow, but I get bored on easy runs and end up pushing the pace. ") * 4


def pairwise_entry() -> Entry:
    return Entry(
        "PAIRIDSENTINEL-1", "VISIBLEPAIR: Suggest a name for a small bakery that sells sourdough and pastries.",
        [("chosen", "VISIBLEPAIR-RESP: **Crumb & Crust**: short, warm, and it says bread."),
         ("rejected", "VISIBLEPAIR-RESP: *The Bread Place*: plain, but clear about what you sell.")],
        ["chosen"], hidden={"chosen_model": "MODELSENTINEL-a", "rejected_model": "MODELSENTINEL-b"},
        category_path="Chat/naming",
    )


def bon_entry() -> Entry:
    texts = [f"VISIBLEBON-RESP {i}: a sorting function, version {i}.\n\n```python\ndef sort_items(xs):\n"
             f"    return sorted(xs, key=lambda x: x[{i % 3}])\n```\n" + "It keeps equal elements in order. " * (i + 1)
             for i in range(7)]
    keys = ["bon_best"] + [f"loser_{i}" for i in range(6)]
    conversation = [{"role": "user", "content": "VISIBLEBON: Write a Python function that sorts a list of tuples."}]
    return Entry(
        "BONIDSENTINEL-1", conversation[-1]["content"], list(zip(keys, texts)), ["bon_best"],
        conversation=conversation,
        hidden={"kind": "bon", "llm_name": {k: f"MODELSENTINEL-{k}" for k in keys}, "models": ["MODELSENTINEL-x"]},
        category_path="BoN_set/Helpfulness/Code/Code Generation",
    )


def conversation_entry() -> Entry:
    turns = [
        {"role": "user", "content": "VISIBLECHAT-1: I'm planning a trip to Kyoto in November. Is it a good month?"},
        {"role": "assistant", "content": "VISIBLECHAT-2: Yes: autumn leaves peak mid to late November; expect crowds."},
        {"role": "user", "content": "VISIBLECHAT-3: I don't like crowds. Which temples are quieter?"},
        {"role": "assistant", "content": "VISIBLECHAT-4: Try Ohara (Sanzen-in), Daigo-ji early morning, or Kurama."},
        {"role": "user", "content": "VISIBLECHAT-FINAL: Can you plan one quiet day for me, with trains and times? 日本語も少し話せます。"},
    ]
    return Entry(
        "CHATIDSENTINEL-1", turns[-1]["content"], [
            ("chosen", "VISIBLECHAT-RESP: 8:00 train from Kyoto Station to Ohara (bus 17, 60 min); Sanzen-in at 9:00; "
                       "lunch at a soba shop; back by 14:00 for Daigo-ji."),
            ("reject", "VISIBLECHAT-RESP: Kyoto has many temples. Kinkaku-ji and Fushimi Inari are very famous."),
        ], ["chosen"], conversation=turns,
        hidden={"kind": "pairwise", "llm_name": {"chosen": "MODELSENTINEL-c", "reject": "MODELSENTINEL-r"}},
        category_path="Pairwise_set/Helpfulness/Chat/Travel",
    )


def profile_entry() -> Entry:
    posts = [{"id": f"POSTIDSENTINEL-{i}", "category": "Lifestyle", "text": f"VISIBLEPOST-{i}: {LONG_POST}"}
             for i in range(4)]
    return Entry(
        "PRBIDSENTINEL-1", "VISIBLEPROFILE: How should I plan my week of training?",
        [("chosen", "VISIBLEPROFILE-RESP: Given your knee, three easy runs and one strides session; add cycling."),
         ("rejected", "VISIBLEPROFILE-RESP: Run every day and add a long run on Sunday; push the pace when you can.")],
        ["chosen"], profile=posts,
        hidden={"rubric_aspects": [{"aspect": "RUBRICSENTINEL", "evidence": "knee", "reason": "injury"}],
                "narrative": "NARRATIVESENTINEL: a runner back from injury"},
        category_path="Lifestyle_and_Personal_Development",
    )


def add_all_formats(engine) -> dict[str, tuple[int, int]]:  # noqa: ANN001
    """The four items, one benchmark (and study) each: name -> (benchmark id, study id)."""
    return {
        "pairwise": add_format_benchmark(engine, fmt="pairs", name="pairwise", entries=[pairwise_entry()]),
        "bon7": add_format_benchmark(engine, fmt="rmb", name="bon7", entries=[bon_entry()]),
        "chat": add_format_benchmark(engine, fmt="rmb", name="chat", entries=[conversation_entry()]),
        "profile": add_format_benchmark(engine, fmt="prb", name="profile", entries=[profile_entry()]),
    }


def prepare_format_studies(engine, *, prefix: str, password: str) -> dict[str, tuple[int, int]]:  # noqa: ANN001
    """Every shape in its own study, as the browser tests serve them: the 7-candidate item in ranking mode,
    the profile item asking Personalized RewardBench's questions, and one annotator per study (``PREFIX-NAME``)
    who joined it and confirmed its guidelines."""
    from rmgap_annot.accounts import create_user
    from rmgap_annot.annotation import confirm_guidelines
    from rmgap_annot.assignment import update_study
    from rmgap_annot.questions import PRESETS, dumps

    made = add_all_formats(engine)
    update_study(engine=engine, study_id=made["bon7"][1], mode="ranking")
    update_study(engine=engine, study_id=made["profile"][1], questions_json=dumps(PRESETS["prb-human-check"]))
    for name, (_, sid) in made.items():
        uid = create_user(engine=engine, name=f"{prefix}-{name}", role="annotator", password=password)
        join(engine, study_id=sid, user_id=uid)
        confirm_guidelines(engine=engine, user_id=uid, study_id=sid)
    return made
