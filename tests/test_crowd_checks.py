"""Attention-check files: the study's shape, every problem as FILE:LINE: field: message, a hash for re-import."""

from __future__ import annotations

import gzip
import json

import pytest

from rmgap_annot.crowd.checks import CheckFileError, read_checks


def _resp(*texts: str) -> list[dict]:
    return [{"key": k, "text": t} for k, t in zip("abcdefgh", texts)]


def _good(i: int = 1, **over) -> dict:
    row = {"id": f"c{i}", "prompt": f"Say hello ({i})", "responses": _resp("Hello!", "Goodbye.", "42", "No."), "expected": "a"}
    row.update(over)
    return {k: v for k, v in row.items() if v is not None}


def _write(tmp_path, rows, name="checks.jsonl") -> str:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(path)


def _errors(path, **kw) -> list[str]:
    with pytest.raises(CheckFileError) as exc:
        read_checks(path, **{"n_candidates": 4, "context": "prompt", **kw})
    return [str(e) for e in exc.value.errors]


def test_a_valid_file_gives_checks_in_order(tmp_path):
    path = _write(tmp_path, [_good(1), _good(2, expected=["a", "c"], explanation="Only a greets.")])
    out = read_checks(path, n_candidates=4, context="prompt")
    assert [c.id for c in out.checks] == ["c1", "c2"]
    first, second = out.checks
    assert first.responses == (("a", "Hello!"), ("b", "Goodbye."), ("c", "42"), ("d", "No."))
    assert first.expected == ("a",) and first.explanation is None and first.line == 1
    assert second.expected == ("a", "c") and second.explanation == "Only a greets." and second.line == 2
    assert first.prompt == "Say hello (1)" and first.conversation is None and first.profile is None
    assert first.passed("a") and not first.passed("b") and not first.passed(None)
    assert second.passed("c")


def test_every_problem_is_reported_with_file_line_and_field(tmp_path):
    rows = [
        _good(1),
        _good(1),  # duplicate id
        _good(3, responses=[{"key": "a", "text": "x"}, {"key": "a", "text": "y"}, {"key": "c", "text": " "}, {"key": "d", "text": "z"}]),
        _good(4, responses=_resp("x", "y")),  # two responses in a four-response study
        _good(5, expected="z"),
        _good(6, expected=[]),
        _good(7, prompt="   "),
        "not json",
        _good(9, expected=["a", "b", "c", "d"]),
        _good(10, explaination="typo"),
        _good(11, responses=_resp("same", "same ", "p", "q")),
        _good(12, expected=["a", "a"]),
        {"prompt": "no id", "responses": _resp("1", "2", "3", "4"), "expected": "a"},
    ]
    path = _write(tmp_path, rows)
    errors = _errors(path)
    expected = [
        f"{path}:2: id: duplicate id 'c1' (first on line 1)",
        f"{path}:3: responses[2].text: must not be empty or whitespace",
        f"{path}:3: responses: duplicate response key 'a'",
        f"{path}:4: responses: holds 2 response(s); this study's items have 4",
        f"{path}:5: expected: 'z' is not a response key (keys: a, b, c, d)",
        f"{path}:6: expected: is an empty list: name at least one acceptable key",
        f"{path}:7: prompt: must not be empty or whitespace",
        f"{path}:8: (line): invalid JSON: Expecting value at column 1",
        f"{path}:9: expected: accepts every response, so no answer could fail the check",
        f"{path}:10: explaination: is not a check field (fields: id, prompt, conversation, profile, responses, expected, explanation)",
        f"{path}:11: responses: 'b' has the same text as 'a': a person cannot tell them apart",
        f"{path}:12: expected: lists 'a' twice",
        f"{path}:13: id: is missing or not a non-empty string",
    ]
    assert errors == expected


def test_pairwise_study_wants_two_responses(tmp_path):
    path = _write(tmp_path, [_good(1, responses=_resp("yes", "no")), _good(2)])
    assert _errors(path, n_candidates=2) == [f"{path}:2: responses: holds 4 response(s); this study's items have 2"]
    with pytest.raises(CheckFileError):
        read_checks(path, n_candidates=2, context="prompt")
    only_pairs = _write(tmp_path, [_good(1, responses=_resp("yes", "no"))], "pairs.jsonl")
    assert read_checks(only_pairs, n_candidates=2, context="prompt").checks[0].keys == ("a", "b")


