"""How labels and scores files name an item, for every benchmark format.

RMGAP addresses an item by ``record_id, group, prompt_index``. The other
formats address it by the entry's own id, under the column the benchmark
itself uses (RMB ``pair_uid`` / ``bon_uid``, RewardBench's and the others'
``id``), or under the generic ``entry_id``; ``item_index`` (0 when left
out) picks an item where an entry holds several. The export writes the
benchmark's own column, so a file goes back in unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from rmgap_annot.csv_cells import as_int, blank
from rmgap_annot.db import session_scope
from rmgap_annot.formats.common import TIE_CHOICES
from rmgap_annot.formats.store import ENTRY_ID, ID_COLUMNS, ITEM_INDEX
from rmgap_annot.models import Benchmark, Item, Record, Response

RMGAP_COLUMNS = ("record_id", "group", "prompt_index")


def entry_id_text(value: Any) -> str:
    """An id cell as text: RewardBench's integer ids arrive as numbers from JSONL and Parquet."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclass
class ItemIndex:
    """A benchmark's items as files address them, and each item's candidate keys."""

    format: str
    items: dict[tuple, tuple[int, int]] = field(default_factory=dict)  # address -> (item id, record pk)
    keys: dict[int, set[str]] = field(default_factory=dict)  # record pk -> candidate keys
    records: set[str] = field(default_factory=set)
    groups: set[tuple[str, int]] = field(default_factory=set)  # RMGAP (record, group)
    id_column_of: dict[int, str] = field(default_factory=dict)  # item id -> the benchmark's id column

    @property
    def is_rmgap(self) -> bool:
        return self.format == "rmgap"

    @property
    def id_columns(self) -> tuple[str, ...]:
        return ID_COLUMNS.get(self.format, ())

    def required_columns(self) -> tuple[str, ...]:
        """Address columns every row must hold (one of the id columns, for the other formats: checked per row)."""
        return RMGAP_COLUMNS if self.is_rmgap else ()

    def has_address(self, columns: set[str]) -> bool:
        return set(RMGAP_COLUMNS) <= columns if self.is_rmgap else bool(({ENTRY_ID, *self.id_columns}) & columns)

    def address_hint(self) -> str:
        if self.is_rmgap:
            return ", ".join(RMGAP_COLUMNS)
        return " or ".join([*self.id_columns, ENTRY_ID]) + f" (and {ITEM_INDEX} where an entry holds several items)"

    def choices(self, pk: int) -> set[str]:
        """What a label's choice may be: a candidate key, or a tie on a two-candidate item."""
        keys = self.keys.get(pk, set())
        return keys | set(TIE_CHOICES) if len(keys) == 2 and not self.is_rmgap else keys

    def resolve(self, row: dict[str, Any], err: Callable[[str, str], None]) -> tuple[int, int] | None:
        """(item id, record pk) that ``row`` addresses, or None after reporting why through ``err(field, message)``."""
        return self._resolve_rmgap(row, err) if self.is_rmgap else self._resolve_entry(row, err)

    def _resolve_rmgap(self, row: dict[str, Any], err: Callable[[str, str], None]) -> tuple[int, int] | None:
        rid = row.get("record_id")
        rid = "" if blank(rid) else str(rid).strip()
        if not rid:
            err("record_id", "must not be empty")
        elif rid not in self.records:
            err("record_id", f"no record {rid!r} in this benchmark")
        try:
            group = as_int(row.get("group"))
        except (TypeError, ValueError):
            err("group", f"must be an integer (the group's `group` field), not {row.get('group')!r}")
            group = None
        try:
            prompt_index = as_int(row.get("prompt_index"))
        except (TypeError, ValueError):
            err("prompt_index", f"must be an integer 0..2, not {row.get('prompt_index')!r}")
            prompt_index = None
        if rid in self.records and group is not None and prompt_index is not None:
            if (rid, group) not in self.groups:
                err("group", f"record {rid!r} has no group {group}")
            elif (rid, group, prompt_index) not in self.items:
                err("prompt_index", f"group {group} of record {rid!r} has no prompt {prompt_index} (0-based)")
            else:
                return self.items[(rid, group, prompt_index)]
        return None

    def _resolve_entry(self, row: dict[str, Any], err: Callable[[str, str], None]) -> tuple[int, int] | None:
        given = [(c, entry_id_text(row[c])) for c in (*self.id_columns, ENTRY_ID) if c in row and not blank(row[c])]
        if not given:
            err(self.id_columns[0] if self.id_columns else ENTRY_ID, f"an entry id is needed: {self.address_hint()}")
            return None
        if len({v for _, v in given}) > 1:
            err(given[1][0], f"names entry {given[1][1]!r} but {given[0][0]} names {given[0][1]!r}")
            return None
        column, rid = given[0]
        index = 0
        if not blank(row.get(ITEM_INDEX)):
            try:
                index = as_int(row[ITEM_INDEX])
            except (TypeError, ValueError):
                err(ITEM_INDEX, f"must be an integer (0-based), not {row[ITEM_INDEX]!r}")
                return None
        if rid not in self.records:
            err(column, f"no entry {rid!r} in this benchmark")
            return None
        target = self.items.get((rid, index))
        if target is None:
            err(ITEM_INDEX, f"entry {rid!r} has no item {index} (0-based)")
            return None
        return target


def item_index(*, engine: Engine, benchmark_id: int) -> ItemIndex:
    with session_scope(engine) as session:
        fmt = session.execute(select(Benchmark.format).where(Benchmark.id == benchmark_id)).scalar_one()
        rows = session.execute(
            select(Item.id, Record.record_id, Item.group, Item.prompt_index, Item.record_pk, Item.hidden_json)
            .join(Record, Record.id == Item.record_pk)
            .where(Item.benchmark_id == benchmark_id)
        ).all()
        key_rows = session.execute(
            select(Response.record_pk, Response.key).join(Record, Record.id == Response.record_pk)
            .where(Record.benchmark_id == benchmark_id)
        ).all()
    index = ItemIndex(format=fmt)
    for iid, rid, grp, pi, pk, hidden in rows:
        index.records.add(rid)
        if fmt == "rmgap":
            index.items[(rid, grp, pi)] = (iid, pk)
            index.groups.add((rid, grp))
        else:
            index.items[(rid, pi)] = (iid, pk)
            index.id_column_of[iid] = id_column_for(fmt, hidden)
    for pk, key in key_rows:
        index.keys.setdefault(pk, set()).add(key)
    return index


def id_column_for(fmt: str, hidden_json: str | None) -> str:
    """The column an item's entry id goes under: RMB's pairwise entries say pair_uid, its BoN entries bon_uid."""
    if fmt == "rmb":
        kind = json.loads(hidden_json).get("kind") if hidden_json else None
        return "bon_uid" if kind == "bon" else "pair_uid"
    return ID_COLUMNS.get(fmt, (ENTRY_ID,))[0]
