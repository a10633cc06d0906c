"""Blinding of every format's real items, from import to the annotator's view.

The e2e blinding tests read the websocket frames for items built by hand;
this one starts from the bundled samples as the importer stores them and
checks that what ``annotation.item_for_annotator`` hands a page (the one
function that builds an annotator's view) holds no hidden metadata: the
generator names, rubrics, narratives, subset names and candidate keys of
the original entries, nor the designated winner in any form.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from rmgap_annot.accounts import create_user
from rmgap_annot.annotation import item_for_annotator
from rmgap_annot.db import session_scope
from rmgap_annot.formats.store import import_any
from rmgap_annot.models import Item

SAMPLES = Path(__file__).resolve().parents[1] / "rmgap_annot" / "data" / "samples"
# Fields of the original entries that only researchers may read.
HIDDEN = {"llm_name", "chosen_model", "rejected_model", "rubric_aspects", "narrative", "models", "subset",
          "category_path", "pair_uid", "bon_uid", "id", "additional_metadata", "chosen_index", "winner"}
CASES = [
    ("rmb", SAMPLES / "rmb" / "RMB_dataset"),
    ("prb", SAMPLES / "prb" / "prb_sample.jsonl"),
    ("rewardbench", SAMPLES / "rewardbench" / "rewardbench_sample.jsonl"),
    ("rewardbench2", SAMPLES / "rewardbench2" / "rewardbench2_sample.jsonl"),
    ("pairs", SAMPLES / "pairs" / "standard.jsonl"),
]


def hidden_values(entry: object, out: set[str]) -> set[str]:
    """Every string under a hidden field of an entry (nested ones included), long enough to be telling."""
    if isinstance(entry, dict):
        for key, value in entry.items():
            if key in HIDDEN:
                collect(value, out)
            hidden_values(value, out)
    elif isinstance(entry, list):
        for value in entry:
            hidden_values(value, out)
    return out


def collect(value: object, out: set[str]) -> None:
    if isinstance(value, str) and len(value.strip()) >= 4:
        out.add(value.strip())
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 1000:
        out.add(str(value))
    elif isinstance(value, dict):
        for v in value.values():
            collect(v, out)
    elif isinstance(value, list):
        for v in value:
            collect(v, out)


def entries(path: Path) -> list:
    files = sorted(path.rglob("*.json*")) if path.is_dir() else [path]
    out = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        out.extend(json.loads(text) if f.suffix == ".json" else [json.loads(line) for line in text.splitlines() if line.strip()])
    return out


@pytest.mark.parametrize(("fmt", "path"), CASES, ids=[c[0] for c in CASES])
def test_an_annotators_view_of_an_imported_item_holds_nothing_hidden(engine, fmt, path):
    import_any(engine=engine, path=path, format=fmt)
    secrets = hidden_values(entries(path), set())
    if fmt != "pairs":  # plain pairs carry no metadata: only their keys are hidden
        assert secrets, "the sample must carry hidden metadata for this test to mean anything"
    uid = create_user(engine=engine, name="viewer", role="annotator")
    with session_scope(engine) as s:
        items = s.execute(select(Item.id, Item.winner_key, Item.text)).all()
    assert items
    for item_id, winner, text in items:
        view = item_for_annotator(engine=engine, user_id=uid, item_id=item_id)
        shown = dataclasses.asdict(view)
        for server_only in ("keys", "item_id", "study_id"):
            shown.pop(server_only)  # kept on the server: the page draws letters and texts only
        blob = json.dumps(shown, ensure_ascii=False)
        # A hidden value may legitimately equal visible text (a subset name that is also a word of
        # the prompt); only values that are not part of the texts shown count as leaks.
        texts = [t for _, t in view.responses] + [view.prompt] + [c for _, c in view.conversation or ()] \
            + list(view.profile or ())
        leaked = [v for v in secrets if v in blob and not any(v in t for t in texts)]
        assert not leaked, f"{fmt} item {item_id}: hidden values in the annotator's view: {leaked[:5]}"
        leaves: set[str] = set()
        collect(shown, leaves)
        assert not leaves & set(view.keys), f"{fmt} item {item_id}: a response key is in the view"
        assert winner in view.keys  # ... and the winner is one of them, known to the server only
        assert [letter for letter, _ in view.responses] == list("ABCDEFGH"[: len(view.responses)])
