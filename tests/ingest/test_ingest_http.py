"""Every answer of the webhook endpoint, over real HTTP (the live test server), against PostgreSQL."""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from delivery.models import Delivery, Destination
from devices.models import Device, Reading
from ingest.models import Connection, ConnectionKind, Message, MessageClaim
from portal.secrets import Actor, secret_rotate, secret_set
from tests.ingest.conftest import (
    DEVEUI,
    OTHER_SECRET,
    SECRET,
    basic_headers,
    fixture_bytes,
    kpn_headers,
    senml,
    sw_headers,
)

BODY = senml({"n": "temperature", "u": "Cel", "v": 21.5}, {"n": "humidity", "u": "%RH", "v": 40})


def url(connection: Connection, suffix: str = "") -> str:
    return f"/ingest/{connection.pk}/{suffix}"


# --- 200 ------------------------------------------------------------------------------------


def test_a_signed_kpn_message_is_stored_raw_normalised_and_answered_after_commit(http, kpn):
    response = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer == {"message_id": answer["message_id"], "readings": 2}
    message = Message.objects.get(pk=answer["message_id"])
    assert (bytes(message.body), message.status, message.readings_count) == (BODY, "accepted", 2)
    device = Device.objects.get(tenant=kpn.tenant, dev_eui=DEVEUI)
    assert (message.device, device.urn) == (device, f"urn:dev:DEVEUI:{DEVEUI}:")
    assert device.last_seen_at == message.received_at
    readings = {r.name: (r.value, r.unit, r.kind, r.device_id) for r in Reading.objects.filter(message=message)}
    assert readings == {"temperature": (21.5, "Cel", "number", device.pk), "humidity": (40, "%RH", "number", device.pk)}


def test_the_answer_carries_the_request_id_given_and_the_message_keeps_it(http, kpn):
    headers = {**kpn_headers(BODY), "X-Request-ID": "trace-1234567890"}
    response = http.post(url(kpn), content=BODY, headers=headers)
    assert response.headers["X-Request-ID"] == "trace-1234567890"
    assert Message.objects.get(pk=response.json()["message_id"]).request_id == "trace-1234567890"


def test_without_a_request_id_one_is_made(http, kpn):
    response = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) >= 16
    assert Message.objects.get(pk=response.json()["message_id"]).request_id == request_id


def test_kpn_packs_with_a_base_values_record_are_accepted(http, kpn):
    body = fixture_bytes("kpn_lora_base_record.json")
    response = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert response.status_code == 200 and response.json()["readings"] == 4
    times = set(Reading.objects.values_list("time", flat=True))
    assert times == {datetime.fromtimestamp(1.70000006e9, UTC)}


def test_relative_times_and_sums_of_a_kpn_m2m_pack(http, kpn):
    body = fixture_bytes("kpn_m2m_relative.json")
    response = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert response.status_code == 200 and response.json()["readings"] == 4
    device = Device.objects.get(imei="351234567890123")
    energy = Reading.objects.get(name="energy")
    assert (energy.sum, energy.value, energy.device_id) == (1250.5, None, device.pk)
    assert Reading.objects.filter(name="door").get().value is True


