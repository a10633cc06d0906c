"""Paper-ready outputs: tables compile, every number is the report's, macro names, escaping, the CLI and the page."""

from __future__ import annotations

import io
import json
import random
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from rmgap_annot import latex
from rmgap_annot.paper import PaperError, paper_outputs, write_paper
from rmgap_annot.report import build_report
from rmgap_annot.scores_io import import_scores
from rmgap_annot.stats import artifacts as A
from tests.analytics_helpers import add_labels, item_ids, winners

SCORER = "R&D_model#1 50%"
DRAWS = 50
KEYS = [f"response{i}" for i in range(1, 5)]


def _seed(engine, benchmark_id, tmp_path, *, scorer: str = SCORER) -> None:
    """Three annotators (pick and ranking labels), one imported scorer, and the artifact checks fitted."""
    rng = random.Random(0)
    ids, win = item_ids(engine, benchmark_id), winners(engine, benchmark_id)
    rows = []
    for iid in ids.values():
        for a in range(3):
            choice = win[iid] if rng.random() < 0.7 else rng.choice(KEYS)
            rest = [k for k in KEYS if k != choice]
            rng.shuffle(rest)
            rows.append({"annotator": f"ann{a}", "item_id": iid, "choice": choice, "ranking": [choice, *rest],
                         "naturalness": rng.randint(1, 5), "seconds": 12.0})
    add_labels(engine, rows)
    scores = tmp_path / "scores.jsonl"
    with scores.open("w", encoding="utf-8") as f:
        for (rid, g, p), iid in ids.items():
            f.write(json.dumps({"record_id": rid, "group": g, "prompt_index": p,
                                "scores": {k: rng.random() + (0.4 if k == win[iid] else 0.0) for k in KEYS}}) + "\n")
    import_scores(engine=engine, benchmark_id=benchmark_id, path=scores, name=scorer)
    A.artifact_checks(engine=engine, benchmark_id=benchmark_id, draws=DRAWS)


@pytest.fixture
def paper(engine, benchmark_id, tmp_path):
    _seed(engine, benchmark_id, tmp_path)
    result = paper_outputs(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "paper", draws=DRAWS)
    return result


def _walk(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def test_every_number_equals_the_reports(engine, benchmark_id, paper):
    doc = json.loads((paper.out_dir / "numbers.json").read_text(encoding="utf-8"))
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=DRAWS)
    art = A.cached_artifact_checks(engine=engine, benchmark_id=benchmark_id, draws=DRAWS)
    sources = {"report": report, "artifacts": art}
    assert len(doc["numbers"]) > 100
    for key, value in doc["numbers"].items():
        where = doc["sources"][key]
        assert _walk(sources[where["source"]], where["path"]) == value, key
    # Stable keys for the headline numbers, and the tables print them rounded.
    assert doc["numbers"]["report.human.BoN.Chat"] == report["human"]["BoN"]["Chat"]
    assert doc["numbers"]["report.human.ci.BoN.Chat.lo"] == report["human"]["ci"]["BoN"]["Chat"][0]
    assert doc["numbers"][f"report.scorers.{SCORER}.vs_human.All.p_adjusted"] == report["scorers"][SCORER]["vs_human"]["All"]["p_adjusted"]
    human = (paper.out_dir / "tables" / "human_accuracy.tex").read_text(encoding="utf-8")
    h, ci = report["human"]["BoN"]["Chat"], report["human"]["ci"]["BoN"]["Chat"]
    assert f"{h:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" in human
    arts = (paper.out_dir / "tables" / "artifacts.tex").read_text(encoding="utf-8")
    assert f"{art['shallow_cue']['methods']['shallow_model']['BoN']['Avg']:.2f}" in arts
    # The other way round: every decimal printed in a table's cells is one of numbers.json's, rounded.
    printed = {f"{v:.{d}f}" for v in doc["numbers"].values() if v is not None for d in (2, 3)}  # p-values: 3 decimals
    for table in (paper.out_dir / "tables").glob("*.tex"):
        body = table.read_text(encoding="utf-8").split("\\midrule", 1)[1]
        cells = re.findall(r"-?\d+\.\d+", body)
        assert cells and set(cells) <= printed, (table.name, set(cells) - printed)


