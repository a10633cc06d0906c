"""export-verified --hf: the verified subset as a Hugging Face dataset that reads back, with a Hub card and pseudonyms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rmgap_annot import hf_dataset as H
from rmgap_annot.export import ExportError, Rule
from rmgap_annot.scores_io import import_scores
from tests.test_export import GOOD_RECORDS, label_benchmark

datasets = pytest.importorskip("datasets")


def _card_yaml(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def _rows(ds) -> list[dict]:
    return [dict(r) for r in ds]


@pytest.fixture
def labelled(engine, benchmark_id, tmp_path):
    items = label_benchmark(engine, benchmark_id)
    scores = tmp_path / "s.jsonl"
    with scores.open("w", encoding="utf-8") as f:
        for it in items.itertuples():
            f.write(json.dumps({"record_id": it.record_id, "group": int(it.group), "prompt_index": int(it.prompt_index),
                                "scores": {f"response{i}": float(i) for i in range(1, 5)}}) + "\n")
    import_scores(engine=engine, benchmark_id=benchmark_id, path=scores, name="R&D_model#1 50%")
    return items


def test_round_trip_through_load_from_disk_and_parquet(engine, benchmark_id, labelled, tmp_path):
    out = tmp_path / "hf"
    res = H.write_hf_dataset(engine=engine, benchmark_id=benchmark_id, out_dir=out, rule=Rule(), level="record",
                             license_id="cc-by-4.0")
    assert res.n_items == 12 * len(GOOD_RECORDS) and res.warnings == []
    for config in H.CONFIGS:
        on_disk = datasets.load_from_disk(str(out / "disk" / config))["test"]
        parquet = datasets.load_dataset("parquet", data_files={"test": str(out / "data" / config / "test-*.parquet")},
                                        cache_dir=str(tmp_path / "hf-cache"))["test"]
        assert _rows(on_disk) == _rows(parquet) and len(on_disk) > 0, config
    items = datasets.load_from_disk(str(out / "disk" / "items"))["test"]
    assert {r["record_id"] for r in items} == GOOD_RECORDS
    first = items[0]
    assert first["winner"] in {r["key"] for r in first["responses"]} and len(first["responses"]) == 4
    assert first["scorers"][0]["scorer"] == "R&D_model#1 50%" and len(first["scorers"][0]["scores"]) == 4
    assert sum(v["votes"] for v in first["votes"]) == 3  # three decided labels, one Can't decide
    labels = datasets.load_from_disk(str(out / "disk" / "labels"))["test"]
    assert len(labels) == res.n_labels == 4 * res.n_items
    assert sum(r["choice"] is None for r in labels) == res.n_items  # Can't decide stays null


def test_item_level_keeps_verified_items_of_every_record(engine, benchmark_id, labelled, tmp_path):
    res = H.write_hf_dataset(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "hf", level="item")
    items = datasets.load_from_disk(str(tmp_path / "hf" / "disk" / "items"))["test"]
    assert len(items) == res.n_items > 12 * len(GOOD_RECORDS)
    assert {r["record_id"] for r in items} > GOOD_RECORDS


def test_card_yaml_parses_with_license_configs_and_size(engine, benchmark_id, labelled, tmp_path):
    H.write_hf_dataset(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "hf", license_id="cc-by-4.0")
    meta = _card_yaml(tmp_path / "hf")
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-classification"]
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"items", "labels"} and configs["items"]["default"] is True
    for name, c in configs.items():
        (split,) = c["data_files"]
        assert split["split"] == "test"
        assert list((tmp_path / "hf").glob(split["path"])), name  # the pattern finds the written file
    res = H.write_hf_dataset(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "hf2")
    assert _card_yaml(tmp_path / "hf2")["license"] == "unknown" and res.license == "unknown"
    assert any("--license" in w for w in res.warnings)


def test_annotators_appear_only_under_stable_pseudonyms(engine, benchmark_id, labelled, tmp_path):
    H.write_hf_dataset(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "a")
    H.write_hf_dataset(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "b")
    names = {f"annotator{i}" for i in range(4)}
    for folder in (tmp_path / "a", tmp_path / "b"):
        for path in folder.rglob("*"):
            if path.is_file():
                blob = path.read_bytes()
                assert not any(n.encode() in blob for n in names), path
    first = datasets.load_from_disk(str(tmp_path / "a" / "disk" / "labels"))["test"]["annotator"]
    second = datasets.load_from_disk(str(tmp_path / "b" / "disk" / "labels"))["test"]["annotator"]
    assert first == second and set(first) == {"ann-01", "ann-02", "ann-03", "ann-04"}
    assert H.size_category(999) == "n<1K" and H.size_category(1000) == "1K<n<10K" and H.size_category(12_000) == "10K<n<100K"


def test_cli_hf_with_license_and_refusals(cli, engine, benchmark_id, labelled, tmp_path):
    out, hf = tmp_path / "out", tmp_path / "hf"
    res = cli("export-verified", "--out", str(out), "--hf", str(hf), "--license", "mit")
    assert res.exit_code == 0, res.output
    assert (out / "test.jsonl").exists() and _card_yaml(hf)["license"] == "mit"
    # Without a licence: a warning, and the card says unknown.
    res = cli("export-verified", "--out", str(tmp_path / "o2"), "--hf", str(tmp_path / "h2"))
    assert res.exit_code == 0 and "Warning" in res.stderr and _card_yaml(tmp_path / "h2")["license"] == "unknown"
    # A folder in the way is refused before anything is written.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine", encoding="utf-8")
    res = cli("export-verified", "--out", str(tmp_path / "o3"), "--hf", str(busy))
    assert res.exit_code == 2 and not (tmp_path / "o3").exists()
    res = cli("export-verified", "--out", str(tmp_path / "o4"), "--hf", str(busy), "--force")
    assert res.exit_code == 2 and (busy / "notes.txt").read_text(encoding="utf-8") == "mine"
    # --force replaces a previous --hf export.
    res = cli("export-verified", "--out", str(out), "--hf", str(hf), "--force", "--license", "cc0-1.0")
    assert res.exit_code == 0, res.output
    assert _card_yaml(hf)["license"] == "cc0-1.0"
    res = cli("export-verified", "--out", str(tmp_path / "o6"), "--hf", str(tmp_path / "h6"), "--license", "CC BY 4.0")
    assert res.exit_code == 2 and "licence id" in res.output and not (tmp_path / "o6").exists() and not (tmp_path / "h6").exists()
    res = cli("export-verified", "--out", str(tmp_path / "o5"), "--push", "me/data")
    assert res.exit_code == 2 and "--hf" in res.output and not (tmp_path / "o5").exists()


def test_refusing_a_foreign_folder_even_with_force(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a").write_text("a", encoding="utf-8")
    with pytest.raises(ExportError):
        H.check_hf_target(tmp_path / "x", force=True)


def test_an_empty_subset_is_written_with_the_same_columns_and_a_warning(engine, benchmark_id, tmp_path):
    res = H.write_hf_dataset(engine=engine, benchmark_id=benchmark_id, out_dir=tmp_path / "hf", license_id="mit")
    assert res.n_items == 0 and any("empty" in w for w in res.warnings)
    items = datasets.load_from_disk(str(tmp_path / "hf" / "disk" / "items"))["test"]
    assert len(items) == 0 and items.features == H.features()["items"]
    assert _card_yaml(tmp_path / "hf")["license"] == "mit"
