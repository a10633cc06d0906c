"""The verified subset as a Hugging Face dataset: ``save_to_disk``, Parquet and a Hub dataset card.

``export-verified --hf DIR`` writes it beside the plain export so a team can
``load_from_disk`` it, read the Parquet files with ``load_dataset("parquet",
...)``, or push the folder to the Hub as is: the card's YAML header declares
the configs and splits the Hub's viewer reads. Annotators appear only under
their stable pseudonym in the study (``ann-07``, ``studies.coder_names``): a published
dataset must not carry the names people log in with, and free-text comments
are left out for the same reason.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import pandas as pd
from sqlalchemy.engine import Engine

from rmgap_annot import __version__
from rmgap_annot.export import (
    ExportError,
    Rule,
    _benchmark,
    _item_rows,
    apply_rule,
    record_verdicts,
)
from rmgap_annot.export.files import effective_rule, verdict_stats
from rmgap_annot.exclusions import counted_labels
from rmgap_annot.stats.truth import PLURALITY
from rmgap_annot.tempfiles import clean_stale, temp_path

MARKER = ".rmgap-annot-hf.json"
UNKNOWN_LICENSE = "unknown"
CONFIGS = ("items", "labels")
SPLIT = "test"  # RMGAP and its kin are evaluation sets: one test split
TASK_CATEGORIES = ("text-classification",)
TAGS = ("reward-modeling", "preference", "human-verified", "rmgap-annot")


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` rows."""
    bounds = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"))
    for limit, name in bounds:
        if n < limit:
            return name
    return "10M<n<100M"


def features() -> dict[str, Any]:
    """The two configs' column types, fixed so an empty subset and a full one have the same schema."""
    from datasets import Features, Value

    s, i, f, b = Value("string"), Value("int64"), Value("float64"), Value("bool")
    return {
        "items": Features({
            "record_id": s, "domain": s, "group": i, "prompt_index": i, "role": s, "prompt": s,
            "responses": [{"key": s, "text": s}], "winner": s, "votes": [{"key": s, "votes": i}],
            "n_labels": i, "n_cant_decide": i, "agreement": f, "mean_naturalness": f,
            "scorers": [{"scorer": s, "scores": [{"key": s, "score": f}], "correct": b, "pairs_won": i}],
        }),
        "labels": Features({
            "annotator": s, "record_id": s, "domain": s, "group": i, "prompt_index": i, "choice": s, "ranking": [s],
            "naturalness": i, "reason": s, "seconds": f,
        }),
    }


def _item_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """items.jsonl's rows with every key-varying mapping turned into a list (Arrow needs fixed columns)."""
    out = []
    for r in rows:
        p = r["provenance"]
        out.append({
            "record_id": r["record_id"], "domain": r["domain"], "group": r["group"], "prompt_index": r["prompt_index"],
            "role": r["role"], "prompt": r["prompt"], "responses": r["responses"], "winner": r["winner"],
            "votes": [{"key": k, "votes": v} for k, v in p["votes"].items()],
            "n_labels": p["n_labels"], "n_cant_decide": p["n_cant_decide"], "agreement": p["agreement"],
            "mean_naturalness": p["mean_naturalness"],
            "scorers": [{"scorer": name, "scores": [{"key": k, "score": v} for k, v in s["scores"].items()],
                         "correct": s["correct"], "pairs_won": s["pairs_won"]} for name, s in p["scorers"].items()],
        })
    columns = ["record_id", "domain", "group", "prompt_index", "role", "prompt", "responses", "winner", "votes", "n_labels",
               "n_cant_decide", "agreement", "mean_naturalness", "scorers"]
    return pd.DataFrame(out, columns=columns)