def test_a_get_with_a_body_is_accepted_like_a_post(http, kpn):
    response = http.request("GET", url(kpn), content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 200
    assert Message.objects.count() == 1


@pytest.mark.parametrize("suffix", ["SN-42", "SN-42/"])
def test_the_serial_in_the_url_names_the_device_of_a_pack_without_one(http, kpn, suffix):
    body = senml({"n": "temperature", "v": 20}, device="")
    response = http.post(url(kpn, suffix), content=body, headers=kpn_headers(body))
    assert response.status_code == 200, response.text
    message = Message.objects.get()
    assert (message.serial_in_url, message.device.serial, message.device.urn) == (
        "SN-42",
        "SN-42",
        "urn:dev:SERIAL:SN-42:",
    )


def test_the_url_without_trailing_slash_is_the_same_webhook(http, kpn):
    response = http.post(f"/ingest/{kpn.pk}", content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 200


def test_a_known_device_is_found_and_its_last_seen_moves_on(http, kpn):
    device = Device.objects.create(
        tenant=kpn.tenant, dev_eui=DEVEUI, custom1="site-7", last_seen_at=timezone.now() - timedelta(days=1)
    )
    response = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 200
    device.refresh_from_db()
    assert Device.objects.count() == 1
    assert device.last_seen_at == Message.objects.get().received_at and device.custom1 == "site-7"


def test_a_late_message_never_moves_a_devices_last_seen_back(http, kpn):
    later = timezone.now() + timedelta(hours=1)
    device = Device.objects.create(tenant=kpn.tenant, dev_eui=DEVEUI, last_seen_at=later)
    response = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.last_seen_at == later
    assert set(Reading.objects.values_list("device_id", flat=True)) == {device.pk}


def test_the_message_gets_a_delivery_per_destination_in_the_same_commit(http, kpn):
    Destination.objects.create(tenant=kpn.tenant, name="sink", url="https://sink.example/in")
    response = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))
    assert Delivery.objects.filter(message_id=response.json()["message_id"]).count() == 1


def test_a_standard_webhooks_message_signed_by_the_reference_library_is_accepted(http, webhooks):
    response = http.post(url(webhooks), content=BODY, headers=sw_headers(BODY, msg_id="msg_abc"))
    assert response.status_code == 200, response.text
    assert Message.objects.get().webhook_id == "msg_abc"


def test_a_standard_webhooks_connection_with_a_whsec_secret_verifies_with_its_key(http, make_connection):
    whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    connection = make_connection(ConnectionKind.STANDARD_WEBHOOKS, secret=whsec)
    response = http.post(url(connection), content=BODY, headers=sw_headers(BODY, secret=whsec))
    assert response.status_code == 200, response.text


def test_a_digital_matter_message_with_basic_auth_is_accepted(http, dm_basic):
    body = fixture_bytes("dm_gps_digital_analogue.json")
    response = http.post(url(dm_basic), content=body, headers=basic_headers("oem", SECRET))
    assert response.status_code == 200, response.text
    assert response.json()["readings"] == 13
    device = Device.objects.get()
    assert (device.serial, device.imei, device.iccid) == ("117554", "353785720001234", "89314404000123456789")
    assert device.urn == "urn:dev:IMEI:353785720001234:"


def test_unknown_digital_matter_ftypes_are_accepted_and_reported_as_skipped(http, dm_basic):
    body = fixture_bytes("dm_unknown_ftype.json")
    response = http.post(url(dm_basic), content=body, headers=basic_headers("oem", SECRET))
    assert response.status_code == 200 and response.json()["readings"] == 3
    assert Message.objects.get().skipped == [
        "record 0 field 1: FType 15 is not mapped",
        "record 1 field 0: FType 27 is not mapped",
    ]


def device_with_key(tenant, key: str = "Device-Key-0123456789abcdef") -> Device:
    device = Device.objects.create(tenant=tenant, serial="117554", imei="353785720001234")
    secret_set(obj=device, field="auth_key", value=key, actor=Actor(label="test"))
    return device


