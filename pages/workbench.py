"""View helpers of the annotate page: the keyboard component, opaque widget keys, the page's CSS.

The keyboard is a small component of the project's own (``pages/keyboard``:
static HTML and script, no benchmark text ever passes through it). It listens
on the app's document, skips editable targets, and sends the keys pressed as
a queue with sequence numbers; ``pending_keys`` returns the ones this
session has not handled yet.

Widget keys are written into element ids the browser sees, so they are
HMACs under a per-session random salt: never a database id, a response key
or a position.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from rmgap_annot.annotation import opaque_key

_keyboard = components.declare_component("rmgap_keyboard", path=str(Path(__file__).parent / "keyboard"))

# Static CSS of the project's own (never benchmark text): the answer panel stays
# in view while responses are read, headings inside responses are body-sized,
# and wide code or maths scrolls inside its box instead of being cut off.
CSS = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem !important; padding-bottom: 2rem !important; }
.st-key-rmgap-prompt { max-height: 11rem; overflow-y: auto; }
.st-key-rmgap-kbd { position: absolute !important; width: 0 !important; height: 0 !important; overflow: hidden; }
div[data-testid="stColumn"]:has(.st-key-rmgap-answer) { align-self: stretch; }
.st-key-rmgap-answer { position: sticky; top: 3.75rem; z-index: 2; }
.st-key-rmgap-responses h1, .st-key-rmgap-responses h2, .st-key-rmgap-responses h3,
.st-key-rmgap-responses h4, .st-key-rmgap-responses h5, .st-key-rmgap-responses h6 {
  font-size: 1rem !important; line-height: 1.5 !important; padding: 0.25rem 0 !important; margin: 0 !important;
}
.st-key-rmgap-responses pre { overflow-x: auto !important; white-space: pre !important; }
.st-key-rmgap-responses pre code { white-space: pre !important; }
.st-key-rmgap-responses .katex-display { overflow-x: auto; overflow-y: hidden; }
.st-key-rmgap-responses [data-testid="stMarkdownContainer"] { overflow-wrap: anywhere; }
.st-key-rmgap-itemhead p { margin: 0; }
.st-key-rmgap-lastturn { background: rgba(255, 189, 69, 0.16); border-left: 4px solid rgb(255, 189, 69) !important; }
.st-key-rmgap-lastturn [data-testid="stChatMessage"] { background: transparent; padding: 0.25rem; }
.st-key-rmgap-conversation [data-testid="stChatMessage"] { padding: 0.5rem; }
.st-key-rmgap-conversation, .st-key-rmgap-lastturn { max-width: 100%; }
.st-key-rmgap-conversation h1, .st-key-rmgap-conversation h2, .st-key-rmgap-conversation h3,
.st-key-rmgap-lastturn h1, .st-key-rmgap-lastturn h2, .st-key-rmgap-lastturn h3,
.st-key-rmgap-profile h1, .st-key-rmgap-profile h2, .st-key-rmgap-profile h3 {
  font-size: 1rem !important; line-height: 1.5 !important; padding: 0.25rem 0 !important; margin: 0 !important;
}
.st-key-rmgap-conversation pre, .st-key-rmgap-lastturn pre { overflow-x: auto !important; }
.st-key-rmgap-conversation [data-testid="stMarkdownContainer"], .st-key-rmgap-lastturn [data-testid="stMarkdownContainer"],
.st-key-rmgap-profile [data-testid="stMarkdownContainer"] { overflow-wrap: anywhere; }
[class*="st-key-rmgap-q-"] p { margin: 0; }
[class*="st-key-rmgap-q-"] [data-testid="stMarkdownContainer"] { padding-top: 0.3rem; }
</style>
"""


def widget_key(*parts: object) -> str:
    """An opaque widget key: the same parts give the same key within this session only (``annotation.opaque_key``)."""
    salt = st.session_state.setdefault("_widget_salt", secrets.token_bytes(16))
    return opaque_key(secret=salt, parts=parts)


KEYBOARD_KEY = "rmgap-keyboard"  # constant and free of ids: it names the component, not an item


def pending_keys() -> list[dict]:
    """Key presses this session has not handled yet, oldest first.

    Read from the component's last value before anything is drawn, so a key
    that submits is handled in the same run that draws the next item.
    """
    ack = st.session_state.get("_keyboard_ack", 0)
    value = st.session_state.get(KEYBOARD_KEY)
    events = [e for e in (value or {}).get("events", []) if isinstance(e, dict) and e.get("seq", 0) > ack]
    if events:
        st.session_state["_keyboard_ack"] = max(e["seq"] for e in events)
    return events


def keyboard(*, enabled: bool, view: str, narrow: bool) -> None:
    """Draw the (invisible) keyboard component; ``view`` changes per item and then scrolls to the top."""
    with st.container(key="rmgap-kbd"):
        _keyboard(enabled=enabled, view=view, ack=st.session_state.get("_keyboard_ack", 0), narrow=narrow,
                  key=KEYBOARD_KEY, default=None)
