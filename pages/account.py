"""Account: every user changes their own password (the demo's printed ones included).

The current password is asked first (a browser left open must not be enough
to take an account over); the change logs the user's other browsers out and
keeps this one (its session token is passed along).
"""

from __future__ import annotations

import streamlit as st

from pages.common import engine, require_login, session_token
from rmgap_annot.accounts import MIN_PASSWORD_LENGTH, AccountError, change_own_password

uid = require_login()
st.title("Account")
st.text(f"Logged in as {st.session_state.get('user_name', '')}.")
with st.form("password", clear_on_submit=True):
    st.subheader("Change your password")
    current = st.text_input("Current password", type="password")
    new = st.text_input("New password", type="password", help=f"At least {MIN_PASSWORD_LENGTH} characters, not only spaces.")
    again = st.text_input("New password again", type="password")
    submitted = st.form_submit_button("Change password", type="primary")
if submitted:
    if new != again:
        st.error("The two new passwords differ.")
    else:
        try:
            change_own_password(engine=engine(), user_id=uid, current=current, new=new, keep_session=session_token())
            st.success("Password changed; your other browsers were logged out.")
        except AccountError as exc:
            st.error(str(exc))
