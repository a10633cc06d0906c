"""`rmgap-annot ...`: the operations of the app, for scripts.

Every command here is a thin shell over a function in ``rmgap_annot``; the
README's CLI reference lists each one (a test fails when one is missing).
Exit codes: 0 success, 1 failure, 2 bad input (nothing was changed).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer
from sqlalchemy import func, select

from rmgap_annot import __version__
from rmgap_annot.settings import DOMAINS, resolve_db_url

app = typer.Typer(
    name="rmgap-annot",
    help="Human validation of reward-model benchmarks (RMGAP, RMB, Personalized RewardBench, RewardBench 1/2, preference pairs).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Manage annotator and researcher accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
labels_app = typer.Typer(help="Import and export human labels.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")
scores_app = typer.Typer(help="Import and export reward-model scores.", no_args_is_help=True)
app.add_typer(scores_app, name="scores")
study_app = typer.Typer(help="Create, list, show or change studies (labelling runs over a benchmark).", no_args_is_help=True)
app.add_typer(study_app, name="study")
annotators_app = typer.Typer(help="Exclude annotators from every number (reversibly), include them again, block them in a study, or delete a participant who withdraws.", no_args_is_help=True)
app.add_typer(annotators_app, name="annotators")
crowd_app = typer.Typer(help="Run a crowd study: the public study link, the per-participant quality report and the payment CSV.", no_args_is_help=True)
app.add_typer(crowd_app, name="crowd")
checks_app = typer.Typer(help="Attention-check and qualification items of a crowd study.", no_args_is_help=True)
app.add_typer(checks_app, name="checks")
formats_app = typer.Typer(help="Check files of any benchmark format (RMB, RewardBench 1/2, ...) without a database; import-benchmark imports them.", no_args_is_help=True)
app.add_typer(formats_app, name="formats")


def fail(message: str, code: int = 1) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def engine_from(ctx: typer.Context):  # noqa: ANN201
    """The engine for the URL chosen by --db / RMGAP_ANNOT_DB / the default.

    A missing SQLite file is refused (exit 2): connecting would create an
    empty database, and a mistyped path would then quietly hold a study's
    work. Only ``init`` and ``seed-demo`` create one.
    """
    from rmgap_annot.db import get_engine
    from rmgap_annot.db_guard import DatabaseUnavailable, require_existing_file

    try:
        require_existing_file(ctx.obj["db"])
    except DatabaseUnavailable as exc:
        fail(str(exc), 2)
    return get_engine(ctx.obj["db"])


def ready_engine(ctx: typer.Context):  # noqa: ANN201
    """The engine, after making sure the schema is current (idempotent)."""
    from rmgap_annot.db import init_db

    engine = engine_from(ctx)
    init_db(ctx.obj["db"])
    return engine


def chosen_benchmark(engine, name: Optional[str]):  # noqa: ANN001, ANN201
    """The benchmark named by --benchmark (default: the latest), or exit 2 saying why."""
    from rmgap_annot.catalog import get_benchmark

    bench = get_benchmark(engine=engine, name=name)
    if bench is None:
        fail(f"no benchmark named {name!r}" if name else "no benchmark yet; import one with: rmgap-annot import-benchmark FILE", 2)
    return bench


def chosen_study(engine, name: Optional[str], benchmark: Optional[str] = None, *, allow_all: bool = False):  # noqa: ANN001, ANN201
    """The study named by --study, else the benchmark's only one; (study ids, benchmark), or exit 2 saying why.

    ``--study all`` (where ``allow_all``) pools every study of the benchmark.
    """
    from rmgap_annot.catalog import get_benchmark
    from rmgap_annot.studies import ALL, StudyNotFound, list_studies, resolve_study

    if name and name != ALL:
        try:
            sid = resolve_study(engine=engine, name=name)
        except StudyNotFound as exc:
            fail(str(exc), 2)
        info = next(s for s in list_studies(engine=engine) if s.id == sid)
        bench = get_benchmark(engine=engine, name=info.benchmark)
        if benchmark and bench.name != benchmark:
            fail(f"study {name!r} is over benchmark {bench.name!r}, not {benchmark!r}", 2)
        return [sid], bench
    bench = chosen_benchmark(engine, benchmark)
    if name == ALL:
        if not allow_all:
            fail("--study all is only for report, export-verified and labels export; name one study", 2)
        from rmgap_annot.assignment import get_study

        get_study(engine=engine, benchmark_id=bench.id)  # a benchmark always has at least its first study
        return [s.id for s in list_studies(engine=engine, benchmark_id=bench.id)], bench
    studies = list_studies(engine=engine, benchmark_id=bench.id)
    if len(studies) > 1:
        names = ", ".join(s.name for s in studies)
        hint = " (or --study all to pool them)" if allow_all else ""
        fail(f"benchmark {bench.name!r} has several studies ({names}): name one with --study NAME{hint}", 2)
    if not studies:
        from rmgap_annot.assignment import get_study

        return [get_study(engine=engine, benchmark_id=bench.id).id], bench
    return [studies[0].id], bench


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rmgap-annot {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(None, "--db", help="Database URL (else $RMGAP_ANNOT_DB, else sqlite:///db/rmgap_annot.sqlite)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = {"db": resolve_db_url(db)}


def _print_counts(counts: dict[str, dict[str, int]]) -> None:
    """Per domain (RMGAP's four; another format's top-level categories), then the total."""
    total_r = total_i = 0
    domains = list(DOMAINS) if set(counts) == set(DOMAINS) else sorted(counts)
    width = max([10, *(len(d or "(none)") for d in domains)])
    typer.echo(f"  {'domain':<{width}} {'records':>8} {'items':>8}")
    for domain in domains:
        c = counts.get(domain, {"records": 0, "items": 0})
        total_r += c["records"]
        total_i += c["items"]
        typer.echo(f"  {domain or '(none)':<{width}} {c['records']:>8} {c['items']:>8}")
    typer.echo(f"  {'total':<{width}} {total_r:>8} {total_i:>8}")


# --- foundation ------------------------------------------------------------


@app.command("init")
def init_cmd(ctx: typer.Context) -> None:
    """Create the database, or upgrade it in place to the current schema (never drops data)."""
    from rmgap_annot.db import head_revision, init_db

    rev = init_db(ctx.obj["db"])
    typer.echo(f"Database {ctx.obj['db']} is at schema revision {rev} (head {head_revision()}).")


@app.command("import-benchmark")
def import_benchmark_cmd(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="A benchmark file (.jsonl, .jsonl.gz, .json, .parquet) or folder (RMB_dataset, or a folder of JSONL/Parquet files)."),
    format_name: Optional[str] = typer.Option(
        None, "--format", help="rmgap, rmb, prb, rewardbench, rewardbench2 or pairs (default: detected from the content)."),
    name: Optional[str] = typer.Option(None, "--name", help="Benchmark name (default: the file or folder name)."),
) -> None:
    """Validate a benchmark in any supported format and import it atomically (all or nothing)."""
    from rmgap_annot.formats.rmgap import BenchmarkFileError, format_errors
    from rmgap_annot.formats import FORMAT_NAMES
    from rmgap_annot.formats.store import import_any

    if format_name is not None and format_name not in FORMAT_NAMES:
        fail(f"--format must be one of {', '.join(FORMAT_NAMES)}, not {format_name!r}", 2)
    engine = ready_engine(ctx)
    try:
        result = import_any(engine=engine, path=file, format=format_name, name=name)
    except BenchmarkFileError as exc:
        typer.echo(format_errors(exc.errors), err=True)
        typer.echo(f"Nothing was imported: {len(exc.errors)} error(s).", err=True)
        raise typer.Exit(2) from None
    if result.created:
        typer.echo(f"Imported benchmark {result.name!r} (id {result.benchmark_id}):")
    else:
        typer.echo(f"Already imported as benchmark {result.name!r} (same content hash); nothing changed.")
    _print_counts(result.counts)


@app.command("benchmarks")
def benchmarks_cmd(ctx: typer.Context) -> None:
    """List the imported benchmarks with per-domain record and item counts."""
    from rmgap_annot.catalog import list_benchmarks

    rows = list_benchmarks(engine=ready_engine(ctx))
    if not rows:
        typer.echo("No benchmarks yet. Import one with: rmgap-annot import-benchmark FILE")
        return
    for b in rows:
        typer.echo(f"{b.name} (id {b.id}, sha256 {b.file_hash[:12]}, imported {b.imported_at:%Y-%m-%d %H:%M} UTC)")
        _print_counts(b.counts)


@users_app.command("add")
def users_add_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name (what they type to log in)."),
    role: str = typer.Option("annotator", "--role", help="annotator or researcher."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
    no_password: bool = typer.Option(False, "--no-password", help="No password (the user logs in by invite link)."),
) -> None:
    """Add a user; the password is prompted for (or read from stdin), never passed as an argument."""
    from rmgap_annot.accounts import AccountError, create_user, validate_role

    try:
        validate_role(role)
    except AccountError as exc:
        fail(str(exc), 2)
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        create_user(engine=ready_engine(ctx), name=name, role=role, password=password)
    except AccountError as exc:
        fail(str(exc), 2)
    typer.echo(f"Added {role} {name!r}.")


@users_app.command("list")
def users_list_cmd(ctx: typer.Context) -> None:
    """List users with their role and number of labels."""
    from rmgap_annot.accounts import list_users

    rows = list_users(engine=ready_engine(ctx))
    if not rows:
        typer.echo("No users yet. Add one with: rmgap-annot users add NAME --role annotator")
        return
    typer.echo(f"{'name':<24} {'role':<11} {'login':<9} {'labels':>7}")
    for u in rows:
        login = ("password" if u.has_password else "invite") if u.active else "disabled"
        typer.echo(f"{u.name:<24} {u.role:<11} {login:<9} {u.n_labels:>7}")


def _user_id(engine, name: str) -> int:  # noqa: ANN001
    from rmgap_annot.accounts import user_id_by_name

    uid = user_id_by_name(engine=engine, name=name)
    if uid is None:
        fail(f"no user named {name!r} (see: rmgap-annot users list)", 2)
    return uid


@users_app.command("invite")
def users_invite_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user the link logs in."),
    url: str = typer.Option("http://localhost:8501/", "--url", help="The app's address, as annotators reach it."),
    days: int = typer.Option(14, "--days", min=1, help="Days until the link expires."),
) -> None:
    """Print a personal login link (shown once; only its hash is stored)."""
    from rmgap_annot.accounts import create_invite, invite_link

    engine = ready_engine(ctx)
    token = create_invite(engine=engine, user_id=_user_id(engine, name), ttl_days=days)
    typer.echo(invite_link(url, token))


@users_app.command("revoke-invites")
def users_revoke_invites_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Whose links to revoke.")) -> None:
    """Revoke every live invite link of a user (for a leaked link)."""
    from rmgap_annot.accounts import revoke_invites

    engine = ready_engine(ctx)
    n = revoke_invites(engine=engine, user_id=_user_id(engine, name))
    typer.echo(f"Revoked {n} link(s) of {name!r}; their open sessions ended.")


@users_app.command("disable")
def users_disable_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Whose account to disable.")) -> None:
    """Disable an account: its invite links are revoked and every open browser is logged out at once.

    Past labels stay in the study.
    """
    from rmgap_annot.accounts import set_active

    engine = ready_engine(ctx)
    set_active(engine=engine, user_id=_user_id(engine, name), active=False)
    typer.echo(f"Disabled {name!r}: links revoked, sessions ended.")


@users_app.command("enable")
def users_enable_cmd(ctx: typer.Context, name: str = typer.Argument(..., help="Whose account to enable again.")) -> None:
    """Enable a disabled account (revoked links stay revoked: send a new one with `users invite`)."""
    from rmgap_annot.accounts import set_active

    engine = ready_engine(ctx)
    set_active(engine=engine, user_id=_user_id(engine, name), active=True)
    typer.echo(f"Enabled {name!r}.")


@users_app.command("set-password")
def users_set_password_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Whose password to set."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
) -> None:
    """Set a user's password (prompted for, or read from stdin); ends all their sessions and lifts a lockout."""
    from rmgap_annot.accounts import AccountError, set_password

    engine = ready_engine(ctx)
    uid = _user_id(engine, name)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        set_password(engine=engine, user_id=uid, password=password)
    except AccountError as exc:
        fail(str(exc), 2)
    typer.echo(f"Password of {name!r} changed; their open sessions ended.")


