"""The messages the bench sends: 6-record SenML packs, unique and signed the KPN Things way.

Each pack carries a marker string (`bench-<run>-<seq>`) as one of its six records, so the
sink can tell which ingested message a delivery came from whatever payload format the
destination uses.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MARKER_RE = re.compile(rb"bench-[0-9a-f]{6}-[0-9]{8}")


def kpn_token(*, body: bytes, secret: str) -> str:
    """KPN Things' Things-Message-Token: lowercase hex SHA-256 of body bytes + secret."""
    return hashlib.sha256(body + secret.encode()).hexdigest()


def kpn_token_valid(*, body: bytes, secret: str, token: str) -> bool:
    return hmac.compare_digest(kpn_token(body=body, secret=secret), token)


def marker(*, run: str, seq: int) -> str:
    return f"bench-{run}-{seq:08d}"


def senml_pack(*, run: str, seq: int, device: int, base_time: int) -> bytes:
    """A compact 6-record SenML pack from device number `device`, like KPN Things sends."""
    dev_eui = f"0059AC{device:010X}"
    records = [
        {"bn": f"urn:dev:DEVEUI:{dev_eui}:", "bt": base_time + seq % 3600, "n": "temperature", "u": "Cel", "v": 21.5},
        {"n": "humidity", "u": "%RH", "v": 40 + seq % 50},
        {"n": "battery", "u": "%EL", "v": 87},
        {"n": "latitude", "u": "lat", "v": 52.0907},
        {"n": "longitude", "u": "lon", "v": 5.1214},
        {"n": "bench", "vs": marker(run=run, seq=seq)},
    ]
    return json.dumps(records, separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedBody:
    seq: int
    body: bytes
    token: str


def signed_bodies(
    *, run: str, start: int, count: int, secret: str, devices: int, base_time: int
) -> Iterator[SignedBody]:
    for seq in range(start, start + count):
        body = senml_pack(run=run, seq=seq, device=seq % devices, base_time=base_time)
        yield SignedBody(seq=seq, body=body, token=kpn_token(body=body, secret=secret))


def wrk_data_write(*, path: Path, bodies: Iterator[SignedBody]) -> int:
    """Write `<token> <body>` lines for bench/ingest.lua; returns how many."""
    n = 0
    with path.open("wb") as out:
        for item in bodies:
            if b"\n" in item.body or b" " in item.body:
                raise ValueError("wrk data lines need compact bodies")
            out.write(item.token.encode() + b" " + item.body + b"\n")
            n += 1
    return n
