"""The one hardened HTTP client for every outbound request of the portal.

Deliveries, test sends, probes, OAuth2 token fetches and the TLS check all go through
this module, so they share one URL guard and one TLS policy:

- **URL rules**: `https://` only, a port in DESTINATION_ALLOWED_PORTS, no user info.
- **URL guard**: the host name is resolved when the connection is made and every
  address it resolves to must be public: loopback, private (RFC 1918, unique local),
  link-local (which holds the cloud metadata address 169.254.169.254), multicast,
  unspecified, CGNAT (100.64.0.0/10), reserved and IPv4-mapped forms of those are
  refused unless DESTINATION_ALLOW_PRIVATE is true. The connection is then opened to
  the address that was checked (a custom httpcore network backend), never to a second
  DNS answer, while TLS SNI, certificate checking and the Host header keep using the
  name. Numeric host forms (decimal, hex, octal) resolve like any name, so they meet
  the same check.
- **TLS policy**: certificates verified against the system trust store plus
  DESTINATION_CA_BUNDLE with host name checking; TLS 1.2 or higher; for TLS 1.2 only
  the AEAD suites of the KPN Things safe list (ECDHE/DHE with AES-GCM, AES-CCM,
  ChaCha20-Poly1305; OpenSSL has no Camellia-GCM); TLS 1.3's suites are all AEAD.
- **No redirects** (a 3xx is an answer, and for deliveries a failure), a timeout on
  every request, no proxy or .netrc from the environment.
- **No SSLContext shared across threads**: httpcore sets ALPN on the context at each
  connection, so a context shared across threads or event loops garbles rare
  handshakes. The engine's clients all live on its one event-loop thread and share that
  loop's context (loading the trust store per destination cost a fan-out to 50 new
  destinations over a second); any other user (test send, TLS check) makes its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import ssl
import time
import typing
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

from portal.fields import SecretUnavailable

# TLS 1.2 suites of the KPN Things safe list that OpenSSL implements (AEAD only).
SAFE_TLS12_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES256-CCM",
        "ECDHE-ECDSA-AES128-CCM",
        "ECDHE-ECDSA-AES256-CCM8",
        "ECDHE-ECDSA-AES128-CCM8",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-CHACHA20-POLY1305",
        "DHE-RSA-AES256-CCM",
        "DHE-RSA-AES128-CCM",
        "DHE-RSA-AES256-CCM8",
        "DHE-RSA-AES128-CCM8",
    ]
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class UrlRefused(Exception):
    """The URL or an address it resolves to is not allowed as a destination."""


def tls_context() -> ssl.SSLContext:
    """A new client SSLContext with the portal's TLS policy (one per client: see module doc)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if settings.DESTINATION_CA_BUNDLE:
        ctx.load_verify_locations(cafile=settings.DESTINATION_CA_BUNDLE)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(SAFE_TLS12_CIPHERS)
    return ctx


