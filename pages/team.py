"""The team: add annotators, issue and revoke invite links, see each one's progress."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages.common import choose_benchmark, engine, require_researcher
from rmgap_annot import accounts, assignment
from rmgap_annot.demo import simulated_note

require_researcher()
eng = engine()
st.title("Team")
bid = choose_benchmark()

with st.form("add_user", clear_on_submit=True):
    st.subheader("Add a person")
    name = st.text_input("Name")
    role = st.radio("Role", list(accounts.ROLES), horizontal=True)
    password = st.text_input("Password (optional: leave empty for invite-link login)", type="password")
    if st.form_submit_button("Add"):
        if password and len(password) < 8:
            st.error("A password must be at least 8 characters.")
        else:
            try:
                accounts.create_user(engine=eng, name=name, role=role, password=password or None)
                st.success(f"Added {role} {name.strip()!r}.")
            except accounts.AccountError as exc:
                st.error(str(exc))

users = accounts.list_users(engine=eng)
study = assignment.get_study(engine=eng, benchmark_id=bid) if bid is not None else None
if users:
    rows = []
    for u in users:
        row = {"name": u.name, "role": u.role, "login": ("password" if u.has_password else "invite") if u.active else "disabled",
               "labels (all)": u.n_labels}
        if study is not None and u.role == "annotator":
            p = assignment.progress(engine=eng, user_id=u.id, benchmark_id=bid)
            row.update({"done": p.done, "target": p.target, "left": p.remaining})
        rows.append(row)
    st.subheader("People and progress")
    note = simulated_note(u.name for u in users)
    if note:
        st.warning(note)
    # Researchers have no quota: their empty cells read "n/a" rather than "None".
    st.dataframe(pd.DataFrame(rows).style.format(precision=0, na_rep="n/a"), hide_index=True)

    st.subheader("Invite links")
    st.caption("A personal link logs its owner in without a password. It is shown once; revoke it if it leaks.")
    by_name = {u.name: u.id for u in users}
    who = st.selectbox("Person", list(by_name))
    c1, c2 = st.columns(2)
    if c1.button("Create invite link"):
        token = accounts.create_invite(engine=eng, user_id=by_name[who])
        try:
            page_url = str(st.context.url or "") or "http://localhost:8501/"
        except Exception:  # noqa: BLE001 - older Streamlit: no st.context.url
            page_url = "http://localhost:8501/"
        root = accounts.app_root(page_url, base_path=st.get_option("server.baseUrlPath") or "")
        st.code(accounts.invite_link(root, token), language=None)
    if c2.button("Revoke all their links"):
        n = accounts.revoke_invites(engine=eng, user_id=by_name[who])
        st.success(f"Revoked {n} link(s) of {who}; their open sessions ended.")

    st.subheader("Access")
    st.caption("Disabling logs the person out of every browser at once and revokes their links; their labels stay.")
    c3, c4 = st.columns(2)
    if c3.button("Disable account"):
        if by_name[who] == st.session_state.get("user_id"):
            st.error("You cannot disable your own account here (use `rmgap-annot users disable`).")
        else:
            accounts.set_active(engine=eng, user_id=by_name[who], active=False,
                                actor=st.session_state.get("user_name") or "researcher")
            st.success(f"Disabled {who}.")
    if c4.button("Enable account"):
        accounts.set_active(engine=eng, user_id=by_name[who], active=True,
                            actor=st.session_state.get("user_name") or "researcher")
        st.success(f"Enabled {who} (send a new invite link if they use one).")