def test_a_digital_matter_message_with_the_devices_key_is_accepted(http, dm_device_key):
    device = device_with_key(dm_device_key.tenant)
    body = fixture_bytes("dm_gps_digital_analogue.json")
    headers = {"Content-Type": "application/json", "X-Device-Key": "Device-Key-0123456789abcdef"}
    response = http.post(url(dm_device_key), content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert Message.objects.get().device == device


def test_the_device_key_header_name_is_the_connections(http, make_connection):
    connection = make_connection(
        ConnectionKind.DIGITAL_MATTER, auth_mode="device-key", device_key_header="X-Api-Key", secret=None
    )
    device_with_key(connection.tenant)
    body = fixture_bytes("dm_gps_digital_analogue.json")
    headers = {"Content-Type": "application/json", "X-Api-Key": "Device-Key-0123456789abcdef"}
    assert http.post(url(connection), content=body, headers=headers).status_code == 200


def test_during_a_grace_period_both_secrets_verify_and_afterwards_only_the_new(http, kpn):
    secret_rotate(obj=kpn, new_secret=OTHER_SECRET, grace_seconds=3600, actor=Actor(label="test"))
    old = senml({"n": "a", "v": 1})
    new = senml({"n": "b", "v": 2})
    assert http.post(url(kpn), content=old, headers=kpn_headers(old, SECRET)).status_code == 200
    assert http.post(url(kpn), content=new, headers=kpn_headers(new, OTHER_SECRET)).status_code == 200
    Connection.objects.filter(pk=kpn.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    late = senml({"n": "c", "v": 3})
    assert http.post(url(kpn), content=late, headers=kpn_headers(late, SECRET)).status_code == 401


def test_a_matching_plug_uuid_is_accepted(http, make_connection):
    plug = uuid.uuid4()
    connection = make_connection(plug_uuid=plug)
    assert http.post(url(connection), content=BODY, headers=kpn_headers(BODY, plug=plug)).status_code == 200


# --- duplicates -------------------------------------------------------------------------------


def test_the_same_body_twice_is_stored_once_and_answered_with_the_first_id(http, kpn):
    first = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))
    again = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))
    assert first.status_code == again.status_code == 200
    assert again.json() == {"message_id": first.json()["message_id"], "readings": 2, "duplicate": True}
    assert (Message.objects.count(), Reading.objects.count()) == (1, 2)


def test_the_same_body_on_another_connection_is_not_a_duplicate(http, kpn, make_connection):
    other = make_connection()
    assert http.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).status_code == 200
    assert "duplicate" not in http.post(url(other), content=BODY, headers=kpn_headers(BODY)).json()
    assert Message.objects.count() == 2


def test_the_same_body_after_24_hours_is_a_new_message(http, kpn):
    first = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).json()["message_id"]
    a_day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    Message.objects.filter(pk=first).update(received_at=a_day_ago)
    MessageClaim.objects.filter(message_id=first).update(claimed_at=a_day_ago)
    again = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).json()
    assert again["message_id"] != first and "duplicate" not in again


def test_a_repeat_names_the_message_within_24_hours_not_an_older_one_it_also_repeats(http, webhooks):
    # The first message's body comes back a day later, under the webhook-id of a recent one.
    old = http.post(url(webhooks), content=BODY, headers=sw_headers(BODY, msg_id="msg_old")).json()["message_id"]
    a_day_ago = timezone.now() - timedelta(hours=24, seconds=1)
    Message.objects.filter(pk=old).update(received_at=a_day_ago)
    MessageClaim.objects.filter(message_id=old).update(claimed_at=a_day_ago)
    other_body = senml({"n": "temperature", "v": 99})
    recent = http.post(url(webhooks), content=other_body, headers=sw_headers(other_body, msg_id="msg_recent"))

    again = http.post(url(webhooks), content=BODY, headers=sw_headers(BODY, msg_id="msg_recent")).json()

    assert again["message_id"] == recent.json()["message_id"] and again["duplicate"] is True
    assert Message.objects.count() == 2


def test_the_same_body_after_its_first_message_was_deleted_is_a_new_message(http, kpn):
    first = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).json()["message_id"]
    Message.objects.filter(pk=first).delete()  # its claim stays until the retention run
    again = http.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).json()
    assert again["message_id"] != first and "duplicate" not in again
    assert list(MessageClaim.objects.values_list("message_id", flat=True)) == [uuid.UUID(again["message_id"])]
    # ... and the new message is the one its repeats now name.
    assert http.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).json()["message_id"] == again["message_id"]


