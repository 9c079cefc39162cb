"""A canary secret saved through every path never shows up anywhere it should not.

Canaries (unique, strong secrets) are set through:
- the REST API, over real HTTP to a gunicorn server (LOG_LEVEL=DEBUG): connection
  create, update and rotate (supplied and generated), a Standard Webhooks connection,
  destination create (secret, basic password), update (secret, OAuth2 client secret),
  rotate (supplied with grace, and generated), device create and update (auth_key),
  device CSV import with an auth_key column, and a test send;
- the portal's forms (in process, as the tenant's admin): connection create and
  rotate, destination create (secret and basic password) and rotate, device create;
- the admin (in process, as staff): the rotate action of connections and destinations,
  whose generated secrets are read back from the database and become canaries too
  (allowed only on the action's own answer page).

Then a message is ingested, its deliveries are announced and sent by a real Celery
worker (LOG_LEVEL=DEBUG) to the local HTTPS sink, and every place a secret could leak
is searched for every canary, raw and in the encodings it would take (its whsec_
form, HTTP Basic base64, URL-quoted): every API answer, every portal and admin page
and API read afterwards, the gunicorn log, the worker log, this process's log records,
the raw Celery messages in Redis, and a `pg_dump` of the test database.

Allowed, as SPEC 8 says: a generated secret in the one answer that generated it (API
or admin action), and
the whsec form of a new destination or Standard Webhooks key in the one create/rotate
answer. Nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import shutil
import subprocess
import uuid
from urllib.parse import quote

import httpx
import pytest
import redis
from django.conf import settings
from django.test import Client

from delivery.models import Delivery, Destination
from devices.models import Device
from ingest.models import Connection
from portal.logging import JsonFormatter
from portal.models import Role
from portal.secrets import whsec_form
from portal.services import api_key_create
from tests.security.html_forms import submit
from tests.support import celery_worker as worker_support
from tests.support.faults import WebServer, wait_until
from tests.support.sink import Answer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def canary(label: str) -> str:
    return f"Canary{label}-{uuid.uuid4().hex[:16]}-Xy9#!"


def forms(label: str, value: str, user: str = "u") -> dict[str, str]:
    """The ways a secret would be written if it leaked."""
    return {
        f"{label} (raw)": value,
        f"{label} (whsec_)": whsec_form(value),
        f"{label} (basic)": base64.b64encode(f"{user}:{value}".encode()).decode(),
        f"{label} (url-quoted)": quote(value, safe=""),
    }


@pytest.fixture
def collected_logs():
    """Every log record of this process, at DEBUG, formatted by the portal's JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest.fixture
def web(tmp_path, destination_settings, https_sink):
    env = worker_support.worker_env(tmp_path / "web-var", {"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"})
    server = WebServer(directory=tmp_path / "web", env=env, workers=1).start()
    yield server
    server.stop()


