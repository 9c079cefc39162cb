"""Building one request: dynamic fields, bodies, signatures and static auth headers."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid

import pytest
from standardwebhooks.webhooks import Webhook

from delivery.dynamic_fields import EmptyDynamicField, UnsafeDynamicField, fields_fill_header, fields_fill_url
from delivery.payloads import json_body, senml_body
from delivery.request import request_build, user_agent
from delivery.signing import signature_headers, things_token
from delivery.snapshot import DestinationData, DeviceData, MessageData, ReadingData
from portal.secrets import whsec_form

SECRET = "Sh4red-Secret-For-Tests-0123456789#"
OLD_SECRET = "0ld-Shared-Secret-For-Tests-987654!"
T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)


def device(**overrides) -> DeviceData:
    values = {
        "id": 42,
        "serial": "SN 1/ä",
        "imei": "353000000000001",
        "iccid": "8931000000000000001",
        "dev_eui": "0004A30B001C1234",
        "custom1": "site-7",
        "custom2": "",
        "custom3": "x",
        "urn": "urn:dev:DEVEUI:0004A30B001C1234:",
    }
    values.update(overrides)
    return DeviceData(**values)


def message(dev: DeviceData | None = None) -> MessageData:
    readings = (
        ReadingData(name="temperature", unit="Cel", kind="number", value=21.5, sum=None, time=T0),
        ReadingData(
            name="humidity", unit="%RH", kind="number", value=40, sum=None, time=T0 + dt.timedelta(seconds=1.5)
        ),
        ReadingData(name="status", unit="", kind="string", value="ok", sum=None, time=T0),
        ReadingData(name="door", unit="", kind="boolean", value=True, sum=None, time=T0 - dt.timedelta(seconds=60)),
        ReadingData(name="raw", unit="", kind="data", value="AQID", sum=None, time=T0),
        ReadingData(name="energy", unit="Wh", kind="", value=None, sum=1234.5, time=T0),
    )
    return MessageData(
        id=uuid.UUID("11111111-2222-3333-4444-555555555555"),
        received_at=T0 + dt.timedelta(seconds=2),
        device=dev if dev is not None else device(),
        readings=readings,
    )


def destination(**overrides) -> DestinationData:
    values = {
        "id": uuid.UUID("fbc063cb-4dd4-41b3-917a-e2d1ea907f75"),
        "tenant_id": 1,
        "url": "https://receiver.example/hook",
        "method": "POST",
        "headers": (),
        "signature": "things-token",
        "payload_format": "senml",
        "expected_response_code": None,
        "auth_type": "none",
        "auth_username": "",
        "timeout_seconds": 5,
        "max_attempts": 3,
        "secrets": (SECRET,),
    }
    values.update(overrides)
    return DestinationData(**values)


def senml_resolve(pack: list[dict]) -> list[dict]:
    """RFC 8428 section 4.6 resolution, written independently of the code under test."""
    base = {"bn": "", "bt": 0, "bu": None, "bv": 0, "bs": 0}
    out = []
    for record in pack:
        for key in base:
            if key in record:
                base[key] = record[key]
        resolved = {"n": base["bn"] + record.get("n", ""), "t": base["bt"] + record.get("t", 0)}
        unit = record.get("u", base["bu"])
        if unit:
            resolved["u"] = unit
        for key in ("vs", "vb", "vd"):
            if key in record:
                resolved[key] = record[key]
        if "v" in record:
            resolved["v"] = base["bv"] + record["v"]
        if "s" in record:
            resolved["s"] = base["bs"] + record["s"]
        out.append(resolved)
    return out


# -- dynamic fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placeholder", "expected"),
    [
        ("[SERIAL]", "SN%201%2F%C3%A4"),
        ("[IMEI]", "353000000000001"),
        ("[ICCID]", "8931000000000000001"),
        ("[DEVEUI]", "0004A30B001C1234"),
        ("[CUSTOM1]", "site-7"),
        ("[CUSTOM3]", "x"),
        ("[DEVICE_ID]", "42"),
    ],
)
def test_every_dynamic_field_is_percent_encoded_as_a_url_component(placeholder, expected):
    assert fields_fill_url(f"https://r.example/d/{placeholder}?q={placeholder}", device()) == (
        f"https://r.example/d/{expected}?q={expected}"
    )


def test_url_keeps_rfc3986_unreserved_characters_and_encodes_the_rest():
    assert fields_fill_url("https://r.example/[CUSTOM1]", device(custom1="aZ09-._~ &?#/=+%")) == (
        "https://r.example/aZ09-._~%20%26%3F%23%2F%3D%2B%25"
    )


def test_header_values_take_dynamic_fields_as_is():
    assert fields_fill_header("X-Device", "[SERIAL] at [CUSTOM1]", device()) == "SN 1/ä at site-7"


def test_an_empty_field_is_named_in_the_error():
    with pytest.raises(EmptyDynamicField, match=r"\[CUSTOM2\]") as caught:
        fields_fill_url("https://r.example/[CUSTOM2]", device())
    assert caught.value.field == "CUSTOM2"


def test_a_field_with_a_line_break_is_refused_in_a_header():
    with pytest.raises(UnsafeDynamicField, match="line break"):
        fields_fill_header("X-Site", "[CUSTOM1]", device(custom1="evil\r\nX-Injected: 1"))


def test_a_message_without_a_device_has_every_field_empty():
    with pytest.raises(EmptyDynamicField):
        fields_fill_url("https://r.example/[DEVICE_ID]", None)


# -- bodies ------------------------------------------------------------------------------


def test_senml_body_is_compact_and_resolves_to_exactly_the_readings():
    body = senml_body(message())
    assert b" " not in body and b"\n" not in body
    pack = json.loads(body)
    assert pack[0]["bn"] == "urn:dev:DEVEUI:0004A30B001C1234:"
    assert pack[0]["bt"] == T0.timestamp()
    assert all("bn" not in r and "bt" not in r for r in pack[1:])
    resolved = senml_resolve(pack)
    urn = "urn:dev:DEVEUI:0004A30B001C1234:"
    for got, reading in zip(resolved, message().readings, strict=True):
        assert got["n"] == urn + reading.name
        assert dt.datetime.fromtimestamp(round(got["t"], 6), dt.UTC) == reading.time
        assert got.get("u", "") == reading.unit
        if reading.sum is not None:
            assert got["s"] == reading.sum
    assert [r.get("v") for r in resolved] == [21.5, 40, None, None, None, None]
    assert (resolved[2]["vs"], resolved[3]["vb"], resolved[4]["vd"]) == ("ok", True, "AQID")
    assert "v" not in resolved[5] and resolved[5]["s"] == 1234.5


def test_json_body_is_exactly_the_pinned_shape():
    body = json_body(message())
    assert b": " not in body and b", " not in body
    document = json.loads(body)
    assert list(document) == ["message_id", "device", "received_at", "readings"]
    assert document["message_id"] == "11111111-2222-3333-4444-555555555555"
    assert document["device"] == {
        "id": 42,
        "serial": "SN 1/ä",
        "imei": "353000000000001",
        "iccid": "8931000000000000001",
        "dev_eui": "0004A30B001C1234",
        "custom1": "site-7",
        "custom2": "",
        "custom3": "x",
    }
    assert document["received_at"] == "2026-03-01T12:00:02.250000Z"
    assert document["readings"][0] == {
        "name": "temperature",
        "unit": "Cel",
        "value": 21.5,
        "sum": None,
        "time": "2026-03-01T12:00:00.250000Z",
    }
    assert document["readings"][5] == {
        "name": "energy",
        "unit": "Wh",
        "value": None,
        "sum": 1234.5,
        "time": "2026-03-01T12:00:00.250000Z",
    }


# -- signatures ----------------------------------------------------------------------------


def test_things_token_is_sha256_of_body_then_secret():
    body = b'[{"n":"x","v":1}]'
    assert things_token(body, SECRET) == hashlib.sha256(body + SECRET.encode()).hexdigest()


def test_standard_webhooks_signature_verifies_with_the_standard_library():
    body = b'[{"n":"x","v":1}]'
    now = int(dt.datetime.now(dt.UTC).timestamp())
    headers = dict(
        signature_headers(
            body=body, secrets=(SECRET,), scheme="standard-webhooks", webhook_id="msg_1", plug_uuid="p", timestamp=now
        )
    )
    assert "Things-Message-Token" not in headers
    Webhook(whsec_form(SECRET)).verify(body, headers)


def test_during_a_grace_period_both_keys_sign_and_each_verifies():
    body = b"[]"
    now = int(dt.datetime.now(dt.UTC).timestamp())
    headers = dict(
        signature_headers(
            body=body, secrets=(SECRET, OLD_SECRET), scheme="both", webhook_id="msg_2", plug_uuid="p", timestamp=now
        )
    )
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(whsec_form(SECRET)).verify(body, headers)
    Webhook(whsec_form(OLD_SECRET)).verify(body, headers)
    assert headers["Things-Message-Token"] == things_token(body, SECRET)


# -- the whole request -------------------------------------------------------------------


def test_request_carries_body_signature_plug_uuid_user_agent_and_static_headers():
    dest = destination(
        url="https://r.example/[DEVEUI]?c=[CUSTOM1]",
        headers=(("X-Site", "[CUSTOM1]"), ("X-Static", "v")),
        signature="both",
    )
    req = request_build(destination=dest, message=message(), webhook_id="msg_abc", timestamp=1_700_000_000)
    assert req.url == "https://r.example/0004A30B001C1234?c=site-7"
    assert req.header("Content-Type") == "application/json"
    assert req.header("User-Agent") == user_agent() and user_agent().startswith("IntegrationPortal/")
    assert req.header("Things-Plug-UUID") == str(dest.id)
    assert req.header("Things-Message-Token") == things_token(req.body, SECRET)
    assert req.header("webhook-id") == "msg_abc"
    assert (req.header("X-Site"), req.header("X-Static")) == ("site-7", "v")
    assert req.body == senml_body(message())


def test_basic_auth_header_carries_user_and_password():
    dest = destination(auth_type="basic", auth_username="user", auth_password="p@ss:word")
    req = request_build(destination=dest, message=message(), webhook_id="m")
    assert req.header("Authorization") == "Basic " + base64.b64encode(b"user:p@ss:word").decode()


def test_the_request_repr_never_shows_headers_or_secrets():
    dest = destination(auth_type="basic", auth_username="u", auth_password="Very-Secret-Password-1!")
    req = request_build(destination=dest, message=message(), webhook_id="m")
    assert "Very-Secret" not in repr(req) and SECRET not in repr(dest) and "Very-Secret" not in repr(dest)
