"""All tables, in one module.

The relations follow the benchmark: a Benchmark holds Records; a Record holds
four Responses and twelve Items (4 prompt groups x 3 prompts); people leave
Labels on Items; reward models (Scorers) leave Scores on (Item, response).
Unique constraints sit wherever a duplicate would be a bug, so a double
submit or a re-run is harmless by construction.

Changing a table means adding an Alembic migration under
``rmgap_annot/migrations/versions``; ``tests/test_migrations.py`` fails when
the models and the migrations disagree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint, false, true
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC: sqlmodel's datetime columns store and return aware UTC."""
    return datetime.now(timezone.utc)


class Benchmark(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    # sha256 of the decoded file content: the same file re-imported is a no-op.
    file_hash: str = Field(index=True, unique=True)
    source_path: str
    n_records: int = 0  # entries (an RMGAP record, an RMB pair, a RewardBench row)
    imported_at: datetime = Field(default_factory=utcnow)
    # Which reader made it (rmgap_annot.formats.FORMAT_NAMES): the export writes
    # the same format back, and the report speaks that benchmark's metrics.
    format: str = Field(default="rmgap", sa_column_kwargs={"server_default": "rmgap"})


class BenchmarkFile(SQLModel, table=True):
    """One file of an imported benchmark, so the export rebuilds the same tree.

    RMB is a folder of JSON array files; RewardBench ships Parquet, whose
    Arrow schema (column types) is kept so the export writes the same types.
    """

    __table_args__ = (UniqueConstraint("benchmark_id", "path", name="uq_benchmarkfile_bench_path"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    benchmark_id: int = Field(foreign_key="benchmark.id", index=True)
    path: str  # relative to the folder imported (or the file name), POSIX separators
    container: str  # jsonl | json | parquet
    position: int  # order among the benchmark's files
    schema_b64: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class Record(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("benchmark_id", "record_id", name="uq_record_benchmark_recid"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    benchmark_id: int = Field(foreign_key="benchmark.id", index=True)
    record_id: str  # the entry's own id (RMGAP `id`, RMB `pair_uid`/`bon_uid`, RewardBench `id`)
    line_no: int  # 1-based line (entry, row) in its file: exports keep file order
    # The file it came from, for formats read from several files (RMB's folder).
    file_path: str = Field(default="", sa_column_kwargs={"server_default": ""})
    domain: str = Field(index=True)
    source: Optional[str] = None
    # style_assignments, as JSON text: researcher-only (blinding).
    style_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # The original line, exactly as read (decoded, BOM and newline removed),
    # so an export reproduces every field, unknown ones included.
    raw_json: str = Field(sa_column=Column(Text, nullable=False))


class Response(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("record_pk", "key", name="uq_response_record_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    record_pk: int = Field(foreign_key="record.id", index=True)
    key: str
    position: int  # index in the record's `responses` list
    text: str = Field(sa_column=Column(Text, nullable=False))


class Item(SQLModel, table=True):
    """A context, the entry's candidates and the designated winner(s): the unit people label.

    RMGAP gives twelve items per record (4 groups x 3 prompts); the other
    formats give one item per entry (``prompt_index`` is the index within the
    entry). Everything here except the context is researcher-only.
    """

    __table_args__ = (
        UniqueConstraint("record_pk", "group_index", "prompt_index", name="uq_item_record_group_prompt"),
        Index("ix_item_benchmark_domain", "benchmark_id", "domain"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    benchmark_id: int = Field(foreign_key="benchmark.id", index=True)
    record_pk: int = Field(foreign_key="record.id", index=True)
    domain: str  # copied from the record: every statistic is per domain
    group: int  # the group's own `group` field
    group_index: int  # position in `prompt_groups`
    prompt_index: int  # 0-based position in the group's `prompts`
    role: str  # "base" or "rewrite" (RMGAP); "" elsewhere
    text: str = Field(sa_column=Column(Text, nullable=False))  # the prompt, or the conversation's last user turn
    winner_key: str  # researcher-only (blinding); the first correct key
    # JSON list of every correct key, when more than one is (RewardBench 2 ties); None: [winner_key].
    correct_keys_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    # The conversation before the answer, [{role, content}] with the last turn the user's.
    context_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    # The user's profile shown above the question (Personalized RewardBench): [{text, ...}].
    profile_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    # Reporting path, "/"-joined (RMB "Helpfulness/Code/..."); the domain is its first part.
    category_path: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # The resampling unit: items sharing a candidate set or a conversation are drawn together.
    group_key: str = Field(default="", sa_column_kwargs={"server_default": ""})
    # Generator names, rubrics, subset metadata: researcher-only (blinding).
    hidden_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class User(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    role: str = "annotator"  # "annotator" | "researcher"
    # A memory-hard hash (argon2); None for accounts created by a label import
    # or reachable only through an invite link.
    password_hash: Optional[str] = None
    active: bool = True
    failed_logins: int = 0
    locked_until: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)


class Invite(SQLModel, table=True):
    """A personal link (`?invite=TOKEN`); only the token's hash is stored."""

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(index=True, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: Optional[datetime] = None
    last_used_at: Optional[datetime] = None


class AuthSession(SQLModel, table=True):
    """A logged-in browser: the cookie carries a random token, only its sha256 is stored.

    Every way in (password, invite link, SSO) ends here, so logout, disabling
    an account, revoking its invites or changing its password ends the
    browser's session by deleting these rows. Idle for SESSION_IDLE_HOURS, a
    session is dead (sliding: ``last_seen_at`` moves while it is used).
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(index=True, unique=True)
    via: str  # "password" | "invite" | "sso"
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)


class LoginTicket(SQLModel, table=True):
    """A one-use, one-minute ticket the page script hands its own browser.

    The script cannot set an HttpOnly cookie; the browser posts this ticket
    to ``/auth/session`` and gets the session cookie in the answer.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    ticket_hash: str = Field(index=True, unique=True)
    via: str
    expires_at: datetime


class Study(SQLModel, table=True):
    """One labelling run over a benchmark: its settings, people, link and codes.

    A benchmark can have several (a pilot and the main run, one per domain);
    labels, counters and leases belong to one study, so the same person may
    label an item in a pilot and again in the main run.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    benchmark_id: int = Field(foreign_key="benchmark.id", index=True)
    labels_per_item: int = 3
    mode: str = "pick"  # "pick" | "ranking"
    # None: every item is in the study; N: a seeded sample of N records per domain.
    records_per_domain: Optional[int] = None
    sample_seed: int = 0
    quota_per_annotator: Optional[int] = None
    one_item_per_record: bool = True
    lease_seconds: int = 600
    guidelines_md: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The rating questions besides the pick, as JSON (rmgap_annot.questions);
    # None: the format's default (RMGAP asks for the prompt's naturalness).
    questions_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    # --- crowd: a public link, consent, codes, attention checks, qualification
    public_link: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Random and public by nature (pasted into a recruitment page): stored as is.
    link_token: Optional[str] = Field(default=None, index=True, unique=True)
    consent_md: str = Field(default="", sa_column=Column(Text, nullable=False, default="", server_default=""))
    completion_code: Optional[str] = None
    screenout_code: Optional[str] = None
    check_rate: float = Field(default=0.0, sa_column_kwargs={"server_default": "0"})
    check_fail_limit: Optional[int] = None
    check_action: str = Field(default="screen-out", sa_column_kwargs={"server_default": "screen-out"})
    qualification_items: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    qualification_pass: Optional[float] = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class StudyItem(SQLModel, table=True):
    """Which items are in a study (materialised so assignment is one query)."""

    __table_args__ = (Index("ix_studyitem_study_fill", "study_id", "domain", "n_labels"),)

    study_id: int = Field(foreign_key="study.id", primary_key=True)
    item_id: int = Field(foreign_key="item.id", primary_key=True, index=True)
    # Labels on the item, kept by database triggers (migration 0002) on every
    # insert/delete of a label, whoever writes it: assignment reads this
    # instead of counting ~40,000 labels per request.
    n_labels: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Copies of the item's domain and record (they never change), so choosing
    # the next item reads this one table.
    domain: str = Field(default="", sa_column_kwargs={"server_default": ""})
    record_pk: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Lease(SQLModel, table=True):
    """An item held for one annotator in one study for a short time; expired leases are ignored."""

    __table_args__ = (UniqueConstraint("study_id", "user_id", "item_id", name="uq_lease_study_user_item"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    claimed_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class Label(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("study_id", "user_id", "item_id", name="uq_label_study_user_item"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    # A response key (never a display letter), "tie_good"/"tie_bad" for a
    # two-candidate tie; None means "Can't decide".
    choice_key: Optional[str] = None
    reason: Optional[str] = None  # why "Can't decide": none_fits | several_fit | prompt_unclear
    ranking_json: Optional[str] = None  # JSON list of response keys, best first (ranking mode)
    displayed_order_json: Optional[str] = None  # JSON list of response keys in slots A..D
    naturalness: Optional[int] = None  # 1..5
    # Answers to the study's other rating questions: {name: value} for a
    # question about the prompt, {name: {response key: value}} per response.
    ratings_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    comment: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    flags_json: Optional[str] = None
    source: str = "ui"  # "ui" | "import"
    seconds: Optional[float] = None  # time on task, when known (imports)
    shown_at: Optional[datetime] = None
    first_submitted_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime = Field(default_factory=utcnow, index=True)
    revisions: int = 0
    # Submitted when the annotator no longer held the item's lease: stored all
    # the same (nothing a person did is lost) and counted apart, because such a
    # label can push an item over its target.
    late: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Draft(SQLModel, table=True):
    """An annotator's half-made answer to one item, kept while they make it.

    Server-side, so leaving for the Guidelines, a refresh or a lost connection
    keeps the selections and the comment; deleted when the label is stored.
    """

    __table_args__ = (UniqueConstraint("study_id", "user_id", "item_id", name="uq_draft_study_user_item"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    state_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    updated_at: datetime = Field(default_factory=utcnow)


class Skip(SQLModel, table=True):
    """An item an annotator passed over: back to the pool, shown to them only when nothing else is left."""

    __table_args__ = (UniqueConstraint("study_id", "user_id", "item_id", name="uq_skip_study_user_item"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    skipped_at: datetime = Field(default_factory=utcnow)


class Flag(SQLModel, table=True):
    """An annotator's report that an item is unfit to label (listed for researchers)."""

    __table_args__ = (UniqueConstraint("user_id", "item_id", name="uq_flag_user_item"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    reason: str  # broken_text | offensive | gives_away
    flagged_at: datetime = Field(default_factory=utcnow)


class GuidelinesConfirmation(SQLModel, table=True):
    """An annotator confirmed they read a study's guidelines (the gate before their first item)."""

    __table_args__ = (UniqueConstraint("user_id", "study_id", name="uq_guidelines_user_study"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    confirmed_at: datetime = Field(default_factory=utcnow)


class AnnotatorSetting(SQLModel, table=True):
    """Per-annotator preferences; single-key shortcuts collide with screen-reader keys, so they can be off."""

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    keyboard_shortcuts: bool = Field(default=True, sa_column_kwargs={"server_default": true()})


class Scorer(SQLModel, table=True):
    """One reward model (or baseline) with its settings."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    family: str  # scalar | lm-logprob | dpo | judge | length | random | embedding | imported
    spec: str  # what the user typed, e.g. "scalar:/models/rm"
    config_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    # Hash of the model files plus every setting that changes a score: a
    # re-run with the same fingerprint does no model work.
    fingerprint: str = ""
    n_truncated: int = 0
    n_unparseable: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class Score(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("scorer_id", "item_id", "response_key", name="uq_score_scorer_item_key"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    scorer_id: int = Field(foreign_key="scorer.id", index=True)
    item_id: int = Field(foreign_key="item.id", index=True)
    response_key: str
    value: Optional[float] = None  # None stores NaN (skipped by the metrics)
    truncated: bool = False


class ScoringJob(SQLModel, table=True):
    """A scoring run's progress, written by a worker so a page can poll it."""

    id: Optional[int] = Field(default=None, primary_key=True)
    scorer_name: str
    spec: str
    options_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    status: str = "queued"  # queued | running | done | failed
    done: int = 0
    total: int = 0
    error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None


class AnnotatorExclusion(SQLModel, table=True):
    """An annotator whose labels count nowhere, kept as history (never deleted).

    Excluding stores a row; including again stamps ``included_at`` on it, so
    who was excluded, when and why stays readable after a reversal. The
    labels themselves are never touched (nothing a person did is lost).
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    excluded_at: datetime = Field(default_factory=utcnow)
    included_at: Optional[datetime] = None


class TruthFit(SQLModel, table=True):
    """A cached truth-inference fit (Dawid-Skene, MACE) for one exact set of labels.

    A fit takes seconds on 40k labels, too slow for the report's budget, so
    it is computed once per ``fingerprint`` (a hash of the labels it saw,
    the exclusions and the method's settings) and read back as JSON.
    """

    __table_args__ = (UniqueConstraint("benchmark_id", "method", "fingerprint", name="uq_truthfit_bench_method_fp"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    benchmark_id: int = Field(foreign_key="benchmark.id", index=True)
    method: str
    fingerprint: str
    fitted_at: datetime = Field(default_factory=utcnow)
    seconds: float = 0.0
    result_json: str = Field(sa_column=Column(Text, nullable=False))


class StudyMember(SQLModel, table=True):
    """A person in a study: how they arrived, consent, status, their pseudonym.

    Participants from a crowd platform arrive through the study's public link
    and are keyed by the platform's participant id (one annotator however many
    devices); lab accounts join the study they label. ``pseudonym_no`` gives
    the stable public name (``ann-07``) used in every export.
    """

    __table_args__ = (
        UniqueConstraint("study_id", "user_id", name="uq_studymember_study_user"),
        UniqueConstraint("study_id", "pseudonym_no", name="uq_studymember_study_pseudonym"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    pseudonym_no: int
    platform: Optional[str] = None  # prolific | mturk | generic; None for a lab account
    participant_id: Optional[str] = None  # the platform's id: crowd report only
    platform_study_id: Optional[str] = None
    platform_session_id: Optional[str] = None
    joined_at: datetime = Field(default_factory=utcnow)
    consented_at: Optional[datetime] = None
    declined_at: Optional[datetime] = None
    qualified_at: Optional[datetime] = None
    screened_out_at: Optional[datetime] = None
    screened_out_reason: Optional[str] = None
    completed_at: Optional[datetime] = None  # the completion code was shown
    blocked_at: Optional[datetime] = None


class CheckItem(SQLModel, table=True):
    """A researcher-written attention check or qualification item, stored apart from the benchmark.

    Shown exactly like a real item; its answers go to CheckLabel, never to
    Label, so no statistic can count them.
    """

    __table_args__ = (UniqueConstraint("study_id", "kind", "check_id", name="uq_checkitem_study_kind_id"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    kind: str  # check | qualification
    check_id: str  # the researcher's id
    position: int  # order in the file (qualification items are shown in this order)
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    context_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    profile_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    responses_json: str = Field(sa_column=Column(Text, nullable=False))  # [[key, text], ...]
    expected_json: str = Field(sa_column=Column(Text, nullable=False))  # acceptable keys
    explanation: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    file_hash: str = ""


class CheckLabel(SQLModel, table=True):
    """One annotator's answer to a check or qualification item (created when it is shown)."""

    __table_args__ = (UniqueConstraint("user_id", "check_item_id", name="uq_checklabel_user_check"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    check_item_id: int = Field(foreign_key="checkitem.id", index=True)
    # The real labels the annotator had given when it was shown: where it sits in their stream.
    after_labels: int = 0
    choice_key: Optional[str] = None
    ranking_json: Optional[str] = None
    ratings_json: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    displayed_order_json: Optional[str] = None
    correct: Optional[bool] = None  # None until answered
    shown_at: datetime = Field(default_factory=utcnow)
    submitted_at: Optional[datetime] = None


class AuditEvent(SQLModel, table=True):
    """Who changed what: blocks, exclusions, deletions and settings changes, shown on the Quality page."""

    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str  # the researcher's name, or "cli"
    study_id: Optional[int] = Field(default=None, foreign_key="study.id", index=True)
    action: str
    target: str = ""  # a pseudonym or a setting's name: never a platform id
    detail_json: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