def _label_table(labels: pd.DataFrame, item_keys: set[tuple[str, int, int]]) -> pd.DataFrame:
    """The labels on the dataset's items, annotators as pseudonyms, no names, comments or timestamps."""
    columns = ["annotator", "record_id", "domain", "group", "prompt_index", "choice", "ranking", "naturalness", "reason", "seconds"]
    if labels.empty or not item_keys:
        return pd.DataFrame(columns=columns)
    keys = list(zip(labels["record_id"], labels["group"].astype(int), labels["prompt_index"].astype(int)))
    sel = labels[[k in item_keys for k in keys]]

    def as_list(v: Any) -> Optional[list]:
        return list(v) if isinstance(v, (list, tuple)) else None

    def as_int(v: Any) -> Optional[int]:
        return None if v is None or pd.isna(v) else int(v)

    def as_float(v: Any) -> Optional[float]:
        return None if v is None or pd.isna(v) else float(v)

    def as_str(v: Any) -> Optional[str]:
        return v if isinstance(v, str) else None

    frame = pd.DataFrame({
        "annotator": sel["annotator"].astype(str).tolist(),  # the study's pseudonym (counted_labels names them)
        "record_id": sel["record_id"].astype(str).tolist(),
        "domain": sel["domain"].astype(str).tolist(),
        "group": sel["group"].astype(int).tolist(),
        "prompt_index": sel["prompt_index"].astype(int).tolist(),
        "choice": [as_str(v) for v in sel["choice_key"]],
        "ranking": [as_list(v) for v in sel["ranking"]],
        "naturalness": pd.array([as_int(v) for v in sel["naturalness"]], dtype="Int64"),
        "reason": [as_str(v) for v in sel["reason"]],
        "seconds": [as_float(v) for v in sel["seconds"]],
    }, columns=columns)
    return frame.sort_values(["record_id", "group", "prompt_index", "annotator"], kind="stable").reset_index(drop=True)