def test_conversation_study_wants_a_conversation_ending_with_the_user(tmp_path):
    conv = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Say hi back"}]
    path = _write(tmp_path, [
        _good(1, prompt=None, conversation=conv),
        _good(2),  # a prompt where real items show a conversation
        _good(3, prompt=None, conversation=conv[:2]),  # ends with the assistant
    ])
    errors = _errors(path, context="conversation")
    assert errors[0].startswith(f"{path}:2: prompt: this study's items show a conversation")
    assert f"{path}:2: conversation: is missing" in errors
    assert f"{path}:3: conversation[1].role: the last turn must be the user's, found 'assistant'" in errors
    assert len(errors) == 3
    ok = _write(tmp_path, [_good(1, prompt=None, conversation=conv)], "ok.jsonl")
    spec = read_checks(ok, n_candidates=4, context="conversation").checks[0]
    assert spec.conversation == (("user", "Hi"), ("assistant", "Hello"), ("user", "Say hi back")) and spec.prompt is None
    # ... and a prompt study refuses a conversation
    assert _errors(ok)[0] == (f"{ok}:1: conversation: this study's items show a single prompt, not a conversation: use \"prompt\"")


def test_profile_study_wants_a_prompt_and_a_profile(tmp_path):
    path = _write(tmp_path, [
        _good(1, responses=_resp("x", "y"), profile=["I love hiking.", {"id": 3, "text": "Boots?"}]),
        _good(2, responses=_resp("x", "y")),
        _good(3, responses=_resp("x", "y"), profile=[{"text": ""}]),
    ])
    errors = _errors(path, n_candidates=2, context="profile")
    assert errors == [f"{path}:2: profile: is missing", f"{path}:3: profile[0].text: must not be empty or whitespace"]
    ok = _write(tmp_path, [_good(1, responses=_resp("x", "y"), profile=["I love hiking.", {"text": "Boots?"}])], "ok.jsonl")
    assert read_checks(ok, n_candidates=2, context="profile").checks[0].profile == ("I love hiking.", "Boots?")
    assert _errors(ok, n_candidates=2) == [f"{ok}:1: profile: this study's items have no user profile: leave the field out"]


def test_empty_file_missing_file_and_bad_encoding(tmp_path):
    empty = _write(tmp_path, [""], "empty.jsonl")
    assert _errors(empty) == [f"{empty}:1: (file): no check items found"]
    missing = str(tmp_path / "nope.jsonl")
    assert _errors(missing) == [f"{missing}:0: (file): no such file"]
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(json.dumps(_good(1)).encode() + b"\n\xff\n")
    assert _errors(str(bad)) == [f"{bad}:2: (line): not valid UTF-8 (byte 0xff at offset {len(json.dumps(_good(1))) + 1})"]


def test_limits_apply_like_any_import(tmp_path):
    path = _write(tmp_path, ['{"id": "x", "prompt": "\\u0000"}', "[" * 100 + "]" * 100], "limits.jsonl")
    errors = _errors(path)
    assert errors == [
        f"{path}:1: (line): contains a NUL character (\\u0000), which is not text",
        f"{path}:2: (line): JSON nested deeper than 64 levels",
    ]


def test_gzip_file_reads_the_same_and_hashes_are_stable(tmp_path):
    rows = [_good(1), _good(2)]
    plain = read_checks(_write(tmp_path, rows), n_candidates=4, context="prompt")
    gz = tmp_path / "checks.jsonl.gz"
    gz.write_bytes(gzip.compress(((tmp_path / "checks.jsonl").read_bytes())))
    zipped = read_checks(gz, n_candidates=4, context="prompt")
    assert [c.content_hash for c in zipped.checks] == [c.content_hash for c in plain.checks]
    # Moving a check to another line keeps its hash; editing its text changes it.
    moved = read_checks(_write(tmp_path, [_good(2), _good(1)], "moved.jsonl"), n_candidates=4, context="prompt")
    assert {c.id: c.content_hash for c in moved.checks} == {c.id: c.content_hash for c in plain.checks}
    assert moved.content_hash != plain.content_hash  # the file itself changed
    edited = read_checks(_write(tmp_path, [_good(1, expected="b")], "edited.jsonl"), n_candidates=4, context="prompt")
    assert edited.checks[0].content_hash != plain.checks[0].content_hash
    again = read_checks(tmp_path / "checks.jsonl", n_candidates=4, context="prompt")
    assert again.content_hash == plain.content_hash


def test_study_shape_arguments_are_checked():
    with pytest.raises(ValueError, match="n_candidates"):
        read_checks("x.jsonl", n_candidates=1, context="prompt")
    with pytest.raises(ValueError, match="context"):
        read_checks("x.jsonl", n_candidates=4, context="table")
