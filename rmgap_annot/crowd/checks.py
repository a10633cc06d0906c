"""Attention-check and qualification files: read, validate, hash.

A check is a researcher-written item with a known answer, mixed into an
annotator's stream to catch careless work (or, as a qualification item,
shown first with feedback). It must look exactly like the study's real items,
so the file is validated against the study's shape: the number of candidate
responses (``n_candidates``: 4 for RMGAP, 2 for a pairwise benchmark) and the
kind of context (a single ``prompt``, a ``conversation``, or a prompt with
the user's ``profile``). A check in another shape would tell itself apart.

One JSON object per line::

    {"id": "c1", "prompt": "...", "responses": [{"key": "a", "text": "..."}, ...],
     "expected": "a", "explanation": "optional, shown after a qualification item"}

``expected`` is a key or a non-empty list of acceptable keys. Like every
import, the whole file is checked and every problem is reported as
``FILE:LINE: field: message`` (``CheckFileError``); nothing is returned
unless the file is valid, so the caller writes all of it or none.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from rmgap_annot.formats.rmgap import MAX_ID_CHARS, InputFileError, LineError, json_lines, read_text
from rmgap_annot.formats.common import (
    MAX_CANDIDATES, MIN_CANDIDATES, Candidate, FormatError, Problems, entry_id_of, json_type,
)
from rmgap_annot.limits import MAX_ITEM_BYTES

Context = Literal["prompt", "conversation", "profile"]
CONTEXTS: tuple[str, ...] = ("prompt", "conversation", "profile")
FIELDS = ("id", "prompt", "conversation", "profile", "responses", "expected", "explanation")


class CheckFileError(InputFileError):
    """The check file is invalid; ``errors`` lists every problem and nothing was read."""


@dataclass(frozen=True)
class CheckSpec:
    """One check item as the researcher wrote it (``line`` is where, for later messages)."""

    id: str
    line: int
    responses: tuple[tuple[str, str], ...]  # (key, text) in file order; the page shuffles them
    expected: tuple[str, ...]  # acceptable keys, in file order
    prompt: Optional[str] = None
    conversation: Optional[tuple[tuple[str, str], ...]] = None  # (role, content), the last turn the user's
    profile: Optional[tuple[str, ...]] = None  # the texts of the user's past posts
    explanation: Optional[str] = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.responses)

    @property
    def content_hash(self) -> str:
        """sha256 of what the check shows and expects, position in the file excluded.

        A re-import compares it per id: the same hash is the same check (keep
        its labels), another hash under an existing id is an edited check.
        """
        canonical = {
            "id": self.id, "prompt": self.prompt,
            "conversation": [list(m) for m in self.conversation] if self.conversation is not None else None,
            "profile": list(self.profile) if self.profile is not None else None,
            "responses": [list(r) for r in self.responses], "expected": sorted(self.expected),
            "explanation": self.explanation,
        }
        text = json.dumps(canonical, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def passed(self, choice_key: Optional[str]) -> bool:
        """Whether a pick passes: one of the expected keys. "Can't decide" (None) fails:
        a check is written to be obvious, so not deciding is not reading."""
        return choice_key is not None and choice_key in self.expected


@dataclass(frozen=True)
class CheckFile:
    """A valid check file: its checks in file order and the sha256 of its bytes (an unchanged file is a no-op)."""

    path: Path
    checks: tuple[CheckSpec, ...]
    content_hash: str


def read_checks(path: str | Path, *, n_candidates: int, context: Context) -> CheckFile:
    """Read and validate a check file against the study's item shape; raise CheckFileError with every problem.

    ``n_candidates`` and ``context`` are the study's (its benchmark format's):
    a check with three responses in a four-response study, or a bare prompt
    where real items show a conversation, would be recognisable as a check.
    """
    if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or not MIN_CANDIDATES <= n_candidates <= MAX_CANDIDATES:
        raise ValueError(f"n_candidates must be a whole number from {MIN_CANDIDATES} to {MAX_CANDIDATES}, got {n_candidates!r}")
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    path = Path(path)
    name = str(path)
    if not path.is_file():
        raise CheckFileError([LineError(name, 0, "(file)", "no such file")])
    text, digest = read_text(path, error=CheckFileError)
    errors: list[LineError] = []
    checks: list[CheckSpec] = []
    first_line: dict[str, int] = {}
    for line_no, _raw, data, problem in json_lines(text):
        if problem:
            errors.append(FormatError(name, line_no, "(line)", problem))
            continue
        problems = Problems(name, line_no, "line")
        spec = _check(data, line_no, problems, n_candidates=n_candidates, context=context)
        if spec is not None and spec.id in first_line:
            problems.add("id", f"duplicate id {spec.id!r} (first on line {first_line[spec.id]})")
        errors.extend(problems.errors)
        if spec is not None and not problems.errors:
            first_line[spec.id] = line_no
            checks.append(spec)
    if not checks and not errors:
        errors.append(FormatError(name, 1, "(file)", "no check items found"))
    if errors:
        raise CheckFileError(errors)
    return CheckFile(path=path, checks=tuple(checks), content_hash=digest)


def _check(data: dict[str, Any], line: int, problems: Problems, *, n_candidates: int, context: str) -> Optional[CheckSpec]:
    """One line's check, or None; every problem goes to ``problems``."""
    unknown = sorted(k for k in data if k not in FIELDS)
    for key in unknown:  # a typo ("explaination") would otherwise drop a field silently
        problems.add(key, f"is not a check field (fields: {', '.join(FIELDS)})")
    check_id = entry_id_of(data.get("id"))
    if check_id is None:
        problems.add("id", "is missing or not a non-empty string")
    elif len(check_id) > MAX_ID_CHARS:
        problems.add("id", f"longer than {MAX_ID_CHARS} characters")
    prompt, conversation, profile = _context(data, problems, context=context)
    responses = _responses(data, problems, n_candidates=n_candidates)
    expected = _expected(data, problems, keys=[k for k, _ in responses] if responses is not None else None)
    explanation = problems.optional_text(data, "explanation")
    if explanation is not None and not explanation.strip():
        problems.add("explanation", "must not be empty or whitespace (leave the field out instead)")
    if problems.errors or check_id is None or responses is None or expected is None:
        return None
    texts = [t for _, t in responses] + [prompt or ""] + [c for _, c in conversation or ()] + list(profile or ())
    size = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    if size > MAX_ITEM_BYTES:
        problems.add("(line)", f"this check (context and responses) is {size:,} bytes, over the {MAX_ITEM_BYTES:,} the annotate page can show")
        return None
    return CheckSpec(
        id=check_id, line=line, responses=tuple(responses), expected=expected, prompt=prompt,
        conversation=conversation, profile=profile, explanation=explanation,
    )


