"""The connections/, messages/ and readings/ API resources (SPEC section 9)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery, Destination
from devices.models import Device, Reading
from ingest.kinds.kpn_things import kpn_token_valid
from ingest.models import Connection, ConnectionKind, Message
from ingest.services import message_ingest
from portal.models import SecretAuditLog
from tests.ingest.conftest import DEVEUI, SECRET, kpn_headers, senml

STRONG = "Supplied-Secret-0123456789-abcdXYZ!"


def ingest(connection, body: bytes):
    return message_ingest(connection=connection, body=body, headers=kpn_headers(body), content_type="application/json")


# --- connections ---------------------------------------------------------------------------


def test_creating_a_kpn_connection_without_a_secret_generates_one_shown_once(bob, api_as):
    client = api_as(bob)
    created = client.post("/api/v1/connections/", {"name": "KPN", "kind": "kpn-things"})
    assert created.status_code == 201, created.json()
    answer = created.json()
    generated = answer["generated_secret"]
    assert answer["secret_set"] is True and "secret" not in answer and "whsec" not in answer
    connection = Connection.objects.get(pk=answer["id"])
    assert kpn_token_valid(
        body=b"[]", token=kpn_headers(b"[]", generated)["Things-Message-Token"], secrets=[connection.secret.reveal()]
    )
    shown_later = (
        client.get(f"/api/v1/connections/{answer['id']}/").content.decode()
        + client.get("/api/v1/connections/").content.decode()
    )
    assert generated not in shown_later


def test_a_supplied_secret_is_never_echoed(bob, api_as):
    created = api_as(bob).post("/api/v1/connections/", {"name": "KPN", "kind": "kpn-things", "secret": STRONG})
    assert created.status_code == 201
    assert STRONG not in created.content.decode() and "generated_secret" not in created.json()
    assert Connection.objects.get().secret.reveal() == STRONG
    assert SecretAuditLog.objects.filter(field="secret", action="set").count() == 1


def test_the_connection_fields_are_as_pinned(bob, api_as, settings):
    settings.PORTAL_BASE_URL = "https://portal.example"
    created = api_as(bob).post("/api/v1/connections/", {"name": "KPN", "kind": "kpn-things", "secret": STRONG}).json()
    pinned = {
        *("id", "name", "description", "kind", "enabled", "ingest_url", "secret_set", "secret_rotated_at"),
        *("username", "auth_mode", "device_key_header", "plug_uuid", "auto_create_devices"),
    }
    assert pinned <= set(created)
    assert created["ingest_url"] == f"https://portal.example/ingest/{created['id']}/"
    assert (created["enabled"], created["auto_create_devices"], created["device_key_header"]) == (
        True,
        True,
        "X-Device-Key",
    )


def test_ingest_url_is_read_only(bob, api_as, kpn):
    api_as(bob).patch(f"/api/v1/connections/{kpn.pk}/", {"ingest_url": "https://evil.example/"})
    assert api_as(bob).get(f"/api/v1/connections/{kpn.pk}/").json()["ingest_url"].endswith(f"/ingest/{kpn.pk}/")


@pytest.mark.parametrize(
    "weak", ["short-1A!", "no-upper-case-letters-0123456789!!", "NoSpecialCharacters0123456789abcdef"]
)
def test_a_weak_secret_is_refused_field_by_field(bob, api_as, weak):
    response = api_as(bob).post("/api/v1/connections/", {"name": "KPN", "kind": "kpn-things", "secret": weak})
    assert response.status_code == 400
    assert "secret" in response.json()
    assert Connection.objects.count() == 0


def test_a_standard_webhooks_connection_answers_its_whsec_key_once(bob, api_as):
    client = api_as(bob)
    created = client.post("/api/v1/connections/", {"name": "SW", "kind": "standard-webhooks", "secret": STRONG}).json()
    assert created["whsec"] == "whsec_" + base64.b64encode(STRONG.encode()).decode()
    assert created["whsec"] not in client.get(f"/api/v1/connections/{created['id']}/").content.decode()


def test_a_standard_webhooks_connection_takes_a_whsec_secret_and_others_check_strength(bob, api_as):
    whsec = "whsec_" + base64.b64encode(bytes(range(32))).decode()
    client = api_as(bob)
    assert (
        client.post("/api/v1/connections/", {"name": "SW", "kind": "standard-webhooks", "secret": whsec}).status_code
        == 201
    )
    bad = client.post(
        "/api/v1/connections/", {"name": "SW", "kind": "standard-webhooks", "secret": "whsec_!!notbase64"}
    )
    assert bad.status_code == 400 and "secret" in bad.json()


def test_a_digital_matter_basic_connection_needs_a_user_name(bob, api_as):
    response = api_as(bob).post("/api/v1/connections/", {"name": "DM", "kind": "digital-matter", "auth_mode": "basic"})
    assert response.status_code == 400 and "username" in response.json()


def test_a_digital_matter_device_key_connection_needs_no_secret(bob, api_as):
    response = api_as(bob).post(
        "/api/v1/connections/", {"name": "DM", "kind": "digital-matter", "auth_mode": "device-key"}
    )
    assert response.status_code == 201
    assert response.json()["secret_set"] is False and "generated_secret" not in response.json()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "standard-webhooks", "plug_uuid": "fbc063cb-4dd4-41b3-917a-e2d1ea907f75"}, "plug_uuid"),
        ({"kind": "digital-matter", "auth_mode": "device-key", "device_key_header": "X Key"}, "device_key_header"),
        ({"kind": "carrier-pigeon"}, "kind"),
        ({"kind": "kpn-things", "name": ""}, "name"),
    ],
)
def test_invalid_connection_fields_are_reported_by_field(bob, api_as, fields, field):
    response = api_as(bob).post("/api/v1/connections/", {"name": "x", **fields})
    assert response.status_code == 400 and field in response.json()


def test_rotating_a_connection_secret_keeps_the_old_one_for_an_hour_by_default(bob, api_as, kpn):
    answer = api_as(bob).post(f"/api/v1/connections/{kpn.pk}/rotate-secret/", {}).json()
    kpn.refresh_from_db()
    assert kpn.secret.reveal() == answer["secret"] and "whsec" not in answer
    assert [s.reveal() for s in kpn.secrets_in_force()] == [answer["secret"], SECRET]
    expires = datetime.fromisoformat(answer["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - timezone.now() <= timedelta(hours=1)


def test_rotating_a_standard_webhooks_secret_answers_the_whsec_form_and_takes_one(bob, api_as, webhooks):
    whsec = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
    answer = api_as(bob).post(f"/api/v1/connections/{webhooks.pk}/rotate-secret/", {"secret": whsec}).json()
    assert answer["whsec"] == whsec and "secret" not in answer


def test_a_kpn_rotation_refuses_a_whsec_secret_that_is_not_strong(bob, api_as, kpn):
    whsec = "whsec_" + base64.b64encode(b"a" * 24).decode()  # no digit, no special character
    response = api_as(bob).post(f"/api/v1/connections/{kpn.pk}/rotate-secret/", {"secret": whsec})
    assert response.status_code == 400 and "secret" in response.json()


def test_patching_a_standard_webhooks_secret_answers_its_whsec_form(bob, api_as, webhooks):
    answer = api_as(bob).patch(f"/api/v1/connections/{webhooks.pk}/", {"secret": STRONG}).json()
    assert answer["whsec"] == "whsec_" + base64.b64encode(STRONG.encode()).decode()
    webhooks.refresh_from_db()
    assert webhooks.secret.reveal() == STRONG


def test_a_viewer_reads_connections_but_changes_nothing(vera, api_as, kpn):
    client = api_as(vera)
    assert client.get("/api/v1/connections/").json()["results"][0]["id"] == str(kpn.pk)
    assert client.post("/api/v1/connections/", {"name": "x", "kind": "kpn-things"}).status_code == 403
    assert client.post(f"/api/v1/connections/{kpn.pk}/rotate-secret/", {}).status_code == 403
    assert client.delete(f"/api/v1/connections/{kpn.pk}/").status_code == 403


# --- messages ------------------------------------------------------------------------------


def test_messages_list_with_their_body_as_text_and_a_count_of_readings(vera, api_as, kpn):
    body = senml({"n": "temperature", "v": 21.5}, {"n": "humidity", "v": 40})
    result = ingest(kpn, body)
    [listed] = api_as(vera).get("/api/v1/messages/").json()["results"]
    assert listed["id"] == str(result.message_id)
    assert (listed["body"], listed["readings"], listed["status"], listed["connection"]) == (
        body.decode(),
        2,
        "accepted",
        str(kpn.pk),
    )
    assert listed["device"] == Device.objects.get().pk and listed["error"] == ""


def test_messages_filter_by_connection_device_and_status(vera, api_as, kpn, make_connection):
    other = make_connection()
    accepted = ingest(kpn, senml({"n": "a", "v": 1}))
    invalid = ingest(kpn, b"[]")
    elsewhere = ingest(other, senml({"n": "b", "v": 2}, device="urn:dev:IMEI:351234567890123:"))
    client = api_as(vera)

    def ids(query: str) -> set[str]:
        return {m["id"] for m in client.get(f"/api/v1/messages/?{query}").json()["results"]}

    assert ids(f"connection={kpn.pk}") == {str(accepted.message_id), str(invalid.message_id)}
    assert ids("status=invalid") == {str(invalid.message_id)}
    assert ids(f"device={Device.objects.get(imei='351234567890123').pk}") == {str(elsewhere.message_id)}


def test_messages_are_not_created_through_the_api(bob, api_as, kpn):
    assert api_as(bob).post("/api/v1/messages/", {"connection": str(kpn.pk)}).status_code == 405


def test_an_invalid_message_is_reprocessed_after_its_cause_is_fixed(bob, api_as, make_connection):
    # Given: a connection that does not create devices, and a message from an unknown device.
    connection = make_connection(auto_create_devices=False)
    Destination.objects.create(tenant=connection.tenant, name="sink", url="https://sink.example/in")
    first = ingest(connection, senml({"n": "temperature", "t": -60, "v": 21.5}))
    message = Message.objects.get(pk=first.message_id)
    assert (message.status, Delivery.objects.count()) == ("invalid", 0)

    # When: the device is registered and the message re-processed.
    device = Device.objects.create(tenant=connection.tenant, dev_eui=DEVEUI)
    response = api_as(bob).post(f"/api/v1/messages/{message.pk}/reprocess/")

    # Then: it is accepted, with its readings (at the original time) and its deliveries.
    assert response.status_code == 200, response.json()
    assert (response.json()["status"], response.json()["readings"], response.json()["error"]) == ("accepted", 1, "")
    reading = Reading.objects.get(message=message)
    assert (reading.device, reading.time) == (device, message.received_at - timedelta(seconds=60))
    assert Delivery.objects.filter(message=message).count() == 1
    device.refresh_from_db()
    assert device.last_seen_at == message.received_at


def test_reprocessing_a_message_whose_cause_remains_keeps_it_invalid_with_the_reason(bob, api_as, make_connection):
    connection = make_connection(auto_create_devices=False)
    message_id = ingest(connection, senml({"n": "temperature", "v": 1})).message_id
    answer = api_as(bob).post(f"/api/v1/messages/{message_id}/reprocess/").json()
    assert answer["status"] == "invalid" and "does not create devices" in answer["error"]
    assert Reading.objects.count() == 0


def test_an_accepted_message_is_not_reprocessed(bob, api_as, kpn):
    message_id = ingest(kpn, senml({"n": "a", "v": 1})).message_id
    response = api_as(bob).post(f"/api/v1/messages/{message_id}/reprocess/")
    assert response.status_code == 409
    assert Reading.objects.count() == 1


def test_a_viewer_cannot_reprocess(vera, api_as, kpn):
    message_id = ingest(kpn, b"[]").message_id
    assert api_as(vera).post(f"/api/v1/messages/{message_id}/reprocess/").status_code == 403


# --- readings ------------------------------------------------------------------------------


def test_readings_carry_json_values_of_their_kind_and_utc_times(vera, api_as, kpn):
    body = senml(
        {"bt": 1_700_000_000, "n": "temperature", "u": "Cel", "v": 21.5},
        {"n": "label", "vs": "room"},
        {"n": "open", "vb": True},
        {"n": "raw", "vd": "aGkgCg"},
        {"n": "energy", "s": 12},
    )
    ingest(kpn, body)
    readings = {r["name"]: r for r in api_as(vera).get("/api/v1/readings/").json()["results"]}
    assert {n: (r["kind"], r["value"], r["sum"]) for n, r in readings.items()} == {
        "temperature": ("number", 21.5, None),
        "label": ("string", "room", None),
        "open": ("boolean", True, None),
        "raw": ("data", "aGkgCg", None),
        "energy": ("number", None, 12.0),
    }
    assert readings["temperature"]["time"] == "2023-11-14T22:13:20Z"
    assert readings["temperature"]["unit"] == "Cel" and readings["temperature"]["device"] == Device.objects.get().pk


def test_readings_filter_by_device_message_name_and_time(vera, api_as, kpn):
    first = ingest(kpn, senml({"bt": 1_700_000_000, "n": "temperature", "v": 1}, {"n": "humidity", "v": 2}))
    ingest(kpn, senml({"bt": 1_700_000_600, "n": "temperature", "v": 3}, device="urn:dev:IMEI:351234567890123:"))
    client = api_as(vera)

    def values(query: str) -> list:
        return sorted(r["value"] for r in client.get(f"/api/v1/readings/?{query}").json()["results"])

    assert values(f"message={first.message_id}") == [1, 2]
    assert values(f"device={Device.objects.get(imei='351234567890123').pk}") == [3]
    assert values("name=temperature") == [1, 3]
    since = datetime.fromtimestamp(1_700_000_300, UTC).isoformat()
    assert values(f"since={since.replace('+00:00', 'Z')}") == [3]
    assert values(f"until={since.replace('+00:00', 'Z')}") == [1, 2]


def test_readings_are_read_only(bob, api_as, kpn):
    ingest(kpn, senml({"n": "a", "v": 1}))
    reading = Reading.objects.get()
    client = api_as(bob)
    assert client.post("/api/v1/readings/", {"name": "x"}).status_code == 405
    assert client.patch(f"/api/v1/readings/{reading.pk}/", {"name": "x"}).status_code == 405
    assert client.delete(f"/api/v1/readings/{reading.pk}/").status_code == 405


def test_listing_readings_costs_a_fixed_number_of_queries(vera, api_as, kpn, django_assert_max_num_queries):
    ingest(kpn, senml(*({"n": f"r{i}", "v": i} for i in range(40))))
    client = api_as(vera)
    with django_assert_max_num_queries(8):
        assert len(client.get("/api/v1/readings/").json()["results"]) == 40
    with django_assert_max_num_queries(8):
        client.get("/api/v1/messages/")


# --- the schema ----------------------------------------------------------------------------


def test_write_only_fields_are_marked_write_only_in_the_schema(client):
    schema = client.get("/api/schema/?format=json").json()["components"]["schemas"]
    assert schema["ConnectionRequest"]["properties"]["secret"]["writeOnly"] is True
    assert "secret" not in schema["Connection"]["properties"]
    assert schema["Connection"]["properties"]["ingest_url"]["readOnly"] is True


@pytest.mark.parametrize("kind", [k.value for k in ConnectionKind])
def test_every_kind_can_be_created_through_the_api(bob, api_as, kind):
    fields = {"name": kind, "kind": kind, "username": "oem"}
    assert api_as(bob).post("/api/v1/connections/", fields).status_code == 201
