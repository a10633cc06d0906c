"""Benchmark text and names made safe to hand to ``st.markdown``.

Benchmark text is untrusted and drawn as Markdown (responses hold lists,
code and tables). Streamlit never renders raw HTML without
``unsafe_allow_html`` (which this tool never passes), so ``<img src=...>``
shows as text; but Markdown's own image syntax ``![alt](https://...)`` makes
every annotator's browser fetch that URL, telling a third party who is
annotating and when. ``without_remote_images`` turns each image into a link
(shown, never fetched). Names and ids (benchmark names, record ids, response
keys) are not Markdown at all: ``escape`` makes them literal text.
"""

from __future__ import annotations

import re

# An unescaped "![" (an even number of backslashes before it, or none).
_IMAGE_START = re.compile(r"(?<!\\)((?:\\\\)*)!\[")
# Fenced code blocks (``` or ~~~, to the closing fence or the end) and inline
# code spans (a backtick run to the next run of the same length): Markdown
# shows their content verbatim, so it is left untouched.
_CODE = re.compile(
    r"(?ms)^[ ]{0,3}(?P<fence>`{3,}|~{3,})[^\n]*\n.*?(?:^[ ]{0,3}(?P=fence)[`~]*[ \t]*$|\Z)"
    r"|(?P<ticks>`+)(?!`).*?(?<!`)(?P=ticks)(?!`)"
)
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=$:&])")


def without_remote_images(text: str) -> str:
    """``text`` with every Markdown image turned into a link to the same address.

    ``![alt](url)`` becomes ``!`` followed by the link ``[alt](url)`` (the
    ``!`` escaped, so it shows as written); reference images ``![alt][ref]``
    likewise. Code blocks and code spans are left exactly as they are.
    """
    out: list[str] = []
    pos = 0
    for code in _CODE.finditer(text):
        out.append(_IMAGE_START.sub(r"\1\\![", text[pos : code.start()]))
        out.append(code.group())
        pos = code.end()
    out.append(_IMAGE_START.sub(r"\1\\![", text[pos:]))
    return "".join(out)


def escape(text: str) -> str:
    """``text`` as literal Markdown: every character Markdown could read as syntax is backslash-escaped.

    For names and ids drawn inside Markdown (a subheader, an expander label),
    where they must show exactly as stored and never start a code span, a
    link, an image or a heading.
    """
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text).replace("\n", " ")
