"""The judge against a real local HTTP server speaking OpenAI's chat API."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from rmgap_annot.db import session_scope
from rmgap_annot.models import Score, Scorer
from rmgap_annot.scoring import ScoringOptions
from rmgap_annot.scoring.runner import run_scoring

pytestmark = pytest.mark.timeout(120)  # a hung request must fail the test, not the suite


class Judge(BaseHTTPRequestHandler):
    """Ranks responses by the number in their text ("responseN of ..."): response1 best."""

    requests: list = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Judge.requests.append((self.path, body))
        user = body["messages"][-1]["content"]
        if body.get("logprobs"):
            n = int(re.search(r"### Response\nresponse(\d)", user).group(1))
            top = [{"token": "NO", "logprob": -0.5}] + ([{"token": "YES", "logprob": -float(n)}] if n != 4 else [])
            reply = {"choices": [{"message": {"content": "YES"}, "logprobs": {"content": [{"token": "YES", "logprob": -1.0, "top_logprobs": top}]}}]}
        elif "### Response A" in user:  # pairwise: the lower-numbered response is better
            a, b = (int(n) for n in re.findall(r"### Response [AB]\nresponse(\d)", user))
            reply = {"choices": [{"message": {"content": "[[A]]" if a < b else "[[B]]"}}]}
        elif "### Responses" in user:
            shown = re.findall(r"^([ABCD])\) response(\d)", user, flags=re.M)
            reply = {"choices": [{"message": {"content": ">".join(letter for letter, _ in sorted(shown, key=lambda s: s[1]))}}]}
        else:
            n = int(re.search(r"### Response\nresponse(\d)", user).group(1))
            reply = {"choices": [{"message": {"content": "no idea" if n == 4 else f"Score: {11 - 2 * n}"}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    request_queue_size = 64  # the client sends 8 at once; the default backlog of 5 resets some
    daemon_threads = True


@pytest.fixture(scope="module")
def server():
    httpd = Server(("127.0.0.1", 0), Judge)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def values(engine, name):
    with session_scope(engine) as session:
        sid = session.execute(select(Scorer.id).where(Scorer.name == name)).scalar_one()
        return session.execute(select(Score.item_id, Score.response_key, Score.value).where(Score.scorer_id == sid)).all()


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("listwise", {"response1": 4.0, "response2": 3.0, "response3": 2.0, "response4": 1.0}),
        ("pointwise", {"response1": 9.0, "response2": 7.0, "response3": 5.0, "response4": 5.0}),
        ("verifier", {"response1": -1.0, "response2": -2.0, "response3": -3.0, "response4": -0.5}),
        # Wins over the 12 ordered pairs: response1 beats the other three in both orders.
        ("pairwise", {"response1": 6.0, "response2": 4.0, "response3": 2.0, "response4": 0.0}),
    ],
)
def test_endpoint_judge_modes(engine, benchmark_id, server, mode, expected):
    Judge.requests.clear()
    opts = ScoringOptions(judge_mode=mode, endpoint=server, batch_size=16, seed=3)
    res = run_scoring(engine=engine, benchmark_id=benchmark_id, spec="judge:served-judge", name=f"j-{mode}", options=opts)
    rows = values(engine, f"j-{mode}")
    assert len(rows) == 96 * 4
    assert all(v == expected[k] for _, k, v in rows)
    assert all(path == "/v1/chat/completions" and body["model"] == "served-judge" for path, body in Judge.requests)
    # response4 is unparseable in pointwise (default 5) and has no YES in verifier's top logprobs
    assert res.n_unparseable == {"listwise": 0, "pointwise": 96, "verifier": 96, "pairwise": 0}[mode]
    if mode == "pairwise":  # every ordered pair once: each pair shown both ways
        assert len(Judge.requests) == 96 * 12
    if mode == "listwise":
        assert len(Judge.requests) == 96  # one request per item, permutations vary
        firsts = {re.search(r"^A\) (response\d)", b["messages"][-1]["content"], flags=re.M).group(1) for _, b in Judge.requests}
        assert len(firsts) > 1


def test_endpoint_failure_is_a_clear_error(engine, benchmark_id):
    from rmgap_annot.scoring import ScoringError, build_scorer

    with pytest.raises(ScoringError, match="http"):
        build_scorer("judge:m", ScoringOptions(endpoint="ftp://x"))
    with pytest.raises(ScoringError, match="only applies to judge"):
        build_scorer("length", ScoringOptions(endpoint="http://127.0.0.1:9/v1"))
