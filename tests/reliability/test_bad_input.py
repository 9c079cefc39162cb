"""Bad input to the webhook, over real HTTP: every error case of SPEC section 5 gets its
documented answer and changes nothing else; oversized and slow bodies are cut off.

The portal is served by a real gunicorn (deploy/gunicorn.conf.py, two sync workers,
INGEST_MAX_BODY_BYTES 64 KiB, a 10 s worker timeout) against the test database, for
the whole module; each test makes its rows with `transaction=True` so the server sees
them. Before and after each request the test counts every table ingest could touch
(messages, readings, devices, deliveries, audit log) and snapshots the connections.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.conf import settings

from delivery.models import Delivery
from devices.models import Device, Reading
from ingest.models import AuthMode, Connection, ConnectionKind, Message
from portal.fields import SealedSecret
from portal.models import SecretAuditLog
from portal.secrets import Actor, secret_set, whsec_form
from tests.reliability.factories import destination_make
from tests.support import celery_worker as worker_support
from tests.support.faults import WebServer, portal_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = "Bad-Input-Connection-Secret-0123456789!"
MAX_BODY = 64 * 1024
DEVEUI = "0059AC0000BAD001"
PACK = json.dumps([{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", "n": "temperature", "u": "Cel", "v": 21.5}]).encode()


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory):
    directory = tmp_path_factory.mktemp("bad-input-web")
    env = portal_env(
        database_url=worker_support.test_database_url(),
        broker_url=settings.CELERY_BROKER_URL,
        var_dir=directory / "var",
        INGEST_MAX_BODY_BYTES=str(MAX_BODY),
        GUNICORN_TIMEOUT="10",
        LOG_FORMAT="json",
    )
    server = WebServer(directory=directory, env=env, workers=2).start()
    yield server
    server.stop()


@pytest.fixture
def http(web):
    with httpx.Client(base_url=web.base, timeout=30) as client:
        yield client


@dataclass
class Connections:
    kpn: Connection
    plugged: Connection
    webhooks: Connection
    basic: Connection
    disabled: Connection
    unreadable: Connection
    others: dict = field(default_factory=dict)


def _connection(tenant, kind: str, *, secret: str | None = SECRET, **fields) -> Connection:
    connection = Connection.objects.create(tenant=tenant, name=f"{kind} {uuid.uuid4().hex[:4]}", kind=kind, **fields)
    if secret:
        secret_set(obj=connection, field="secret", value=secret, actor=Actor(label="bad input"))
    return Connection.objects.get(pk=connection.pk)


@pytest.fixture
def conns(acme) -> Connections:
    unreadable = _connection(acme, ConnectionKind.KPN_THINGS)
    # A secret sealed with a key the server does not hold: it must fail closed.
    Connection.objects.filter(pk=unreadable.pk).update(secret=SealedSecret("gAAAAAnot-a-token-any-key-opens"))
    destination_make(acme, "https://receiver.example/in")  # so an accepted message would make a delivery
    return Connections(
        kpn=_connection(acme, ConnectionKind.KPN_THINGS),
        plugged=_connection(acme, ConnectionKind.KPN_THINGS, plug_uuid=uuid.uuid4()),
        webhooks=_connection(acme, ConnectionKind.STANDARD_WEBHOOKS),
        basic=_connection(acme, ConnectionKind.DIGITAL_MATTER, auth_mode=AuthMode.BASIC, username="oem"),
        disabled=_connection(acme, ConnectionKind.KPN_THINGS, enabled=False),
        unreadable=Connection.objects.get(pk=unreadable.pk),
    )


def kpn_token(body: bytes, secret: str = SECRET) -> str:
    return hashlib.sha256(body + secret.encode()).hexdigest()


def kpn(body: bytes, **extra: str) -> dict:
    return {"Content-Type": "application/json", "Things-Message-Token": kpn_token(body), **extra}


def sw(body: bytes, *, msg_id: str | None = None, at: datetime | None = None, secret: str = SECRET) -> dict:
    from standardwebhooks import Webhook

    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(whsec_form(secret)).sign(msg_id, at, body.decode()),
    }


def state() -> dict:
    counts = {m.__name__: m.objects.count() for m in (Message, Reading, Device, Delivery, SecretAuditLog)}
    connections = {
        str(c["id"]): c for c in Connection.objects.values("id", "enabled", "secret", "previous_secret", "updated_at")
    }
    return {"counts": counts, "connections": connections}


@dataclass(frozen=True)
class Case:
    method: str
    path: Callable[[Connections], str]
    headers: Callable[[bytes], dict]
    body: bytes
    status: int
    says: str
    stores_invalid: bool = False


def _ingest(attr: str, suffix: str = "") -> Callable[[Connections], str]:
    return lambda c: f"/ingest/{getattr(c, attr).pk}/{suffix}"


def _basic(user: str, password: str) -> Callable[[bytes], dict]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return lambda body: {"Content-Type": "application/json", "Authorization": f"Basic {token}"}


NOT_A_PACK = {
    "an object": b'{"bn": "urn:dev:DEVEUI:1:", "v": 1}',
    "an empty array": b"[]",
    "a record without value or sum": b'[{"bn": "urn:dev:DEVEUI:0059AC0000BAD001:", "n": "t"}]',
    "a bad name": b'[{"bn": "urn:dev:DEVEUI:0059AC0000BAD001:", "n": "bad name!", "v": 1}]',
    "a must-understand field": b'[{"bn": "urn:dev:DEVEUI:0059AC0000BAD001:", "n": "t", "v": 1, "x_": 1}]',
    "a string value as a number": b'[{"bn": "urn:dev:DEVEUI:0059AC0000BAD001:", "n": "t", "v": "1"}]',
}
CASES: dict[str, Case] = {
    "401 wrong token": Case(
        "POST",
        _ingest("kpn"),
        lambda b: {
            "Content-Type": "application/json",
            "Things-Message-Token": kpn_token(b, "Wrong-Secret-0123456789-abcdefgh!"),
        },
        PACK,
        401,
        "not authenticated",
    ),
    "401 missing token": Case(
        "POST", _ingest("kpn"), lambda b: {"Content-Type": "application/json"}, PACK, 401, "not authenticated"
    ),
    "401 token of another body": Case("POST", _ingest("kpn"), lambda b: kpn(b + b" "), PACK, 401, "not authenticated"),
    "401 missing plug uuid": Case("POST", _ingest("plugged"), kpn, PACK, 401, "Things-Plug-UUID"),
    "401 wrong plug uuid": Case(
        "POST",
        _ingest("plugged"),
        lambda b: kpn(b, **{"Things-Plug-UUID": str(uuid.uuid4())}),
        PACK,
        401,
        "Things-Plug-UUID",
    ),
    "401 bad webhook signature": Case(
        "POST",
        _ingest("webhooks"),
        lambda b: sw(b, secret="Another-Secret-0123456789-abcdefgh!"),
        PACK,
        401,
        "not authenticated",
    ),
    "401 stale webhook timestamp": Case(
        "POST",
        _ingest("webhooks"),
        lambda b: sw(b, at=datetime.now(UTC) - timedelta(minutes=6)),
        PACK,
        401,
        "not authenticated",
    ),
    "401 wrong basic password": Case(
        "POST", _ingest("basic"), _basic("oem", "Wrong-Password-0123456789-abcdefgh!"), PACK, 401, "not authenticated"
    ),
    "401 wrong basic user": Case("POST", _ingest("basic"), _basic("mallory", SECRET), PACK, 401, "not authenticated"),
    "404 unknown connection": Case("POST", lambda c: f"/ingest/{uuid.uuid4()}/", kpn, PACK, 404, "no such connection"),
    "404 not a connection id": Case("POST", lambda c: "/ingest/not-a-uuid/", kpn, PACK, 404, "no such connection"),
    "403 disabled connection": Case("POST", _ingest("disabled"), kpn, PACK, 403, "disabled"),
    "405 PUT": Case("PUT", _ingest("kpn"), kpn, PACK, 405, "POST"),
    "405 DELETE": Case("DELETE", _ingest("kpn"), kpn, PACK, 405, "POST"),
    "405 PATCH": Case("PATCH", _ingest("kpn"), kpn, PACK, 405, "POST"),
    "405 GET without a body": Case("GET", _ingest("kpn"), lambda b: {}, b"", 405, "body"),
    "413 over INGEST_MAX_BODY_BYTES": Case(
        "POST", _ingest("kpn"), kpn, b"[" + b" " * MAX_BODY + b"]", 413, "larger than"
    ),
    "415 declared as XML": Case(
        "POST", _ingest("kpn"), lambda b: {**kpn(b), "Content-Type": "application/xml"}, PACK, 415, "not JSON"
    ),
    "400 not JSON": Case("POST", _ingest("kpn"), kpn, b"temperature=21.5", 400, "not valid JSON"),
    "400 not UTF-8": Case("POST", _ingest("kpn"), kpn, b"\xff\xfe[\x00", 400, "JSON"),
    "400 NaN is not JSON": Case("POST", _ingest("kpn"), kpn, b'[{"n":"t","v":NaN}]', 400, "JSON"),
    "400 empty body": Case("POST", _ingest("kpn"), kpn, b"", 400, "empty"),
    "400 nested 30k deep": Case("POST", _ingest("kpn"), kpn, b"[" * 30_000 + b"]" * 30_000, 400, "JSON"),
    "503 a secret no key opens": Case("POST", _ingest("unreadable"), kpn, PACK, 503, "send it again later"),
    **{
        f"422 {label}": Case("POST", _ingest("kpn"), kpn, body, 422, "", stores_invalid=True)
        for label, body in NOT_A_PACK.items()
    },
}


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_each_ingest_error_gets_its_documented_answer_and_changes_nothing_else(name, conns, http):
    """Pass: the status of SPEC 5 with a JSON body saying what happened (503 with
    Retry-After); nothing stored, except for 422, which keeps exactly one `invalid`
    message with its reason and raw body and nothing else (no readings, device or delivery)."""
    case = CASES[name]
    before = state()

    response = http.request(case.method, case.path(conns), content=case.body, headers=case.headers(case.body))

    assert response.status_code == case.status, response.text
    answer = response.json()
    after = state()
    assert after["connections"] == before["connections"], "a connection changed"
    if case.stores_invalid:
        message = Message.objects.get(pk=answer["message_id"])
        assert (message.status, bytes(message.body)) == ("invalid", case.body)
        assert answer["error"] and message.error == answer["error"]
        before["counts"]["Message"] += 1
    else:
        assert case.says in answer["error"], answer
    if case.status == 503:
        assert int(response.headers["Retry-After"]) > 0
    assert after["counts"] == before["counts"]


def test_a_duplicate_body_answers_the_first_message_id_and_stores_nothing_more(conns, http):
    """Pass: the same signed body twice → 200 both times with the same message_id; one
    message, its readings and deliveries once."""
    first = http.post(f"/ingest/{conns.kpn.pk}/", content=PACK, headers=kpn(PACK))
    assert first.status_code == 200, first.text
    before = state()
    again = http.post(f"/ingest/{conns.kpn.pk}/", content=PACK, headers=kpn(PACK))
    assert again.status_code == 200 and again.json()["message_id"] == first.json()["message_id"]
    assert again.json().get("duplicate") is True
    assert state() == before


def test_a_duplicate_webhook_id_answers_the_first_message_id_even_with_another_body(conns, http):
    """Pass: a second request with the same webhook-id (re-signed, new body) → 200 with the
    first message_id; nothing more stored."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    first = http.post(f"/ingest/{conns.webhooks.pk}/", content=PACK, headers=sw(PACK, msg_id=msg_id))
    assert first.status_code == 200, first.text
    before = state()
    other = PACK.replace(b"21.5", b"22.5")
    again = http.post(f"/ingest/{conns.webhooks.pk}/", content=other, headers=sw(other, msg_id=msg_id))
    assert again.status_code == 200 and again.json()["message_id"] == first.json()["message_id"]
    assert state() == before