def address_refusal(address: str) -> str | None:
    """Why this address may not be a destination (None when it may)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = [
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ]
    for refused, reason in checks:
        if refused:
            return reason
    return None


def addresses_check(host: str, addresses: list[str]) -> list[str]:
    """The addresses, unless one of them is refused (then UrlRefused naming it)."""
    if not addresses:
        raise UrlRefused(f"{host} does not resolve to any address")
    if settings.DESTINATION_ALLOW_PRIVATE:
        return addresses
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            shown = host if host == address else f"{host} resolves to {address}, which"
            raise UrlRefused(f"{shown} is {reason}; destinations must be public")
    return addresses


def url_check(url: str) -> tuple[str, int]:
    """Scheme, user info and port rules of a URL about to be requested; returns (host, port)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        raise UrlRefused("only https:// URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("user name and password do not belong in the URL; use basic auth")
    try:
        port = parts.port or 443
    except ValueError:
        raise UrlRefused("the URL's port is not a number") from None
    if port not in settings.DESTINATION_ALLOWED_PORTS:
        allowed = ", ".join(str(p) for p in settings.DESTINATION_ALLOWED_PORTS)
        raise UrlRefused(f"port {port} is not allowed (allowed: {allowed})")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    return parts.hostname, port


def _unique(infos) -> list[str]:
    seen: list[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in seen:
            seen.append(sockaddr[0])
    return seen


def resolve_checked(host: str, port: int) -> list[str]:
    """Resolve now (blocking) and check every address; for the TLS check's plain sockets."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"{host} cannot be resolved: {exc.strerror}") from None
    return addresses_check(host, _unique(infos))


async def resolve_checked_async(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UrlRefused(f"{host} cannot be resolved: {exc.strerror}") from None
    return addresses_check(host, _unique(infos))


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's AnyIO stream with a cheap `is_readable`, and writes sent together.

    httpcore asks every pooled connection `is_readable` each time it assigns a request;
    AnyIO answers by building its whole attribute map (with getpeername calls) each
    time, which cost a quarter of a sender's CPU (py-spy). The raw socket is looked up
    once and kept.
    """

    # A socket found not readable is not asked again for this long (a server closing it
    # within that window is the same race every keep-alive client has).
    RECHECK_SECONDS = 0.02

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")
        self._quiet_until = 0.0
        self._pending: list[bytes] = []
        self._write_timeout: float | None = None

    async def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            await self._inner.write(data, self._write_timeout)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await self._flush()
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # httpcore writes a request's head and body separately and then reads the
        # answer: sending them together at that read makes one TLS record and one
        # syscall instead of two or three.
        if buffer:
            self._pending.append(buffer)
            self._write_timeout = timeout

    async def aclose(self) -> None:
        self._pending.clear()
        await self._inner.aclose()

    async def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            now = time.monotonic()
            if now < self._quiet_until:
                return False
            readable = self._socket is None or _socket_readable(self._socket)
            if not readable:
                self._quiet_until = now + self.RECHECK_SECONDS
            return readable
        if info == "socket":
            return self._socket
        return self._inner.get_extra_info(info)


def _socket_readable(sock: socket.socket) -> bool:
    # Readable while idle in the pool means the server closed it (or sent junk): not reusable.
    if sock.fileno() < 0:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host, then connects to the checked address itself."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self.connected_to: list[str] = []  # the last few addresses, for tests and debugging

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked_async(host, port)
        error: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            self.connected_to = [*self.connected_to[-9:], address]
            return _Stream(stream)
        assert error is not None
        raise error

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are not destinations")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool without its quadratic idle-connection count.

    On every request httpcore 1.0.9 walks its connections and, for each idle one,
    builds a list over all connections to compare with max_keepalive_connections: with
    a few dozen keep-alive connections that walk was a fifth of a sender's CPU
    (py-spy). Here max_keepalive_connections equals max_connections, so that pruning
    can never fire and is left out; the rest is httpcore's own logic.
    """

    def _assign_requests_to_connections(self) -> list:
        closing = []
        for connection in list(self._connections):
            if connection.is_closed():
                self._connections.remove(connection)
            elif connection.has_expired():
                self._connections.remove(connection)
                closing.append(connection)
        for pool_request in [r for r in self._requests if r.is_queued()]:
            origin = pool_request.request.url.origin
            available = next((c for c in self._connections if c.can_handle_request(origin) and c.is_available()), None)
            if available is not None:
                pool_request.assign_to_connection(available)
            elif len(self._connections) < self._max_connections:
                connection = self.create_connection(origin)
                self._connections.append(connection)
                pool_request.assign_to_connection(connection)
            else:
                idle = next((c for c in self._connections if c.is_idle()), None)
                if idle is not None:
                    self._connections.remove(idle)
                    closing.append(idle)
                    connection = self.create_connection(origin)
                    self._connections.append(connection)
                    pool_request.assign_to_connection(connection)
        return closing


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the guarded backend and the TLS policy (see module doc)."""

    def __init__(
        self, *, max_connections: int = 32, keepalive_expiry: float = 30.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        context = ssl_context or tls_context()
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        super().__init__(verify=context, trust_env=False, limits=limits, retries=0)
        self.network_backend = GuardedNetworkBackend()
        # httpx has no parameter for a network backend; its pool is rebuilt with ours.
        self._pool = _Pool(
            ssl_context=context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            retries=0,
            network_backend=self.network_backend,
        )


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: each delivery is a request of its own, never one carrying
    what a destination's Set-Cookie asked for (and reading every answer's cookies into a
    jar cost a tenth of a sender's CPU)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class GuardedClient(httpx.AsyncClient):
    """An AsyncClient that checks each URL's rules before sending it, and keeps no cookies."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cookies = _NoCookies()

    async def send(self, request: httpx.Request, **kwargs) -> httpx.Response:
        url_check(str(request.url))
        return await super().send(request, **kwargs)


def client_build(
    *, timeout: float = 5.0, max_connections: int = 32, ssl_context: ssl.SSLContext | None = None
) -> GuardedClient:
    """A new guarded async client; keep it for the life of its event loop and reuse it.

    `ssl_context` may be shared only by clients of one event loop (one thread): see the
    module docstring.
    """
    return GuardedClient(
        transport=GuardedTransport(max_connections=max_connections, ssl_context=ssl_context),
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        trust_env=False,
    )


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        current = current.__cause__ or current.__context__
    return None


def tls_reason(error: ssl.SSLError) -> str:
    """A sentence for a TLS failure that says what the destination must change."""
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or str(error)
        if error.verify_code in (18, 19):  # self-signed leaf, or self-signed in chain
            return f"certificate refused: {detail} (self-signed certificates are not accepted)"
        return f"certificate refused: {detail}"
    reason = (error.reason or "").upper()
    if reason in {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"} or (
        "VERSION" in reason
    ):
        return "TLS version refused: the server does not offer TLS 1.2 or higher"
    if reason in {"SSLV3_ALERT_HANDSHAKE_FAILURE", "NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE"}:
        return "TLS handshake failed: the server offers none of the safe cipher suites"
    return f"TLS handshake failed: {error.reason or error}"


def failure_describe(exc: BaseException, *, timeout: float | None = None) -> tuple[str, str]:
    """(error class, text) for a failed request; never holds a secret or a request header."""
    if isinstance(exc, UrlRefused):
        return "url_refused", str(exc)
    if isinstance(exc, SecretUnavailable):
        return "secret_unavailable", str(exc)
    if isinstance(exc, httpx.TimeoutException | TimeoutError | asyncio.TimeoutError):
        kind = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the answer",
            httpx.WriteTimeout: "sending",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "")
        limit = f" within {timeout:g} s" if timeout else ""
        return "timeout", f"no answer{limit}" + (f" ({kind})" if kind else "")
    ssl_error = _ssl_cause(exc)
    if ssl_error is not None:
        return "tls", tls_reason(ssl_error)
    if isinstance(exc, httpx.ConnectError):
        return "connection", f"cannot connect: {exc}" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "protocol", f"the server broke HTTP: {exc}"
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__.lower(), str(exc) or type(exc).__name__
    return "error", type(exc).__name__
