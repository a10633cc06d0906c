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


def test_status_on_a_new_database_says_how_to_initialise(cli):
    assert "rmgap-annot init" in cli("status").output


def test_db_option_beats_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    env_db = tmp_path / "env.sqlite"
    opt_db = tmp_path / "opt.sqlite"
    monkeypatch.setenv("RMGAP_ANNOT_DB", f"sqlite:///{env_db}")
    CliRunner().invoke(app, ["--db", f"sqlite:///{opt_db}", "init"], catch_exceptions=False)
    assert opt_db.exists() and not env_db.exists()
    CliRunner().invoke(app, ["init"], catch_exceptions=False)
    assert env_db.exists()
