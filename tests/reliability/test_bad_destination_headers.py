"""Bad connector headers of a destination: white space, CR/LF, NUL and non-ASCII.

At save time every way in (the API, the portal's header editor, the admin's inline)
refuses a header name that is not an RFC 9110 token and a value holding CR, LF or NUL,
with the error on the header, and stores nothing. A non-ASCII value is a legal
(obs-text) field value: it is kept and sent as its UTF-8 bytes, unchanged. At send
time nothing can smuggle a header in: a dynamic field whose device value holds CR/LF
fails that delivery at once, naming the field, and a header row with CR/LF written
straight to the database (past every form) is never sent as two headers.
"""

from __future__ import annotations

import pytest
from django.test import Client

from delivery.models import Delivery, Destination, DestinationHeader
from delivery.pump import deliveries_run
from devices.models import Device
from portal.models import Role
from tests.reliability.factories import destination_make, messages_make
from tests.security.html_forms import submit

pytestmark = pytest.mark.django_db

SECRET = "Header-Test-Destination-Secret-0123!"
BAD_NAMES = ["X Bad", "X\tTab", " X-Lead", "X-Bad\r\nX-Injected", "X-Ünï", "X:Colon", "X(Paren)", "X-\x00"]
BAD_VALUES = ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b"]


@pytest.mark.parametrize(
    "headers",
    [{name: "v"} for name in BAD_NAMES] + [{"X-Good": value} for value in BAD_VALUES],
    ids=[repr(n) for n in BAD_NAMES] + [repr(v) for v in BAD_VALUES],
)
def test_the_api_refuses_a_bad_header_name_or_value_on_create_and_update(
    headers, acme, key_client, destination_settings
):
    """Pass: 400 with the error under `headers`; no destination made, an existing one's headers unchanged."""
    client = key_client(acme, Role.EDITOR)
    payload = {"name": "h", "url": "https://receiver.example/in", "secret": SECRET, "headers": headers}
    created = client.post("/api/v1/destinations/", payload, format="json")
    assert created.status_code == 400 and "headers" in created.json(), created.content
    assert not Destination.objects.exists()

    existing = destination_make(acme, "https://receiver.example/in", headers={"X-Kept": "kept"})
    patched = client.patch(f"/api/v1/destinations/{existing.pk}/", {"headers": headers}, format="json")
    assert patched.status_code == 400 and "headers" in patched.json()
    assert list(existing.header_rows.values_list("name", "value")) == [("X-Kept", "kept")]


# The portal's form trims white space around a name, as Django forms do (" X-Lead" is
# stored as "X-Lead"); a NUL never reaches it (Django's form fields refuse it first).
@pytest.mark.parametrize(
    ("name", "value"),
    [(n, "v") for n in BAD_NAMES if "\x00" not in n and n == n.strip()]
    + [("X-Good", v) for v in BAD_VALUES if "\x00" not in v],
)
def test_the_portal_header_editor_refuses_a_bad_header_and_stores_nothing(
    name, value, acme, alice, destination_settings
):
    """Pass: the form page comes back with the error; no destination is stored."""
    client = Client()
    client.force_login(alice)
    answer = submit(
        client,
        "/destinations/new/",
        {
            "name": "h",
            "url": "https://receiver.example/in",
            "secret": SECRET,
            "headers-0-name": name,
            "headers-0-value": value,
        },
        having="headers-0-name",
    )
    assert answer.status_code == 200
    assert not Destination.objects.exists()


@pytest.mark.parametrize(("name", "value"), [("X Bad", "v"), ("X-Ünï", "v"), ("X-Good", "a\r\nX-Injected: 1")])
def test_the_admin_header_inline_refuses_a_bad_header(name, value, acme, staff, destination_settings):
    """Pass: the admin's add form answers with an error and stores no destination."""
    client = Client()
    client.force_login(staff)
    data = {
        "tenant": acme.pk,
        "name": "h",
        "url": "https://receiver.example/in",
        "method": "POST",
        "signature": "things-token",
        "auth_type": "none",
        "payload_format": "senml",
        "max_attempts": 3,
        "timeout_seconds": 5,
        "enabled": "on",
        "header_rows-TOTAL_FORMS": 1,
        "header_rows-INITIAL_FORMS": 0,
        "header_rows-MIN_NUM_FORMS": 0,
        "header_rows-MAX_NUM_FORMS": 1000,
        "header_rows-0-position": 0,
        "header_rows-0-name": name,
        "header_rows-0-value": value,
    }
    answer = client.post("/admin/delivery/destination/add/", data)
    assert answer.status_code == 200, f"saved (answered {answer.status_code})"
    assert not Destination.objects.exists() and not DestinationHeader.objects.exists()


def test_a_non_ascii_header_value_is_kept_and_sent_as_its_utf8_bytes(acme, key_client, https_sink):
    """Pass: saved through the API; the receiver gets the value's UTF-8 bytes, unchanged."""
    value = "Zürich ✓ 東京"
    client = key_client(acme, Role.EDITOR)
    created = client.post(
        "/api/v1/destinations/",
        {"name": "h", "url": https_sink.url("/utf8"), "secret": SECRET, "headers": {"X-Site": value}},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["headers"] == {"X-Site": value}
    messages_make(acme, 1, destinations=[Destination.objects.get()])

    deliveries_run(seconds=10, idle_seconds=0.2)

    [request] = https_sink.wait_for(1)
    assert request.header("X-Site").encode("latin-1") == value.encode("utf-8")
    assert Delivery.objects.get().status == "succeeded"


def test_a_device_value_with_cr_lf_in_a_header_fails_the_delivery_naming_the_field_and_sends_nothing(acme, https_sink):
    """Pass: the delivery is `failed` at once with 0 attempts, `last_error` names [CUSTOM1]; the sink gets nothing."""
    destination = destination_make(acme, https_sink.url("/field"), headers={"X-Site": "[CUSTOM1]"})
    messages_make(acme, 1, destinations=[destination])
    Device.objects.update(custom1="site\r\nX-Injected: 1")

    deliveries_run(seconds=10, idle_seconds=0.2)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts_count) == ("failed", 0)
    assert "CUSTOM1" in delivery.last_error
    assert https_sink.requests == []


def test_a_cr_lf_header_row_written_past_every_form_is_never_sent_as_two_headers(acme, https_sink):
    """Pass: whatever the engine does with it, no request reaches the sink carrying X-Injected."""
    destination = destination_make(acme, https_sink.url("/raw"), max_attempts=1)
    DestinationHeader.objects.create(destination=destination, name="X-Raw", value="a\r\nX-Injected: 1", position=0)
    messages_make(acme, 1, destinations=[destination])

    deliveries_run(seconds=10, idle_seconds=0.2)

    delivery = Delivery.objects.get()
    assert all(r.header("X-Injected") is None for r in https_sink.requests)
    assert delivery.status == "failed" and delivery.last_error, delivery.last_error
