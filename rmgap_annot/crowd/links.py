"""The public study link, what arrives through it, and the codes that send a participant back.

A recruitment platform opens the study link with the participant's id in
the query; the platform fills it in from a placeholder the link carries
(Prolific) or the researcher's HIT page appends it (MTurk). The ``study``
token is random and public by nature (it is pasted into a recruitment page);
rotating it (a fresh ``new_study_token``) makes the old link stop working.

Query parameters per platform (names are the platforms', so they are contracts):

- ``prolific``: ``PROLIFIC_PID``, ``STUDY_ID``, ``SESSION_ID``; Prolific
  substitutes the ``{{%...%}}`` placeholders itself.
- ``mturk``: ``workerId`` (with ``hitId`` and ``assignmentId`` as the study and
  session ids). A survey-link HIT: MTurk opens the HIT's HTML with
  ``workerId``/``assignmentId``/``hitId`` in its own address once a worker
  accepts it, so the HIT layout (``mturk_hit_html``) copies them onto the
  study link; the participant pastes the completion code back into the HIT.
  MTurk's ExternalQuestion post-back is out of scope.
- ``generic``: ``pid``. The link carries ``pid=PARTICIPANT_ID``: replace that
  word by the platform's own placeholder (SONA, a lab's survey tool, ...).
  Arriving with the word itself is refused, or every participant would be
  one annotator.
"""

from __future__ import annotations

import html
import re
import secrets
import string
from dataclasses import dataclass
from typing import Literal, Mapping, Optional
from urllib.parse import quote, urlencode, urlsplit

from rmgap_annot.accounts import name_skeleton

Platform = Literal["prolific", "mturk", "generic"]
PLATFORMS: tuple[str, ...] = ("prolific", "mturk", "generic")
STUDY_PARAM = "study"
# The query parameter carrying each platform's participant, study and session ids.
ID_PARAMS: dict[str, tuple[str, Optional[str], Optional[str]]] = {
    "prolific": ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    "mturk": ("workerId", "hitId", "assignmentId"),
    "generic": ("pid", None, None),
}
GENERIC_PLACEHOLDER = "PARTICIPANT_ID"
# What MTurk puts in assignmentId while a worker only previews the HIT.
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete"

# Prolific ids are 24 hex characters and MTurk's 12-14 upper-case letters and
# digits; other platforms vary, so any id from this charset is accepted. It
# keeps ids printable, free of look-alike Unicode and of anything a URL, a
# CSV or a user name would need to escape.
PARTICIPANT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# secrets.token_urlsafe(16) gives 22 characters; 16 to 64 leaves room for
# tokens made elsewhere while refusing a guessable short one.
STUDY_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
TOKEN_BYTES = 16


class LinkError(ValueError):
    """A study link, or what arrived through one, is unusable; the message says why, for the participant or researcher."""


@dataclass(frozen=True)
class Arrival:
    """Who opened the study link: the study token and the platform's ids (study and session ids when the platform sends them)."""

    token: str
    platform: str
    participant_id: str
    platform_study_id: Optional[str] = None
    platform_session_id: Optional[str] = None

    @property
    def user_name(self) -> str:
        return participant_user_name(platform=self.platform, participant_id=self.participant_id)


def new_study_token() -> str:
    """A fresh public study token (128 random bits): unguessable, so only those given the link arrive."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_code(length: int = 8) -> str:
    """A completion or screen-out code in Prolific's style (upper-case letters and digits), when the researcher has none."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _platform(platform: str) -> str:
    if platform not in PLATFORMS:
        raise LinkError(f"platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")
    return platform


def _study_token(token: str) -> str:
    if not isinstance(token, str) or not STUDY_TOKEN.fullmatch(token):
        raise LinkError("the study token must be 16 to 64 letters, digits, '-' or '_'")
    return token