def test_a_canary_secret_set_through_every_path_never_appears_in_answers_pages_logs_tasks_or_the_dump(
    acme, alice, staff, https_sink, web, celery_worker, collected_logs, figures
):
    """Pass: no supplied canary, in any of its encodings, is in any answer, page, log
    line (server, worker, this process), Celery message or pg_dump; a generated secret
    and a whsec form appear only in the one answer that created them."""
    https_sink.responder = lambda r: (
        Answer(200, body=b'{"access_token": "tok", "expires_in": 3600}') if r.path == "/token" else None
    )
    secrets: dict[str, str] = {}  # label -> value, for every canary
    allowed_once: dict[str, str] = {}  # encoded value -> the answer (label) that may hold it
    answers: list[tuple[str, str]] = []  # (what, body) of every answer

    def supplied(label: str) -> str:
        secrets[label] = canary(label)
        return secrets[label]

    key = api_key_create(tenant=acme, role=Role.ADMIN).key
    api = httpx.Client(base_url=web.base + "/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def call(what: str, method: str, path: str, **kwargs) -> dict:
        response = api.request(method, path, **kwargs)
        answers.append((what, response.text))
        assert response.status_code < 300, (what, response.status_code, response.text)
        answer = response.json() if response.content else {}
        # What an answer may show once: a generated secret, and the whsec form of a new key.
        for name in ("secret", "generated_secret"):
            if isinstance(answer, dict) and answer.get(name):
                secrets[f"{what} (generated)"] = answer[name]
                allowed_once[answer[name]] = what
        if isinstance(answer, dict) and answer.get("whsec"):
            allowed_once[answer["whsec"]] = what
        return answer

    # -- the API -----------------------------------------------------------------------------
    conn = call(
        "conn create",
        "POST",
        "/connections/",
        json={"name": "c", "kind": "kpn-things", "secret": supplied("ApiConnCreate")},
    )
    call("conn patch", "PATCH", f"/connections/{conn['id']}/", json={"secret": supplied("ApiConnPatch")})
    call(
        "conn rotate",
        "POST",
        f"/connections/{conn['id']}/rotate-secret/",
        json={"secret": supplied("ApiConnRotate"), "grace_seconds": 3600},
    )
    generated = call(
        "conn rotate generated", "POST", f"/connections/{conn['id']}/rotate-secret/", json={"grace_seconds": 3600}
    )
    sw = call(
        "sw create",
        "POST",
        "/connections/",
        json={"name": "s", "kind": "standard-webhooks", "secret": supplied("ApiSwCreate")},
    )
    assert sw["whsec"] == whsec_form(secrets["ApiSwCreate"])

    dest = call(
        "dest create",
        "POST",
        "/destinations/",
        json={
            "name": "d",
            "url": https_sink.url("/in"),
            "secret": supplied("ApiDestCreate"),
            "signature": "both",
            "auth_type": "basic",
            "auth_username": "u",
            "auth_password": supplied("ApiDestPassword"),
            "headers": {"X-Static": "static-value"},
        },
    )
    assert dest["whsec"] == whsec_form(secrets["ApiDestCreate"])
    call("dest patch", "PATCH", f"/destinations/{dest['id']}/", json={"secret": supplied("ApiDestPatch")})
    rotated = call(
        "dest rotate",
        "POST",
        f"/destinations/{dest['id']}/rotate-secret/",
        json={"secret": supplied("ApiDestRotate"), "grace_seconds": 600},
    )
    assert rotated["whsec"] == whsec_form(secrets["ApiDestRotate"]) and "secret" not in rotated
    oauth = call(
        "oauth dest create",
        "POST",
        "/destinations/",
        json={
            "name": "o",
            "url": https_sink.url("/oauth-in"),
            "secret": supplied("ApiOauthDest"),
            "auth_type": "oauth2",
            "oauth2_token_url": https_sink.url("/token"),
            "oauth2_client_id": "portal",
            "oauth2_client_secret": supplied("ApiOauthTmp"),
        },
    )
    call(
        "oauth patch",
        "PATCH",
        f"/destinations/{oauth['id']}/",
        json={"oauth2_client_secret": supplied("ApiOauthPatch")},
    )
    call("oauth rotate generated", "POST", f"/destinations/{oauth['id']}/rotate-secret/", json={})
    device = call("device create", "POST", "/devices/", json={"serial": "CAN-1", "auth_key": supplied("ApiDevCreate")})
    call("device patch", "PATCH", f"/devices/{device['id']}/", json={"auth_key": supplied("ApiDevPatch")})
    csv = f"serial,auth_key\nCAN-2,{supplied('ApiDevCsv')}\n"
    call("device import", "POST", "/devices/import/", content=csv.encode(), headers={"Content-Type": "text/csv"})
    call("dest test send", "POST", f"/destinations/{dest['id']}/test/")

    # -- the portal's forms, as the tenant's admin ------------------------------------------
    portal = Client()
    portal.force_login(alice)

    def page(what: str, response) -> None:
        answers.append((what, response.content.decode(errors="replace")))
        assert response.status_code == 200, (what, response.status_code)

    page(
        "portal conn create",
        submit(
            portal,
            "/connections/new/",
            {"name": "pc", "kind": "kpn-things", "secret": supplied("PortalConnCreate")},
            having="secret",
        ),
    )
    portal_conn = Connection.objects.get(name="pc")
    page(
        "portal conn rotate",
        submit(
            portal,
            f"/connections/{portal_conn.pk}/",
            {"secret": supplied("PortalConnRotate"), "grace_seconds": "0"},
            having="grace_seconds",
        ),
    )
    page(
        "portal dest create",
        submit(
            portal,
            "/destinations/new/",
            {
                "name": "pd",
                "url": https_sink.url("/portal-in"),
                "secret": supplied("PortalDestCreate"),
                "auth_type": "basic",
                "auth_username": "u",
                "auth_password": supplied("PortalDestPassword"),
            },
            having="auth_password",
        ),
    )
    portal_dest = Destination.objects.get(name="pd")
    allowed_once[whsec_form(secrets["PortalDestCreate"])] = "portal dest create"
    page(
        "portal dest rotate",
        submit(
            portal,
            f"/destinations/{portal_dest.pk}/",
            {"secret": supplied("PortalDestRotate"), "grace_seconds": "0"},
            having="grace_seconds",
        ),
    )
    allowed_once[whsec_form(secrets["PortalDestRotate"])] = "portal dest rotate"
    page(
        "portal device create",
        submit(
            portal, "/devices/new/", {"serial": "CAN-3", "auth_key": supplied("PortalDevCreate")}, having="auth_key"
        ),
    )
    # Each path really set its canary (else the search below would prove nothing).
    assert Connection.objects.get(pk=portal_conn.pk).secret.reveal() == secrets["PortalConnRotate"]
    assert Destination.objects.get(pk=portal_dest.pk).auth_password.reveal() == secrets["PortalDestPassword"]
    assert Destination.objects.get(pk=portal_dest.pk).secret.reveal() == secrets["PortalDestRotate"]
    keys = {d.serial: d.auth_key.reveal() for d in Device.objects.all()}
    assert keys == {"CAN-1": secrets["ApiDevPatch"], "CAN-2": secrets["ApiDevCsv"], "CAN-3": secrets["PortalDevCreate"]}
    assert Destination.objects.get(pk=oauth["id"]).oauth2_client_secret.reveal() == secrets["ApiOauthPatch"]

    # -- the admin's rotate actions (generated, never shown) ------------------------------------
    admin = Client()
    admin.force_login(staff)
    for model, obj in (("ingest/connection", portal_conn), ("delivery/destination", portal_dest)):
        response = admin.post(
            f"/admin/{model}/", {"action": "rotate_secret", "_selected_action": [str(obj.pk)]}, follow=True
        )
        page(f"admin rotate {model}", response)
    # A generated secret may be shown in the one page that generated it (the connection
    # admin does, the destination admin does not), like the API's rotate answer.
    secrets["AdminConnRotate"] = Connection.objects.get(pk=portal_conn.pk).secret.reveal()
    secrets["AdminDestRotate"] = Destination.objects.get(pk=portal_dest.pk).secret.reveal()
    allowed_once[secrets["AdminConnRotate"]] = "admin rotate ingest/connection"
    allowed_once[secrets["AdminDestRotate"]] = "admin rotate delivery/destination"

    # -- a message in, its deliveries announced and sent by a real worker -----------------------
    body = json.dumps([{"bn": "urn:dev:SERIAL:CAN-1:", "n": "t", "v": 1}]).encode()
    current = generated["secret"]
    ingest = httpx.post(
        f"{web.base}/ingest/{conn['id']}/",
        content=body,
        timeout=30,
        headers={
            "Content-Type": "application/json",
            "Things-Message-Token": hashlib.sha256(body + current.encode()).hexdigest(),
        },
    )
    assert ingest.status_code == 200, ingest.text
    refused = httpx.post(
        f"{web.base}/ingest/{conn['id']}/",
        content=body + b" ",
        timeout=30,
        headers={"Content-Type": "application/json", "Things-Message-Token": "0" * 64},
    )
    assert refused.status_code == 401
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queued = broker.lrange("celery", 0, -1) + list(broker.hgetall("unacked").values())
    assert queued, "the doorbell rang into the broker"
    task_text = "\n".join(q.decode(errors="replace") for q in queued)
    task_text += "\n".join(
        base64.b64decode(json.loads(q)["body"]).decode(errors="replace") for q in queued if b'"body"' in q
    )
    worker = celery_worker(beat=True, extra_env={"LOG_LEVEL": "DEBUG", "DELIVERY_IDLE_SECONDS": "0.3"})
    wait_until(
        lambda: Delivery.objects.filter(status="succeeded").count() == Delivery.objects.count() > 0,
        timeout=60,
        what="the canary destinations' deliveries",
    )

    # -- everything a person or a script can read afterwards -----------------------------------
    reads: list[tuple[str, str]] = []
    for path in ("connections", "destinations", "devices", "messages", "deliveries", "readings"):
        listing = api.get(f"/{path}/")
        reads.append((f"api {path}", listing.text))
        for row in listing.json()["results"]:
            reads.append((f"api {path} {row['id']}", api.get(f"/{path}/{row['id']}/").text))
    pages = [
        "/",
        "/connections/",
        "/destinations/",
        "/devices/",
        "/deliveries/",
        "/messages/",
        "/members/",
        "/api-keys/",
    ]
    pages += [f"/connections/{c.pk}/" for c in Connection.objects.all()]
    pages += [f"/connections/{c.pk}/edit/" for c in Connection.objects.all()]
    pages += [f"/destinations/{d.pk}/" for d in Destination.objects.all()]
    pages += [f"/destinations/{d.pk}/edit/" for d in Destination.objects.all()]
    pages += [f"/devices/{d.pk}/" for d in Device.objects.all()]
    pages += [f"/devices/{d.pk}/edit/" for d in Device.objects.all()]
    pages += [f"/deliveries/{d.pk}/" for d in Delivery.objects.all()]
    for path in pages:
        reads.append((f"page {path}", portal.get(path).content.decode(errors="replace")))
    admin_pages = [
        f"/admin/{m}/"
        for m in (
            "ingest/connection",
            "delivery/destination",
            "devices/device",
            "delivery/delivery",
            "ingest/message",
            "portal/secretauditlog",
        )
    ]
    admin_pages += [f"/admin/ingest/connection/{c.pk}/change/" for c in Connection.objects.all()]
    admin_pages += [f"/admin/delivery/destination/{d.pk}/change/" for d in Destination.objects.all()]
    admin_pages += [f"/admin/devices/device/{d.pk}/change/" for d in Device.objects.all()]
    for path in admin_pages:
        response = admin.get(path)
        reads.append((f"admin {path}", response.content.decode(errors="replace")))
    web.stop()
    worker.stop()

    dump = ""
    if shutil.which("pg_dump"):
        dump = subprocess.run(
            ["pg_dump", "--no-owner", worker_support.test_database_url()],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        assert "ingest_connection" in dump

    places = {
        "gunicorn log": web.log(),
        "worker log": worker.log(),
        "this process's log": collected_logs.getvalue(),
        "Celery messages": task_text,
        "pg_dump": dump,
        **{f"read: {what}": text for what, text in reads},
        **{f"answer: {what}": text for what, text in answers},
    }
    leaks = []
    for label, value in secrets.items():
        for form_label, encoded in forms(label, value).items():
            for place, text in places.items():
                if encoded in text and allowed_once.get(encoded) != place.removeprefix("answer: "):
                    leaks.append(f"{form_label} in {place}")
    for encoded, answer in allowed_once.items():
        holders = [place for place, text in places.items() if encoded in text]
        if set(holders) - {f"answer: {answer}"}:
            leaks.append(f"a value shown once by '{answer}' is also in {holders}")
    # Controls: the searched places are the real ones, and the search finds an encoding
    # where it belongs (the receiver got the basic password, as it should).
    assert "deliveries_pump" in places["worker log"] and "/api/v1/destinations/" in places["gunicorn log"]
    received = "\n".join(f"{k}: {v}" for r in https_sink.requests for k, v in r.headers)
    assert forms("ApiDestPassword", secrets["ApiDestPassword"])["ApiDestPassword (basic)"] in received
    figures(canaries=len(secrets), places_searched=len(places), pages_and_reads=len(reads), dump_bytes=len(dump))
    assert dump, "pg_dump is not installed (.ci/run installs postgresql-client)"
    assert not leaks, "\n".join(leaks)
