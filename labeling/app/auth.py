"""Reviewer accounts for an app reachable beyond loopback: salted scrypt hashes in a private JSON file.

The file (never in git; see settings.auth_file_for) holds

    {"format": "luskit-review-users/1",
     "users": {"<login>": {"hash": "scrypt$16384$8$1$<salt b64>$<key b64>", "created": "<UTC ISO>"}}}

Passwords are read from a prompt or stdin (never argv, which other users can see in `ps`), hashed
with hashlib.scrypt (stdlib; memory-hard, 16-byte random salt) and compared in constant time.
On loopback with no accounts, a reviewer just picks a name; an exposed host (anything other than
127.0.0.0/8, ::1, localhost) without accounts refuses to start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import threading
import time
from pathlib import Path

from luskit.atomic import write_atomic

FORMAT = "luskit-review-users/1"
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LEN, SALT_LEN = 2**14, 8, 1, 32, 16
MIN_PASSWORD = 10
MAX_FAILURES, LOCKOUT_S = 10, 600.0


class AuthError(RuntimeError):
    """An account or exposure problem the user can fix; the message says how."""


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for 0.0.0.0, '', None and every other address."""
    if not host:
        return False
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def hash_password(password: str, salt: bytes | None = None) -> str:
    """'scrypt$N$r$p$<salt>$<key>' (base64) for `password`."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_LEN)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_LEN)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches the stored hash (constant-time compare; a malformed hash never matches)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(key)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def read_users(path: Path) -> dict[str, dict]:
    """{login: record} from the accounts file; {} when it does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # someone loosened it: hashes stay owner-only
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise AuthError(f"{path}: not valid JSON ({err}); fix it or move it aside and add users again") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("users"), dict):
        raise AuthError(f"{path}: not a luskit reviewer accounts file (format {FORMAT}); move it aside and "
                        "create accounts with `luskit review add-user NAME`")
    return data["users"]


def _write_users(path: Path, users: dict[str, dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "users": users}, indent=1, sort_keys=True) + "\n"

    def write(tmp: Path) -> None:
        os.chmod(tmp, 0o600)  # private before the first byte of a hash lands in it
        tmp.write_text(text)

    write_atomic(path, write)


def add_user(path: Path, name: str, password: str) -> bool:
    """Create or replace `name`'s account; True if it was new. Raises AuthError on a bad name or password."""
    from labeling.app.settings import NAME_RE

    login = name.strip().lower()
    if not NAME_RE.match(login):
        raise AuthError(f"{name!r}: use a lower-case login such as an e-mail (letters, digits, . _ @ + -)")
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"password too short: use at least {MIN_PASSWORD} characters")
    users = read_users(path)
    new = login not in users
    users[login] = {"hash": hash_password(password), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_users(path, users)
    return new


def remove_user(path: Path, name: str) -> bool:
    """Delete `name`'s account; True if it existed."""
    users = read_users(path)
    if users.pop(name.strip().lower(), None) is None:
        return False
    _write_users(path, users)
    return True


def check_exposure(host: str | None, auth_file: Path) -> bool:
    """Whether logins are required; raises AuthError when `host` is exposed and no account exists.

    Accounts, once created, are always required (also on loopback): a configured team expects them.
    """
    users = read_users(auth_file)
    if users:
        return True
    if not is_loopback(host):
        raise AuthError(f"refusing to serve on {host or 'every interface'} without authentication: anyone on the "
                        f"network could record decisions. Create reviewer accounts first with `luskit review "
                        f"add-user NAME` (stored hashed in {auth_file}; or set $LUSKIT_REVIEW_AUTH_FILE), or bind "
                        "to 127.0.0.1")
    return False


class Throttle:
    """Process-wide failed-login counter: after MAX_FAILURES within LOCKOUT_S a login is locked for LOCKOUT_S.

    New browser sessions are free to open, so a per-session counter would not slow a guesser down.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}

    def locked(self, login: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._failures.get(login, []) if now - t < LOCKOUT_S]
            self._failures[login] = recent
            return len(recent) >= MAX_FAILURES

    def fail(self, login: str, now: float | None = None) -> None:
        with self._lock:
            self._failures.setdefault(login, []).append(time.monotonic() if now is None else now)

    def clear(self, login: str) -> None:
        with self._lock:
            self._failures.pop(login, None)


THROTTLE = Throttle()


def _dummy_hash(_cache: list[str] = []) -> str:  # noqa: B006  (computed once per process)
    if not _cache:
        _cache.append(hash_password(secrets.token_urlsafe(16)))
    return _cache[0]


def login(path: Path, name: str, password: str) -> str | None:
    """The canonical login if `name`/`password` match an account (and it is not locked), else None."""
    who = name.strip().lower()
    if THROTTLE.locked(who):
        return None
    record = read_users(path).get(who)
    # Hash even for an unknown name so the answer takes as long either way (no user enumeration by timing).
    ok = verify_password(password, record["hash"] if record else _dummy_hash())
    if ok and record:
        THROTTLE.clear(who)
        return who
    THROTTLE.fail(who)
    return None
