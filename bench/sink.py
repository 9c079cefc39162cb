"""A fast HTTPS keep-alive receiver for the bench that records when each request arrived.

Run as `python -m bench.sink --port P --control-port C --cert .. --key ..`. It answers
every complete request on /d/<name> with 200 at once (keep-alive), unless /d/<name> is
set to hang: then it reads the request and never answers, holding the connection until
the sender gives up. Where a secret is configured for a path it checks
Things-Message-Token like a KPN Things receiver and answers 401 when it does not match.

A plain-HTTP control port on loopback takes the configuration and hands the records to
bench/run.py as JSON: `POST /config {"secrets": {path: secret}, "hang": [path]}`,
`GET /records?after=N`, `POST /reset`, `GET /stats`.

Records are kept in memory as (monotonic receipt time, path, marker, status); receipt
time is when the last byte of the request arrived, on CLOCK_MONOTONIC, which every
process on the machine shares.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import signal
import ssl
import time
from urllib.parse import parse_qs, urlsplit

from bench.payloads import MARKER_RE

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
UNAUTHORIZED = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nbad token"
MAX_HEAD = 64 * 1024


class SinkState:
    def __init__(self) -> None:
        self.secrets: dict[str, bytes] = {}
        self.hang: set[str] = set()
        self.records: list[tuple[float, str, str, int]] = []
        self.open_connections = 0
        self.hanging_now = 0
        self.hung_total = 0
        self.connections_total = 0

    def verdict(self, path: str, headers: dict[bytes, bytes], body: bytes) -> int:
        secret = self.secrets.get(path)
        if secret is None:
            return 200
        token = headers.get(b"things-message-token", b"")
        expected = hashlib.sha256(body + secret).hexdigest().encode()
        return 200 if hmac.compare_digest(expected, token) else 401


def _parse_head(head: bytes) -> tuple[str, str, dict[bytes, bytes]]:
    lines = head.split(b"\r\n")
    method, target, _version = lines[0].split(b" ", 2)
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return method.decode(), target.decode("latin-1"), headers


class HttpProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 server side: Content-Length bodies, keep-alive, no chunked uploads."""

    def __init__(self, state: SinkState, handler, *, counted: bool = True) -> None:
        self.state = state
        self.handler = handler
        self.counted = counted  # the control port's own connections are not the sink's
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.hanging = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.counted:
            self.state.open_connections += 1
            self.state.connections_total += 1

    def connection_lost(self, exc) -> None:
        if self.counted:
            self.state.open_connections -= 1
        if self.hanging:
            self.state.hanging_now -= 1

    def data_received(self, data: bytes) -> None:
        if self.hanging:
            return
        arrived = time.monotonic()
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.transport.close()
                return
            method, target, headers = _parse_head(bytes(self.buf[:end]))
            if b"chunked" in headers.get(b"transfer-encoding", b""):
                self.transport.close()
                return
            total = end + 4 + int(headers.get(b"content-length", b"0"))
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            answer = self.handler(self, arrived, method, target, headers, body)
            if answer is None:  # hang: hold the connection, answer nothing
                self.hanging = True
                self.state.hanging_now += 1
                self.state.hung_total += 1
                return
            self.transport.write(answer)
            if headers.get(b"connection", b"").lower() == b"close":
                self.transport.close()
                return


def _sink_handler(state: SinkState):
    def handle(proto, arrived, method, target, headers, body):
        path = target.split("?", 1)[0]
        if path in state.hang:
            found = MARKER_RE.search(body)
            state.records.append((arrived, path, found.group().decode() if found else "", 0))
            return None
        status = state.verdict(path, headers, body)
        found = MARKER_RE.search(body)
        state.records.append((arrived, path, found.group().decode() if found else "", status))
        return OK if status == 200 else UNAUTHORIZED

    return handle


def _json_answer(payload: object, status: str = "200 OK") -> bytes:
    data = json.dumps(payload, separators=(",", ":")).encode()
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data


def _control_handler(state: SinkState):
    def handle(proto, arrived, method, target, headers, body):
        url = urlsplit(target)
        if method == "POST" and url.path == "/config":
            config = json.loads(body or b"{}")
            state.secrets.update({path: secret.encode() for path, secret in config.get("secrets", {}).items()})
            state.hang.update(config.get("hang", []))
            for path in config.get("unhang", []):
                state.hang.discard(path)
            return _json_answer({"secrets": len(state.secrets), "hang": sorted(state.hang)})
        if method == "POST" and url.path == "/reset":
            state.records.clear()
            return _json_answer({"records": 0})
        if method == "GET" and url.path == "/records":
            after = int(parse_qs(url.query).get("after", ["0"])[0])
            return _json_answer({"records": state.records[after:], "next": len(state.records)})
        if method == "GET" and url.path == "/stats":
            return _json_answer(
                {
                    "records": len(state.records),
                    "open_connections": state.open_connections,
                    "connections_total": state.connections_total,
                    "hanging_now": state.hanging_now,
                    "hung_total": state.hung_total,
                }
            )
        return _json_answer({"error": "not found"}, "404 Not Found")

    return handle


def sink_ssl_context(*, cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["http/1.1"])
    return context


async def sink_serve(*, host: str, port: int, control_port: int, cert: str, key: str) -> None:
    loop = asyncio.get_running_loop()
    state = SinkState()
    sink = await loop.create_server(
        lambda: HttpProtocol(state, _sink_handler(state)),
        host,
        port,
        ssl=sink_ssl_context(cert=cert, key=key),
        backlog=4096,
        reuse_address=True,
    )
    control = await loop.create_server(
        lambda: HttpProtocol(state, _control_handler(state), counted=False), host, control_port, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sink listening on https://{host}:{port} control http://{host}:{control_port}", flush=True)
    async with sink, control:
        await stop.wait()


class SinkControl:
    """bench/run.py's handle on a running sink, through its control port."""

    def __init__(self, control_url: str) -> None:
        import httpx

        self.client = httpx.Client(base_url=control_url, timeout=10.0)
        self.after = 0

    def configure(self, *, secrets: dict[str, str] | None = None, hang: list[str] | None = None) -> None:
        self.client.post("/config", json={"secrets": secrets or {}, "hang": hang or []}).raise_for_status()

    def reset(self) -> None:
        self.client.post("/reset").raise_for_status()
        self.after = 0

    def new_records(self) -> list[tuple[float, str, str, int]]:
        """Records that arrived since the last call (or the last reset)."""
        answer = self.client.get("/records", params={"after": self.after})
        answer.raise_for_status()
        data = answer.json()
        self.after = data["next"]
        return [tuple(record) for record in data["records"]]

    def stats(self) -> dict:
        return self.client.get("/stats").json()

    def close(self) -> None:
        self.client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    if not args.host.startswith("127.") and args.host != "::1":
        parser.error("the bench sink listens on loopback only")
    asyncio.run(
        sink_serve(host=args.host, port=args.port, control_port=args.control_port, cert=args.cert, key=args.key)
    )


if __name__ == "__main__":
    main()
