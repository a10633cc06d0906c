"""Account: every user changes their own password (the demo's printed ones included)."""

from __future__ import annotations

import streamlit as st

from pages.common import engine, require_login
from rmgap_annot.accounts import MIN_PASSWORD_LENGTH, AccountError, change_own_password

uid = require_login()
st.title("Account")
st.write(f"Logged in as **{st.session_state.get('user_name', '')}**.")
with st.form("password", clear_on_submit=True):
    st.subheader("Change your password")
    current = st.text_input("Current password (empty if you only ever used an invite link)", type="password")
    new = st.text_input(f"New password (at least {MIN_PASSWORD_LENGTH} characters)", type="password")
    again = st.text_input("New password again", type="password")
    submitted = st.form_submit_button("Change password", type="primary")
if submitted:
    if new != again:
        st.error("The two new passwords differ.")
    else:
        try:
            change_own_password(engine=engine(), user_id=uid, current=current, new=new)
            st.success("Password changed. Use it from your next login.")
        except AccountError as exc:
            st.error(str(exc))