def test_a_duplicate_adds_no_claim_device_or_delivery(http, kpn):
    Destination.objects.create(tenant=kpn.tenant, name="sink", url="https://sink.example/in")
    http.post(url(kpn), content=BODY, headers=kpn_headers(BODY))
    counts = (MessageClaim.objects.count(), Device.objects.count(), Delivery.objects.count())
    assert http.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).json()["duplicate"] is True
    assert (MessageClaim.objects.count(), Device.objects.count(), Delivery.objects.count()) == counts == (1, 1, 1)


def test_the_same_webhook_id_with_another_body_is_a_duplicate(http, webhooks):
    first = http.post(url(webhooks), content=BODY, headers=sw_headers(BODY, msg_id="msg_same"))
    other_body = senml({"n": "temperature", "v": 99})
    again = http.post(url(webhooks), content=other_body, headers=sw_headers(other_body, msg_id="msg_same"))
    assert again.json()["message_id"] == first.json()["message_id"]
    assert Message.objects.count() == 1
    # The other body's claim went back with the rest: the first message holds both of its own, no more.
    first_id = uuid.UUID(first.json()["message_id"])
    assert list(MessageClaim.objects.values_list("message_id", flat=True)) == [first_id, first_id]


def test_simultaneous_deliveries_of_one_body_store_one_message(http, kpn, live_server):
    answers: list[dict] = []
    barrier = threading.Barrier(8)

    def send():
        import httpx

        with httpx.Client(base_url=live_server.url, timeout=20) as client:
            barrier.wait()
            answers.append(client.post(url(kpn), content=BODY, headers=kpn_headers(BODY)).json())

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({a["message_id"] for a in answers}) == 1
    assert sum(1 for a in answers if not a.get("duplicate")) == 1
    assert (Message.objects.count(), Reading.objects.count(), Device.objects.count()) == (1, 2, 1)