def test_a_chunked_body_over_the_limit_is_refused_with_413_and_nothing_stored(conns, http):
    """Pass: a body sent chunked (no Content-Length) past INGEST_MAX_BODY_BYTES → 413; nothing stored."""
    body = b"[" + b" " * (MAX_BODY * 2) + b"]"

    def chunks():
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = state()
    response = http.post(f"/ingest/{conns.kpn.pk}/", content=chunks(), headers=kpn(body))
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    assert state() == before


def _raw_request(web, path: str, headers: dict, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def test_a_body_that_stalls_half_way_is_never_stored_and_other_senders_are_served_meanwhile(conns, web, http):
    """Pass: a request that sends half its declared body then stalls is cut off by the
    server (its connection closed within the worker timeout + a margin) and stores
    nothing; while it hangs, signed requests from another sender get 200."""
    body = json.dumps([{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", "n": "slow", "v": 1}]).encode()
    before = state()
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=5)
    sock.sendall(_raw_request(web, f"/ingest/{conns.kpn.pk}/", {**kpn(body), "Content-Length": str(len(body))}, b""))
    for byte in body[: len(body) // 2]:
        sock.sendall(bytes([byte]))
        time.sleep(0.02)
    stalled_at = time.monotonic()

    served = []
    for value in range(3):
        other = json.dumps([{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", "n": "fast", "v": value}]).encode()
        served.append(http.post(f"/ingest/{conns.kpn.pk}/", content=other, headers=kpn(other)).status_code)

    sock.settimeout(30)
    try:
        while sock.recv(4096):
            pass  # an error answer, if the server sends one, then the end of the connection
        cut = True
    except ConnectionResetError:
        cut = True
    except TimeoutError:
        cut = False
    cut_after = time.monotonic() - stalled_at
    sock.close()
    assert served == [200, 200, 200]
    assert cut and cut_after <= 10 + 10, f"the stalled request held its connection for {cut_after:.0f} s"
    assert Message.objects.filter(body=body).count() == 0
    after = state()
    assert after["counts"]["Message"] == before["counts"]["Message"] + 3


def _ingest_counter(http, *, kind: str, status: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if (
            line.startswith("portal_ingest_messages_total{")
            and f'kind="{kind}"' in line
            and f'status="{status}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_refused_request_is_counted_and_logged_with_its_source_address_never_with_a_token_or_secret(conns, web, http):
    """Pass: a 401 moves the `unauthorized` count of its kind by one and leaves one log
    line naming the connection and the source address; neither the token sent nor the
    connection's secret is in the server's log."""
    wrong_token = uuid.uuid4().hex * 2
    before = _ingest_counter(http, kind="kpn-things", status="unauthorized")

    response = http.post(
        f"/ingest/{conns.kpn.pk}/",
        content=PACK,
        headers={"Content-Type": "application/json", "Things-Message-Token": wrong_token},
    )

    assert response.status_code == 401
    assert _ingest_counter(http, kind="kpn-things", status="unauthorized") == before + 1
    lines = [line for line in web.log().splitlines() if "ingest refused" in line and str(conns.kpn.pk) in line]
    assert len(lines) == 1 and "127.0.0.1" in lines[0], lines
    assert wrong_token not in web.log() and SECRET not in web.log()