def study_link(*, base_url: str, token: str, platform: str) -> str:
    """The link a researcher pastes into the platform, with that platform's placeholders.

    ``base_url`` is the app's root address (``accounts.app_root``); any query
    or fragment on it is dropped. The placeholders are written unescaped:
    Prolific only substitutes ``{{%PROLIFIC_PID%}}`` as typed.
    """
    _platform(platform)
    _study_token(token)
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError(f"the app's address must start with http:// or https://, got {base_url!r}")
    root = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
    if not root.endswith("/"):
        root += "/"
    link = f"{root}?{STUDY_PARAM}={token}"
    if platform == "prolific":
        link += "&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    elif platform == "generic":
        link += f"&pid={GENERIC_PLACEHOLDER}"
    return link  # mturk: the HIT layout appends workerId, hitId and assignmentId


def mturk_hit_html(*, link: str, code_field: str = "completion_code") -> str:
    """The HTML of a survey-link HIT's layout: the study link with the worker's ids, and a box for the code.

    MTurk opens the layout with ``workerId``, ``hitId`` and ``assignmentId``
    in its address once the worker accepts the HIT (a preview has
    ``assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE`` and no workerId); the script
    copies them onto the link, so the worker never types an id. The code box
    is named ``code_field``: its value comes back in the batch results, where
    the researcher matches it with the study's completion code.
    """
    if not link.startswith(("http://", "https://")):
        raise LinkError(f"not a study link: {link!r}")
    safe_link = html.escape(link, quote=True)
    field = html.escape(code_field, quote=True)
    return f"""<crowd-form>
<p id="preview">Accept the HIT to get the study link.</p>
<p id="go" hidden><a id="study" target="_blank" rel="noopener" href="{safe_link}">Open the study</a> in a new tab.
When you finish, paste the completion code here:</p>
<crowd-input name="{field}" label="Completion code" required></crowd-input>
</crowd-form>
<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<script>
(function () {{
  var q = new URLSearchParams(window.location.search);
  var worker = q.get("workerId"), assignment = q.get("assignmentId");
  if (!worker || !assignment || assignment === "{MTURK_PREVIEW}") return;
  var a = document.getElementById("study");
  var u = new URL(a.href);
  u.searchParams.set("workerId", worker);
  u.searchParams.set("assignmentId", assignment);
  u.searchParams.set("hitId", q.get("hitId") || "");
  a.href = u.toString();
  document.getElementById("preview").hidden = true;
  document.getElementById("go").hidden = false;
}})();
</script>
"""


def validate_participant_id(value: object, *, platform: str = "generic") -> str:
    """The participant id as given, or LinkError saying what is wrong (length, characters).

    The id becomes part of a user name and lands in the payment CSV, so it is
    held to a plain charset rather than escaped everywhere it goes. It is
    kept exactly (case included): platforms compare ids exactly.
    """
    name = {"prolific": "Prolific participant id", "mturk": "MTurk worker id"}.get(platform, "participant id")
    if not isinstance(value, str) or not value:
        raise LinkError(f"the link has no {name}: open the study from the platform's page")
    if len(value) > 64:
        raise LinkError(f"the {name} is {len(value)} characters long; at most 64 are accepted")
    if not PARTICIPANT_ID.fullmatch(value):
        if "{" in value or "%" in value or "$" in value:
            raise LinkError(f"the {name} is a placeholder the platform did not fill in ({value!r}): open the study from the platform's page")
        raise LinkError(f"the {name} may hold only letters, digits, '-' and '_'")
    if value == GENERIC_PLACEHOLDER:
        raise LinkError(f"the link still says {GENERIC_PLACEHOLDER}: replace it with your platform's placeholder for the participant's id")
    return value


def _optional_id(value: Optional[str], what: str) -> Optional[str]:
    if value is None or value == "" or value == MTURK_PREVIEW:
        return None
    if not PARTICIPANT_ID.fullmatch(value):
        raise LinkError(f"the {what} in the link may hold only letters, digits, '-' and '_' (at most 64)")
    return value


