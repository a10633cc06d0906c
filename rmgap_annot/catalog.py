"""Read-only views of what the database holds (benchmarks and their counts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.db import session_scope
from rmgap_annot.models import Benchmark, Item, Record
from rmgap_annot.settings import DOMAINS


@dataclass(frozen=True)
class BenchmarkInfo:
    id: int
    name: str
    file_hash: str
    source_path: str
    imported_at: datetime
    counts: dict[str, dict[str, int]]  # domain -> {"records": n, "items": n}
    format: str = "rmgap"  # rmgap_annot.formats.FORMAT_NAMES

    @property
    def n_records(self) -> int:
        return sum(c["records"] for c in self.counts.values())

    @property
    def n_items(self) -> int:
        return sum(c["items"] for c in self.counts.values())


def _domains(bench: Benchmark, item_n: dict[tuple[int, str], int]) -> list[str]:
    """RMGAP's four domains (always listed, zeros included); another format's top-level categories, as found."""
    if bench.format == "rmgap":
        return list(DOMAINS)
    return sorted(d for b, d in item_n if b == bench.id)


def list_benchmarks(*, engine: Engine) -> list[BenchmarkInfo]:
    with session_scope(engine) as session:
        benches = session.execute(select(Benchmark).order_by(Benchmark.id)).scalars().all()
        recs = session.execute(select(Record.benchmark_id, Record.domain, func.count()).group_by(Record.benchmark_id, Record.domain)).all()
        items = session.execute(select(Item.benchmark_id, Item.domain, func.count()).group_by(Item.benchmark_id, Item.domain)).all()
    rec_n = {(b, d): n for b, d, n in recs}
    item_n = {(b, d): n for b, d, n in items}
    return [
        BenchmarkInfo(
            b.id, b.name, b.file_hash, b.source_path, b.imported_at,
            {d: {"records": rec_n.get((b.id, d), 0), "items": item_n.get((b.id, d), 0)} for d in _domains(b, item_n)},
            b.format,
        )
        for b in benches
    ]


def get_benchmark(*, engine: Engine, name: str | None = None) -> BenchmarkInfo | None:
    """A benchmark by name, or the most recent one when no name is given."""
    rows = list_benchmarks(engine=engine)
    if name is None:
        return rows[-1] if rows else None
    return next((b for b in rows if b.name == name), None)
