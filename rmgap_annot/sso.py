"""Optional single sign-on: map an OIDC identity to a user and role here.

Streamlit's ``st.login`` (configured by an ``[auth]`` section in
``.streamlit/secrets.toml``) proves who someone is; this module decides who
they are *in the study*. The role always comes from the database, never from
the identity provider, so SSO cannot make anyone a researcher: a researcher
adds the account first (``rmgap-annot users add EMAIL --no-password``), or
lets annotators from listed e-mail domains create themselves on first login.
Off by default: without ``[auth]`` nothing here is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from rmgap_annot.accounts import AuthResult, add_user
from rmgap_annot.db import session_scope
from rmgap_annot.models import User


@dataclass(frozen=True)
class SsoOptions:
    # Annotator accounts are created on first login only for these e-mail
    # domains; empty means accounts must exist beforehand.
    auto_create_domains: tuple[str, ...] = ()


def sso_enabled(secrets: Any) -> bool:
    """True when the secrets hold an ``[auth]`` section.

    Takes anything dict-like (``st.secrets`` included) and treats a missing or
    unreadable secrets file as "SSO off" rather than an error.
    """
    try:
        return "auth" in secrets and bool(secrets["auth"])
    except Exception:  # noqa: BLE001 - no secrets file means SSO is simply off
        return False


def sso_options(secrets: Any) -> SsoOptions:
    """Options from the ``[rmgap_sso]`` section (kept out of ``[auth]``, which Streamlit owns)."""
    try:
        section: Mapping[str, Any] = secrets["rmgap_sso"] if "rmgap_sso" in secrets else {}
    except Exception:  # noqa: BLE001
        section = {}
    domains = section.get("auto_create_domains", ()) or ()
    if isinstance(domains, str):
        domains = (domains,)
    return SsoOptions(auto_create_domains=tuple(str(d).strip().lower().lstrip("@") for d in domains if str(d).strip()))


def user_for_identity(
    *,
    engine: Engine,
    email: str | None,
    email_verified: bool | None = None,
    options: SsoOptions = SsoOptions(),
) -> AuthResult:
    """The study account for a signed-in identity, or a refusal that says what to do.

    Accounts are matched by user name == e-mail address (case-insensitive).
    An address the provider explicitly marks unverified is refused: anyone can
    type an address into some providers.
    """
    address = (email or "").strip().lower()
    if not address or "@" not in address:
        return AuthResult(False, message="Your sign-in did not provide an e-mail address; this app needs one to find your account.")
    if email_verified is False:
        return AuthResult(False, message=f"Your identity provider has not verified {address}; verify it, then sign in again.")
    domain = address.rsplit("@", 1)[1]
    with session_scope(engine, write=True) as session:
        user = session.execute(select(User).where(func.lower(User.name) == address)).scalars().first()
        if user is None:
            if domain not in options.auto_create_domains:
                return AuthResult(
                    False,
                    message=f"No account for {address}. Ask your researcher to add it "
                    f"(rmgap-annot users add {address} --no-password).",
                )
            user = add_user(session=session, name=address, role="annotator", password=None)
        if not user.active:
            return AuthResult(False, message="This account is disabled.")
        return AuthResult(True, user.id, user.role, user.name)