# --- study settings --------------------------------------------------------


def _print_study(engine, bench, study_id: int) -> None:  # noqa: ANN001
    from rmgap_annot.assignment import get_study, overview, study_item_count

    study = get_study(engine=engine, study_id=study_id)
    counts = study_item_count(engine=engine, study_id=study_id)
    ov = overview(engine=engine, study_id=study_id)
    sample = f"{study.records_per_domain} records per domain (seed {study.sample_seed})" if study.records_per_domain else "all"
    typer.echo(f"Study {study.name!r} of benchmark {bench.name!r}:")
    typer.echo(f"  labels per item        {study.labels_per_item}")
    typer.echo(f"  items                  {sample}")
    typer.echo(f"  mode                   {study.mode}")
    typer.echo(f"  quota per annotator    {study.quota_per_annotator or 'none'}")
    typer.echo(f"  one item per record    {'yes' if study.one_item_per_record else 'no'}")
    typer.echo(f"  lease                  {study.lease_seconds} s")
    typer.echo("  items in the study     " + ", ".join(f"{d} {n}" for d, n in counts.items()) + f" (total {ov.items})")
    target = ov.items * ov.labels_per_item
    typer.echo(f"  labels                 {ov.labels} of {target}; {ov.complete_items} items complete")
    typer.echo(f"  public link            {'on' if study.public_link else 'off'}")
    typer.echo(f"  completion code        {study.completion_code or 'none'}")
    typer.echo(f"  screen-out code        {study.screenout_code or 'none'}")
    typer.echo(f"  attention checks       rate {study.check_rate:g}, fail limit {study.check_fail_limit or 'none'},"
               f" action {study.check_action}")
    typer.echo(f"  qualification          {study.qualification_items} items"
               + (f", pass {study.qualification_pass:g}" if study.qualification_pass is not None else ""))