def test_macros_name_headline_numbers_letters_only_and_unique(paper):
    doc = json.loads((paper.out_dir / "numbers.json").read_text(encoding="utf-8"))
    text = (paper.out_dir / "macros.tex").read_text(encoding="utf-8")
    defined = re.findall(r"\\newcommand\{\\([^}]*)\}\{([^}]*)\}", text)
    names = [n for n, _ in defined]
    assert len(names) == len(set(names)) == len(doc["macros"]) > 20
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)
    values = dict(defined)
    key = doc["macros"]["humanBoNChat"]
    assert key == "report.human.BoN.Chat" and values["humanBoNChat"] == f"{doc['numbers'][key]:.2f}"
    assert "humanBoNChatLow" in values and "alphaPickAll" in values
    assert doc["macros"]["scorerRDModelOneFiveZeroBoNAvg"] == f"report.scorers.{SCORER}.labelled_only.BoN.Avg"


def test_macro_scheme():
    assert latex.macro_part("math-prm") == "MathPrm"
    assert latex.macro_part("Code Generation") == "CodeGeneration"
    assert latex.macro_part("gpt-4o") == "GptFourO"
    assert latex.macro_part("BoN") == "BoN"
    assert latex.macro_part("%%") == "X"
    parts = {"b": ("scorer", "RD"), "a": ("scorer", "R&D"), "c": ("scorer", "R-D"), "d": ("scorer", "RDB")}
    names = latex.macro_names(parts)
    # Collisions: sorted keys, the first keeps the name, the others get letters that collide with nothing.
    assert names["a"] == "scorerRD" and len(set(names.values())) == 4
    assert names["d"] == "scorerRDB" and names["b"] == "scorerRDC" and names["c"] == "scorerRDD"
    assert latex.macro_names(dict(reversed(list(parts.items())))) == names


def test_latex_special_characters_in_a_scorer_name_are_escaped(paper):
    table = (paper.out_dir / "tables" / "reward_models.tex").read_text(encoding="utf-8")
    assert r"R\&D\_model\#1 50\%" in table
    assert SCORER not in table
    assert latex.escape("Café") == "Caf?"  # pdflatex never stops on a character its fonts lack
    assert latex.escape("a\\b{c}~^$<|>") == r"a\textbackslash{}b\{c\}\textasciitilde{}\textasciicircum{}\$\textless{}\textbar{}\textgreater{}"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (Debian: texlive-latex-recommended)")
def test_tables_macros_and_figures_compile_with_pdflatex(paper):
    out = paper.out_dir
    doc = json.loads((out / "numbers.json").read_text(encoding="utf-8"))
    tables = sorted((out / "tables").glob("*.tex"))
    assert {t.stem for t in tables} == {"agreement", "human_accuracy", "reward_models", "reward_models_by_domain", "artifacts", "verified"}
    body = "\n".join(f"\\input{{tables/{t.name}}}" for t in tables)
    cites = " ".join(f"\\{name}{{}}" for name in doc["macros"])
    (out / "main.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\input{macros.tex}\n"
        f"\\begin{{document}}\n{cites}\n{body}\n"
        "\n\\noindent\\includegraphics[width=\\linewidth]{figures/reward_models_vs_humans_bon.pdf}\n\\end{document}\n",
        encoding="utf-8",
    )
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], cwd=out,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:]
    assert (out / "main.pdf").read_bytes().startswith(b"%PDF")
    # Wide tables are scaled to the line (graphicx is loaded), so none runs into the margin.
    assert "Overfull \\hbox" not in (out / "main.log").read_text(encoding="utf-8", errors="replace")


def test_figures_are_vector_files(paper):
    figs = paper.out_dir / "figures"
    for stem in ("human_accuracy_by_domain", "reward_models_vs_humans_bon", "naturalness_distribution",
                 "agreement_by_domain", "shallow_cue_ceiling"):
        svg = (figs / f"{stem}.svg").read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<svg") and ("<path" in svg or "<line" in svg), stem
        assert (figs / f"{stem}.pdf").read_bytes().startswith(b"%PDF"), stem
    assert SCORER in (figs / "reward_models_vs_humans_bon.svg").read_text(encoding="utf-8").replace("&amp;", "&")


def _verified_subset(report: dict) -> dict:
    """The report's verified_subset shape (stats.verified), with numbers the table must print."""
    return {
        "rule": {"min_labels": 3, "min_agreement": "2/3", "min_naturalness": 3, "aggregate": "plurality"},
        "scorers": {SCORER: {
            "all": {"BoN": {"Avg": 0.61}, "ci": {"BoN": {"Avg": [0.55, 0.67]}}},
            "verified": {"BoN": {"Avg": 0.72}, "ci": {"BoN": {"Avg": [0.64, 0.8]}}},
            "rest": {"BoN": {"Avg": 0.5}, "ci": {"BoN": {"Avg": [0.41, 0.58]}}},
            "difference": {"BoN": {"All": {"difference": 0.22, "ci": [0.1, 0.33], "p_value": 0.0004, "p_adjusted": 0.0004}}},
        }},
    }