# --- 401 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Things-Message-Token": "0" * 64},
        {"Things-Message-Token": kpn_headers(BODY, OTHER_SECRET)["Things-Message-Token"]},
        {"Things-Message-Token": kpn_headers(BODY)["Things-Message-Token"].upper()},
    ],
    ids=["missing", "wrong", "other-secret", "upper-case"],
)
def test_a_bad_kpn_token_is_refused_and_nothing_is_stored(http, kpn, headers):
    response = http.post(url(kpn), content=BODY, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 401
    assert "not authenticated" in response.json()["error"]
    assert (Message.objects.count(), Device.objects.count(), Reading.objects.count()) == (0, 0, 0)


def test_a_token_over_a_re_serialised_body_is_refused(http, kpn):
    reformatted = json.dumps(json.loads(BODY)).encode()  # same JSON, other bytes
    assert http.post(url(kpn), content=BODY, headers=kpn_headers(reformatted)).status_code == 401


def test_a_refusal_is_logged_with_the_source_address_and_never_the_secret_or_token(http, kpn, caplog):
    caplog.set_level(logging.INFO)
    wrong = kpn_headers(BODY, OTHER_SECRET)
    http.post(url(kpn), content=BODY, headers=wrong)
    [record] = [r for r in caplog.records if r.name == "ingest"]
    assert record.source_ip == "127.0.0.1"
    logged = caplog.text + json.dumps(vars(record), default=str)
    for value in (SECRET, OTHER_SECRET, wrong["Things-Message-Token"], kpn_headers(BODY)["Things-Message-Token"]):
        assert value not in logged


def test_a_wrong_or_missing_plug_uuid_is_refused(http, make_connection):
    connection = make_connection(plug_uuid=uuid.uuid4())
    assert http.post(url(connection), content=BODY, headers=kpn_headers(BODY)).status_code == 401
    assert http.post(url(connection), content=BODY, headers=kpn_headers(BODY, plug=uuid.uuid4())).status_code == 401
    assert Message.objects.count() == 0


def test_a_connection_without_a_secret_verifies_nothing(http, make_connection):
    connection = make_connection(secret=None)
    assert http.post(url(connection), content=BODY, headers=kpn_headers(BODY, "")).status_code == 401


@pytest.mark.parametrize("skew", [timedelta(minutes=6), -timedelta(minutes=6)], ids=["future", "past"])
def test_a_standard_webhooks_timestamp_more_than_5_minutes_away_is_refused(http, webhooks, skew):
    headers = sw_headers(BODY, at=datetime.now(UTC) + skew)
    assert http.post(url(webhooks), content=BODY, headers=headers).status_code == 401
    assert Message.objects.count() == 0


def test_a_standard_webhooks_signature_by_another_key_is_refused(http, webhooks):
    assert http.post(url(webhooks), content=BODY, headers=sw_headers(BODY, secret=OTHER_SECRET)).status_code == 401


def test_digital_matter_basic_auth_with_a_wrong_password_or_user_is_refused(http, dm_basic):
    body = fixture_bytes("dm_gps_digital_analogue.json")
    assert http.post(url(dm_basic), content=body, headers=basic_headers("oem", OTHER_SECRET)).status_code == 401
    assert http.post(url(dm_basic), content=body, headers=basic_headers("other", SECRET)).status_code == 401
    assert http.post(url(dm_basic), content=body, headers={"Content-Type": "application/json"}).status_code == 401
    assert Message.objects.count() == 0


@pytest.mark.parametrize("key", ["Wrong-Key-0123456789abcdef", ""])
def test_digital_matter_with_a_wrong_or_missing_device_key_is_refused(http, dm_device_key, key):
    device_with_key(dm_device_key.tenant)
    body = fixture_bytes("dm_gps_digital_analogue.json")
    response = http.post(
        url(dm_device_key), content=body, headers={"Content-Type": "application/json", "X-Device-Key": key}
    )
    assert response.status_code == 401
    assert Message.objects.count() == 0


def test_digital_matter_device_key_of_an_unknown_device_is_refused_and_creates_nothing(http, dm_device_key):
    body = fixture_bytes("dm_gps_digital_analogue.json")
    headers = {"Content-Type": "application/json", "X-Device-Key": "Device-Key-0123456789abcdef"}
    assert http.post(url(dm_device_key), content=body, headers=headers).status_code == 401
    assert (Message.objects.count(), Device.objects.count()) == (0, 0)


# --- 403, 404, 405 ----------------------------------------------------------------------------


def test_a_disabled_connection_is_forbidden(http, make_connection):
    connection = make_connection(enabled=False)
    response = http.post(url(connection), content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 403 and "disabled" in response.json()["error"]
    assert Message.objects.count() == 0


@pytest.mark.parametrize("path", [f"/ingest/{uuid.uuid4()}/", "/ingest/not-a-uuid/", "/ingest/"])
def test_an_unknown_connection_is_not_found_in_json(http, db, path):
    response = http.post(path, content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 404
    assert response.json() == {"error": "no such connection"}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_not_allowed(http, kpn, method):
    response = http.request(method, url(kpn), content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, GET"


def test_a_get_without_a_body_is_not_allowed(http, kpn):
    response = http.get(url(kpn))
    assert response.status_code == 405 and "body" in response.json()["error"]


# --- 413, 415, 400 ----------------------------------------------------------------------------


def test_a_2_mb_body_is_refused_413_before_it_is_sent(live_server, kpn):
    # Announce 2 MB, send only the headers and the first 64 KiB, then wait: the answer comes
    # without the server waiting for (or reading) the rest.
    parts = urlsplit(live_server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST {url(kpn)} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {2 * 1024 * 1024}\r\n\r\n"
            ).encode()
            + b"[" * 65536
        )
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert Message.objects.count() == 0


def test_a_body_just_over_the_limit_is_refused_413(http, kpn, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    body = senml({"n": "x", "vs": "a" * 1000})
    response = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert response.status_code == 413 and "1000 bytes" in response.json()["error"]


def test_a_body_declared_as_a_form_is_unsupported_media(http, kpn):
    headers = {**kpn_headers(BODY), "Content-Type": "application/x-www-form-urlencoded"}
    assert http.post(url(kpn), content=BODY, headers=headers).status_code == 415
    assert Message.objects.count() == 0


@pytest.mark.parametrize("body", [b"not json", b'[{"n":"x","v":NaN}]', b"\xff\xfe\x00"])
def test_an_authentic_body_that_is_not_json_is_a_bad_request_and_not_stored(http, kpn, body):
    response = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert response.status_code == 400 and "JSON" in response.json()["error"]
    assert Message.objects.count() == 0


# --- 422 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pack", "reason"),
    [
        ({"n": "x", "v": 1}, "JSON array"),
        ([], "empty array"),
        ([{"bn": "urn:dev:IMEI:1:", "n": "x"}], "neither a value"),
        ([{"bn": "urn:dev:IMEI:1:", "n": "bad name", "v": 1}], "not a valid SenML name"),
        ([{"bn": "urn:dev:IMEI:1:", "n": "x", "v": 1, "must_": 1}], "must be understood"),
    ],
)
def test_an_authentic_json_body_that_is_not_a_valid_pack_is_kept_invalid_and_answered_422(http, kpn, pack, reason):
    body = json.dumps(pack).encode()
    response = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert response.status_code == 422
    answer = response.json()
    assert reason in answer["error"]
    message = Message.objects.get(pk=answer["message_id"])
    assert (message.status, bytes(message.body), message.readings_count) == ("invalid", body, 0)
    assert reason in message.error
    assert Reading.objects.count() == 0


def test_a_pack_that_names_no_device_is_invalid(http, kpn):
    body = senml({"n": "temperature", "v": 1}, device="")
    response = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert response.status_code == 422 and "names no device" in response.json()["error"]


def test_an_unknown_device_on_a_connection_that_does_not_create_devices_is_invalid(http, make_connection):
    connection = make_connection(auto_create_devices=False)
    response = http.post(url(connection), content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 422
    assert "does not create devices" in response.json()["error"]
    assert (Device.objects.count(), Message.objects.get().status) == (0, "invalid")


def test_a_duplicate_of_an_invalid_message_answers_as_the_first_did(http, kpn):
    body = b"[]"
    first = http.post(url(kpn), content=body, headers=kpn_headers(body)).json()
    again = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert again.status_code == 422
    assert again.json()["message_id"] == first["message_id"] and again.json()["duplicate"] is True
    assert Message.objects.count() == 1


# --- values PostgreSQL cannot hold ------------------------------------------------------------


@pytest.mark.parametrize(
    "pack",
    [
        [{"bn": "urn:dev:IMEI:1:", "n": "x", "vs": "nul\u0000inside"}],
        [{"bn": "urn:dev:IMEI:1:", "n": "x", "v": 1, "nul\u0000_": 1}],
        [{"bn": "urn:dev:IMEI:1:", "n": "x", "u": "C\u0000", "v": 1}],
    ],
    ids=["string-value", "must-understand-label", "unit"],
)
def test_a_nul_character_makes_the_pack_invalid_never_a_503(http, kpn, pack):
    body = json.dumps(pack).encode()
    response = http.post(url(kpn), content=body, headers=kpn_headers(body))
    assert response.status_code == 422, response.text
    assert Message.objects.get().status == "invalid"


def test_a_digital_matter_serial_with_a_nul_character_is_invalid(http, dm_basic):
    body = json.dumps({"SerNo": "1\u00002", "Records": [{"DateUTC": "2024-03-05 10:15:02", "Fields": []}]}).encode()
    response = http.post(url(dm_basic), content=body, headers=basic_headers("oem", SECRET))
    assert response.status_code == 422 and "NUL" in response.json()["error"]


@pytest.mark.parametrize("serial", ["S" * 65, "with%20space", "nul%00"])
def test_a_serial_in_the_url_that_cannot_be_one_is_a_bad_request(http, kpn, serial):
    response = http.post(url(kpn, serial), content=BODY, headers=kpn_headers(BODY))
    assert response.status_code == 400 and "serial" in response.json()["error"]
    assert Message.objects.count() == 0