def _context(data: dict[str, Any], problems: Problems, *, context: str):  # noqa: ANN202
    """(prompt, conversation, profile) in the study's shape; a field the study's items lack is refused."""
    prompt = conversation = profile = None
    if context == "conversation":
        if "prompt" in data:
            problems.add("prompt", "this study's items show a conversation: write the context as "
                         '"conversation": [{"role": "user", "content": "..."}]')
        messages = problems.conversation(data.get("conversation"), "conversation")
        if messages is not None:
            conversation = tuple((m["role"], m["content"]) for m in messages)
    else:
        if "conversation" in data:
            problems.add("conversation", f"this study's items show a single prompt{' and a profile' if context == 'profile' else ''}, "
                         "not a conversation: use \"prompt\"")
        prompt = problems.text(data, "prompt")
    if context == "profile":
        profile = _profile(data, problems)
    elif "profile" in data:
        problems.add("profile", "this study's items have no user profile: leave the field out")
    return prompt, conversation, profile


def _profile(data: dict[str, Any], problems: Problems) -> Optional[tuple[str, ...]]:
    """Past posts as texts: a list of strings or of objects with a ``text`` (as Personalized RewardBench writes them)."""
    posts = problems.array(data, "profile")
    if posts is None:
        return None
    if not posts:
        problems.add("profile", "is empty: this study's items show the user's past posts")
        return None
    out = []
    for i, post in enumerate(posts):
        where = f"profile[{i}]"
        if isinstance(post, dict):
            text = problems.text(post, "text", f"{where}.text")
        elif isinstance(post, str):
            text = problems.text_value(post, where)
        else:
            problems.add(where, f"must be a string or an object with a text, found {json_type(post)}")
            text = None
        if text is not None:
            out.append(text)
    return tuple(out) if len(out) == len(posts) else None


def _responses(data: dict[str, Any], problems: Problems, *, n_candidates: int) -> Optional[list[tuple[str, str]]]:
    items = problems.array(data, "responses")
    if items is None:
        return None
    before = len(problems.errors)
    if len(items) != n_candidates:
        problems.add("responses", f"holds {len(items)} response(s); this study's items have {n_candidates}")
    out: list[tuple[str, str]] = []
    for i, resp in enumerate(items):
        where = f"responses[{i}]"
        if not isinstance(resp, dict):
            problems.add(where, f"must be an object with key and text, found {json_type(resp)}")
            continue
        for extra in sorted(k for k in resp if k not in ("key", "text")):
            problems.add(f"{where}.{extra}", "is not a response field (fields: key, text)")
        key = problems.text(resp, "key", f"{where}.key")
        if key is not None and len(key) > MAX_ID_CHARS:
            problems.add(f"{where}.key", f"longer than {MAX_ID_CHARS} characters")
        text = problems.text(resp, "text", f"{where}.text")
        if key is not None and text is not None:
            out.append((key, text))
    for key, n in Counter(k for k, _ in out).items():
        if n > 1:
            problems.add("responses", f"duplicate response key {key!r}")
    if len(problems.errors) > before:
        return None
    # Same text twice: a person could not tell the two apart (the rule real items follow).
    problems.candidates([Candidate(k, t) for k, t in out], "responses")
    return out if len(problems.errors) == before else None


def _expected(data: dict[str, Any], problems: Problems, *, keys: Optional[list[str]]) -> Optional[tuple[str, ...]]:
    value = data.get("expected")
    if value is None:
        problems.add("expected", "is missing")
        return None
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, list):
        problems.add("expected", f"must be a response key or a list of them, found {json_type(value)}")
        return None
    if not value:
        problems.add("expected", "is an empty list: name at least one acceptable key")
        return None
    before = len(problems.errors)
    for i, key in enumerate(value):
        where = "expected" if len(value) == 1 and isinstance(data["expected"], str) else f"expected[{i}]"
        if not isinstance(key, str):
            problems.add(where, f"must be a response key (a string), found {json_type(key)}")
        elif keys is not None and key not in keys:
            problems.add(where, f"{key!r} is not a response key (keys: {', '.join(keys)})")
    for key, n in Counter(k for k in value if isinstance(k, str)).items():
        if n > 1:
            problems.add("expected", f"lists {key!r} twice")
    if len(problems.errors) > before:
        return None
    if keys is not None and set(value) == set(keys):
        problems.add("expected", "accepts every response, so no answer could fail the check")
        return None
    return tuple(value)
