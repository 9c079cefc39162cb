"""Verification schemes on their own: properties of the KPN token, Standard Webhooks, HTTP Basic.

Standard Webhooks signatures are made with the `standardwebhooks` reference library, so
our verifier is checked against an implementation that is not ours.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from ingest.kinds.digital_matter import basic_valid
from ingest.kinds.kpn_things import kpn_token, kpn_token_valid, plug_uuid_valid
from ingest.kinds.standard_webhooks import TOLERANCE_SECONDS, signatures_valid, timestamp_fresh
from portal.secrets import whsec_form, whsec_key_bytes

SECRET = "Kpn-Shared-Secret-0123456789-abcd!"
OTHER = "Another-Shared-Secret-9876543210-xyZ#"

secrets_ = st.text(min_size=1, max_size=64).filter(lambda s: "\x00" not in s)


def changed_one_byte(data: bytes, index: int, replacement: int) -> bytes:
    index %= len(data)
    assume(data[index] != replacement)
    return data[:index] + bytes([replacement]) + data[index + 1 :]


# --- KPN Things-Message-Token ----------------------------------------------------------------


def test_the_token_is_sha256_of_body_then_secret_in_lowercase_hex():
    body = b'[{"n":"x","v":1}]'
    assert kpn_token(body, "secret") == hashlib.sha256(body + b"secret").hexdigest()
    # The same JSON with other spacing is other bytes, so another token: the raw body is what counts.
    assert kpn_token(b'[{"n": "x", "v": 1}]', "secret") != kpn_token(body, "secret")


@settings(max_examples=200)
@given(body=st.binary(max_size=512), secret=secrets_)
def test_a_valid_token_always_verifies(body, secret):
    assert kpn_token_valid(body=body, token=kpn_token(body, secret), secrets=[secret])


@settings(max_examples=200)
@given(
    body=st.binary(min_size=1, max_size=512), secret=secrets_, index=st.integers(min_value=0), byte=st.integers(0, 255)
)
def test_any_changed_byte_of_the_body_never_verifies(body, secret, index, byte):
    token = kpn_token(body, secret)
    assert not kpn_token_valid(body=changed_one_byte(body, index, byte), token=token, secrets=[secret])


@settings(max_examples=200)
@given(body=st.binary(max_size=512), secret=secrets_, index=st.integers(min_value=0), byte=st.integers(0, 255))
def test_any_changed_byte_of_the_token_never_verifies(body, secret, index, byte):
    token = kpn_token(body, secret).encode()
    changed = changed_one_byte(token, index, byte).decode("latin-1")
    assert not kpn_token_valid(body=body, token=changed, secrets=[secret])


@settings(max_examples=200)
@given(plug=st.uuids(), index=st.integers(min_value=0), byte=st.integers(0, 255))
def test_any_changed_byte_of_the_plug_uuid_never_verifies(plug, index, byte):
    header = str(plug).encode()
    assert plug_uuid_valid(header=header.decode(), plug_uuid=plug)
    changed = changed_one_byte(header, index, byte).decode("latin-1")
    assert not plug_uuid_valid(header=changed, plug_uuid=plug)


@given(body=st.binary(max_size=256))
def test_during_a_grace_period_either_secret_verifies(body):
    assert kpn_token_valid(body=body, token=kpn_token(body, SECRET), secrets=[OTHER, SECRET])
    assert kpn_token_valid(body=body, token=kpn_token(body, OTHER), secrets=[OTHER, SECRET])


def test_a_token_for_another_secret_or_an_empty_one_does_not_verify():
    body = b"[]"
    assert not kpn_token_valid(body=body, token=kpn_token(body, OTHER), secrets=[SECRET])
    assert not kpn_token_valid(body=body, token="", secrets=[SECRET])
    assert not kpn_token_valid(body=body, token=kpn_token(body, SECRET), secrets=[])


def test_only_the_canonical_lowercase_plug_uuid_verifies():
    plug = uuid.UUID("fbc063cb-4dd4-41b3-917a-e2d1ea907f75")
    assert plug_uuid_valid(header="fbc063cb-4dd4-41b3-917a-e2d1ea907f75", plug_uuid=plug)
    assert not plug_uuid_valid(header="FBC063CB-4DD4-41B3-917A-E2D1EA907F75", plug_uuid=plug)
    assert not plug_uuid_valid(header="", plug_uuid=plug)


# --- Standard Webhooks -------------------------------------------------------------------------


def sign(secret: str, body: bytes, msg_id: str = "msg_1", at: datetime | None = None) -> tuple[str, str]:
    at = at or datetime.now(UTC)
    header = Webhook(whsec_form(secret)).sign(msg_id, at, body.decode())
    return str(int(at.timestamp())), header


def test_a_reference_library_signature_verifies():
    body = b'[{"n":"x","v":1}]'
    timestamp, header = sign(SECRET, body)
    assert signatures_valid(keys=[SECRET.encode()], webhook_id="msg_1", timestamp=timestamp, body=body, header=header)


def test_a_whsec_secret_signs_with_its_decoded_bytes():
    whsec = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b"[]"
    timestamp, header = sign(whsec, body)
    assert whsec_key_bytes(whsec) == b"k" * 32
    assert signatures_valid(
        keys=[whsec_key_bytes(whsec)], webhook_id="msg_1", timestamp=timestamp, body=body, header=header
    )


def test_one_matching_signature_among_several_verifies():
    body = b"[]"
    timestamp, good = sign(SECRET, body)
    _, other = sign(OTHER, body)
    header = f"v1,bm9wZQ== {other} {good} v2,ignored"
    assert signatures_valid(keys=[SECRET.encode()], webhook_id="msg_1", timestamp=timestamp, body=body, header=header)


def test_signatures_of_another_id_timestamp_or_body_do_not_verify():
    body = b"[1]"
    timestamp, header = sign(SECRET, body)
    key = [SECRET.encode()]
    assert not signatures_valid(keys=key, webhook_id="msg_2", timestamp=timestamp, body=body, header=header)
    assert not signatures_valid(
        keys=key, webhook_id="msg_1", timestamp=str(int(timestamp) + 1), body=body, header=header
    )
    assert not signatures_valid(keys=key, webhook_id="msg_1", timestamp=timestamp, body=b"[2]", header=header)
    assert not signatures_valid(keys=key, webhook_id="msg_1", timestamp=timestamp, body=body, header=header[3:])


def test_timestamps_within_five_minutes_either_way_are_fresh():
    now = time.time()
    assert timestamp_fresh(str(int(now - TOLERANCE_SECONDS + 1)), now=now)
    assert timestamp_fresh(str(int(now + TOLERANCE_SECONDS - 1)), now=now)
    assert not timestamp_fresh(str(int(now - TOLERANCE_SECONDS - 2)), now=now)
    assert not timestamp_fresh(str(int(now + TOLERANCE_SECONDS + 2)), now=now)
    assert not timestamp_fresh("12.5", now=now)
    assert not timestamp_fresh("-1", now=now)


# --- HTTP Basic ---------------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_credentials_verify_with_the_user_name_and_either_secret():
    assert basic_valid(header=basic("oem", SECRET), username="oem", secrets=[SECRET])
    assert basic_valid(header=basic("oem", OTHER), username="oem", secrets=[SECRET, OTHER])


def test_basic_credentials_with_a_wrong_part_do_not_verify():
    assert not basic_valid(header=basic("other", SECRET), username="oem", secrets=[SECRET])
    assert not basic_valid(header=basic("oem", OTHER), username="oem", secrets=[SECRET])
    assert not basic_valid(header="Bearer " + SECRET, username="oem", secrets=[SECRET])
    assert not basic_valid(header="Basic not-base64!", username="oem", secrets=[SECRET])
    assert not basic_valid(header="Basic " + base64.b64encode(b"no-colon").decode(), username="oem", secrets=[SECRET])
