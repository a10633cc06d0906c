"""The rating questions a study asks besides the pick: defined by the researcher, stored as JSON.

A question has a name (the column in exports and the key in the report), a
prompt text, a scale (values with a label each: 1-5, or yes/no), whether it
is required, and whether it is about the prompt (one answer per label) or
about each response (one answer per candidate). RMGAP asks for the prompt's
naturalness by default (kept in ``Label.naturalness``, as before studies had
questions); Personalized RewardBench's human check is a preset.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
ABOUT = ("prompt", "response")
MAX_QUESTIONS = 8
MAX_LEVELS = 11


@dataclass(frozen=True)
class Question:
    name: str
    text: str
    levels: tuple[tuple[int, str], ...]  # (value, label), in the order shown
    required: bool = True
    about: str = "prompt"  # prompt | response

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(v for v, _ in self.levels)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels"] = [{"value": v, "label": lab} for v, lab in self.levels]
        return d


NATURALNESS = Question(
    name="naturalness",
    text="How natural is the request? Could a real person have written it?",
    levels=(
        (1, "No real user would write this"),
        (2, "Unlikely: reads as machine-written"),
        (3, "Plausible, but stilted or odd"),
        (4, "Natural, with minor oddities"),
        (5, "Indistinguishable from a real request"),
    ),
)
_FIVE = ((1, "Very poor"), (2, "Poor"), (3, "Acceptable"), (4, "Good"), (5, "Excellent"))
PRESETS: dict[str, tuple[Question, ...]] = {
    "rmgap": (NATURALNESS,),
    # Personalized RewardBench's paper had raters judge these four (its protocol is not public).
    "prb-human-check": (
        Question("factuality", "Is the response factually correct?", _FIVE, about="response"),
        Question("relevance", "Is the response relevant to the request?", _FIVE, about="response"),
        Question("usefulness", "How useful is the response to this user?", _FIVE, about="response"),
        Question("personalised_alignment", "Does the response fit this user's profile and expectations?", _FIVE,
                 about="response"),
    ),
    "none": (),
}
DEFAULT_PRESET = {"rmgap": "rmgap"}  # other formats ask nothing but the pick unless a study says so


class QuestionError(ValueError):
    """A question definition is not valid; the message names the question and the field."""


def parse_questions(data: Any) -> tuple[Question, ...]:
    """Questions from their JSON form (a list of objects), validated."""
    if isinstance(data, str):
        if data in PRESETS:
            return PRESETS[data]
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise QuestionError(f"questions: not a preset ({', '.join(PRESETS)}) nor valid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise QuestionError("questions: must be a list of question objects")
    if len(data) > MAX_QUESTIONS:
        raise QuestionError(f"questions: at most {MAX_QUESTIONS}")
    out: list[Question] = []
    for i, q in enumerate(data):
        at = f"questions[{i}]"
        if not isinstance(q, dict):
            raise QuestionError(f"{at}: must be an object")
        name = q.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise QuestionError(f"{at}.name: lower-case letters, digits and _, starting with a letter; got {name!r}")
        text = q.get("text")
        if not isinstance(text, str) or not text.strip():
            raise QuestionError(f"{at}.text: must be a non-empty string")
        levels = q.get("levels")
        if levels == "yes/no":
            levels = [{"value": 1, "label": "Yes"}, {"value": 0, "label": "No"}]
        if not isinstance(levels, list) or not 2 <= len(levels) <= MAX_LEVELS:
            raise QuestionError(f"{at}.levels: a list of 2 to {MAX_LEVELS} {{value, label}} objects, or \"yes/no\"")
        parsed = []
        for j, lev in enumerate(levels):
            if not isinstance(lev, dict) or isinstance(lev.get("value"), bool) or not isinstance(lev.get("value"), int) \
                    or not isinstance(lev.get("label"), str) or not lev["label"].strip():
                raise QuestionError(f"{at}.levels[{j}]: must be {{\"value\": integer, \"label\": text}}")
            parsed.append((lev["value"], lev["label"]))
        if len({v for v, _ in parsed}) != len(parsed):
            raise QuestionError(f"{at}.levels: values must be distinct")
        about = q.get("about", "prompt")
        if about not in ABOUT:
            raise QuestionError(f"{at}.about: one of {', '.join(ABOUT)}; got {about!r}")
        required = q.get("required", True)
        if not isinstance(required, bool):
            raise QuestionError(f"{at}.required: true or false")
        if name == "naturalness" and (about != "prompt" or sorted(v for v, _ in parsed) != [1, 2, 3, 4, 5]):
            raise QuestionError(f"{at}: 'naturalness' is reserved for the prompt's 1-5 naturalness rating")
        out.append(Question(name, text.strip(), tuple(parsed), required, about))
    if len({q.name for q in out}) != len(out):
        raise QuestionError("questions: names must be distinct")
    return tuple(out)


def dumps(questions: Iterable[Question], *, indent: int | None = None) -> str:
    return json.dumps([q.as_dict() for q in questions], ensure_ascii=False, indent=indent)


def preset_name(questions: tuple[Question, ...]) -> str | None:
    """The preset these questions are (so the Study page shows it selected), or None for a study's own set."""
    return next((name for name, preset in PRESETS.items() if tuple(preset) == tuple(questions)), None)


def questions_for(questions_json: str | None, fmt: str) -> tuple[Question, ...]:
    """A study's questions: its own, else its format's default."""
    if questions_json:
        return parse_questions(json.loads(questions_json))
    return PRESETS[DEFAULT_PRESET.get(fmt, "none")]


def check_answers(questions: tuple[Question, ...], *, naturalness: int | None, ratings: dict | None,
                  keys: Iterable[str]) -> tuple[int | None, str | None]:
    """Validate a label's answers against the questions; returns (naturalness, ratings JSON).

    Raises ValueError with a message an annotator can act on.
    """
    keys = set(keys)
    ratings = dict(ratings or {})
    by_name = {q.name: q for q in questions}
    unknown = set(ratings) - set(by_name) - {"naturalness"}
    if unknown:
        raise ValueError(f"unknown rating question(s): {', '.join(sorted(unknown))}")
    if "naturalness" in ratings:
        naturalness = ratings.pop("naturalness") if naturalness is None else naturalness
    out: dict[str, Any] = {}
    for q in questions:
        if q.name == "naturalness":
            if naturalness is None and q.required:
                raise ValueError("Rate how natural the prompt is (1 to 5).")
            continue
        answer = ratings.get(q.name)
        if q.about == "prompt":
            if answer is None:
                if q.required:
                    raise ValueError(f"Answer: {q.text}")
                continue
            if answer not in q.values or isinstance(answer, bool):
                raise ValueError(f"{q.name}: {answer!r} is not on the scale {list(q.values)}")
            out[q.name] = answer
        else:
            answer = answer or {}
            if not isinstance(answer, dict):
                raise ValueError(f"{q.name}: one answer per response")
            missing = keys - set(answer)
            if missing and q.required:
                raise ValueError(f"Answer for every response: {q.text}")
            extra = set(answer) - keys
            if extra:
                raise ValueError(f"{q.name}: unknown response(s)")
            for k, v in answer.items():
                if v not in q.values or isinstance(v, bool):
                    raise ValueError(f"{q.name}: {v!r} is not on the scale {list(q.values)}")
            if answer:
                out[q.name] = dict(sorted(answer.items()))
    return naturalness, (json.dumps(out, sort_keys=True, ensure_ascii=False) if out else None)
