"""Benchmark text never makes a browser fetch a remote image; ids and names show as plain text.

The pure functions are tested on their own; the pages are checked through
AppTest (what Streamlit would send to the browser) and, for the annotate
page, rendered Markdown is checked in Chromium in tests/e2e/test_blinding.py.
"""

from __future__ import annotations

import ast

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from rmgap_annot.accounts import create_user
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.labels_io import import_labels
from rmgap_annot.safe_markdown import escape, without_remote_images
from rmgap_annot.synthetic import write_jsonl

ROOT = Path(__file__).resolve().parents[1]
MD = MarkdownIt("commonmark").enable("table")


def _html(text: str) -> str:
    return MD.render(text)


@pytest.mark.parametrize(
    "text",
    [
        "![tracker](http://evil.example/pixel.png)",
        "look ![a](https://evil.example/x.png \"title\") here",
        "[![badge](https://evil.example/b.svg)](https://example.org)",
        "![ref image][r]\n\n[r]: https://evil.example/r.png",
        "![shortcut]\n\n[shortcut]: https://evil.example/s.png",
        "\\\\![after an escaped backslash](https://evil.example/e.png)",
        "- item ![in a list](https://evil.example/l.png)\n> quote ![q](https://evil.example/q.png)",
        "| a |\n|---|\n| ![cell](https://evil.example/c.png) |",
    ],
)
def test_no_image_is_left_and_the_address_stays_a_link(text):
    before, after = _html(text), _html(without_remote_images(text))
    assert "<img" in before  # the case really is an image
    assert "<img" not in after
    assert "evil.example" in after  # still shown, as a link the reader may follow


@pytest.mark.parametrize(
    "text",
    [
        "plain text, no image",
        "Wow![1] is not an image",
        "an escaped \\![not an image](x)",
        "inline `![x](http://e/x.png)` code",
        "```\n![x](http://e/x.png)\n```",
        "~~~python\nprint('![x](y)')\n~~~",
    ],
)
def test_text_without_images_renders_exactly_as_before(text):
    assert _html(without_remote_images(text)) == _html(text)


def test_code_is_left_byte_for_byte():
    text = "```\n![x](http://e/x.png)\n```\nthen ![y](http://e/y.png)"
    out = without_remote_images(text)
    assert out.startswith("```\n![x](http://e/x.png)\n```\n") and "<img" not in _html(out)


@pytest.mark.parametrize(
    "name",
    ["rec`](http://evil.example)`", "# heading", "**bold** _it_", "[link](http://evil.example)",
     "![img](http://evil.example/x.png)", "a\\b", ":red[colour] :smile:", "<b>x</b>", "$x^2$"],
)
def test_escape_shows_a_name_exactly_as_stored(name):
    html = _html(escape(name))
    assert "<img" not in html and "<a " not in html and "<code>" not in html and "<h1>" not in html
    assert "<strong>" not in html and "<em>" not in html
    text = re.sub(r"<[^>]+>", "", html).strip()
    import html as html_mod

    assert html_mod.unescape(text) == name


