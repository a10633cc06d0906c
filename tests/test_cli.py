"""The CLI: every command documented, the account and listing commands work."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from rmgap_annot.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _command_paths(group, prefix=()):
    for name, cmd in group.commands.items():
        if getattr(cmd, "hidden", False):
            continue
        path = (*prefix, name)
        if hasattr(cmd, "commands"):
            yield from _command_paths(cmd, path)
        else:
            yield " ".join(path)


def test_every_command_is_in_the_readme_cli_reference():
    readme = README.read_text(encoding="utf-8")
    commands = sorted(_command_paths(typer.main.get_command(app)))
    assert "import-benchmark" in commands and "users add" in commands
    missing = [c for c in commands if not re.search(rf"`rmgap-annot {re.escape(c)}(\s|`)", readme)]
    assert missing == [], f"commands missing from README's CLI reference: {missing}"


def test_every_command_has_help(cli):
    for path in _command_paths(typer.main.get_command(app)):
        res = cli(*path.split(), "--help")
        assert res.exit_code == 0, path
        assert "Usage" in res.output


def test_users_add_reads_password_from_stdin_never_an_argument(cli):
    res = cli("users", "add", "ann", "--role", "annotator", "--password-stdin", input="s3cret-pass\n")
    assert res.exit_code == 0, res.output
    listing = cli("users", "list")
    assert re.search(r"ann\s+annotator\s+password\s+0", listing.output)
    assert "s3cret-pass" not in listing.output
    dup = cli("users", "add", "ann", "--password-stdin", input="another-pass\n")
    assert dup.exit_code == 2 and "already exists" in dup.stderr
    bad_role = cli("users", "add", "x", "--role", "admin", "--no-password")
    assert bad_role.exit_code == 2


def test_users_add_prompts_for_password(cli, engine, db_url):
    from rmgap_annot.accounts import authenticate

    res = cli("users", "add", "rita", "--role", "researcher", input="long-enough-pw\nlong-enough-pw\n")
    assert res.exit_code == 0, res.output
    assert authenticate(engine=engine, name="rita", password="long-enough-pw").role == "researcher"


def test_benchmarks_and_status(cli, small_file):
    assert "No benchmarks yet" in cli("benchmarks").output
    cli("import-benchmark", str(small_file), "--name", "mini")
    out = cli("benchmarks").output
    assert "mini" in out and re.search(r"Safety\s+2\s+24", out)
    status = cli("status").output
    assert re.search(r"items:\s+96", status)


def test_status_on_a_new_database_says_how_to_initialise(tmp_path):
    from typer.testing import CliRunner

    empty = tmp_path / "empty.sqlite"
    empty.touch()  # a SQLite file without the schema
    res = CliRunner().invoke(app, ["--db", f"sqlite:///{empty}", "status"], catch_exceptions=False)
    assert res.exit_code == 0 and "not initialised (run: rmgap-annot init)" in res.output


def test_commands_refuse_a_missing_sqlite_file_and_create_nothing(tmp_path, small_file):
    """Only init and seed-demo create a database: a mistyped path must not quietly become an empty study."""
    from typer.testing import CliRunner

    folder = tmp_path / "no-such-folder"
    missing = folder / "typo.sqlite"
    for args in (["status"], ["benchmarks"], ["users", "list"], ["import-benchmark", str(small_file)],
                 ["users", "add", "ann", "--no-password"], ["labels", "export", "--out", str(tmp_path / "l.csv")]):
        res = CliRunner().invoke(app, ["--db", f"sqlite:///{missing}", *args], catch_exceptions=False)
        assert res.exit_code == 2, (args, res.output)
        assert f"There is no database at {missing}" in res.stderr and "rmgap-annot init" in res.stderr
    assert not folder.exists()
    assert not (tmp_path / "l.csv").exists()
    res = CliRunner().invoke(app, ["--db", f"sqlite:///{missing}", "init"], catch_exceptions=False)
    assert res.exit_code == 0 and missing.exists()


def test_db_option_beats_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    env_db = tmp_path / "env.sqlite"
    opt_db = tmp_path / "opt.sqlite"
    monkeypatch.setenv("RMGAP_ANNOT_DB", f"sqlite:///{env_db}")
    CliRunner().invoke(app, ["--db", f"sqlite:///{opt_db}", "init"], catch_exceptions=False)
    assert opt_db.exists() and not env_db.exists()
    CliRunner().invoke(app, ["init"], catch_exceptions=False)
    assert env_db.exists()


def test_invite_link_logs_in_until_revoked(cli, engine):
    from rmgap_annot.accounts import redeem_invite

    cli("users", "add", "ina", "--no-password")
    res = cli("users", "invite", "ina", "--url", "https://annot.example.org/?x=1")
    assert res.exit_code == 0, res.output
    link = res.output.strip()
    assert link.startswith("https://annot.example.org/?invite=")
    token = link.split("invite=", 1)[1]
    assert redeem_invite(engine=engine, token=token).name == "ina"
    assert "Revoked 1 link(s)" in cli("users", "revoke-invites", "ina").output
    assert not redeem_invite(engine=engine, token=token).ok
    unknown = cli("users", "invite", "nobody")
    assert unknown.exit_code == 2 and "no user named 'nobody'" in unknown.stderr


def test_study_set_changes_only_what_is_given_and_rejects_bad_values(cli, engine, benchmark_id):
    from rmgap_annot.assignment import get_study, study_item_count

    shown = cli("study", "show")
    assert shown.exit_code == 0 and re.search(r"labels per item\s+3", shown.output)
    assert re.search(r"total 96\)", shown.output)  # every item of the 8 records
    res = cli("study", "set", "--records-per-domain", "1", "--seed", "7", "--quota", "5", "--any-items-per-record")
    assert res.exit_code == 0, res.output
    study = get_study(engine=engine, benchmark_id=benchmark_id)
    assert (study.records_per_domain, study.sample_seed, study.quota_per_annotator) == (1, 7, 5)
    assert study.one_item_per_record is False and study.labels_per_item == 3 and study.mode == "pick"
    assert set(study_item_count(engine=engine, benchmark_id=benchmark_id).values()) == {12}  # one record per domain
    bad = cli("study", "set", "--labels-per-item", "0", "--mode", "ranking")
    assert bad.exit_code == 2 and "at least 1" in bad.stderr
    assert get_study(engine=engine, benchmark_id=benchmark_id).mode == "pick"  # nothing changed
    assert cli("study", "show", "--benchmark", "nope").exit_code == 2