@study_app.command("create")
def study_create_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The new study's name (letters, digits, . _ -)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the latest)."),
    copy_from: Optional[str] = typer.Option(None, "--copy-from", help="Start from this study's settings (not its people, link or labels)."),
) -> None:
    """Create another study over a benchmark (a pilot and the main run, one per domain)."""
    from rmgap_annot.assignment import StudyError, create_study

    engine = ready_engine(ctx)
    bench = chosen_benchmark(engine, benchmark)
    source = chosen_study(engine, copy_from)[0][0] if copy_from else None
    try:
        study = create_study(engine=engine, name=name, benchmark_id=bench.id, copy_from=source)
    except (StudyError, ValueError) as exc:
        fail(str(exc), 2)
    _print_study(engine, bench, study.id)


@study_app.command("assign")
def study_assign_cmd(
    ctx: typer.Context,
    names: list[str] = typer.Argument(..., help="Annotator accounts (user names)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the benchmark's only study)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the latest)."),
) -> None:
    """Make lab annotators label this study from now on (crowd participants arrive by its link)."""
    from rmgap_annot.studies import StudyNotFound, assign_to_study

    engine = ready_engine(ctx)
    (sid,), _ = chosen_study(engine, study, benchmark)
    try:
        public = assign_to_study(engine=engine, study_id=sid, names=names)
    except (ValueError, StudyNotFound) as exc:
        fail(str(exc), 2)
    typer.echo(f"{len(public)} annotator(s) now label this study: " + ", ".join(
        f"{n} ({p})" for n, p in zip(names, public)))


@study_app.command("list")
def study_list_cmd(ctx: typer.Context) -> None:
    """Every study with its benchmark, format, labels and people."""
    from rmgap_annot.studies import list_studies

    engine = ready_engine(ctx)
    studies = list_studies(engine=engine)
    if not studies:
        typer.echo("No studies yet: import a benchmark (it gets one study).")
        return
    typer.echo(f"  {'study':<24} {'benchmark':<24} {'format':<13} {'labels':>7} {'people':>7}")
    for s in studies:
        typer.echo(f"  {s.name:<24} {s.benchmark:<24} {s.format:<13} {s.labels:>7} {s.members:>7}")


@study_app.command("show")
def study_show_cmd(
    ctx: typer.Context,
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the latest)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the benchmark's only study)."),
) -> None:
    """The study settings and how far labelling has come."""
    engine = ready_engine(ctx)
    (sid,), bench = chosen_study(engine, study, benchmark)
    _print_study(engine, bench, sid)


@study_app.command("set")
def study_set_cmd(
    ctx: typer.Context,
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the latest)."),
    labels_per_item: Optional[int] = typer.Option(None, "--labels-per-item", help="Labels wanted per item."),
    mode: Optional[str] = typer.Option(None, "--mode", help="pick or ranking."),
    records_per_domain: Optional[int] = typer.Option(None, "--records-per-domain", help="A seeded sample of N records per domain; 0: all items."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of that sample."),
    quota: Optional[int] = typer.Option(None, "--quota", help="Items per annotator; 0: no quota."),
    one_item_per_record: Optional[bool] = typer.Option(
        None, "--one-item-per-record/--any-items-per-record", help="At most one item per record per annotator."
    ),
    lease_seconds: Optional[int] = typer.Option(None, "--lease-seconds", help="How long an item stays reserved (at least 10)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the benchmark's only study)."),
    questions: Optional[str] = typer.Option(
        None, "--questions", help="Rating questions: a preset (rmgap, prb-human-check, none) or a JSON file."),
    public_link: Optional[str] = typer.Option(None, "--public-link", help="on or off: the study's public crowd link."),
    completion_code: Optional[str] = typer.Option(None, "--completion-code", help="Shown when a participant finishes their quota."),
    screenout_code: Optional[str] = typer.Option(None, "--screenout-code", help="Shown when a participant is screened out."),
    check_rate: Optional[float] = typer.Option(None, "--check-rate", help="Share of attention checks in each stream (e.g. 0.05)."),
    check_fail_limit: Optional[int] = typer.Option(None, "--check-fail-limit", help="Failed checks before the check action; 0: none."),
    check_action: Optional[str] = typer.Option(None, "--check-action", help="screen-out or warn."),
    qualification_items: Optional[int] = typer.Option(None, "--qualification-items", help="Qualification items first; 0: none."),
    qualification_pass: Optional[str] = typer.Option(None, "--qualification-pass", help="Share right to pass (e.g. 0.8 or 4/5)."),
    guidelines: Optional[str] = typer.Option(None, "--guidelines", help="A Markdown file with the guidelines."),
    consent: Optional[str] = typer.Option(None, "--consent", help="A Markdown file with the consent text."),
) -> None:
    """Change study settings; only the options given change (labels already given are kept)."""
    from pathlib import Path

    from rmgap_annot.assignment import StudyError, update_study
    from rmgap_annot.questions import QuestionError, dumps, parse_questions

    engine = ready_engine(ctx)
    (sid,), bench = chosen_study(engine, study, benchmark)
    settings: dict = {}
    try:
        if questions is not None:
            source = Path(questions).read_text(encoding="utf-8") if Path(questions).is_file() else questions
            settings["questions_json"] = dumps(parse_questions(source))
        if public_link is not None:
            if public_link not in ("on", "off"):
                fail("--public-link is on or off", 2)
            settings["public_link"] = public_link == "on"
            if settings["public_link"]:
                from rmgap_annot.assignment import get_study
                from rmgap_annot.crowd.links import new_study_token

                if not get_study(engine=engine, study_id=sid).link_token:
                    settings["link_token"] = new_study_token()
        if qualification_pass is not None:
            from rmgap_annot.crowd.schedule import parse_share

            settings["qualification_pass"] = float(parse_share(qualification_pass, flag="--qualification-pass"))
        for flag, path in (("guidelines_md", guidelines), ("consent_md", consent)):
            if path is not None:
                try:
                    settings[flag] = Path(path).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    fail(f"{path}: cannot read: {exc}", 2)
        update_study(
            engine=engine, study_id=sid, labels_per_item=labels_per_item, mode=mode,
            records_per_domain=records_per_domain, sample_seed=seed, quota_per_annotator=quota,
            one_item_per_record=one_item_per_record, lease_seconds=lease_seconds,
            completion_code=completion_code, screenout_code=screenout_code, check_rate=check_rate,
            check_fail_limit=check_fail_limit, check_action=check_action, qualification_items=qualification_items,
            **settings,
        )
    except (StudyError, QuestionError, ValueError) as exc:
        fail(str(exc), 2)
    _print_study(engine, bench, sid)


@app.command("status")
def status_cmd(ctx: typer.Context) -> None:
    """Show the database, its schema revision and what it holds."""
    from rmgap_annot.db import current_revision, head_revision
    from rmgap_annot.models import Benchmark, Item, Label, Scorer, User
    from rmgap_annot.db import session_scope

    engine = engine_from(ctx)
    rev = current_revision(ctx.obj["db"])
    head = head_revision()
    typer.echo(f"database: {engine.url.render_as_string(hide_password=True)}")
    if rev is None:
        typer.echo(f"schema:   not initialised (run: rmgap-annot init); head is {head}")
        return
    typer.echo(f"schema:   {rev}" + ("" if rev == head else f" (head is {head}: run rmgap-annot init to upgrade)"))
    with session_scope(engine) as session:
        for label, model in (("benchmarks", Benchmark), ("items", Item), ("users", User), ("labels", Label), ("scorers", Scorer)):
            n = session.execute(select(func.count()).select_from(model)).scalar_one()
            typer.echo(f"{label + ':':<10}{n}")


