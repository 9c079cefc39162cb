"""A hypothesis-generated stream of SenML packs, valid and broken, sent signed to a
KPN Things connection through the whole Django stack (the test client, in process:
the property does not depend on the socket, and in process it runs hundreds of cases
in seconds). The database is the real PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.models import Connection, ConnectionKind, Message
from portal.secrets import Actor, secret_set

pytestmark = pytest.mark.django_db

SECRET = "Fuzz-Connection-Secret-0123456789-ab!"
DEVEUI = "0059AC00000F0221"

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 2**28, 2**28 - 1, 1.7e9, 2**63]),
)
texts = st.one_of(st.text(max_size=24), st.sampled_from(["", "\x00", "a\x00b", "\ud7ff", "é", "🚀", "\r\n", " " * 3]))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
junk = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3), max_leaves=8
)
names = st.one_of(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9:./_-]{0,24}", fullmatch=True),
    texts,
)
base_names = st.one_of(
    st.sampled_from(
        [
            f"urn:dev:DEVEUI:{DEVEUI}:",
            "urn:dev:imei:353000000000221:",
            "urn:dev:SERIAL:fz-1:",
            "urn:dev:MAC:0a0b0c:",
            "urn:dev:DVNUUID:4e2a:",
            "urn:dev::",
            "urn:dev:DEVEUI:",
        ]
    ),
    names,
)
FIELDS = {
    "bn": base_names,
    "bt": st.one_of(numbers, scalars),
    "bu": texts,
    "bv": st.one_of(numbers, scalars),
    "bs": st.one_of(numbers, scalars),
    "bver": st.one_of(st.integers(-2, 20), scalars),
    "n": names,
    "u": texts,
    "v": st.one_of(numbers, scalars),
    "vs": st.one_of(texts, scalars),
    "vb": st.one_of(st.booleans(), scalars),
    "vd": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{0,16}", fullmatch=True), scalars),
    "s": st.one_of(numbers, scalars),
    "t": st.one_of(numbers, scalars),
    "ut": st.one_of(numbers, scalars),
}
record = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries({}, optional=FIELDS),
    st.dictionaries(st.sampled_from(["x", "x_", "foo_", "bar", "é_"]), scalars, max_size=1),
)
# Packs that follow RFC 8428: the first record names the device; each has a valid name
# and exactly one value (or a sum), times absolute or relative.
valid_value = st.one_of(
    st.tuples(st.just("v"), st.one_of(st.integers(-(2**53), 2**53), st.floats(-1e300, 1e300))),
    st.tuples(st.just("vs"), texts),
    st.tuples(st.just("vb"), st.booleans()),
    st.tuples(st.just("vd"), st.from_regex(r"[A-Za-z0-9_-]{0,16}", fullmatch=True)),
    st.tuples(st.just("s"), st.floats(-1e12, 1e12)),
)
valid_record = st.builds(
    lambda name, value, extra: {"n": name, value[0]: value[1], **extra},
    st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,16}", fullmatch=True),
    valid_value,
    st.fixed_dictionaries(
        {},
        optional={
            "u": st.sampled_from(["Cel", "%RH", "V", "m", "lat", "lon", "count"]),
            "t": st.one_of(st.floats(-1e6, 0), st.floats(1.6e9, 1.8e9)),
        },
    ),
)
valid_packs = st.lists(valid_record, min_size=1, max_size=5).map(
    lambda records: [{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", **records[0]}, *records[1:]]
)
# A valid pack with one field of one record replaced by anything.
spoiled_packs = st.builds(
    lambda pack, key, value: [{**pack[0], key: value}, *pack[1:]],
    valid_packs,
    st.sampled_from([*FIELDS, "x_", "extra"]),
    junk,
)
documents = st.one_of(
    valid_packs, spoiled_packs, st.lists(record, min_size=1, max_size=6), st.lists(record, max_size=2), junk
)


@pytest.fixture
def connection(acme) -> Connection:
    connection = Connection.objects.create(tenant=acme, name="fuzz", kind=ConnectionKind.KPN_THINGS)
    secret_set(obj=connection, field="secret", value=SECRET, actor=Actor(label="fuzz"))
    return connection


def _post(client: Client, connection: Connection, body: bytes):
    token = hashlib.sha256(body + SECRET.encode()).hexdigest()
    return client.generic(
        "POST",
        f"/ingest/{connection.pk}/",
        body,
        content_type="application/json",
        HTTP_THINGS_MESSAGE_TOKEN=token,
    )


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(document=documents, ensure_ascii=st.booleans())
@example(document=[{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", "n": "t", "vs": "a\x00b"}], ensure_ascii=True)
@example(document=[{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", "n": "t", "v": 1, "t": 1e308}], ensure_ascii=True)
@example(document=[{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", "n": "t", "v": 2**70}], ensure_ascii=True)
@example(document=[{"bn": f"urn:dev:DEVEUI:{DEVEUI}:", "n": "t", "v": 1, "u": "x" * 300}], ensure_ascii=False)
@example(document=[{"bn": "urn:dev:DEVEUI:" + "A" * 300 + ":", "n": "t", "v": 1}], ensure_ascii=True)
def test_no_senml_pack_valid_or_broken_ever_gets_a_5xx(connection, document, ensure_ascii):
    """Pass: every signed JSON body answers 200 (an accepted message with that many
    readings) or 422 (an `invalid` message keeping the raw body and a reason); never a 5xx."""
    body = json.dumps(document, ensure_ascii=ensure_ascii).encode()
    response = _post(Client(), connection, body)

    assert response.status_code in (200, 422), (response.status_code, response.content[:300])
    answer = response.json()
    message = Message.objects.get(pk=answer["message_id"])
    if response.status_code == 200:
        assert message.status == "accepted" and message.readings.count() == answer["readings"]
    else:
        assert message.status == "invalid" and message.error and answer["error"]
    assert bytes(message.body) == body or answer.get("duplicate")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_signed_never_get_a_5xx(connection, body):
    """Pass: any signed byte string answers 200, 400 or 422, never a 5xx."""
    response = _post(Client(), connection, body)
    assert response.status_code in (200, 400, 422), (response.status_code, response.content[:300])