def _raw_html_calls(path: Path) -> list[tuple[str, ast.Call]]:
    """Calls that hand Streamlit raw HTML or script: st.html(...) or any unsafe_allow_* = True."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        unsafe = any(k.arg and k.arg.startswith("unsafe_allow") and isinstance(k.value, ast.Constant) and k.value.value is True
                     for k in node.keywords)
        is_html = isinstance(node.func, ast.Attribute) and node.func.attr == "html"
        if unsafe or is_html:
            found.append((ast.unparse(node.args[0]) if node.args else "", node))
    return found


# The only raw HTML the app sends: the annotate page's own static CSS (a module
# constant, no benchmark text) and app.py's two redirect scripts to its own routes.
ALLOWED_RAW_HTML = {
    ("annotate.py", "CSS"),
    ("app.py", "f'<script>window.location.replace({url!r});</script>'"),
}


def test_no_page_passes_benchmark_text_as_raw_html():
    sources = [ROOT / "app.py", *(ROOT / "pages").glob("*.py")]
    offenders = []
    for path in sources:
        for arg, _call in _raw_html_calls(path):
            if (path.name, arg) in ALLOWED_RAW_HTML:
                continue
            if path.name == "app.py" and arg.startswith("f\"<script>fetch('/auth/session'"):
                continue  # the login ticket hand-over: a random ticket, never benchmark text
            offenders.append(f"{path.name}: {arg[:80]}")
    assert offenders == []


# --- pages (AppTest: what the server sends) -----------------------------------------

HOSTILE_ID = "rec`](http://evil.example/id)`"
HOSTILE_KEY = "key**x**`](http://evil.example/key)`"
HOSTILE_NAME = "**bold** [x](http://evil.example/name)"


@pytest.fixture
def hostile_db(monkeypatch, db_url, engine, record_factory, tmp_path):
    rec = record_factory(HOSTILE_ID)
    old_key = rec["responses"][0]["key"]
    rec["responses"][0]["key"] = HOSTILE_KEY
    for group in rec["prompt_groups"]:
        group["winner"] = HOSTILE_KEY if group["winner"] == old_key else group["winner"]
    if isinstance(rec.get("models"), dict) and old_key in rec["models"]:
        rec["models"][HOSTILE_KEY] = rec["models"].pop(old_key)
    for i, response in enumerate(rec["responses"]):  # synthetic texts quote the record id: not here
        response["text"] = f"Answer {i} ![pixel](http://evil.example/pixel.png)"
    path = write_jsonl(tmp_path / "hostile.jsonl", [rec])
    bench = import_benchmark(engine=engine, path=path, name=HOSTILE_NAME).benchmark_id
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        '{"record_id": "%s", "group": 0, "prompt_index": 0, "annotator": "a", "choice": null, "naturalness": 3}\n'
        % HOSTILE_ID.replace("\\", "\\\\"), encoding="utf-8")
    import_labels(engine=engine, path=labels, benchmark_id=bench)
    monkeypatch.setenv("RMGAP_ANNOT_DB", db_url)
    monkeypatch.chdir(ROOT)
    return engine


def _page(path: str, user_id: int) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    at.session_state["user_id"] = user_id
    at.session_state["role"] = "researcher"
    return at


def _markdown_sent(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "subheader", "caption", "title", "success", "info", "error", "warning"):
        out += [e.value for e in getattr(at, kind)]
    out += [e.label for e in at.expander]
    return out


def test_home_shows_the_benchmark_name_as_text(hostile_db):
    at = _page("pages/home.py", create_user(engine=hostile_db, name="res", role="researcher")).run()
    assert not at.exception
    subheaders = [s.value for s in at.subheader]
    assert any(s.startswith(escape(HOSTILE_NAME)) for s in subheaders), subheaders
    for md in _markdown_sent(at):
        assert "<a " not in _html(md) and "<strong>" not in _html(md), md


def test_results_page_shows_ids_as_text_and_responses_without_images(hostile_db):
    at = _page("pages/results.py", create_user(engine=hostile_db, name="res", role="researcher")).run()
    assert not at.exception
    for md in _markdown_sent(at):
        html = _html(md)
        assert "<img" not in html and 'href="http://evil.example/id' not in html and 'href="http://evil.example/key' not in html, md
        assert "<code>" not in html and "<strong>x" not in html, md
    # the item detail: id and winner key are dataframe cells, never Markdown
    detail = [df.value for df in at.dataframe if list(df.value.columns) == ["domain", "record_id", "group", "prompt_index", "role", "winner_key"]]
    assert len(detail) == 1 and detail[0]["record_id"][0] == HOSTILE_ID
    assert any(e.label.startswith(escape(HOSTILE_KEY)) for e in at.expander)


def test_results_downloads_are_built_only_on_click(hostile_db):
    at = _page("pages/results.py", create_user(engine=hostile_db, name="res", role="researcher")).run()
    buttons = at.get("download_button")
    assert len(buttons) == 2
    for b in buttons:
        assert b.proto.url == "" and b.proto.deferred_file_id, b.proto


def test_export_page_downloads_are_built_only_on_click(hostile_db):
    at = _page("pages/export.py", create_user(engine=hostile_db, name="res", role="researcher")).run()
    next(b for b in at.button if b.label == "Write export").click().run()
    assert not at.exception
    buttons = at.get("download_button")
    assert len(buttons) >= 4  # test.jsonl, labels.csv, labels.parquet, README.md, report.html
    for b in buttons:
        assert b.proto.url == "" and b.proto.deferred_file_id, b.proto
