"""Does a login storm slow labelling down? Submit+claim latency with and without one.

Ten labelling processes (each its own connection, as separate app servers
would be) claim an item and submit a label in a loop with a short pause,
first alone, then while twenty clients hammer the login check
(``accounts.authenticate``) with made-up names as fast as it answers. The
clients are threads of one process, as twenty sessions of one Streamlit
server are. Before the fix the ~190 ms argon2 check ran inside the SQLite
write turn, so every submit queued behind it (issue 10: p50 9 ms -> 4.7 s);
the goal is the storm costing labelling at most 2x.

    python bench/login_storm.py                     # SQLite, 10 labellers, 20 clients, 20 s each phase
    python bench/login_storm.py --seconds 10 --json
    python bench/login_storm.py --db-url postgresql+psycopg://user@host/db

Uses only functions that also existed before the fix, so the same script
measures an older checkout (``PYTHONPATH=/old/checkout python bench/login_storm.py``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rmgap_annot.accounts import authenticate, create_user  # noqa: E402
from rmgap_annot.annotation import item_for_annotator, submit_label  # noqa: E402
from rmgap_annot.assignment import next_item, update_study  # noqa: E402
from rmgap_annot.formats.rmgap import import_benchmark  # noqa: E402
from rmgap_annot.db import dispose_engines, get_engine, init_db  # noqa: E402
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402


def labeller(db_url: str, user_id: int, bench_id: int, seconds: float, think_s: float, start, results) -> None:  # noqa: ANN001
    """One annotator: claim the next item, submit an answer, pause, repeat until time is up."""
    dispose_engines()
    engine = get_engine(db_url)
    rng = random.Random(user_id)
    latencies: list[float] = []
    errors = 0
    start.wait()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            item_id = next_item(engine=engine, user_id=user_id, benchmark_id=bench_id)
            if item_id is None:
                break
            keys = list(item_for_annotator(engine=engine, user_id=user_id, item_id=item_id).keys)
            submit_label(engine=engine, user_id=user_id, item_id=item_id, choice_key=rng.choice(keys),
                         naturalness=rng.randint(1, 5), displayed_order=keys)
        except Exception:  # noqa: BLE001 - counted, never hidden
            errors += 1
            continue
        latencies.append(time.perf_counter() - t0)
        time.sleep(think_s)
    results.put({"latencies": latencies, "errors": errors})


def storm(db_url: str, n_clients: int, start, stop, results) -> None:  # noqa: ANN001
    """n_clients threads, each trying made-up names back to back."""
    dispose_engines()
    engine = get_engine(db_url)
    counts = [0] * n_clients

    def client(i: int) -> None:
        while not stop.is_set():
            authenticate(engine=engine, name=f"nobody-{secrets.token_hex(4)}", password=secrets.token_hex(8))
            counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put({"attempts": sum(counts), "seconds": time.perf_counter() - t0})


def _pct(values: list[float], q: int) -> float:
    if len(values) < 2:  # noqa: PLR2004
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def phase(*, db_url: str, users: list[int], bench_id: int, seconds: float, think_s: float, n_clients: int) -> dict:
    ctx = mp.get_context("fork")
    start, stop, results, storm_results = ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=labeller, args=(db_url, u, bench_id, seconds, think_s, start, results)) for u in users]
    stormer = ctx.Process(target=storm, args=(db_url, n_clients, start, stop, storm_results)) if n_clients else None
    for p in procs + ([stormer] if stormer else []):
        p.start()
    time.sleep(0.5)
    start.set()
    outs = [results.get(timeout=seconds + 600) for _ in procs]
    stop.set()
    storm_out = storm_results.get(timeout=120) if stormer else {"attempts": 0, "seconds": seconds}
    for p in procs + ([stormer] if stormer else []):
        p.join(timeout=60)
    lat = [x for o in outs for x in o["latencies"]]
    return {
        "login_clients": n_clients,
        "labels": len(lat),
        "p50_ms": round(_pct(lat, 50) * 1000, 1),
        "p95_ms": round(_pct(lat, 95) * 1000, 1),
        "errors": sum(o["errors"] for o in outs),
        "login_attempts_per_s": round(storm_out["attempts"] / storm_out["seconds"], 1) if storm_out["seconds"] else 0.0,
    }


def run(*, db_url: str | None, n_labellers: int, n_clients: int, seconds: float, think_ms: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="rmgap-storm-"))
    db_url = db_url or f"sqlite:///{workdir / 'storm.sqlite'}"
    init_db(db_url)
    engine = get_engine(db_url)
    # One item per record per annotator: enough records that nobody runs out.
    per_domain = max(10, int(seconds / max(think_ms / 1000, 0.01)) // 4 + 5)
    records = make_records({d: per_domain for d in ("Chat", "Writing", "Reasoning", "Safety")}, seed=5, long_text=False)
    bench_id = import_benchmark(engine=engine, path=write_jsonl(workdir / "storm.jsonl", records), name="storm").benchmark_id
    update_study(engine=engine, benchmark_id=bench_id, labels_per_item=2 * n_labellers)
    calm = [create_user(engine=engine, name=f"calm-{i:02d}", role="annotator") for i in range(n_labellers)]
    stormy = [create_user(engine=engine, name=f"storm-{i:02d}", role="annotator") for i in range(n_labellers)]
    dispose_engines()
    think_s = think_ms / 1000
    without = phase(db_url=db_url, users=calm, bench_id=bench_id, seconds=seconds, think_s=think_s, n_clients=0)
    with_storm = phase(db_url=db_url, users=stormy, bench_id=bench_id, seconds=seconds, think_s=think_s, n_clients=n_clients)
    return {
        "backend": db_url.split(":", 1)[0],
        "labellers": n_labellers,
        "think_ms": think_ms,
        "seconds_per_phase": seconds,
        "without_storm": without,
        "with_storm": with_storm,
        "p50_ratio": round(with_storm["p50_ms"] / without["p50_ms"], 2) if without["p50_ms"] else None,
        "p95_ratio": round(with_storm["p95_ms"] / without["p95_ms"], 2) if without["p95_ms"] else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db-url", default=None, help="default: a fresh SQLite file in a temporary folder")
    ap.add_argument("--labellers", type=int, default=10)
    ap.add_argument("--clients", type=int, default=20, help="login clients trying made-up names")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    ap.add_argument("--think-ms", type=float, default=100.0, help="pause between a labeller's items")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = run(db_url=args.db_url, n_labellers=args.labellers, n_clients=args.clients, seconds=args.seconds, think_ms=args.think_ms)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{out['backend']}: {out['labellers']} labellers ({out['think_ms']:.0f} ms pause), {out['seconds_per_phase']:.0f} s per phase")
    for key, title in (("without_storm", "no login storm"), ("with_storm", f"{args.clients} login clients")):
        r = out[key]
        print(f"  {title:<18} submit+claim p50 {r['p50_ms']:>8.1f} ms  p95 {r['p95_ms']:>8.1f} ms  "
              f"({r['labels']} labels, {r['errors']} errors, {r['login_attempts_per_s']} login attempts/s)")
    print(f"  ratio with/without: p50 {out['p50_ratio']}x, p95 {out['p95_ratio']}x (goal: within 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
