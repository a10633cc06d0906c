"""The limits every imported file is held to, in one place.

Each limit turns an input that would exhaust memory, crash a parser or make
an item impossible to show into a ``FILE:LINE`` error. The numbers leave
room for any real benchmark (RMGAP's longest response is a few thousand
characters; its whole test file is a few MB) while keeping a hostile file
cheap to refuse. README's reliability section lists them; change them here.
"""

from __future__ import annotations

import re

# Decompressed bytes read from one input file (a .gz is refused while it
# inflates, so memory never holds more than this plus one read block).
MAX_INPUT_BYTES = 256 * 1024 * 1024
# Characters in one line of a JSONL file (a record holds 4 responses and 12
# prompts, so this is 16 texts at the per-text limit plus JSON escapes).
MAX_LINE_CHARS = 64 * 1024 * 1024
# Characters in one text field (a prompt, a response, a comment, any string).
MAX_TEXT_CHARS = 1_000_000
# UTF-8 bytes the annotate page sends for one item (its prompt and every
# response). Streamlit refuses a message over server.maxMessageSize (200 MB
# by default): stay far below it so the page can always be drawn.
MAX_ITEM_BYTES = 32 * 1024 * 1024
# Nesting of JSON arrays/objects in one line. Python's parser recurses per
# level and would end in RecursionError near 1,000; real records nest 4 deep.
MAX_JSON_DEPTH = 64
# Characters in one CSV field: the csv module's own default limit, named here.
MAX_CSV_FIELD_CHARS = 131_072

# A JSON string (escapes included), removed before counting brackets.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth_exceeds(raw: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests deeper than ``limit``, decided without parsing it.

    Brackets inside strings do not count. Most lines have fewer brackets than
    the limit in all, which settles them without a scan.
    """
    if raw.count("[") + raw.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub("", raw)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def first_oversized_text(data: object, limit: int = MAX_TEXT_CHARS, path: str = "") -> str | None:
    """The path (``responses[2].text``) of the first string over ``limit`` characters, else None.

    Keys count as strings too. Depth is bounded by MAX_JSON_DEPTH before this runs.
    """
    if isinstance(data, str):
        return (path or "(value)") if len(data) > limit else None
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and len(key) > limit:
                return (path or "(object)") + " (a key)"
            found = first_oversized_text(value, limit, where)
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = first_oversized_text(value, limit, f"{path}[{i}]")
            if found:
                return found
    return None
