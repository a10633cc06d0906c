"""export-verified end to end: real SQLite, real files, the real CLI.

Labels are inserted as rows (what the annotation UI or a label import would
leave behind), so these tests depend only on the tables.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from rmgap_annot.studies import item_study_id
from rmgap_annot import export as export_mod
from rmgap_annot.export import files as export_files  # where write_export looks its writers up
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.db import get_engine, init_db, session_scope
from rmgap_annot.export import REASON_RATING, REASONS, ExportError, Rule, write_export
from rmgap_annot.labels_frame import load_items, load_labels
from rmgap_annot.models import Label, Record, Score, Scorer, User
from rmgap_annot.settings import DOMAINS

GOOD_RECORDS = {"chat-0000", "writing-0001", "reasoning-0000", "safety-0000"}


def add_labels(engine, rows: list[tuple[int, str | None, int | None]], *, annotators: int = 3) -> None:
    """rows: (item_id, choice_key, naturalness); annotators are reused round-robin per item."""
    with session_scope(engine, write=True) as session:
        users = []
        for i in range(annotators):
            user = session.execute(select(User).where(User.name == f"annotator{i}")).scalars().first()
            user = user or User(name=f"annotator{i}")
            session.add(user)
            users.append(user)
        session.flush()
        seen: dict[int, int] = {}
        for item_id, choice, nat in rows:
            n = seen.get(item_id, 0)
            seen[item_id] = n + 1
            session.add(Label(study_id=item_study_id(session, item_id), user_id=users[n].id, item_id=item_id, choice_key=choice, naturalness=nat))


def label_benchmark(engine, benchmark_id: int) -> pd.DataFrame:
    """Every item of GOOD_RECORDS verified; in each other record one item fails, for a different reason."""
    items = load_items(engine=engine, benchmark_id=benchmark_id)
    rows = []
    bad_done: set[str] = set()
    for it in items.itertuples():
        other = next(k for k in ("response1", "response2") if k != it.winner_key)
        if it.record_id in GOOD_RECORDS or it.record_id in bad_done:
            # three decided labels for the winner plus one Can't decide
            rows += [(it.item_id, it.winner_key, 4), (it.item_id, it.winner_key, 3), (it.item_id, None, 5),
                     (it.item_id, it.winner_key, 4)]
            continue
        bad_done.add(it.record_id)
        kind = len(bad_done) % 4
        if kind == 0:  # too few labels
            rows += [(it.item_id, it.winner_key, 4)]
        elif kind == 1:  # disagreement (a tie)
            rows += [(it.item_id, it.winner_key, 4), (it.item_id, other, 4)] * 2
        elif kind == 2:  # wrong winner
            rows += [(it.item_id, other, 4)] * 3
        else:  # unnatural
            rows += [(it.item_id, it.winner_key, 1)] * 3
    add_labels(engine, rows, annotators=4)
    return items


def file_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_record_level_round_trip_is_byte_for_byte(engine, benchmark_id, small_file, tmp_path, cli):
    label_benchmark(engine, benchmark_id)
    out = tmp_path / "verified"
    result = cli("export-verified", "--out", str(out), "--benchmark", "small")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [".rmgap-annot-export.json", "README.md", "labels.csv", "labels.parquet", "report.html", "test.jsonl"]

    originals = file_lines(small_file)
    expected = [line for line in originals if json.loads(line)["id"] in GOOD_RECORDS]
    exported = file_lines(out / "test.jsonl")
    assert exported == expected  # byte for byte, in the original order
    assert [json.loads(x) for x in exported] == [json.loads(x) for x in expected]
    assert (out / "test.jsonl").read_bytes().endswith(b"\n")

    # The export imports into a fresh database as identical records.
    url2 = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    init_db(url2)
    engine2 = get_engine(url2)
    bench2 = import_benchmark(engine=engine2, path=out / "test.jsonl").benchmark_id
    with session_scope(engine) as s1, session_scope(engine2) as s2:
        before = dict(s1.execute(select(Record.record_id, Record.raw_json).where(Record.benchmark_id == benchmark_id)).all())
        after = dict(s2.execute(select(Record.record_id, Record.raw_json).where(Record.benchmark_id == bench2)).all())
    assert set(after) == GOOD_RECORDS
    assert all(after[rid] == before[rid] for rid in after)
    items2 = load_items(engine=engine2, benchmark_id=bench2).drop(columns=["item_id", "record_pk"])
    items1 = load_items(engine=engine, benchmark_id=benchmark_id)
    items1 = items1[items1["record_id"].isin(GOOD_RECORDS)].drop(columns=["item_id", "record_pk"])
    pd.testing.assert_frame_equal(items1.reset_index(drop=True), items2.reset_index(drop=True))


def test_card_says_how_the_subset_was_chosen(engine, benchmark_id, tmp_path, cli):
    label_benchmark(engine, benchmark_id)
    out = tmp_path / "verified"
    assert cli("export-verified", "--out", str(out), "--min-labels", "2", "--min-agreement", "0.75",
               "--min-naturalness", "2.5").exit_code == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    with session_scope(engine) as session:
        from rmgap_annot.models import Benchmark

        bench = session.get(Benchmark, benchmark_id)
    assert bench.file_hash in card and "small" in card
    assert "--min-labels 2 --min-agreement 3/4 --min-naturalness 5/2" in card
    from rmgap_annot import __version__

    assert f"rmgap-annot {__version__}" in card
    for reason in REASONS:
        assert reason in card
    # alpha per domain: a number with an interval, a number saying why it has none, or an explicit n/a with its reason
    for domain in (*DOMAINS, "All"):
        row = re.search(rf"^\| {domain} \| (.+) \|$", card.split("Agreement on the pick")[1], re.M)
        assert row and ("CI" in row.group(1) or "(no interval: " in row.group(1) or row.group(1).startswith("n/a")), domain
    # counts: the table's kept+dropped add up to all items per domain
    labels = load_labels(engine=engine, benchmark_id=benchmark_id)
    assert f"labels used: {len(labels)}" in card


def test_counts_in_card_match_the_rule(engine, benchmark_id, tmp_path):
    label_benchmark(engine, benchmark_id)
    result = write_export(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "v", rule=Rule())
    for domain in (*DOMAINS, "All"):
        s = result.summary[domain]
        assert s["items_kept"] + sum(s["items_dropped"].values()) == s["items"]
    assert result.summary["All"]["records_kept"] == len(GOOD_RECORDS) == result.n_written
    # each of the four label-based failure kinds occurs (one item per bad record); no rating threshold was set
    dropped = result.summary["All"]["items_dropped"]
    assert all(dropped[r] > 0 for r in REASONS if r != REASON_RATING) and dropped[REASON_RATING] == 0, dropped


def test_item_level_has_provenance_and_scorer_verdicts(engine, benchmark_id, tmp_path, cli):
    items = label_benchmark(engine, benchmark_id)
    with session_scope(engine, write=True) as session:
        scorer = Scorer(name="oracle", family="imported", spec="test")
        session.add(scorer)
        session.flush()
        for it in items.itertuples():
            for key in ("response1", "response2", "response3", "response4"):
                session.add(Score(scorer_id=scorer.id, item_id=it.item_id, response_key=key,
                                  value=1.0 if key == it.winner_key else 0.0))
    out = tmp_path / "items"
    result = cli("export-verified", "--out", str(out), "--level", "item")
    assert result.exit_code == 0, result.output
    assert not (out / "test.jsonl").exists()
    rows = [json.loads(x) for x in (out / "items.jsonl").read_text(encoding="utf-8").splitlines()]
    verdicts = export_mod.verify(labels=load_labels(engine=engine, benchmark_id=benchmark_id), items=items, rule=Rule())
    assert len(rows) == int(verdicts["verified"].sum())
    first = rows[0]
    assert set(first) >= {"prompt", "responses", "winner", "domain", "provenance"}
    assert [r["key"] for r in first["responses"]] == ["response1", "response2", "response3", "response4"]
    prov = first["provenance"]
    assert prov["votes"][first["winner"]] == max(prov["votes"].values())
    assert sum(prov["votes"].values()) + prov["n_cant_decide"] == prov["n_labels"]
    assert prov["agreement"] >= 2 / 3 and prov["mean_naturalness"] >= 3
    assert prov["scorers"]["oracle"]["correct"] is True
    assert prov["scorers"]["oracle"]["scores"][first["winner"]] == 1.0


def test_labels_files_hold_every_raw_label(engine, benchmark_id, tmp_path):
    label_benchmark(engine, benchmark_id)
    labels = load_labels(engine=engine, benchmark_id=benchmark_id)
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "v")
    parquet = pd.read_parquet(tmp_path / "v" / "labels.parquet")
    csv = pd.read_csv(tmp_path / "v" / "labels.csv")
    assert len(parquet) == len(csv) == len(labels) > 0
    assert list(parquet["label_id"]) == list(labels["label_id"])
    assert parquet["choice_key"].isna().sum() == labels["choice_key"].isna().sum() > 0


def test_report_is_self_contained_and_escapes_benchmark_text(engine, tmp_path, record_factory):
    from rmgap_annot.synthetic import write_jsonl

    path = write_jsonl(tmp_path / "evil.jsonl", [record_factory("r1", "Chat")])
    bid = import_benchmark(engine=engine, path=path, name='<script>alert("x")</script>').benchmark_id
    write_export(engine=engine, benchmark_id=bid, out_dir=tmp_path / "v")
    page = (tmp_path / "v" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*href=|https?://(?!www\.w3\.org/2000/svg)", page)
    assert "<svg" in page
    card = (tmp_path / "v" / "README.md").read_text(encoding="utf-8")
    assert "records kept" in card


def test_failure_mid_export_leaves_nothing_half_written(engine, benchmark_id, tmp_path, monkeypatch):
    label_benchmark(engine, benchmark_id)
    out = tmp_path / "verified"

    def broken(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(export_files, "write_report_html", broken)  # runs after test.jsonl is written
    with pytest.raises(OSError, match="simulated"):
        write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".verified")] == []


def test_failed_replacement_keeps_the_previous_export_intact(engine, benchmark_id, tmp_path, monkeypatch):
    label_benchmark(engine, benchmark_id)
    out = tmp_path / "verified"
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(folder, labels):
        (folder / "labels.parquet").write_bytes(b"partial")
        raise RuntimeError("interrupted (simulated)")

    monkeypatch.setattr(export_files, "write_labels", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out, rule=Rule.of(min_labels=1), force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".verified")] == []


def test_existing_folder_is_refused_without_force_and_replaced_with_it(engine, benchmark_id, tmp_path, cli):
    label_benchmark(engine, benchmark_id)
    out = tmp_path / "verified"
    assert cli("export-verified", "--out", str(out)).exit_code == 0
    again = cli("export-verified", "--out", str(out), "--min-labels", "1")
    assert again.exit_code == 2 and "--force" in again.output
    first = (out / "test.jsonl").read_bytes()
    assert cli("export-verified", "--out", str(out), "--force", "--level", "item").exit_code == 0
    assert not (out / "test.jsonl").exists() and (out / "items.jsonl").exists()
    assert first  # the first export had written records


def test_force_never_replaces_a_folder_that_is_not_an_export(engine, benchmark_id, tmp_path):
    out = tmp_path / "project"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not an export"):
        write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out, force=True)
    assert (out / "notes.txt").read_text() == "keep me"


def test_an_empty_existing_folder_is_used(engine, benchmark_id, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    result = write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out)
    assert result.n_written == 0 and (out / "test.jsonl").read_bytes() == b""


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min-agreement", "1.5"], "min-agreement"),
        (["--min-labels", "0"], "min-labels"),
        (["--min-naturalness", "six"], "not a number"),
        (["--level", "group"], "--level"),
        (["--benchmark", "nope"], "no benchmark named"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(benchmark_id, tmp_path, cli, args, message):
    out = tmp_path / "v"
    result = cli("export-verified", "--out", str(out), *args)
    assert result.exit_code == 2 and message in result.output
    assert not out.exists()


def test_export_page_shows_counts_and_writes_files(engine, benchmark_id, db_url, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from rmgap_annot.accounts import create_user

    label_benchmark(engine, benchmark_id)
    researcher = create_user(engine=engine, name="res", role="researcher", password="correct horse")
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.setenv("RMGAP_ANNOT_EXPORTS", str(tmp_path / "exports"))
    page = Path(__file__).resolve().parents[1] / "pages" / "export.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.session_state["user_id"] = researcher
    at.run()
    assert not at.exception, at.exception
    text = " ".join(str(m.value) for m in at.markdown) + " ".join(str(t.value) for t in at.dataframe)
    assert "4 of 8 records" in " ".join(str(m.value) for m in at.markdown) or "4 of 8" in text
    at.button(key="export_write").click().run()
    assert not at.exception, at.exception
    written = list((tmp_path / "exports").glob("*/test.jsonl"))
    assert len(written) == 1 and len(written[0].read_bytes().splitlines()) == len(GOOD_RECORDS)


def test_export_page_refuses_annotators(engine, benchmark_id, db_url, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from rmgap_annot.accounts import create_user

    annotator = create_user(engine=engine, name="ann", role="annotator", password="correct horse")
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    page = Path(__file__).resolve().parents[1] / "pages" / "export.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.session_state["user_id"] = annotator
    at.run()
    assert at.error and not at.button


def test_force_refuses_a_hand_written_folder_with_export_file_names(engine, benchmark_id, tmp_path, cli):
    """The folder looks like an export (README.md, labels.csv) but the tool did not write it: no manifest."""
    out = tmp_path / "paper"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    (out / "labels.csv").write_text("my labels")
    result = cli("export-verified", "--out", str(out), "--force")
    assert result.exit_code == 2
    assert "not an export" in result.output and ".rmgap-annot-export.json" in result.output
    assert (out / "README.md").read_text() == "my notes" and (out / "labels.csv").read_text() == "my labels"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "labels.csv"]


@pytest.mark.parametrize("change", ["extra file", "edited file", "broken manifest"])
def test_force_refuses_an_export_a_person_changed(engine, benchmark_id, tmp_path, change):
    out = tmp_path / "verified"
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out)
    manifest = json.loads((out / export_mod.MANIFEST).read_text())
    assert set(manifest["files"]) == {p.name for p in out.iterdir()} - {export_mod.MANIFEST}
    if change == "extra file":
        (out / "analysis.ipynb").write_text("{}")
    elif change == "edited file":
        (out / "README.md").write_text("edited by hand")
    else:
        (out / export_mod.MANIFEST).write_text("{")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ExportError, match="not an export"):
        write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_force_replaces_an_unchanged_export(engine, benchmark_id, tmp_path):
    out = tmp_path / "verified"
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out)
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=out, level="item", force=True)
    assert (out / "items.jsonl").exists() and not (out / "test.jsonl").exists()
    assert "items.jsonl" in json.loads((out / export_mod.MANIFEST).read_text())["files"]
def test_report_html_says_which_items_each_accuracy_column_uses(engine, benchmark_id, tmp_path):
    """People are scored on labelled items, a reward model on every item it scored: the table says so."""
    from rmgap_annot.scoring.runner import run_scoring

    label_benchmark(engine, benchmark_id)
    run_scoring(engine=engine, benchmark_id=benchmark_id, spec="length", name="length", items="all")
    write_export(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "v")
    page = (tmp_path / "v" / "report.html").read_text(encoding="utf-8")
    assert "humans (labelled items)" in page
    assert "length (all 96 scored items)" in page
