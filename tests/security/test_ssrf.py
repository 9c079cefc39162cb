"""SSRF: a destination may never make the portal connect to this machine or a private network.

The corpus holds every way of writing a non-public address that the URL guard must
see through: loopback v4/v6, RFC 1918, CGNAT (100.64/10), link-local and the cloud
metadata address, IPv4-mapped IPv6, decimal/hex/octal/short IPv4 forms, the
unspecified address, multicast, and names that resolve to loopback.

At save time (API create and update, the API's OAuth2 token URL, the portal's form and
the admin) each is refused with an error on its field and nothing is stored.

At send time — rows written straight to the database, as if saved before a rule
existed or re-pointed by DNS — each is tried through every outbound path (a delivery
by the engine, the test send, the TLS check, an OAuth2 token fetch) with its port set
to a canary listening on 127.0.0.1 and ::1. The canary must see no connection, and a
connect tripwire (a Python audit hook) refuses before any packet leaves any connection
to an address off this machine, so a broken guard fails the test without sending
traffic to a private or metadata address. A control case with
DESTINATION_ALLOW_PRIVATE=true shows the canary does see a connection when allowed.
"""

from __future__ import annotations

import socket

import pytest
from django.test import Client

from delivery.models import Delivery, Destination
from delivery.pump import deliveries_run
from portal.models import Role
from portal.secrets import Actor, secret_set
from tests.reliability.factories import destination_make, messages_make
from tests.support.faults import Canary, connect_tripwire

pytestmark = pytest.mark.django_db

LOOPBACK_NAMES = ["localhost", "LOCALHOST", "localhost.", "api.localhost"]
ADDRESSES = [
    "127.0.0.1",
    "127.1.2.3",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "2130706433",
    "0x7f000001",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "127.1",
    "0.0.0.0",
    "0",
    "[::]",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "100.127.255.254",
    "169.254.169.254",
    "[::ffff:169.254.169.254]",
    "[::ffff:10.0.0.1]",
    "[fe80::1]",
    "[fd00::1]",
    "[fd00:ec2::254]",
    "224.0.0.1",
    "198.18.0.1",
]


def _hostname_on_loopback() -> list[str]:
    """This machine's own name, when it resolves only to loopback (it does in containers)."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, 443)}
    except OSError:
        return []
    return [name] if addresses and all(a.startswith("127.") or a == "::1" for a in addresses) else []


CORPUS = ADDRESSES + LOOPBACK_NAMES
SEND_CORPUS = CORPUS + _hostname_on_loopback()
# Strong enough for the secret rules.
SECRET = "Ssrf-Test-Destination-Secret-0123!"


@pytest.fixture
def strict(settings):
    settings.DESTINATION_ALLOW_PRIVATE = False
    settings.DESTINATION_ALLOWED_PORTS = [443]
    return settings


@pytest.fixture
def canary(strict):
    listener = Canary().start()
    strict.DESTINATION_ALLOWED_PORTS = [443, listener.port]
    yield listener
    listener.stop()


def _refused(error_class: str, error: str) -> bool:
    """Refused before connecting: by the URL guard, or by httpx's own URL parser (it
    rejects some numeric forms, e.g. octal 0177.0.0.1, as invalid URLs)."""
    return error_class == "url_refused" or (error_class == "error" and error == "InvalidURL")


def _payload(url: str, **extra) -> dict:
    return {"name": "ssrf", "url": url, "secret": SECRET, **extra}


# -- save time -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", CORPUS)
def test_saving_a_non_public_destination_url_through_the_api_is_refused_and_stores_nothing(
    host, strict, acme, key_client
):
    """Pass: 400 with an error on `url` for create and for update; no row made or changed."""
    client = key_client(acme, Role.EDITOR)
    created = client.post("/api/v1/destinations/", _payload(f"https://{host}/in"), format="json")
    assert created.status_code == 400 and "url" in created.json(), created.content
    assert not Destination.objects.exists()

    existing = destination_make(acme, "https://receiver.example/in")
    patched = client.patch(f"/api/v1/destinations/{existing.pk}/", {"url": f"https://{host}/in"}, format="json")
    assert patched.status_code == 400 and "url" in patched.json()
    existing.refresh_from_db()
    assert existing.url == "https://receiver.example/in"


@pytest.mark.parametrize("host", CORPUS)
def test_a_non_public_oauth2_token_url_is_refused_when_saved(host, strict, acme, key_client):
    """Pass: 400 with an error on `oauth2_token_url`; nothing stored."""
    payload = _payload(
        "https://receiver.example/in",
        auth_type="oauth2",
        oauth2_token_url=f"https://{host}/token",
        oauth2_client_id="portal",
        oauth2_client_secret="Client-Secret-For-Ssrf-Tests-0123!",
    )
    answer = key_client(acme, Role.EDITOR).post("/api/v1/destinations/", payload, format="json")
    assert answer.status_code == 400 and "oauth2_token_url" in answer.json(), answer.content
    assert not Destination.objects.exists()


@pytest.mark.parametrize("host", CORPUS)
def test_the_portal_form_refuses_a_non_public_destination_url(host, strict, acme):
    """Pass: the portal's destination form is invalid with an error on `url`."""
    from portal.pages.destinations import DestinationForm

    form = DestinationForm(
        data={"name": "ssrf", "url": f"https://{host}/in", "secret": SECRET, "method": "POST"}, tenant=acme
    )
    assert not form.is_valid()
    assert "url" in form.errors, form.errors


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254", "10.0.0.1", "2130706433", "localhost"])
def test_the_admin_refuses_a_non_public_destination_url(host, strict, acme, staff):
    """Pass: the admin's add form answers with an error and stores no destination."""
    client = Client()
    client.force_login(staff)
    data = {
        "tenant": acme.pk,
        "name": "ssrf",
        "url": f"https://{host}/in",
        "method": "POST",
        "signature": "things-token",
        "auth_type": "none",
        "payload_format": "senml",
        "max_attempts": 3,
        "timeout_seconds": 5,
        "enabled": "on",
        "header_rows-TOTAL_FORMS": 0,
        "header_rows-INITIAL_FORMS": 0,
        "header_rows-MIN_NUM_FORMS": 0,
        "header_rows-MAX_NUM_FORMS": 1000,
    }
    answer = client.post("/admin/delivery/destination/add/", data)
    assert answer.status_code == 200, f"saved (answered {answer.status_code})"
    assert not Destination.objects.exists()


