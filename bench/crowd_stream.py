"""Server-side cost of a crowd participant's loop: arriving through the link, the next entry, a submit.

Builds 400 synthetic RMGAP records (4,800 items), a study with a quota of
40 and attention checks at rate 0.05 (50 checks imported), then times
``crowd.arrival.arrive`` for 50 new participants, and for 10 of them the
whole stream: ``crowd.stream.next_entry`` (which decides between a due
check and a real item, and claims it), the submit (a Label or a
CheckLabel), and ``crowd_state`` (what the gate reads on every rerun).

    python bench/crowd_stream.py [--participants 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rmgap_annot import annotation as ann  # noqa: E402
from rmgap_annot.assignment import get_study, update_study  # noqa: E402
from rmgap_annot.formats.rmgap import import_benchmark  # noqa: E402
from rmgap_annot.crowd import stream  # noqa: E402
from rmgap_annot.crowd.arrival import ArrivalLimiter, arrive  # noqa: E402
from rmgap_annot.crowd.checks_store import import_checks  # noqa: E402
from rmgap_annot.crowd.links import new_study_token  # noqa: E402
from rmgap_annot.db import get_engine, init_db  # noqa: E402
from rmgap_annot.synthetic import make_records, write_jsonl  # noqa: E402


def ms(values: list[float]) -> str:
    s = sorted(values)
    return f"median {1000 * statistics.median(s):.2f} ms, p95 {1000 * s[int(0.95 * (len(s) - 1))]:.2f} ms (n={len(s)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'bench.sqlite'}"
    init_db(url)
    engine = get_engine(url)
    records = make_records({"Chat": 100, "Writing": 100, "Reasoning": 100, "Safety": 100}, seed=1, long_text=False)
    bid = import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="bench").benchmark_id
    sid = get_study(engine=engine, benchmark_id=bid).id
    token = new_study_token()
    update_study(engine=engine, study_id=sid, public_link=True, link_token=token, quota_per_annotator=40,
                 check_rate=0.05, completion_code="DONE", screenout_code="OUT")
    rows = [{"id": f"c{i}", "prompt": f"Say yes ({i}).", "responses": [{"key": k, "text": f"{k} ({i})"} for k in "abcd"],
             "expected": "a"} for i in range(50)]
    (folder / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    import_checks(engine=engine, study_id=sid, path=folder / "c.jsonl")
    limiter = ArrivalLimiter(per_token=10**9, per_ip=10**9)  # the limit is not what is measured

    arrivals = []
    for i in range(50):
        t0 = time.perf_counter()
        arrive(engine=engine, params={"study": token, "PROLIFIC_PID": f"p{i}"}, limiter=limiter)
        arrivals.append(time.perf_counter() - t0)
    nexts, submits, states, checks = [], [], [], 0
    for i in range(args.participants):
        uid = arrive(engine=engine, params={"study": token, "PROLIFIC_PID": f"p{i}"}, limiter=limiter).user_id
        stream.give_consent(engine=engine, user_id=uid, study_id=sid)
        while True:
            t0 = time.perf_counter()
            entry = stream.next_entry(engine=engine, user_id=uid, study_id=sid)
            nexts.append(time.perf_counter() - t0)
            if entry is None:
                break
            checks += stream.is_check_entry(entry)
            view = ann.item_for_annotator(engine=engine, user_id=uid, item_id=entry)
            t0 = time.perf_counter()
            ann.submit_label(engine=engine, user_id=uid, item_id=entry, choice_key=view.keys[0], naturalness=3, study_id=sid)
            submits.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            stream.crowd_state(engine=engine, user_id=uid, study_id=sid)
            states.append(time.perf_counter() - t0)
    print(f"{len(records) * 12:,} items; {args.participants} participants x quota 40, {checks} checks met")
    print(f"arrive (new participant)  {ms(arrivals)}")
    print(f"next_entry                {ms(nexts)}")
    print(f"submit (label or check)   {ms(submits)}")
    print(f"crowd_state (gate)        {ms(states)}")


if __name__ == "__main__":
    main()
