"""Who may reach the review app, and how: the request checks behind "pick a name", the Host allow-list, TLS.

Three doors, each closed by default:
- **Pick a name** (no accounts) is offered only to a request that came straight from a browser on this
  machine: no proxy headers (X-Forwarded-*, Forwarded, X-Real-IP, Via, ...), a Host and an Origin that
  name loopback, and a loopback peer. A proxy that forwards to 127.0.0.1 without saying so, or an
  `ssh -L` tunnel, looks exactly like a local browser: declare it (review.behind_proxy), which then
  requires accounts.
- **Host names** the browser may use are loopback plus review.allowed_hosts: Streamlit refuses the
  websocket (server.allowedHosts) and cross-origin pages (server.enableCORS with corsAllowedOrigins), so a
  DNS-rebinding page (Host and Origin `rebind.evil.example`) cannot drive a loopback app.
- **Passwords over plain HTTP** beyond loopback are refused unless a TLS proxy is declared
  (review.behind_proxy) or review.insecure_http says the network is trusted.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlparse

from labeling.app.auth import is_loopback
from labeling.app.settings import ReviewParams

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# Headers a proxy adds to say whom it forwards for; a browser talking to the app directly sends none of them.
FORWARDING = ("forwarded", "x-real-ip", "via", "true-client-ip", "x-client-ip", "cf-connecting-ip",
              "x-original-forwarded-for", "x-cluster-client-ip")


def hostname(value: str | None) -> str | None:
    """The host name of a Host header ('localhost:8501', '[::1]:8501') or an Origin ('http://x:1'), lower-case;
    None when missing or malformed."""
    if not value:
        return None
    try:
        parsed = urlparse(value if "//" in value else f"//{value}")
        _ = parsed.port  # a non-numeric port is malformed
    except ValueError:
        return None
    return parsed.hostname.lower().rstrip(".") if parsed.hostname else None


def allowed_hosts(params: ReviewParams) -> list[str]:
    """Host names the app answers to: loopback, plus the ones the project names (review.allowed_hosts)."""
    return list(dict.fromkeys([*LOOPBACK_HOSTS, *params.allowed_hosts]))


def streamlit_flags(params: ReviewParams) -> list[str]:
    """`streamlit run` options that close the browser-facing doors (flags beat config files and STREAMLIT_*)."""
    flags = ["--server.enableCORS", "true", "--server.enableXsrfProtection", "true",
             "--server.enableAgentApi", "false"]
    for host in allowed_hosts(params):
        flags += ["--server.allowedHosts", host]
    for host in params.allowed_hosts:  # a page served under a configured name may open the websocket
        name = host[2:] if host.startswith("*.") else host
        flags += ["--server.corsAllowedOrigins", f"https://{name}"]
    return flags


def not_direct(headers: Mapping[str, str], peer: str | None) -> str | None:
    """Why a request did not come straight from a browser on this machine, or None when it did.

    headers: the websocket request's headers (any case); peer: the client address (None = loopback, as
    Streamlit's st.context.ip_address reports it). An empty `headers` means no HTTP request is behind the
    session (Streamlit's in-process AppTest): every real one carries Host, which the allow-list demands.
    """
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    forwarded = sorted(k for k in lower if k.startswith("x-forwarded-") or k in FORWARDING)
    if forwarded:
        return f"it came through a proxy (header {', '.join(forwarded)})"
    if not is_loopback(hostname(lower.get("host"))):
        return "it was addressed to a host name other than this machine's loopback"
    if "origin" in lower and not is_loopback(hostname(lower["origin"])):
        return "it came from a page that is not served from this machine's loopback"
    if peer is not None and not is_loopback(peer):
        return "it came from another machine"
    return None


def plain_http_problem(bind: str, params: ReviewParams, needs_login: bool) -> str | None:
    """Why serving accounts on `bind` would send passwords as plain HTTP over a network, or None."""
    if not needs_login or is_loopback(bind) or params.behind_proxy or params.insecure_http:
        return None
    return (f"refusing to serve reviewer logins on {bind or 'every interface'} over plain HTTP: passwords would "
            "cross the network readable by anyone on the way. Put a TLS reverse proxy in front, bind to "
            "127.0.0.1 and set `review.behind_proxy: true` (README: Serving the app to a team safely), or, on a "
            "network you trust completely, set `review.insecure_http: true`")


def _allowed(name: str | None, patterns: list[str]) -> bool:
    if name is None:
        return False
    for pattern in patterns:
        pattern = pattern.strip().lower().rstrip(".")
        if name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


class HostGate:
    """ASGI middleware: refuse (403) any HTTP request or websocket whose Host, or whose Origin when sent,
    is not in Streamlit's server.allowedHosts (loopback when that is empty).

    Streamlit itself checks the Host only on its websocket, and for a foreign Origin it asks a public
    service for this machine's external IP; this gate answers first, on every route, and asks nobody.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        from streamlit import config

        patterns = [h for h in config.get_option("server.allowedHosts") if h != "*"] or list(LOOPBACK_HOSTS)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if _allowed(hostname(headers.get("host")), patterns) and (
                origin is None or _allowed(hostname(origin), patterns)):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})  # before accept: the client gets HTTP 403
            return None
        body = b"refused: this app answers only to the host names it is configured for (review.allowed_hosts)\n"
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return None
