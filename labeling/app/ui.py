"""Streamlit helpers every page shares: the project, who is reviewing, access mode, messages for missing inputs."""

from __future__ import annotations

import os

import streamlit as st

from labeling.app import auth
from labeling.app.settings import ENV_AUTH_FILE, ENV_PARAMS, ENV_PROJECT, Project, load_project

REVIEWER = "reviewer"  # session key: the identity decisions are recorded under
MODE = "auth_mode"  # session key: how that identity was established ('login' or 'pick')


@st.cache_resource(show_spinner=False)
def _project(root: str | None, params: str | None, auth_file: str | None) -> Project:
    return load_project(root, params)  # auth_file: part of the key only (load_project reads the variable)


def project() -> Project:
    """The project this server serves (settings.ENV_PROJECT / ENV_PARAMS, set by `luskit review`)."""
    try:
        return _project(os.environ.get(ENV_PROJECT), os.environ.get(ENV_PARAMS), os.environ.get(ENV_AUTH_FILE))
    except (FileNotFoundError, ValueError) as err:
        st.error(f"Cannot open the project: {err}")
        st.stop()


def access_mode(proj: Project) -> str:
    """'login' when reviewer accounts exist, 'pick' on loopback without accounts; stops an exposed
    server without accounts (launch.preflight refuses that start; this covers a bare `streamlit run`)."""
    try:
        return "login" if auth.check_exposure(st.get_option("server.address"), proj.auth_file) else "pick"
    except auth.AuthError as err:
        st.error(str(err))
        st.stop()


def reviewer(proj: Project) -> str | None:
    """The session's reviewer, or None (a name picked on loopback does not count once accounts exist)."""
    who = st.session_state.get(REVIEWER)
    if who and st.session_state.get(MODE) != access_mode(proj):
        st.session_state.pop(REVIEWER, None)
        return None
    return who


def sign_in(who: str, mode: str) -> None:
    st.session_state[REVIEWER] = who
    st.session_state[MODE] = mode


def sign_out() -> None:
    for key in (REVIEWER, MODE):
        st.session_state.pop(key, None)


def current_reviewer() -> str:
    """The reviewer on a page (app.py only shows pages after sign-in)."""
    who = st.session_state.get(REVIEWER)
    if not who:
        st.warning("Sign in first.")
        st.stop()
    return who


def missing(what: str, how: str) -> None:
    """A clear note for an artifact that does not exist yet, instead of a crash."""
    st.info(f"**{what}** is not available yet. {how}")


def sidebar(proj: Project, who: str) -> None:
    with st.sidebar:
        st.markdown(f"Reviewing as **{who}**")
        st.caption(f"Project: `{proj.root.name}` · model: `{proj.primary_model}`")
        if st.button("Sign out", key="sign_out"):
            sign_out()
            st.rerun()
