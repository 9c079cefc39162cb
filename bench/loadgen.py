"""A small asyncio HTTP/1.1 client for paced and burst ingest, recording when each 2xx came back.

wrk measures ingest throughput; this client is for the delivery scenarios, where each
message's answer time must be paired with its delivery's receipt at the sink. It is
deliberately minimal (plain HTTP on loopback, Content-Length bodies, keep-alive when the
server allows it) so that at a few hundred requests a second it takes little CPU from
the system under test.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.payloads import MARKER_RE, SignedBody


@dataclass
class Sent:
    seq: int
    marker: str
    target: str
    sent_at: float
    answered_at: float
    status: int
    message_id: str


class Loopback:
    """A pool of keep-alive connections to one loopback HTTP server."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not (url.hostname or "").startswith("127."):
            raise ValueError("the bench load generator talks to plain HTTP on loopback only")
        self.host = url.hostname
        self.port = url.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def _connection(self):
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        for attempt in (1, 2):
            reader, writer = await self._connection()
            try:
                writer.write(request)
                raw_head = await reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                # A kept-alive connection the server had already closed: retry once on a new one.
                writer.close()
                if attempt == 2:
                    raise
                continue
            lines = raw_head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            answer = await reader.readexactly(int(fields.get("content-length", "0")))
            if fields.get("connection", "").lower() == "close":
                writer.close()
            else:
                self.idle.append((reader, writer))
            return status, answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()


def _message_id(answer: bytes) -> str:
    try:
        return str(json.loads(answer).get("message_id", ""))
    except (ValueError, AttributeError):
        return ""


async def _send(client: Loopback, path: str, item: SignedBody) -> Sent:
    found = MARKER_RE.search(item.body)
    sent_at = time.monotonic()
    try:
        status, answer = await client.post(
            path, item.body, {"Content-Type": "application/json", "Things-Message-Token": item.token}
        )
    except (OSError, asyncio.IncompleteReadError):
        status, answer = 0, b""
    return Sent(
        seq=item.seq,
        marker=found.group().decode() if found else "",
        target=path,
        sent_at=sent_at,
        answered_at=time.monotonic(),
        status=status,
        message_id=_message_id(answer),
    )


NOT_SENT = -1


async def paced_post(
    *, base_url: str, items: list[tuple[str, SignedBody]], rate: float, max_waiting: int = 200
) -> list[Sent]:
    """Send (path, body) items at `rate` a second on an open-loop schedule.

    When `max_waiting` requests are already unanswered the server has fallen far behind:
    the next items are skipped (status NOT_SENT) rather than piled on.
    """
    client = Loopback(base_url)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []
    skipped = []
    waiting = 0

    async def send(path: str, item: SignedBody) -> Sent:
        nonlocal waiting
        waiting += 1
        try:
            return await _send(client, path, item)
        finally:
            waiting -= 1

    for i, (path, item) in enumerate(items):
        wait = start + i / rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if waiting >= max_waiting:
            now = time.monotonic()
            skipped.append(Sent(item.seq, "", path, now, now, NOT_SENT, ""))
            continue
        tasks.append(asyncio.create_task(send(path, item)))
    sent = await asyncio.gather(*tasks)
    client.close()
    return [*sent, *skipped]


async def burst_post(
    *, base_url: str, items: list[tuple[str, SignedBody]], concurrency: int, seconds: float | None = None
) -> list[Sent]:
    """Send (path, body) items as fast as `concurrency` requests in flight allow, for at most `seconds`."""
    client = Loopback(base_url)
    queue = list(reversed(items))
    sent: list[Sent] = []
    deadline = time.monotonic() + seconds if seconds else math.inf

    async def lane() -> None:
        while queue and time.monotonic() < deadline:
            path, item = queue.pop()
            sent.append(await _send(client, path, item))

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    client.close()
    return sent