def _yaml_card(*, bench_name: str, license_id: str, n_items: int) -> str:
    import yaml

    meta = {
        "license": license_id,
        "pretty_name": f"Human-verified subset of {bench_name}",
        "task_categories": list(TASK_CATEGORIES),
        "tags": list(TAGS),
        "size_categories": [size_category(n_items)],
        "configs": [
            {"config_name": "items", "default": True, "data_files": [{"split": SPLIT, "path": f"data/items/{SPLIT}-*.parquet"}]},
            {"config_name": "labels", "data_files": [{"split": SPLIT, "path": f"data/labels/{SPLIT}-*.parquet"}]},
        ],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def dataset_card(*, bench, rule: Rule, level: str, aggregate: str, license_id: str, n_items: int, n_labels: int,  # noqa: ANN001
                 n_annotators: int, created_at: datetime) -> str:
    """The Hub card: YAML metadata (configs, splits, licence, task, size), then how the subset was chosen."""
    lines = [
        f"# Human-verified subset of {bench.name}",
        "",
        f"Made with rmgap-annot {__version__} on {created_at:%Y-%m-%d %H:%M} UTC from `{bench.name}` "
        f"(sha256 of the source file `{bench.file_hash}`).",
        "",
        "## Configs",
        "",
        f"- `items` (default), split `{SPLIT}`: {n_items} verified items"
        + (" (every item of each record whose items all pass the rule)" if level == "record" else " (every item that passes the rule)")
        + ": prompt, responses, designated winner, votes per response, agreement share, mean naturalness, and each "
        "reward model's scores.",
        f"- `labels`, split `{SPLIT}`: the {n_labels} labels on those items by {n_annotators} annotators, under "
        "pseudonyms (`ann-07`: stable per annotator and study across exports; names, comments and timestamps are not published). "
        "`choice` is null for Can't decide.",
        "",
        "## The rule",
        "",
        "An item is verified when it passes all four checks, in this order:",
        "",
        *(f"1. {text}" for text in rule.describe()),
        "",
        f"Thresholds: `--min-labels {rule.min_labels} --min-agreement {rule.min_agreement} "
        f"--min-naturalness {rule.min_naturalness}`; each item's answer: `{aggregate}`; level: `{level}`.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset, load_from_disk",
        'items = load_dataset("parquet", data_files={"test": "data/items/test-*.parquet"})["test"]',
        'items = load_from_disk("disk/items")["test"]  # the same rows',
        "```",
        "",
        f"Licence: `{license_id}`" + (" (not given at export: set it before publishing)." if license_id == UNKNOWN_LICENSE else "."),
        "",
    ]
    return _yaml_card(bench_name=bench.name, license_id=license_id, n_items=n_items) + "\n" + "\n".join(lines)


@dataclass
class HFResult:
    out_dir: Path
    n_items: int
    n_labels: int
    license: str
    warnings: list[str]


LICENSE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")


def check_license(license_id: Optional[str]) -> None:
    """A Hub licence id is one token (``cc-by-4.0``, ``mit``, ``other``); anything else is refused before writing."""
    if license_id is not None and not LICENSE_RE.match(license_id):
        raise ExportError(f"--license {license_id!r} is not a licence id (e.g. cc-by-4.0, mit, apache-2.0, other)")


def check_hf_target(out_dir: Path, *, force: bool) -> None:
    """Refuse a folder in the way before anything is written (a previous --hf export is replaced only with force)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not force:
            raise ExportError(f"{out_dir} is not empty; pass --force to replace a previous --hf export")
        if not (out_dir / MARKER).is_file():
            raise ExportError(f"{out_dir} is not a dataset this tool wrote (no {MARKER}); refusing to replace it even with --force")


def write_hf_dataset(
    *, engine: Engine, benchmark_id: int, out_dir: str | Path, rule: Rule = Rule(), level: str = "record",
    aggregate: str = PLURALITY, license_id: Optional[str] = None, force: bool = False,
    study_ids: Optional[list[int]] = None,
) -> HFResult:
    """Write the verified subset as a ``datasets`` dataset (both configs), Parquet files and the Hub card, atomically."""
    import datasets
    from datasets import Dataset, DatasetDict

    out_dir = Path(out_dir)
    check_license(license_id)
    check_hf_target(out_dir, force=force)
    warnings = []
    if not license_id:
        license_id = UNKNOWN_LICENSE
        warnings.append("no --license given: the card says 'unknown'; set the source benchmark's licence before publishing")
    bench = _benchmark(engine, benchmark_id)
    labels = counted_labels(engine=engine, benchmark_id=benchmark_id, study_ids=study_ids).labels
    # The same judgement as export-verified: designated winners, naturalness only where a study asks it.
    rule = effective_rule(engine=engine, benchmark_id=benchmark_id, rule=rule, fmt=bench.format)
    stats = verdict_stats(engine=engine, benchmark_id=benchmark_id, labels=labels, aggregate=aggregate, fmt=bench.format)
    verdicts = apply_rule(stats, rule)
    if level == "record":
        records = record_verdicts(verdicts)
        kept = set(records.loc[records["verified"], "record_id"])
        verdicts = verdicts.assign(verified=verdicts["verified"] & verdicts["record_id"].isin(kept))
    items = _item_table(_item_rows(engine, verdicts))
    item_keys = set(zip(items["record_id"], items["group"].astype(int), items["prompt_index"].astype(int)))
    label_rows = _label_table(labels, item_keys)
    if items.empty:
        warnings.append("no item passes the rule: the dataset is empty (load_from_disk reads it; "
                        "load_dataset('parquet', ...) refuses an empty split)")
    created_at = datetime.now(timezone.utc)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)
    tmp = temp_path(out_dir, "tmp")
    tmp.mkdir()
    try:
        types = features()
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()  # a few thousand rows: bars would only clutter the CLI's output
        for name, frame in (("items", items), ("labels", label_rows)):
            records = frame.astype(object).where(frame.notna(), None).to_dict("list")
            ds = Dataset.from_dict({c: records.get(c, []) for c in types[name]}, features=types[name])
            (tmp / "data" / name).mkdir(parents=True)
            ds.to_parquet(str(tmp / "data" / name / f"{SPLIT}-00000-of-00001.parquet"))
            # One shard, stated: datasets otherwise writes no shard for an empty subset and cannot read it back.
            DatasetDict({SPLIT: ds}).save_to_disk(str(tmp / "disk" / name), num_shards={SPLIT: 1})
        if bars:
            datasets.enable_progress_bars()
        card = dataset_card(bench=bench, rule=rule, level=level, aggregate=aggregate, license_id=license_id,
                            n_items=len(items), n_labels=len(label_rows), n_annotators=int(label_rows["annotator"].nunique()),
                            created_at=created_at)
        (tmp / "README.md").write_text(card, encoding="utf-8", newline="\n")
        (tmp / MARKER).write_text(json.dumps({"tool": "rmgap-annot", "version": __version__,
                                              "created_at": created_at.isoformat()}) + "\n", encoding="utf-8")
        if out_dir.is_dir():
            old = temp_path(out_dir, "old")
            out_dir.rename(old)
            try:
                tmp.rename(out_dir)
            except BaseException:
                old.rename(out_dir)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return HFResult(out_dir=out_dir, n_items=len(items), n_labels=len(label_rows), license=license_id, warnings=warnings)


def push_to_hub(*, folder: str | Path, repo_id: str, private: bool = True) -> str:
    """Upload the card and the Parquet files (not the ``disk/`` copy) to a Hub dataset repo; needs a network and a token.

    The token comes from ``HF_TOKEN`` or ``huggingface-cli login``, never from
    an argument (it would land in the shell history).
    """
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id=repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                             allow_patterns=["README.md", "data/**"], commit_message="rmgap-annot: human-verified subset")
    return str(getattr(info, "commit_url", info))
