"""Streamlit helpers every page shares: the project, who is reviewing, access mode, messages for missing inputs."""

from __future__ import annotations

import os
import time

import streamlit as st

from labeling.app import auth, doors
from labeling.app.settings import ENV_AUTH_FILE, ENV_PARAMS, ENV_PROJECT, Project, load_project

REVIEWER = "reviewer"  # session key: the identity decisions are recorded under
MODE = "auth_mode"  # session key: how that identity was established ('login' or 'pick')
# Session key: [UTC epoch s] when the session was last active, a list mutated in place, so that app.py can
# mark the end of a run even after st.stop() (st calls then fail; a list assignment does not).
SEEN = "last_seen"
EXPIRED = "expired"  # session key: set when an idle session was signed out (the sign-in page says so)


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


def client() -> str:
    """The browser's address as the server saw it (uvicorn takes it from a local proxy's X-Forwarded-For)."""
    peer = st.context.ip_address
    return peer if isinstance(peer, str) and peer else "127.0.0.1"


def _request() -> tuple[dict[str, str], str | None]:
    peer = st.context.ip_address
    return dict(st.context.headers), peer if isinstance(peer, str) else None


def access_mode(proj: Project) -> str:
    """'login' when reviewer accounts exist, 'pick' for a request straight from loopback without accounts;
    stops otherwise: an exposed server or a declared proxy without accounts (launch.preflight refuses
    those starts; this covers a bare `streamlit run`), or a request that came through a proxy, under
    another host name or from another machine (doors.not_direct)."""
    try:
        if auth.check_exposure(st.get_option("server.address"), proj.auth_file, proj.params.behind_proxy):
            return "login"
    except auth.AuthError as err:
        st.error(str(err))
        st.stop()
    why = doors.not_direct(*_request())
    if why:
        st.error(f"Refused: choosing a reviewer name without a password is only offered to a browser on this "
                 f"machine, and this request did not come straight from one ({why}). To serve the app through "
                 "a proxy or tunnel, create reviewer accounts (`luskit review add-user NAME`) and set "
                 "`review.behind_proxy: true`.")
        st.stop()
    return "pick"


def activity() -> list[float]:
    """The session's last-active time, [UTC epoch s] (0.0 before the first run); app.py updates it in place."""
    return st.session_state.setdefault(SEEN, [0.0])


def reviewer(proj: Project) -> str | None:
    """The session's reviewer, or None: a name picked on loopback does not count once accounts exist, and
    a session idle for longer than review.idle_timeout_s (since its last run ended) is signed out."""
    who = st.session_state.get(REVIEWER)
    seen = activity()
    now = time.time()
    idle, seen[0] = now - seen[0], now
    if who and idle > proj.params.idle_timeout_s:
        sign_out()
        st.session_state[EXPIRED] = True
        return None
    if who and st.session_state.get(MODE) != access_mode(proj):
        st.session_state.pop(REVIEWER, None)
        return None
    return who


def sign_in(who: str, mode: str) -> None:
    st.session_state[REVIEWER] = who
    st.session_state[MODE] = mode
    activity()[0] = time.time()
    st.session_state.pop(EXPIRED, None)


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
