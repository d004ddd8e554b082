"""Reviewer accounts for an app reachable beyond loopback: salted scrypt hashes in a private JSON file.

The file (never in git; see settings.auth_file_for) holds

    {"format": "luskit-review-users/1",
     "users": {"<login>": {"hash": "scrypt$131072$8$1$<salt b64>$<key b64>", "created": "<UTC ISO>"}}}

Passwords are read from a prompt or stdin (never argv, which other users can see in `ps`), hashed
with hashlib.scrypt (stdlib; memory-hard, 16-byte random salt) at the OWASP figure (N=2^17, r=8, p=1:
128 MiB per check; 4.3 s per check measured on the shared 2-core dev machine at load 12, 0.6 s at N=2^14
in the same run) and compared in constant time. A hash made with weaker parameters (the earlier
N=2^14) is replaced at its owner's next successful login.

Every password check is first admitted by throttle.Throttle (counted in SQLite before the hash), and
each check is written to the `luskit.review.auth` log ("password check ...") on stderr: an audit trail,
and the count the tests read. On loopback with no accounts, a reviewer just picks a name (doors.py
decides when a request counts as loopback); an exposed host without accounts refuses to start.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path

from luskit.atomic import write_atomic

from labeling.app.throttle import Throttle, db_for

FORMAT = "luskit-review-users/1"
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LEN, SALT_LEN = 2**17, 8, 1, 32, 16  # OWASP password storage, 2025
MAX_SCRYPT_N = 2**20  # a stored hash asking for more memory than 1 GiB is refused, not computed
MIN_PASSWORD = 10
# At most this many password hashes run at once (128 MiB each): a burst of logins queues instead of
# taking the machine's memory.
HASH_SLOTS = threading.BoundedSemaphore(2)
LOG = logging.getLogger("luskit.review.auth")
if not LOG.handlers:  # Streamlit configures only its own loggers: give the audit trail a stderr handler
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    LOG.addHandler(_handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


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


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # OpenSSL needs 128*r*N bytes (128 MiB at N=2^17, r=8) and a little more for p: the default maxmem (32 MiB)
    # would refuse it, so allow twice the need.
    with HASH_SLOTS:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen,
                              maxmem=2 * 128 * r * (n + p + 2))


def hash_password(password: str, salt: bytes | None = None, n: int = SCRYPT_N) -> str:
    """'scrypt$N$r$p$<salt>$<key>' (base64) for `password` (n: only to make old-style hashes in tests)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_LEN)
    key = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P, KEY_LEN)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches the stored hash (constant-time compare; a malformed hash never matches)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt" or not 2 <= int(n) <= MAX_SCRYPT_N or int(r) * int(p) > 64:
            return False
        want = base64.b64decode(key)
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p), len(want))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got, want)


def is_current(stored: str) -> bool:
    """Whether a stored hash uses today's parameters (else it is upgraded at the next login)."""
    return stored.split("$")[:4] == ["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P)]


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


@contextlib.contextmanager
def _editing(path: Path):
    """Hold an exclusive lock on `<accounts>.lock` while reading, changing and rewriting the accounts file,
    so two processes (add-user while the app upgrades a hash) cannot lose each other's change."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


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
    record = {"hash": hash_password(password), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with _editing(path):
        users = read_users(path)
        new = login not in users
        users[login] = record
        _write_users(path, users)
    return new


def remove_user(path: Path, name: str) -> bool:
    """Delete `name`'s account; True if it existed."""
    with _editing(path):
        users = read_users(path)
        if users.pop(name.strip().lower(), None) is None:
            return False
        _write_users(path, users)
    return True


def _upgrade_hash(path: Path, login: str, old: str, password: str) -> None:
    """Re-hash a password stored with weaker parameters (called right after it verified)."""
    new_hash = hash_password(password)
    with _editing(path):
        users = read_users(path)
        if login in users and users[login].get("hash") == old:  # unchanged meanwhile (no reset in between)
            users[login] = {**users[login], "hash": new_hash,
                            "upgraded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            _write_users(path, users)
    LOG.info("upgraded the password hash of %s to scrypt N=%d", login, SCRYPT_N)


def check_exposure(host: str | None, auth_file: Path, behind_proxy: bool = False) -> bool:
    """Whether logins are required; raises AuthError when `host` is exposed (or the app is declared to be
    behind a proxy) and no account exists.

    Accounts, once created, are always required (also on loopback): a configured team expects them.
    """
    users = read_users(auth_file)
    if users:
        return True
    if behind_proxy:
        raise AuthError("refusing to serve behind a proxy (review.behind_proxy: true) without authentication: "
                        "everyone who reaches the proxy would pick a name. Create reviewer accounts first with "
                        f"`luskit review add-user NAME` (stored hashed in {auth_file}; or set "
                        "$LUSKIT_REVIEW_AUTH_FILE)")
    if not is_loopback(host):
        raise AuthError(f"refusing to serve on {host or 'every interface'} without authentication: anyone on the "
                        f"network could record decisions. Create reviewer accounts first with `luskit review "
                        f"add-user NAME` (stored hashed in {auth_file}; or set $LUSKIT_REVIEW_AUTH_FILE), or bind "
                        "to 127.0.0.1")
    return False


def throttle_for(path: Path, window_s: float = 600.0, per_account: int = 10, per_client: int = 30) -> Throttle:
    """The throttle shared by everyone using the accounts file `path` (review.login_* params)."""
    return Throttle(db_for(path), window_s, per_account, per_client)


def _dummy_hash(_cache: list[str] = []) -> str:  # noqa: B006  (computed once per process)
    if not _cache:
        _cache.append(hash_password(secrets.token_urlsafe(16)))
    return _cache[0]


def login(path: Path, name: str, password: str, client: str = "local", throttle: Throttle | None = None) -> str | None:
    """The canonical login if `name`/`password` match an account, else None (also when throttled).

    `client`: the browser's address (one throttle budget per address). The attempt is admitted, i.e.
    counted, before the hash runs, so concurrent guesses cannot outrun the limit.
    """
    from labeling.app.settings import NAME_RE

    who = name.strip().lower()
    if not NAME_RE.match(who):  # no account can have this name (and it must not reach the log as typed)
        LOG.info("login refused without a check: not a valid login name (client %s)", client)
        return None
    throttle = throttle or throttle_for(path)
    attempt = throttle.admit(who, client)
    if attempt is None:
        LOG.info("login throttled for %s (client %s): no password check", who, client)
        return None
    record = read_users(path).get(who)
    # Hash even for an unknown name so the answer takes as long either way (no user enumeration by timing).
    stored = record["hash"] if record else _dummy_hash()
    ok = verify_password(password, stored) and record is not None
    LOG.info("password check for %s (client %s): %s", who, client, "accepted" if ok else "refused")
    if not ok:
        return None
    throttle.succeeded(attempt)
    if not is_current(stored):
        _upgrade_hash(path, who, stored, password)
    return who
