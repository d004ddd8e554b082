"""Sign in: a password login when reviewer accounts exist, else (loopback only) a choice of name."""

import time

import streamlit as st

from labeling.app import auth, ui

project = ui.project()
mode = ui.access_mode(project)
st.title("luskit review")

if mode == "login":
    st.caption("Reviewer accounts are configured: sign in to see the queue and record decisions.")
    with st.form("login"):
        name = st.text_input("Login", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        who = auth.login(project.auth_file, name or "", password or "")
        if who:
            ui.sign_in(who, "login")
            st.rerun()
        time.sleep(1.0)  # slows guessing; auth.THROTTLE locks a login after repeated failures
        st.error("Unknown login or wrong password (or too many failed attempts: wait 10 minutes).")
else:
    names = list(project.params.reviewers)
    if not names:
        st.error("No reviewers configured: add your login to `review.reviewers` in params.yaml and restart "
                 "`luskit review`.")
        st.stop()
    st.caption("This app listens on loopback only: pick who is reviewing. Every decision is recorded under "
               "this name.")
    choice = st.selectbox("Reviewer", names, index=None, placeholder="Choose your name", key="pick_reviewer")
    if st.button("Start reviewing", type="primary", key="start", disabled=choice is None):
        ui.sign_in(choice.strip().lower(), "pick")
        st.rerun()
