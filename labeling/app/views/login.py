"""Sign in: a password login when reviewer accounts exist, else (a browser on loopback only) a choice of name."""

import time

import streamlit as st

from labeling.app import auth, doors, ui

project = ui.project()
mode = ui.access_mode(project)
params = project.params
st.title("luskit review")
if st.session_state.pop(ui.EXPIRED, None):
    st.warning(f"Your session was idle for more than {params.idle_timeout_s / 60:g} minutes and has been signed "
               "out: sign in again.")

if mode == "login":
    proto = {k.lower(): v for k, v in st.context.headers.items()}.get("x-forwarded-proto", "").strip().lower()
    if proto == "http" and not params.insecure_http:
        st.error("Refused: this page reached the app through a proxy over plain HTTP, so a password would cross "
                 "the network readable. Serve it over HTTPS (the proxy terminates TLS), or set "
                 "`review.insecure_http: true` on a network you trust completely.")
        st.stop()
    if doors.plain_http_problem(st.get_option("server.address"), params, True):
        st.warning("This app serves logins over plain HTTP beyond this machine: passwords can be read on the "
                   "network. Use `luskit review`, which refuses this unless a TLS proxy is declared.")
    st.caption("Reviewer accounts are configured: sign in to see the queue and record decisions.")
    with st.form("login"):
        name = st.text_input("Login", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        throttle = auth.throttle_for(project.auth_file, params.login_window_s, params.login_attempts,
                                     params.login_attempts_per_client)
        who = auth.login(project.auth_file, name or "", password or "", client=ui.client(), throttle=throttle)
        if who:
            ui.sign_in(who, "login")
            st.rerun()
        time.sleep(1.0)  # slows a single guesser further; the throttle bounds how many checks run at all
        st.error(f"Unknown login or wrong password (or too many attempts: wait up to "
                 f"{params.login_window_s / 60:g} minutes).")
else:
    names = list(params.reviewers)
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