def parse_arrival(params: Mapping[str, object], *, platform: Optional[str] = None) -> Optional[Arrival]:
    """Who arrives through a study link, from the page's query parameters; None when the address is not a study link.

    The platform is told by which id parameter is present; two of them at
    once are refused (the platform cannot be known). A parameter given
    several times (a list) is refused too: one value must decide. With
    ``platform`` (the one the study's link was made for), an arrival naming
    another platform's id is refused: a Prolific participant who edits the
    link into ``pid=...`` would otherwise become a second, unpaid-for
    annotator the platform knows nothing of.
    """
    if platform is not None:
        _platform(platform)
    if STUDY_PARAM not in params:
        return None
    values: dict[str, Optional[str]] = {}
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise LinkError(f"the link gives {key!r} {len(value)} times")
            value = value[0]
        values[key] = value if isinstance(value, str) else None
    token = values.get(STUDY_PARAM)
    if not token or not STUDY_TOKEN.fullmatch(token):
        raise LinkError("this study link is not valid: check the address, or ask the researcher for the link")
    present = [p for p in PLATFORMS if values.get(ID_PARAMS[p][0]) not in (None, "")]
    if len(present) > 1:
        raise LinkError(f"the link names participants of several platforms ({', '.join(present)}); it must name one")
    if not present:
        if values.get("assignmentId") == MTURK_PREVIEW:
            raise LinkError("accept the HIT first: the study link works once the HIT is yours")
        raise LinkError("the link has no participant id: open the study from the platform's page")
    if platform is not None and present[0] != platform:
        raise LinkError(f"this study takes participants through its {platform} link: open the study from the platform's page")
    platform = present[0]
    pid_param, study_param, session_param = ID_PARAMS[platform]
    participant = validate_participant_id(values[pid_param], platform=platform)
    return Arrival(
        token=token, platform=platform, participant_id=participant,
        platform_study_id=_optional_id(values.get(study_param), "study id") if study_param else None,
        platform_session_id=_optional_id(values.get(session_param), "session id") if session_param else None,
    )


def completion_url(*, platform: str, code: str) -> Optional[str]:
    """Where a participant goes back to with a code: Prolific's completion address; None elsewhere (the code is shown to paste)."""
    _platform(platform)
    validate_code(code)
    if platform == "prolific":
        return f"{PROLIFIC_COMPLETE}?{urlencode({'cc': code}, quote_via=quote)}"
    return None


def validate_code(code: object) -> str:
    """A completion or screen-out code: shown to participants and put in a URL, so a plain charset."""
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise LinkError("a completion or screen-out code must be 1 to 64 letters, digits, '-' or '_'")
    return code


def participant_user_name(*, platform: str, participant_id: str) -> str:
    """The annotator's user name for a participant: ``PLATFORM:ID``.

    It passes ``accounts.validate_name`` unchanged (ASCII, no control
    characters; NFKC and strip leave it as is) and is unique per (platform,
    id). An ordinary account must not take a name in this namespace
    (``is_participant_name``), or a researcher's account could stand for a
    participant. Create these accounts on their own path keyed by the
    participant, not through ``accounts.add_user``: its look-alike rule is for
    names people type, and would refuse MTurk's ``A1B2`` next to ``ALB2``.
    """
    _platform(platform)
    return f"{platform}:{validate_participant_id(participant_id, platform=platform)}"


def is_participant_name(name: str) -> bool:
    """Whether a user name lies in the participants' namespace (``prolific:``, ``mturk:``, ``generic:``).

    Compared as ``accounts`` compares names (NFKC, case, look-alike letters),
    so ``Prolіfic:x`` with a Cyrillic ``і`` counts too.
    """
    head, sep, _ = name_skeleton(name).partition(":")  # NFKC first: a full-width colon counts
    return bool(sep) and head.strip() in {name_skeleton(p) for p in PLATFORMS}


def participant_of_user_name(name: str) -> Optional[tuple[str, str]]:
    """(platform, participant id) of a participant's user name; None for an ordinary account."""
    head, sep, pid = name.partition(":")
    if not sep or head not in PLATFORMS or not PARTICIPANT_ID.fullmatch(pid):
        return None
    return head, pid