def test_all_vs_verified_table_is_written_when_the_report_has_it_and_skipped_otherwise(engine, benchmark_id, tmp_path):
    _seed(engine, benchmark_id, tmp_path)
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=DRAWS)
    real = report.pop("verified_subset")
    without = write_paper(out_dir=tmp_path / "a", report=report, artifacts=None, figures=False)
    assert not (tmp_path / "a" / "tables" / "verified.tex").exists()
    assert any("verified_subset" in n for n in without.notes) and any("artifact" in n for n in without.notes)
    assert "skipped" in (tmp_path / "a" / "numbers.json").read_text(encoding="utf-8")
    report["verified_subset"] = _verified_subset(report)
    write_paper(out_dir=tmp_path / "b", report=report, artifacts=None, figures=False)
    table = (tmp_path / "b" / "tables" / "verified.tex").read_text(encoding="utf-8")
    assert "0.72 [0.64, 0.80]" in table and "0.22 [0.10, 0.33]" in table and "$<$0.001" in table
    doc = json.loads((tmp_path / "b" / "numbers.json").read_text(encoding="utf-8"))
    assert doc["numbers"][f"report.verified_subset.scorers.{SCORER}.verified.BoN.Avg"] == 0.72
    assert "verifiedRDModelOneFiveZeroVerifiedBoN" in doc["macros"]
    report["verified_subset"] = real  # the report's own section (stats.verified) gives the table too
    write_paper(out_dir=tmp_path / "c", report=report, artifacts=None, figures=False)
    assert (tmp_path / "c" / "tables" / "verified.tex").exists()


def test_caption_states_exclusions_without_names(engine, benchmark_id, tmp_path):
    from rmgap_annot.exclusions import exclude_annotator

    _seed(engine, benchmark_id, tmp_path)
    exclude_annotator(engine=engine, name="ann2", reason="too fast")
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=DRAWS)
    write_paper(out_dir=tmp_path / "p", report=report, artifacts=None, figures=False)
    table = (tmp_path / "p" / "tables" / "agreement.tex").read_text(encoding="utf-8")
    assert "labels by 2 annotators" in table and "labels of 1 excluded annotator are not counted" in table
    assert "ann2" not in table


def test_na_cells_and_no_scorers(engine, benchmark_id, tmp_path):
    """No labels at all: every cell n/a, no reward-model table, still a complete set that says why."""
    report = build_report(engine=engine, benchmark_id=benchmark_id, draws=DRAWS)
    res = write_paper(out_dir=tmp_path / "p", report=report, artifacts=None, figures=False)
    human = (tmp_path / "p" / "tables" / "human_accuracy.tex").read_text(encoding="utf-8")
    assert "n/a" in human and "None" not in human and "nan" not in human
    assert any("reward" in n for n in res.notes)
    doc = json.loads((tmp_path / "p" / "numbers.json").read_text(encoding="utf-8"))
    assert doc["numbers"]["report.human.BoN.Chat"] is None


def test_cli_writes_and_refuses_a_non_empty_folder(cli, engine, benchmark_id, tmp_path):
    _seed(engine, benchmark_id, tmp_path)
    out = tmp_path / "out"
    res = cli("paper", "--out", str(out), "--draws", str(DRAWS), "--no-figures")
    assert res.exit_code == 0, res.output
    assert (out / "tables" / "artifacts.tex").exists() and (out / "macros.tex").exists() and not (out / "figures").exists()
    before = (out / "numbers.json").read_bytes()
    (out / "numbers.json").write_text("{}", encoding="utf-8")
    again = cli("paper", "--out", str(out), "--draws", str(DRAWS))
    assert again.exit_code == 2 and "not empty" in again.output
    assert (out / "numbers.json").read_text(encoding="utf-8") == "{}"
    forced = cli("paper", "--out", str(out), "--draws", str(DRAWS), "--no-figures", "--force")
    assert forced.exit_code == 0 and (out / "numbers.json").read_bytes() == before
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n', encoding="utf-8")
    res = cli("paper", "--out", str(tmp_path / "o2"), "--organic", str(bad))
    assert res.exit_code == 2 and "bad.jsonl:1" in res.output and not (tmp_path / "o2").exists()


