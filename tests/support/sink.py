"""A real local HTTPS (or HTTP) server that records every request and answers as scripted.

It runs an asyncio server in a thread of the test process, speaks HTTP/1.1 with
keep-alive, and records each request as a `Recorded` (method, path, query, headers,
body, time of receipt). Answers are chosen, in this order, by:

1. `responder(recorded) -> Answer | None`, when set (e.g. an OAuth2 token endpoint, or
   a receiver that checks tokens);
2. the scripted answers for the request's path prefix (`script(...)`), used once each;
3. the default answer (`default`, 200 unless changed).

An `Answer` can carry a status, headers (Retry-After, Location, ...), a body, a delay,
or `hang=True` (no answer until the client gives up or the sink stops). The TLS side is
configurable (`tls_max_version`, `ciphers`) to play old or weak servers.

    with HttpsSink(cert=pki.valid) as sink:
        sink.script(Answer(500), Answer(200))
        ... send to sink.url("/hook") ...
        [first, second] = sink.wait_for(2)
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from tests.support.tls import ServerCert

REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    410: "Gone",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    hang: bool = False


@dataclass
class Recorded:
    method: str
    target: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    received_at: float
    peer: str

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def header_map(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers}

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)


class HttpsSink:
    """See the module docstring. `cert=None` serves plain HTTP."""

    def __init__(
        self,
        *,
        cert: ServerCert | None,
        host: str = "127.0.0.1",
        tls_max_version: ssl.TLSVersion | None = None,
        tls_min_version: ssl.TLSVersion | None = None,
        ciphers: str | None = None,
    ) -> None:
        self.host = host
        self.port = 0
        self.default: Answer = Answer()
        self.responder: Callable[[Recorded], Answer | None] | None = None
        self._cert = cert
        self._tls_max = tls_max_version
        self._tls_min = tls_min_version
        self._ciphers = ciphers
        self._requests: list[Recorded] = []
        self._scripts: list[tuple[str, deque[Answer]]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._stopping: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections_opened = 0

    # -- life cycle -------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self._cert is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self._cert.cert_path, self._cert.key_path)
        if self._tls_max is not None and self._tls_max < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 refuses TLS < 1.2 at the default security level; this server is old on purpose.
            ctx.set_ciphers(self._ciphers or "DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = self._tls_min or ssl.TLSVersion.TLSv1
                ctx.maximum_version = self._tls_max
            return ctx
        elif self._ciphers:
            ctx.set_ciphers(self._ciphers)
        if self._tls_min is not None:
            ctx.minimum_version = self._tls_min
        if self._tls_max is not None:
            ctx.maximum_version = self._tls_max
        return ctx

    @property
    def _legacy(self) -> bool:
        # asyncio drops the TLS alert of a failed handshake (it force-closes the transport),
        # so servers that exist to refuse handshakes run on blocking sockets instead.
        return self._cert is not None and (self._tls_max is not None or self._ciphers is not None)

    def _start_legacy(self) -> HttpsSink:
        import socketserver

        sink = self
        context = self._ssl_context()
        assert context is not None

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sink.connections_opened += 1
                try:
                    with context.wrap_socket(self.request, server_side=True) as tls:
                        tls.settimeout(10)
                        data = b""
                        while b"\r\n\r\n" not in data:
                            chunk = tls.recv(65536)
                            if not chunk:
                                return
                            data += chunk
                        head, _, body = data.partition(b"\r\n\r\n")
                        lines = head.decode("latin-1").split("\r\n")
                        method, target, _ = lines[0].split(" ", 2)
                        headers = [(k.strip(), v.strip()) for k, _, v in (x.partition(":") for x in lines[1:] if x)]
                        length = int({k.lower(): v for k, v in headers}.get("content-length", "0") or 0)
                        while len(body) < length:
                            chunk = tls.recv(65536)
                            if not chunk:
                                break
                            body += chunk
                        path, _, query = target.partition("?")
                        recorded = Recorded(method, target, path, query, headers, body, time.time(), "")
                        with sink._arrived:
                            sink._requests.append(recorded)
                            sink._arrived.notify_all()
                        answer = sink._choose(recorded)
                        reason = REASONS.get(answer.status, "Status")
                        tls.sendall(
                            f"HTTP/1.1 {answer.status} {reason}\r\nContent-Length: {len(answer.body)}\r\n"
                            "Connection: close\r\n\r\n".encode()
                            + answer.body
                        )
                except (ssl.SSLError, OSError, ValueError):
                    return

        server = socketserver.ThreadingTCPServer((self.host, 0), Handler)
        server.daemon_threads = True
        self._legacy_server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name=f"sink-{id(self)}", daemon=True)
        self._thread.start()
        return self

    def start(self) -> HttpsSink:
        if self._legacy:
            return self._start_legacy()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._stopping = asyncio.Event()
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve, self.host, 0, ssl=self._ssl_context(), backlog=512)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name=f"sink-{id(self)}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        legacy = getattr(self, "_legacy_server", None)
        if legacy is not None:
            legacy.shutdown()
            legacy.server_close()
            return
        loop = self._loop
        if loop is None or not loop.is_running():
            return

        async def shutdown() -> None:
            assert self._stopping is not None and self._server is not None
            self._stopping.set()
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> HttpsSink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests use ---------------------------------------------------------------

    def url(self, path: str = "/hook", *, host: str | None = None) -> str:
        scheme = "https" if self._cert is not None else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def script(self, *answers: Answer, path: str = "/") -> None:
        """Answer the next requests whose path starts with `path` with these, in order, once each."""
        with self._lock:
            self._scripts.append((path, deque(answers)))

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(self, count: int, timeout: float = 15.0, path: str | None = None) -> list[Recorded]:
        """Block until at least `count` requests (to `path` when given) arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                got = [r for r in self._requests if path is None or r.path.startswith(path)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"sink got {len(got)} of {count} requests within {timeout} s")
                self._arrived.wait(left)

    # -- the server -------------------------------------------------------------------

    def _choose(self, recorded: Recorded) -> Answer:
        if self.responder is not None:
            answer = self.responder(recorded)
            if answer is not None:
                return answer
        with self._lock:
            for prefix, queue in self._scripts:
                if queue and recorded.path.startswith(prefix):
                    return queue.popleft()
        return self.default

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections_opened += 1
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _version = lines[0].split(" ", 2)
                headers = []
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers.append((name.strip(), value.strip()))
                lower = {k.lower(): v for k, v in headers}
                length = int(lower.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                path, _, query = target.partition("?")
                recorded = Recorded(
                    method=method,
                    target=target,
                    path=path,
                    query=query,
                    headers=headers,
                    body=body,
                    received_at=time.time(),
                    peer=str(peer[0]) if peer else "",
                )
                with self._arrived:
                    self._requests.append(recorded)
                    self._arrived.notify_all()
                answer = self._choose(recorded)
                if answer.hang:
                    assert self._stopping is not None
                    # Wait until the client gives up (EOF) or the sink stops.
                    eof = asyncio.ensure_future(reader.read(1))
                    stop = asyncio.ensure_future(self._stopping.wait())
                    await asyncio.wait({eof, stop}, return_when=asyncio.FIRST_COMPLETED)
                    eof.cancel()
                    stop.cancel()
                    return
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                status_line = f"HTTP/1.1 {answer.status} {REASONS.get(answer.status, 'Status')}\r\n"
                out_headers = {"Content-Type": "text/plain", **answer.headers, "Content-Length": str(len(answer.body))}
                head_out = status_line + "".join(f"{k}: {v}\r\n" for k, v in out_headers.items()) + "\r\n"
                writer.write(head_out.encode("latin-1") + answer.body)
                await writer.drain()
                if lower.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # a client that went away, or the sink stopping
        finally:
            self._writers.discard(writer)
            writer.close()