@app.command("seed-demo")
def seed_demo_cmd(ctx: typer.Context) -> None:
    """Import the bundled sample and create demo accounts (first run only); safe to repeat."""
    from rmgap_annot.db import get_engine
    from rmgap_annot.demo import seed_demo

    result = seed_demo(engine=get_engine(ctx.obj["db"]))
    b = result.benchmark
    typer.echo(("Imported" if b.created else "Reusing") + f" sample benchmark {b.name!r}.")
    if result.new_accounts:
        typer.echo("Demo accounts (passwords shown only now; change them on the Account page or with")
        typer.echo("`rmgap-annot users set-password NAME`):")
        for name, role, password in result.new_accounts:
            typer.echo(f"  {name:<12} {role:<11} {password}")
    else:
        typer.echo("Demo accounts already exist (their passwords were printed on the first run;")
        typer.echo("set a new one with `rmgap-annot users set-password NAME`).")
    typer.echo("To invite real annotators: `rmgap-annot users add NAME --no-password`, then")
    typer.echo("`rmgap-annot users invite NAME --url http://YOUR-HOST:8501/` (or the Team page's invite links).")


# --- later features register their commands below --------------------------

# --- reliability -------------------------------------------------------------


@app.command("backup")
def backup_cmd(
    ctx: typer.Context,
    out: str = typer.Option(..., "--out", help="Where to write the copy (a new SQLite file)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Copy the live SQLite database consistently (online backup API) and verify the copy; PostgreSQL: use pg_dump."""
    from rmgap_annot.maintenance import BackupError, backup_sqlite

    try:
        result = backup_sqlite(url=ctx.obj["db"], out=out, overwrite=force)
    except BackupError as exc:
        fail(str(exc), 2)
    typer.echo(f"Backed up {result.source} to {result.out} ({result.bytes:,} bytes, integrity_check: {result.integrity}).")


# --- export ---


@app.command("export-verified")
def export_verified_cmd(
    ctx: typer.Context,
    out: str = typer.Option(..., "--out", help="Folder to write (created; must be empty or a previous export with --force)."),
    min_labels: int = typer.Option(3, "--min-labels", help="Fewest labels an item needs, not counting Can't decide."),
    min_agreement: str = typer.Option("2/3", "--min-agreement", help="Least share agreeing with the plurality pick (0.75 or 2/3)."),
    min_naturalness: str = typer.Option("3.0", "--min-naturalness", help="Least mean naturalness (1-5; 0 switches the check off)."),
    min_rating: Optional[list[str]] = typer.Option(None, "--min-rating", help="NAME=X: least mean answer to the study's rating question NAME (about each response: the designated winner's answers); repeatable."),
    level: str = typer.Option("record", "--level", help="record: test.jsonl of fully verified records; item: items.jsonl."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    force: bool = typer.Option(False, "--force", help="Replace a previous export in --out (atomically)."),
    aggregate: str = typer.Option("plurality", "--aggregate", help="Each item's answer: plurality, dawid-skene or mace (fitted if not cached; written in the card)."),
    hf: Optional[str] = typer.Option(None, "--hf", help="Also write the subset as a Hugging Face dataset (save_to_disk + Parquet + Hub card) into this folder."),
    license_id: Optional[str] = typer.Option(None, "--license", help="Licence id for the --hf card's YAML (e.g. cc-by-4.0; 'unknown' with a warning when not given)."),
    push: Optional[str] = typer.Option(None, "--push", help="Upload the --hf folder to this Hub dataset repo (owner/name; private; needs a network and a token)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study whose labels count (default: the benchmark's only study; 'all' pools them)."),
) -> None:
    """Write the human-verified subset, its labels, a dataset card and a report (atomically)."""
    from pathlib import Path

    from rmgap_annot.export import ExportError, Rule, write_export

    if push and not hf:
        fail("--push needs --hf DIR (the folder it uploads)", 2)
    if license_id is not None and not hf:
        fail("--license is for the --hf dataset card; add --hf DIR", 2)
    engine = ready_engine(ctx)
    study_ids, bench = chosen_study(engine, study, benchmark, allow_all=True)
    try:
        rule = Rule.of(min_labels=min_labels, min_agreement=min_agreement, min_naturalness=min_naturalness,
                       min_ratings=min_rating or ())
        if hf:
            from rmgap_annot.hf_dataset import check_hf_target, check_license

            check_license(license_id)

            if Path(hf).resolve() == Path(out).resolve():
                raise ExportError("--hf must be another folder than --out")
            check_hf_target(Path(hf), force=force)  # before anything is written: a refusal changes nothing
        result = write_export(engine=engine, benchmark_id=bench.id, out_dir=out, rule=rule, level=level, force=force,
                              aggregate=aggregate, study_ids=study_ids)
    except ExportError as exc:
        fail(str(exc), 2)
    unit = ("records" if bench.format == "rmgap" else "entries") if result.level == "record" else "items"
    where = "" if bench.format == "rmgap" or result.level != "record" else " (benchmark/, in its own format)"
    typer.echo(f"Wrote {result.n_written} verified {unit} of {bench.name!r} to {result.out_dir}{where}:")
    width = max([10, *(len(d or "(none)") for d in result.summary)])
    typer.echo(f"  {'domain':<{width}} {'records':>13} {'items':>13}")
    for domain, s in result.summary.items():
        if bench.format != "rmgap" and domain != "All" and not s["items"]:
            continue  # RMGAP's domains, empty in another format's benchmark
        typer.echo(f"  {domain or '(none)':<{width}} {s['records_kept']:>6}/{s['records']:<6} {s['items_kept']:>6}/{s['items']:<6}")
    if result.analytics_note:
        typer.echo(f"Note: agreement {result.analytics_note}", err=True)
    if hf:
        from rmgap_annot.hf_dataset import push_to_hub, write_hf_dataset

        try:
            hf_result = write_hf_dataset(engine=engine, benchmark_id=bench.id, out_dir=hf, rule=rule, level=level,
                                         aggregate=aggregate, license_id=license_id, force=force, study_ids=study_ids)
        except ExportError as exc:
            fail(str(exc), 2)
        for warning in hf_result.warnings:
            typer.echo(f"Warning: {warning}", err=True)
        typer.echo(f"Wrote the Hugging Face dataset ({hf_result.n_items} items, {hf_result.n_labels} labels, "
                   f"licence {hf_result.license}) to {hf_result.out_dir}")
        if push:
            try:
                url = push_to_hub(folder=hf_result.out_dir, repo_id=push)
            except Exception as exc:  # noqa: BLE001 - no network, no token, no rights: said plainly, the files stay
                fail(f"push to {push} failed ({type(exc).__name__}: {exc}); the dataset is in {hf_result.out_dir}", 1)
            typer.echo(f"Pushed to {push}: {url}")


@app.command("paper")
def paper_cmd(
    ctx: typer.Context,
    out: str = typer.Option(..., "--out", help="Folder for tables/, figures/, numbers.json and macros.tex (created)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder, replacing only the paper files."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Also render the charts as SVG and PDF."),
    organic: Optional[str] = typer.Option(None, "--organic", help="Use the cached artifact checks fitted with this organic prompts file (default: the bundled sample's, else none)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed (as for report and artifacts)."),
    draws: int = typer.Option(1000, "--draws", help="Bootstrap draws (as for report and artifacts)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name, or all to pool them (default: the benchmark's only study)."),
) -> None:
    """Write paper-ready LaTeX tables, vector figures, numbers.json and macros.tex from the report."""
    from rmgap_annot.paper import PaperError, paper_outputs

    if draws < 0:
        fail("--draws must be 0 or more", 2)
    organic_prompts = _organic_prompts_or_exit(organic, nothing_was="written")
    engine = ready_engine(ctx)
    study_ids, bench = chosen_study(engine, study, benchmark, allow_all=True)
    try:
        result = paper_outputs(engine=engine, benchmark_id=bench.id, out_dir=out, figures=figures, force=force,
                               draws=draws, seed=seed, organic=organic_prompts, study_ids=study_ids)
    except PaperError as exc:
        fail(str(exc), 2)
    typer.echo(f"Wrote {len(result.files)} files for {bench.name!r} to {result.out_dir} "
               f"({result.n_numbers} numbers, {result.n_macros} macros, {result.seconds:.1f} s):")
    for rel in result.files:
        typer.echo(f"  {rel}")
    for note in result.notes:
        typer.echo(f"Note: {note}", err=True)


# --- analytics ---


@labels_app.command("import")
def labels_import_cmd(
    ctx: typer.Context,
    file: str = typer.Argument(..., help="CSV, JSONL or Parquet (as labels export writes them): RMGAP record_id, group, prompt_index, annotator, choice, naturalness; other formats the entry id (pair_uid, bon_uid, id or entry_id; item_index), annotator, choice (+ optional ranking, reason, comment, seconds, displayed_order, ratings)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    study: Optional[str] = typer.Option(None, "--study", help="The study the labels belong to (default: the benchmark's only study)."),
    replace: bool = typer.Option(False, "--replace", help="Replace an annotator's existing label on the same item instead of refusing."),
) -> None:
    """Import labels gathered elsewhere into a study, atomically (all or nothing); unknown annotators are created without a password."""
    from rmgap_annot.formats.rmgap import format_errors
    from rmgap_annot.labels_io import LabelsFileError, import_labels

    engine = ready_engine(ctx)
    (study_id,), bench = chosen_study(engine, study, benchmark)
    try:
        result = import_labels(engine=engine, path=file, benchmark_id=bench.id, replace=replace, study_id=study_id)
    except LabelsFileError as exc:
        typer.echo(format_errors(exc.errors), err=True)
        typer.echo(f"Nothing was imported: {len(exc.errors)} error(s).", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Imported {result.n_labels} labels into {bench.name!r}" + (f" ({result.n_replaced} replaced)." if result.n_replaced else "."))
    if result.new_annotators:
        typer.echo(f"New annotators (no password; invite them to log in): {', '.join(result.new_annotators)}")


@labels_app.command("export")
def labels_export_cmd(
    ctx: typer.Context,
    out: str = typer.Option(..., "--out", help="Output file: .csv, .jsonl or .parquet."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    study: Optional[str] = typer.Option(None, "--study", help="Only this study's labels ('all': every study of the benchmark; default: its only study)."),
    real_names: bool = typer.Option(False, "--real-names", help="User names instead of pseudonyms: a backup for `labels import` onto the same accounts (never publish it)."),
) -> None:
    """Write every label (one row each, addressed as labels import reads them: RMGAP record/group/prompt, else the entry id); annotators as pseudonyms."""
    from rmgap_annot.labels_io import export_labels

    engine = ready_engine(ctx)
    study_ids, bench = chosen_study(engine, study, benchmark, allow_all=True)
    try:
        n = export_labels(engine=engine, benchmark_id=bench.id, out=out, study_ids=study_ids, real_names=real_names)
    except ValueError as exc:
        fail(str(exc), 2)
    typer.echo(f"Wrote {n} labels of {bench.name!r} to {out}.")


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed (same seed, same intervals)."),
    draws: int = typer.Option(1000, "--draws", help="Bootstrap draws for the 95% intervals (0: no intervals)."),
    exclude: Optional[str] = typer.Option(None, "--exclude", help="What-if: also leave out these annotators (NAME[,NAME]); nothing is stored."),
    fit_truth: bool = typer.Option(False, "--fit-truth", help="Fit Dawid-Skene and MACE now if not cached for these labels (seconds)."),
    resample: str = typer.Option("records", "--resample", help="records, or annotators: add two-way record x annotator intervals (slower)."),
    adjust: str = typer.Option("holm", "--adjust", help="Multiplicity adjustment of the scorers' p-values: holm, bh or none."),
    study: Optional[str] = typer.Option(None, "--study", help="Study whose labels count (default: the benchmark's only study; 'all' pools them)."),
) -> None:
    """Agreement, human accuracy in RMGAP's metrics, naturalness, position bias, annotators, items."""
    import json

    from rmgap_annot.exclusions import ExclusionError, check_names, parse_names
    from rmgap_annot.report import build_report, format_report
    from rmgap_annot.stats.bootstrap import ADJUST_METHODS
    from rmgap_annot.stats.report_text import format_extras

    if adjust not in ADJUST_METHODS:
        fail(f"--adjust must be one of {', '.join(ADJUST_METHODS)}, not {adjust!r}", 2)
    engine = ready_engine(ctx)
    study_ids, bench = chosen_study(engine, study, benchmark, allow_all=True)
    if draws < 0:
        fail("--draws must be 0 or more", 2)
    if resample not in ("records", "annotators"):
        fail(f"--resample must be records or annotators, got {resample!r}", 2)
    try:
        what_if = check_names(engine=engine, names=parse_names(exclude))
    except ExclusionError as exc:
        fail(f"--exclude: {exc}", 2)
    report = build_report(engine=engine, benchmark_id=bench.id, seed=seed, draws=draws, exclude=what_if,
                          fit_truth=fit_truth, resample=resample, adjust=adjust, study_ids=study_ids)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2, allow_nan=False))
    else:
        typer.echo(format_report(report) + "\n" + format_extras(report))


# --- planning ---


@app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    half_width: float = typer.Option(..., "--half-width", help="Wanted half-width of the 95% interval (0.05: +/- 5 points)."),
    metric: str = typer.Option("BoN", "--metric", help="BoN, label_accuracy or choice_alpha."),
    labels_per_item: Optional[int] = typer.Option(None, "--labels-per-item", help="Labels per item planned (default: the study's setting)."),
    accuracy: Optional[float] = typer.Option(None, "--accuracy", help="Without a pilot: expected accuracy (BoN or label accuracy)."),
    icc: Optional[float] = typer.Option(None, "--icc", help="Without a pilot: within-record intra-class correlation."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Records needed per domain for a 95% interval of a given half-width (from pilot labels or --accuracy/--icc)."""
    import json

    from rmgap_annot.catalog import get_benchmark
    from rmgap_annot.stats.planning import PlanError, format_plan, plan, plan_for_benchmark

    engine = ready_engine(ctx)
    bench = get_benchmark(engine=engine, name=benchmark)
    if benchmark and bench is None:
        fail(f"no benchmark named {benchmark!r}", 2)
    try:
        if bench is None:
            if accuracy is None or icc is None:
                fail("no benchmark and no pilot labels: pass --accuracy P and --icc X", 2)
            result = plan(metric=metric, half_width=half_width, labels_per_item=labels_per_item or 3, accuracy=accuracy, icc=icc)
        else:
            if labels_per_item is None:
                from rmgap_annot.assignment import get_study

                labels_per_item = get_study(engine=engine, benchmark_id=bench.id).labels_per_item
            result = plan_for_benchmark(engine=engine, benchmark_id=bench.id, metric=metric, half_width=half_width,
                                        labels_per_item=labels_per_item, accuracy=accuracy, icc=icc)
    except PlanError as exc:
        fail(str(exc), 2)
    typer.echo(json.dumps(result, indent=2, allow_nan=False) if as_json else format_plan(result))


# --- annotator exclusion ---


def _audit_study(engine, name: str, study: Optional[str]) -> Optional[int]:  # noqa: ANN001
    """The study an exclusion's audit event is filed under: --study, else the person's only (or latest) study."""
    if study:
        return chosen_study(engine, study)[0][0]
    from rmgap_annot.studies import study_for_user

    uid = _user_id(engine, name)
    return study_for_user(engine=engine, user_id=uid)


@annotators_app.command("exclude")
def annotators_exclude_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The annotator whose labels stop counting."),
    reason: str = typer.Option(..., "--reason", help="Why (shown in the report and the dataset card)."),
    study: Optional[str] = typer.Option(None, "--study", help="The study whose audit log records it (default: the person's latest)."),
) -> None:
    """Exclude an annotator: their labels stay stored but count nowhere (reversible with include)."""
    from rmgap_annot.exclusions import ExclusionError, exclude_annotator

    engine = ready_engine(ctx)
    try:
        sid = _audit_study(engine, name, study)
        new = exclude_annotator(engine=engine, name=name, reason=reason, actor="cli", study_id=sid)
    except ExclusionError as exc:
        fail(str(exc), 2)
    typer.echo(f"Excluded {name!r}: {reason}" if new else f"{name!r} was already excluded; reason updated: {reason}")


@annotators_app.command("include")
def annotators_include_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The annotator to count again."),
    study: Optional[str] = typer.Option(None, "--study", help="The study whose audit log records it (default: the person's latest)."),
) -> None:
    """Count an excluded annotator's labels again (the exclusion stays in the history)."""
    from rmgap_annot.exclusions import ExclusionError, include_annotator

    engine = ready_engine(ctx)
    try:
        include_annotator(engine=engine, name=name, actor="cli", study_id=_audit_study(engine, name, study))
    except ExclusionError as exc:
        fail(str(exc), 2)
    typer.echo(f"Included {name!r} again.")


def _block(ctx: typer.Context, name: str, study: Optional[str], blocked: bool) -> None:
    from rmgap_annot.crowd.control import ControlError, set_blocked

    engine = ready_engine(ctx)
    (sid,), _ = chosen_study(engine, study)
    try:
        changed = set_blocked(engine=engine, study_id=sid, name=name, blocked=blocked, actor="cli")
    except ControlError as exc:
        fail(str(exc), 2)
    word = "Blocked" if blocked else "Unblocked"
    typer.echo(f"{word} {name!r}." if changed else f"{name!r} was already {word.lower()}; nothing changed.")


@annotators_app.command("block")
def annotators_block_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The annotator to stop."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the benchmark's only study)."),
) -> None:
    """Block an annotator in a study: no more items there; their labels stay stored (and count unless excluded)."""
    _block(ctx, name, study, True)


@annotators_app.command("unblock")
def annotators_unblock_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The annotator to let label again."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the benchmark's only study)."),
) -> None:
    """Lift a block: the annotator gets items in the study again."""
    _block(ctx, name, study, False)


@annotators_app.command("delete")
def annotators_delete_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The participant who withdraws consent."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a participant who withdraws consent: their labels, check answers, memberships and account go (recorded in the audit log)."""
    from rmgap_annot.crowd.control import ControlError, delete_annotator

    engine = ready_engine(ctx)
    _user_id(engine, name)  # an unknown name exits 2 before any question
    if not yes and not typer.confirm(f"Delete {name!r} and all their labels for good?", default=False):
        fail("Nothing was deleted.", 1)
    try:
        removed = delete_annotator(engine=engine, name=name, actor="cli")
    except ControlError as exc:
        fail(str(exc), 2)
    parts = ", ".join(f"{n} {t}" for t, n in sorted(removed.items())) or "no other rows"
    typer.echo(f"Deleted {name!r} ({parts}); the deletion is in the audit log.")


# --- crowd ---


def _fmt_share(v: Optional[float]) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def _fmt_num(v: Optional[float], digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


@crowd_app.command("report")
def crowd_report_cmd(
    ctx: typer.Context,
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the benchmark's only study)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the latest)."),
    out: Optional[str] = typer.Option(None, "--out", help="Write the payment CSV here (participant id, status, labels, minutes worked, completion code given)."),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON (platform ids included)."),
) -> None:
    """Per participant: status, labels, checks, speed, agreement, competence, time worked, platform ids."""
    import json

    from rmgap_annot.crowd.monitor import payment_rows, study_quality
    from rmgap_annot.crowd.payment import payment_csv

    engine = ready_engine(ctx)
    (sid,), _ = chosen_study(engine, study, benchmark)
    report = study_quality(engine=engine, study_id=sid)
    if out:
        from pathlib import Path

        try:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            payment_csv(payment_rows(report), out)
        except OSError as exc:
            fail(f"{out}: cannot write: {exc}", 2)
    if as_json:
        typer.echo(json.dumps({"study": report.study, "alpha": report.alpha, "alpha_reason": report.alpha_reason,
                               "truth_status": report.truth_status,
                               "annotators": [r.as_dict() for r in report.annotators]}, indent=2, default=str))
    else:
        alpha = _fmt_num(report.alpha, 3) if report.alpha is not None else f"n/a ({report.alpha_reason})"
        typer.echo(f"Study {report.study!r}: {len(report.annotators)} people; pick alpha {alpha}")
        typer.echo(f"  {'pseudonym':<10} {'participant':<26} {'status':<13} {'labels':>6} {'checks':>7} "
                   f"{'median s':>8} {'<5 s':>5} {'LOO a':>6} {'agree':>6} {'min':>6}  flags")
        for r in report.annotators:
            who = r.participant_id or r.name
            flags = ", ".join(f for f, on in (("excluded", r.excluded), ("code given", r.completion_code_given)) if on)
            typer.echo(f"  {r.pseudonym:<10} {who[:26]:<26} {r.status:<13} {r.labels:>6} "
                       f"{r.checks_passed:>3}/{r.checks_failed:<3} {_fmt_num(r.median_seconds):>8} "
                       f"{_fmt_share(r.fast_share):>5} {_fmt_num(r.loo_alpha, 2):>6} {_fmt_share(r.agreement):>6} "
                       f"{_fmt_num(r.minutes_worked):>6}  {flags}")
        for method, state in report.truth_status.items():
            if state != "fitted":
                typer.echo(f"  {method} competence: {state}")
    if out:
        typer.echo(f"Wrote the payment CSV ({len(report.annotators)} rows) to {out}.")


@annotators_app.command("excluded")
def annotators_excluded_cmd(
    ctx: typer.Context, history: bool = typer.Option(False, "--history", help="Also list exclusions that were reversed."),
) -> None:
    """List excluded annotators and why."""
    from rmgap_annot.exclusions import active_exclusions, exclusion_history

    engine = ready_engine(ctx)
    if history:
        rows = exclusion_history(engine=engine)
        if not rows:
            typer.echo("No exclusions ever made.")
        for r in rows:
            until = f"until {r['included_at']}" if r["included_at"] else "active"
            typer.echo(f"{r['annotator']:<24} {r['excluded_at']}  {until:<36} {r['reason']}")
        return
    rows = active_exclusions(engine=engine)
    if not rows:
        typer.echo("No annotator is excluded.")
    for e in rows:
        typer.echo(f"{e.annotator:<24} since {e.excluded_at.isoformat()}  {e.reason}")


# --- artifact checks ---


def _organic_prompts_or_exit(organic: Optional[str], *, nothing_was: str) -> Optional[list]:
    """The --organic file's prompts (None without one); a bad file prints FILE:LINE errors and exits 2."""
    if organic is None:
        return None
    from rmgap_annot.formats.rmgap import format_errors
    from rmgap_annot.stats.artifacts import OrganicFileError, read_organic_prompts

    try:
        return read_organic_prompts(organic)
    except OrganicFileError as exc:
        typer.echo(format_errors(exc.errors), err=True)
        typer.echo(f"Nothing was {nothing_was}: {len(exc.errors)} error(s).", err=True)
        raise typer.Exit(2) from None


@app.command("artifacts")
def artifacts_cmd(
    ctx: typer.Context,
    organic: Optional[str] = typer.Option(None, "--organic", help="Organic user prompts: JSONL with a 'prompt' field, or plain text, one per line."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    as_json: bool = typer.Option(False, "--json", help="Print every number as JSON."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed (same seed, same intervals)."),
    draws: int = typer.Option(1000, "--draws", help="Bootstrap draws for the 95% intervals (0: no intervals)."),
    refit: bool = typer.Option(False, "--refit", help="Fit again even when a cached result exists."),
) -> None:
    """Shallow-cue ceiling (can surface cues find the winner?) and organic-vs-tailored prompts; cached per benchmark."""
    import json

    from rmgap_annot.stats.artifacts import artifact_checks, format_artifacts

    if draws < 0:
        fail("--draws must be 0 or more", 2)
    organic_prompts = _organic_prompts_or_exit(organic, nothing_was="computed")
    engine = ready_engine(ctx)
    bench = chosen_benchmark(engine, benchmark)

    def progress(step: str) -> None:
        if not as_json:
            typer.echo(f"  {step}...", err=True)

    try:
        result = artifact_checks(engine=engine, benchmark_id=bench.id, organic=organic_prompts, draws=draws, seed=seed,
                                 refit=refit, progress=progress)
    except ValueError as exc:
        fail(str(exc), 2)
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2, allow_nan=False) if as_json else format_artifacts(result))


# --- scoring ---


@app.command("score")
def score_cmd(
    ctx: typer.Context,
    scorer: str = typer.Option(..., "--scorer", help="SPEC: scalar:PATH, lm-logprob:PATH, dpo:POLICY,REFERENCE, judge:PATH, length, random or embedding."),
    name: Optional[str] = typer.Option(None, "--name", help="Scorer name (default: family and model folder)."),
    items: str = typer.Option("all", "--items", help="all, or labelled: only items with at least one human label."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (fp32 on CPU, bf16 on GPU), float32, bfloat16 or float16."),
    batch_size: int = typer.Option(8, "--batch-size", help="Sequences per forward pass."),
    max_length: int = typer.Option(4096, "--max-length", help="Tokens kept per sequence (left truncation; counted)."),
    output_index: int = typer.Option(0, "--output-index", help="scalar: which output of a multi-output head."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run the model repository's own code (only for models you trust)."),
    aggregation: str = typer.Option("discounted_sum", "--aggregation", help="lm-logprob/dpo: mean, sum or discounted_sum (gamma 0.93)."),
    judge_mode: str = typer.Option("verifier", "--judge-mode", help="judge: verifier, pointwise, listwise or pairwise."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="judge: an OpenAI-compatible base URL, e.g. http://host:8000/v1."),
    seed: int = typer.Option(0, "--seed", help="random baseline and listwise permutations."),
    replace: bool = typer.Option(False, "--replace", help="Discard scores stored under --name by a different model or settings."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    job_id: Optional[int] = typer.Option(None, "--job-id", hidden=True, help="Report progress into this ScoringJob (the page's worker)."),
) -> None:
    """Score items with a reward model or baseline; resumes, and skips work already done."""
    from rmgap_annot import jobs
    from rmgap_annot.scoring import ScoringError, ScoringOptions
    from rmgap_annot.scoring.runner import run_scoring

    engine = ready_engine(ctx)
    bench = chosen_benchmark(engine, benchmark)
    options = ScoringOptions(device=device, dtype=dtype, batch_size=batch_size, max_length=max_length, output_index=output_index,
                             trust_remote_code=trust_remote_code, aggregation=aggregation, judge_mode=judge_mode,
                             endpoint=endpoint, seed=seed)
    progress = phase = None
    if job_id is not None:
        jobs.mark_running(engine=engine, job_id=job_id)

        def report_job_progress(done: int, total: int) -> None:
            jobs.report_progress(engine=engine, job_id=job_id, done=done, total=total)

        def report_job_phase(name: str) -> None:
            jobs.report_phase(engine=engine, job_id=job_id, phase=name)

        progress, phase = report_job_progress, report_job_phase

    try:
        result = run_scoring(engine=engine, benchmark_id=bench.id, spec=scorer, name=name, options=options, items=items,
                             replace=replace, progress=progress, show_progress=not no_progress, phase=phase)
    except ScoringError as exc:
        if job_id is not None:
            jobs.finish_job(engine=engine, job_id=job_id, error=str(exc))
        fail(str(exc), 2)
    except BaseException as exc:
        if job_id is not None:
            jobs.finish_job(engine=engine, job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    if job_id is not None:
        jobs.finish_job(engine=engine, job_id=job_id)
    typer.echo(
        f"Scorer {result.name!r} on {bench.name!r}: {result.n_items} items, {result.n_already} already scored, "
        f"{result.n_scored} scored now ({result.n_units} distinct sequences in {result.n_batches} batches); "
        f"truncated inputs: {result.n_truncated}; unparseable judge outputs: {result.n_unparseable}."
    )


@scores_app.command("import")
def scores_import_cmd(
    ctx: typer.Context,
    file: str = typer.Argument(..., help='JSONL rows {"record_id", "group", "prompt_index", "scores": {response_key: value}} (RMGAP); other formats name the entry by its id column (pair_uid, bon_uid, id or entry_id) and item_index.'),
    name: Optional[str] = typer.Option(None, "--name", help="Scorer name (default: the file name)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
    replace: bool = typer.Option(False, "--replace", help="Replace the scores of an existing scorer of that name."),
) -> None:
    """Import scores computed elsewhere, atomically (all lines valid, or nothing stored)."""
    from rmgap_annot.formats.rmgap import BenchmarkFileError, format_errors
    from rmgap_annot.scores_io import import_scores

    engine = ready_engine(ctx)
    bench = chosen_benchmark(engine, benchmark)
    try:
        result = import_scores(engine=engine, benchmark_id=bench.id, path=file, name=name, replace=replace)
    except BenchmarkFileError as exc:
        typer.echo(format_errors(exc.errors), err=True)
        typer.echo(f"Nothing was imported: {len(exc.errors)} error(s).", err=True)
        raise typer.Exit(2) from None
    verb = "Imported" if result.created else "Already imported (same file); nothing changed:"
    typer.echo(f"{verb} scorer {result.name!r}: {result.n_items} items of {bench.name!r}.")


@scores_app.command("export")
def scores_export_cmd(
    ctx: typer.Context,
    scorer: str = typer.Option(..., "--scorer", help="Scorer name (see the Reward models page or scores import)."),
    out: str = typer.Option(..., "--out", help="JSONL file to write (atomically)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the most recent)."),
) -> None:
    """Export one scorer's scores in the import format."""
    from rmgap_annot.scores_io import export_scores

    engine = ready_engine(ctx)
    bench = chosen_benchmark(engine, benchmark)
    try:
        n = export_scores(engine=engine, benchmark_id=bench.id, scorer_name=scorer, out=out)
    except LookupError as exc:
        fail(str(exc).strip("'\""), 2)
    typer.echo(f"Wrote {n} items scored by {scorer!r} to {out}.")


# --- other benchmark formats -------------------------------------------------


@formats_app.command("check")
def formats_check_cmd(
    path: str = typer.Argument(..., help="A file (.json, .jsonl, .jsonl.gz, .parquet) or a folder (an RMB_dataset tree)."),
    format_name: Optional[str] = typer.Option(
        None, "--format", help="rmgap, rmb, prb, rewardbench, rewardbench2 or pairs (default: detected from the content)."),
) -> None:
    """Validate a benchmark file or folder in any supported format and summarise it; touches no database."""
    from rmgap_annot.formats.rmgap import InputFileError, format_errors
    from rmgap_annot.formats import FORMAT_NAMES, check

    if format_name is not None and format_name not in FORMAT_NAMES:
        fail(f"--format must be one of {', '.join(FORMAT_NAMES)}, not {format_name!r}", 2)
    try:
        summary = check(path, format_name)
    except InputFileError as exc:
        typer.echo(format_errors(exc.errors), err=True)
        typer.echo(f"{path} is not valid: {len(exc.errors)} error(s).", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{path}: valid {summary.format} ({summary.files} file(s))")
    typer.echo(f"  entries {summary.entries}, items {summary.items}, groups (resampling units) {summary.groups}")
    typer.echo("  candidates per item: " + ", ".join(f"{n}: {count} item(s)" for n, count in summary.candidates.items()))
    typer.echo("  items per category:")
    width = max(len(c) for c in summary.categories)
    for category, count in summary.categories.items():
        typer.echo(f"    {category:<{width}} {count:>6}")


# --- crowd studies ---------------------------------------------------------


@crowd_app.command("link")
def crowd_link_cmd(
    ctx: typer.Context,
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the only study)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the latest)."),
    platform: str = typer.Option("prolific", "--platform", help="prolific, mturk or generic."),
    url: str = typer.Option("http://localhost:8501/", "--url", help="The app's public address (its root)."),
    rotate: bool = typer.Option(False, "--rotate", help="Replace the link's token: the old link stops working."),
    hit_layout: Optional[str] = typer.Option(
        None, "--hit-layout", help="MTurk: also write the survey-link HIT's layout (HTML) to this file."),
) -> None:
    """Print the study's public link to paste into the recruitment platform (the public link must be on).

    On MTurk the link goes inside a HIT: ``--hit-layout`` writes the layout to
    paste into the HIT's design source, which adds the worker's ids to the
    link and asks for the completion code back.
    """
    import os
    from pathlib import Path

    from rmgap_annot.assignment import get_study
    from rmgap_annot.crowd.arrival import rotate_link
    from rmgap_annot.crowd.links import LinkError, mturk_hit_html, study_link
    from rmgap_annot.tempfiles import temp_path

    engine = ready_engine(ctx)
    (sid,), _ = chosen_study(engine, study, benchmark)
    current = get_study(engine=engine, study_id=sid)
    if not current.public_link or not current.link_token:
        fail(f"the public link of study {current.name!r} is off: switch it on with "
             f"rmgap-annot study set --study {current.name} --public-link on", 2)
    if hit_layout is not None and platform != "mturk":
        fail("--hit-layout is for --platform mturk (the other platforms take the link itself)", 2)
    try:
        study_link(base_url=url, token=current.link_token, platform=platform)  # bad arguments rotate nothing
    except LinkError as exc:
        fail(str(exc), 2)
    token = rotate_link(engine=engine, study_id=sid) if rotate else current.link_token
    link = study_link(base_url=url, token=token, platform=platform)
    typer.echo(link)  # first: a rotated link is shown even if the layout cannot be written
    if hit_layout is not None:
        target = Path(hit_layout)
        partial = temp_path(target)
        try:
            partial.write_text(mturk_hit_html(link=link), encoding="utf-8")
            os.replace(partial, target)  # whole or not at all
        except OSError as exc:
            partial.unlink(missing_ok=True)
            fail(f"{hit_layout}: cannot write the HIT layout: {exc.strerror or exc}", 1)
    if platform == "mturk":
        typer.echo(f"HIT layout written to {hit_layout}: paste it into the HIT's design (source view)." if hit_layout
                   else "MTurk: put the link in a survey-link HIT; --hit-layout FILE writes a layout that adds the "
                        "worker's ids to it and collects the completion code.", err=True)
    if rotate:
        typer.echo("The old link no longer works; participants who arrived keep their place.", err=True)


@checks_app.command("import")
def checks_import_cmd(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="A JSONL file of check items (id, prompt, responses, expected, explanation)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the only study)."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark name (default: the latest)."),
    kind: str = typer.Option("check", "--kind", help="check (attention checks) or qualification."),
) -> None:
    """Load attention-check or qualification items, validated against the study's item shape (all or nothing)."""
    from rmgap_annot.formats.rmgap import format_errors
    from rmgap_annot.crowd.checks import CheckFileError
    from rmgap_annot.crowd.checks_store import CheckImportError, import_checks

    engine = ready_engine(ctx)
    (sid,), _ = chosen_study(engine, study, benchmark)
    try:
        result = import_checks(engine=engine, study_id=sid, path=path, kind=kind)
    except CheckFileError as exc:
        typer.echo(format_errors(exc.errors), err=True)
        typer.echo(f"Nothing was imported: {len(exc.errors)} error(s).", err=True)
        raise typer.Exit(2) from None
    except CheckImportError as exc:
        fail(str(exc), 2)
    typer.echo(f"{result.kind} items: {result.added} added, {result.changed} changed, {result.unchanged} unchanged;"
               f" {result.total} in the study.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