def test_with_several_studies_paper_asks_which_one_or_pools_them(cli, engine, benchmark_id, tmp_path):
    """A pilot and a main run: the paper's numbers come from the study named, or from all with --study all."""
    from rmgap_annot.assignment import create_study

    _seed(engine, benchmark_id, tmp_path)
    create_study(engine=engine, name="main-run", benchmark_id=benchmark_id)
    res = cli("paper", "--out", str(tmp_path / "none"), "--draws", "0", "--no-figures")
    assert res.exit_code == 2 and "several studies" in res.output and not (tmp_path / "none").exists()
    empty = cli("paper", "--out", str(tmp_path / "main"), "--draws", "0", "--no-figures", "--study", "main-run")
    pooled = cli("paper", "--out", str(tmp_path / "all"), "--draws", "0", "--no-figures", "--study", "all")
    assert empty.exit_code == 0 and pooled.exit_code == 0, empty.output + pooled.output
    numbers = {k: json.loads((tmp_path / k / "numbers.json").read_text(encoding="utf-8"))["numbers"] for k in ("main", "all")}
    assert numbers["main"]["report.human.BoN.Chat"] is None  # no label in the main run yet
    assert numbers["all"]["report.human.BoN.Chat"] is not None


def test_bad_out_is_refused(tmp_path, engine, benchmark_id):
    f = tmp_path / "file"
    f.write_text("x", encoding="utf-8")
    with pytest.raises(PaperError):
        paper_outputs(engine=engine, benchmark_id=benchmark_id, out_dir=f, draws=0)


def test_export_page_writes_paper_outputs_and_zips_them(engine, benchmark_id, db_url, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from rmgap_annot.accounts import create_user
    from rmgap_annot.paper import zip_folder

    _seed(engine, benchmark_id, tmp_path)
    researcher = create_user(engine=engine, name="res", role="researcher", password="correct horse")
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.setenv("RMGAP_ANNOT_EXPORTS", str(tmp_path / "exports"))
    page = Path(__file__).resolve().parents[1] / "pages" / "export.py"
    at = AppTest.from_file(str(page), default_timeout=120)
    at.session_state["user_id"] = researcher
    at.run()
    assert not at.exception, at.exception
    at.button(key="paper_write").click().run()
    assert not at.exception, at.exception
    written = list((tmp_path / "exports").glob("*-paper-*/numbers.json"))
    assert len(written) == 1
    folder = written[0].parent
    assert (folder / "tables" / "human_accuracy.tex").exists() and (folder / "figures" / "agreement_by_domain.svg").exists()
    with zipfile.ZipFile(io.BytesIO(zip_folder(folder))) as zf:
        assert "numbers.json" in zf.namelist() and "tables/reward_models.tex" in zf.namelist()


RENAMED = {"Chat": "math-prm", "Writing": "Code Generation", "Reasoning": "R&D_1 50%", "Safety": "Safety"}


def _rename_domains(doc):
    """The report as another format's would look: the same numbers under category names with LaTeX specials."""
    if isinstance(doc, dict):
        return {RENAMED.get(k, k) if isinstance(k, str) else k: _rename_domains(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_rename_domains(v) for v in doc]
    return doc


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (Debian: texlive-latex-recommended)")
def test_any_category_names_are_escaped_mapped_to_macros_and_compile(engine, benchmark_id, tmp_path):
    _seed(engine, benchmark_id, tmp_path)
    report = _rename_domains(build_report(engine=engine, benchmark_id=benchmark_id, draws=DRAWS))
    out = tmp_path / "p"
    write_paper(out_dir=out, report=report, artifacts=None, figures=False)
    doc = json.loads((out / "numbers.json").read_text(encoding="utf-8"))
    for key, value in doc["numbers"].items():
        assert _walk(report, doc["sources"][key]["path"]) == value, key
    assert doc["macros"]["humanBoNMathPrm"] == "report.human.BoN.math-prm"
    assert doc["macros"]["humanBoNCodeGeneration"] == "report.human.BoN.Code Generation"
    assert doc["macros"]["alphaPickRDOneFiveZero"] == "report.agreement.choice_alpha.R&D_1 50%.alpha"
    human = (out / "tables" / "human_accuracy.tex").read_text(encoding="utf-8")
    assert "math-prm &" in human and r"R\&D\_1 50\% &" in human
    body = "\n".join(f"\\input{{tables/{t.name}}}" for t in sorted((out / "tables").glob("*.tex")))
    (out / "main.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\input{macros.tex}\n\\begin{document}\n"
                                  f"\\humanBoNMathPrm{{}} \\alphaPickRDOneFiveZero{{}}\n{body}\n\\end{{document}}\n", encoding="utf-8")
    res = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"], cwd=out,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:]
