"""LaTeX text: escaping benchmark-derived strings, numbers with intervals, macro names.

Kept apart from ``paper`` because the rules are small, fixed and tested on
their own: a scorer named ``R&D_model#1 50%`` must not break a paper's
build, and a macro name a paper cites must never change between runs.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

NA = "n/a"

# Every character LaTeX treats specially in text mode, and what prints it.
_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))


def escape(text: Any) -> str:
    """Benchmark text made safe for LaTeX text mode (pdflatex: non-ASCII dropped to '?', so a build never fails)."""
    s = _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], str(text))
    # pdflatex without inputenc extras chokes on arbitrary Unicode; a '?' keeps the table compiling.
    return "".join(ch if ord(ch) < 128 else "?" for ch in s)


def number(value: Optional[float], digits: int = 2) -> str:
    """A plain number, or ``n/a``."""
    return NA if value is None else f"{value:.{digits}f}"


def with_interval(value: Optional[float], ci: Optional[Iterable[Optional[float]]], digits: int = 2) -> str:
    """``0.78 [0.72, 0.84]``; the interval is left out when there is none, ``n/a`` when there is no value."""
    if value is None:
        return NA
    lo, hi = (list(ci) + [None, None])[:2] if ci else (None, None)
    if lo is None or hi is None:
        return number(value, digits)
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def p_value(p: Optional[float]) -> str:
    """p-values: three decimals, ``<0.001`` below that (the ``<`` in math mode, so it prints)."""
    if p is None:
        return NA
    return r"$<$0.001" if p < 0.001 else f"{p:.3f}"


_DIGITS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine")


def macro_part(text: Any) -> str:
    """One part of a macro name, by the fixed scheme documented in the README.

    Runs of ASCII letters become words, each digit is spelled out as its own
    word (``1`` -> ``One``), everything else separates words and is dropped;
    each word keeps its letters with its first one upper-cased (CamelCase:
    ``math-prm`` -> ``MathPrm``, ``Code Generation`` -> ``CodeGeneration``,
    ``gpt-4o`` -> ``GptFourO``). A name with no letter or digit maps to ``X``.
    """
    words = []
    for token in re.findall(r"[A-Za-z]+|[0-9]", str(text)):
        word = _DIGITS[int(token)] if token.isdigit() else token
        words.append(word[0].upper() + word[1:])
    return "".join(words) or "X"


def _suffix(n: int) -> str:
    """Letters-only suffix for the n-th collision (2 -> ``B``, 27 -> ``AB``...)."""
    out = ""
    n -= 1
    while n >= 0:
        out = chr(ord("A") + n % 26) + out
        n = n // 26 - 1
    return out


def macro_names(parts_by_key: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """A unique, letters-only macro name per key: parts joined by ``macro_part``.

    Collisions (``R&D`` and ``RD`` both give ``RD``) are resolved by sorting
    the colliding keys and appending ``B``, ``C``, ... to all but the first, so
    the same keys always get the same names whatever order they come in.
    """
    wanted: dict[str, list[str]] = {}
    for key, parts in parts_by_key.items():
        name = parts[0] + "".join(macro_part(p) for p in parts[1:]) if parts else "X"
        wanted.setdefault(name, []).append(key)
    out: dict[str, str] = {}
    taken = set(wanted)
    for name in sorted(wanted):
        keys = sorted(wanted[name])
        out[keys[0]] = name
        n = 1
        for key in keys[1:]:
            n += 1
            while name + _suffix(n) in taken:
                n += 1
            taken.add(name + _suffix(n))
            out[key] = name + _suffix(n)
    return out