# -- send time -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", SEND_CORPUS)
def test_a_delivery_to_a_non_public_address_is_refused_and_nothing_connects(host, canary, acme):
    """Pass: the attempt fails as `url_refused`; the canary sees no connection and no
    connection off this machine was even tried."""
    destination = Destination.objects.create(
        tenant=acme, name="ssrf", url=f"https://{host}:{canary.port}/in", max_attempts=1
    )
    secret_set(obj=destination, field="secret", value=SECRET, actor=Actor(label="ssrf"))
    messages_make(acme, 1, destinations=[destination])

    with connect_tripwire() as wire:
        deliveries_run(seconds=10, idle_seconds=0.2)

    [attempt] = Delivery.objects.get().attempts.all()
    assert _refused(attempt.error_class, attempt.error), (attempt.error_class, attempt.error)
    assert canary.connections == [] and wire.blocked == []


@pytest.mark.parametrize("host", SEND_CORPUS)
def test_test_send_and_tls_check_refuse_a_non_public_address_and_nothing_connects(host, canary, acme, key_client):
    """Pass: the test send reports a refusal for the sample (and the wrong-token copy), the
    TLS check does not accept; the canary sees no connection, nothing off this machine is tried."""
    destination = destination_make(acme, "https://receiver.example/in")
    Destination.objects.filter(pk=destination.pk).update(url=f"https://{host}:{canary.port}/in")
    client = key_client(acme, Role.EDITOR)

    with connect_tripwire() as wire:
        sent = client.post(f"/api/v1/destinations/{destination.pk}/test/").json()
        checked = client.post(f"/api/v1/destinations/{destination.pk}/tls-check/").json()

    assert sent["ok"] is False and sent["sample"]["status_code"] is None, sent
    assert any(word in sent["sample"]["error"] for word in ("public", "resolve", "InvalidURL")), sent
    assert checked["accepted"] is False and checked["tls_version"] == "", checked
    assert canary.connections == [] and wire.blocked == []


@pytest.mark.parametrize("host", SEND_CORPUS)
def test_an_oauth2_token_fetch_from_a_non_public_address_is_refused_and_nothing_connects(host, canary, acme):
    """Pass: the attempt fails before any request (auth refused); the canary sees nothing."""
    destination = destination_make(
        acme,
        f"https://127.0.0.1:{canary.port}/in",
        auth_type="oauth2",
        oauth2_token_url=f"https://{host}:{canary.port}/token",
        oauth2_client_id="portal",
        max_attempts=1,
    )
    secret_set(obj=destination, field="oauth2_client_secret", value="Client-Secret-Ssrf-0123!", actor=Actor(label="t"))
    messages_make(acme, 1, destinations=[destination])

    with connect_tripwire() as wire:
        deliveries_run(seconds=10, idle_seconds=0.2)

    [attempt] = Delivery.objects.get().attempts.all()
    assert attempt.status_code is None, attempt.error
    assert attempt.error_class == "auth" or _refused(attempt.error_class, attempt.error), attempt.error
    assert canary.connections == [] and wire.blocked == []


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost", "2130706433", "0.0.0.0"])
def test_control_with_private_addresses_allowed_the_canary_does_see_the_connection(host, canary, settings, acme):
    """Pass (a control, so the tests above can fail): with DESTINATION_ALLOW_PRIVATE the
    same delivery reaches the canary, which closes it, so the attempt fails as a
    connection or TLS error, not as a refusal."""
    settings.DESTINATION_ALLOW_PRIVATE = True
    destination = destination_make(acme, f"https://{host}:{canary.port}/in", max_attempts=1)
    messages_make(acme, 1, destinations=[destination])
    with connect_tripwire() as wire:
        deliveries_run(seconds=10, idle_seconds=0.2)
    [attempt] = Delivery.objects.get().attempts.all()
    assert attempt.error_class != "url_refused"
    assert canary.connections, "the canary saw nothing: the send-time tests would prove nothing"
    assert wire.blocked == []
