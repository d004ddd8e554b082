"""The `review:` params section and the project folder the app serves (paths it may read, where it writes).

The app runs as its own process (`streamlit run`), so `luskit review` hands it the project through
environment variables: ENV_PROJECT (absolute project root) and ENV_PARAMS (the params file).
Everything the browser can name (a clip, a video, a figure) is turned into a path here and nowhere
else, and `Project.artifact` refuses any path that resolves outside the artifacts folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from luskit import paths
from luskit.config import ConfigError, convert, read_params, require

ENV_PROJECT = "LUSKIT_PROJECT"
ENV_PARAMS = "LUSKIT_REVIEW_PARAMS"
ENV_AUTH_FILE = "LUSKIT_REVIEW_AUTH_FILE"
DEFAULT_AUTH_FILE = Path(".luskit") / "review-users.json"  # git-ignored, next to Label Studio's secrets
DEFAULT_PRIMARY_MODEL = "luvnet"
# Pseudonymous ids as ingest makes them (P<hex>_V<hex>, clips _c000); anything else is refused before
# it gets near a path.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,63}$")
HOST_RE = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.:-]{0,252})$")  # a lower-case name, IPv4 or bare IPv6; *.sub ok


@dataclass(frozen=True)
class ReviewParams:
    """The `review:` section of params.yaml (not a DVC stage: the app reads artifacts, writes data/reviews)."""

    host: str = "127.0.0.1"  # loopback: reviewers pick their name; anything else requires accounts
    port: int = 8501
    reviewers: tuple[str, ...] = ()  # names offered on loopback (e-mails, as in the decision store)
    primary_model: str = ""  # the model whose probability and attention are shown; "" = evaluate.primary_model
    auth_file: str = ""  # reviewer accounts (hashed passwords); "" = $LUSKIT_REVIEW_AUTH_FILE or .luskit/...
    top_frames: int = 5  # frames highlighted per pattern in the attention chart
    # Who may reach the app (doors.py): host names beyond loopback the browser may use (a proxy's public name,
    # this machine's name); a declared TLS-terminating proxy (then accounts are required); plain-HTTP override.
    allowed_hosts: tuple[str, ...] = ()
    behind_proxy: bool = False
    insecure_http: bool = False
    # Sign-in (auth.py, throttle.py): idle sessions expire; password checks per window, per account and client.
    idle_timeout_s: float = 1800.0
    login_window_s: float = 600.0
    login_attempts: int = 10
    login_attempts_per_client: int = 30

    def __post_init__(self) -> None:
        require(1 <= self.port <= 65535, f"port={self.port}: use 1-65535")
        require(self.top_frames >= 1, f"top_frames={self.top_frames}: use 1 or more")
        require(self.idle_timeout_s > 0, f"idle_timeout_s={self.idle_timeout_s}: use a positive number of seconds")
        require(self.login_window_s > 0, f"login_window_s={self.login_window_s}: use a positive number of seconds")
        require(self.login_attempts >= 1 and self.login_attempts_per_client >= 1,
                "login_attempts and login_attempts_per_client: use 1 or more")
        for name in self.allowed_hosts:
            require(bool(HOST_RE.match(name)) and name != "*",
                    f"allowed host {name!r}: use a lower-case host name or address without scheme or port, "
                    "e.g. review.hospital.org (a leading '*.' allows its subdomains)")
        for name in self.reviewers:
            require(bool(NAME_RE.match(name.strip().lower())),
                    f"reviewer {name!r}: use a lower-case login such as an e-mail (letters, digits, . _ @ + -)")


@dataclass(frozen=True)
class Project:
    """A project folder (holding params.yaml and artifacts/) as the app sees it."""

    root: Path
    params: ReviewParams
    primary_model: str
    auth_file: Path

    @property
    def artifacts(self) -> Path:
        return self.root / paths.ARTIFACTS

    @property
    def reviews_db(self) -> Path:
        from labeling import reviews

        return self.root / paths.REVIEWS / reviews.DB_NAME

    def artifact(self, relative: str | Path) -> Path:
        """root/artifacts/<relative>, refused (ValueError) if it resolves outside artifacts/.

        DVC may link outputs into its cache (cache.type symlink/hardlink), so a file resolving into
        the project's .dvc/cache is allowed too; nothing else is.
        """
        rel = Path(relative)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"{relative!s}: not a path inside artifacts/")
        path = self.artifacts / rel
        resolved = path.resolve()
        allowed = (self.artifacts.resolve(), (self.root / ".dvc" / "cache").resolve())
        if not any(resolved.is_relative_to(base) for base in allowed):
            raise ValueError(f"{relative!s} resolves outside {self.artifacts}: refused")
        return path

    def video_path(self, video_id: str) -> Path:
        """The de-identified video; the caller has checked video_id against the clip manifest."""
        return self.artifact(paths.VIDEOS.relative_to(paths.ARTIFACTS) / f"{checked_id(video_id)}.mp4")


def checked_id(value: str) -> str:
    """A clip/video id from the browser, refused unless it looks like one (no slashes, dots, spaces)."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ValueError(f"{value!r} is not a clip or video id")
    return value


def load_review_params(params_path: Path) -> tuple[ReviewParams, str]:
    """(the review section, the primary model name) from params.yaml; defaults where the section is absent."""
    data = read_params(params_path)
    section = data.get("review") or {}
    try:
        params = convert(section, ReviewParams, "review")
    except ConfigError as err:
        raise ConfigError(f"{params_path}: {err}") from None
    evaluate = data.get("evaluate") or {}
    primary = params.primary_model or str(evaluate.get("primary_model") or DEFAULT_PRIMARY_MODEL)
    return params, primary


def auth_file_for(root: Path, params: ReviewParams) -> Path:
    """Where reviewer accounts live: $LUSKIT_REVIEW_AUTH_FILE, else review.auth_file, else .luskit/review-users.json."""
    chosen = os.environ.get(ENV_AUTH_FILE) or params.auth_file or str(DEFAULT_AUTH_FILE)
    path = Path(chosen).expanduser()
    return path if path.is_absolute() else root / path


def load_project(root: Path | None = None, params_path: Path | None = None) -> Project:
    """The project from arguments, else from ENV_PROJECT / ENV_PARAMS, else the folder holding params.yaml."""
    root = Path(root or os.environ.get(ENV_PROJECT) or paths.project_root()).resolve()
    params_path = Path(params_path or os.environ.get(ENV_PARAMS) or root / paths.PARAMS)
    if not params_path.is_absolute():
        params_path = root / params_path
    params, primary = load_review_params(params_path)
    return Project(root=root, params=params, primary_model=primary, auth_file=auth_file_for(root, params))
