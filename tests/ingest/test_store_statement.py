"""Outside any transaction, the statement that stores a message is its own transaction: all of
the message is committed when it returns, or none of it is."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import DataError, IntegrityError
from django.db import connection as db_connection
from django.utils import timezone
from psycopg.pq import TransactionStatus

from devices.identity import identity_from_urn
from devices.models import Device, Reading
from ingest.models import Message, MessageClaim, claim_keys
from ingest.services import message_ingest
from ingest.storage import ReadingRow, message_store
from tests.ingest.conftest import DEVEUI, kpn_headers, senml

pytestmark = pytest.mark.django_db(transaction=True)

URN = f"urn:dev:DEVEUI:{DEVEUI}:"


def _counted_elsewhere() -> tuple[int, int, int]:
    """(messages, readings, claims) as another connection sees them: only what is committed."""
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname=db["NAME"]
    ) as other:
        return tuple(
            other.execute(f"SELECT count(*) FROM {model._meta.db_table}").fetchone()[0]  # noqa: S608
            for model in (Message, Reading, MessageClaim)
        )


@pytest.fixture
def known_device(acme):
    seen = timezone.now() - timedelta(hours=1)
    return Device.objects.create(tenant=acme, dev_eui=DEVEUI, urn=URN, last_seen_at=seen)


def _message(connection, body: bytes) -> Message:
    return Message(
        tenant_id=connection.tenant_id,
        connection=connection,
        received_at=timezone.now(),
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        status=Message.Status.ACCEPTED,
        readings_count=1,
    )


def _reading(unit: str = "Cel") -> ReadingRow:
    return ReadingRow(device_id=None, name="temperature", unit=unit, kind="number", value=21.5, sum=None,
                      time=timezone.now())  # fmt: skip


def test_a_message_of_a_known_device_is_committed_by_its_one_statement(kpn, known_device):
    body = senml({"n": "temperature", "v": 21.5}, device=URN)
    result = message_ingest(connection=kpn, body=body, headers=kpn_headers(body))
    assert not db_connection.in_atomic_block
    assert db_connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert _counted_elsewhere() == (1, 1, 1)
    assert Message.objects.get(pk=result.message_id).device == known_device


def test_a_value_the_database_refuses_leaves_nothing_of_the_message(kpn, known_device):
    message = _message(kpn, b"[]")
    keys = claim_keys(kpn.pk, message.body_sha256, "")
    # 33 characters where the column holds 32: the parser never lets such a unit through.
    with pytest.raises(DataError):
        message_store(message=message, readings=[_reading(unit="C" * 33)], claim_keys=keys,
                      device_lookup=identity_from_urn("DEVEUI", DEVEUI))  # fmt: skip
    assert _counted_elsewhere() == (0, 0, 0)
    assert Device.objects.get(pk=known_device.pk).last_seen_at == known_device.last_seen_at
    # ... and the connection is fit for the next statement.
    assert Device.objects.count() == 1


def test_a_claim_held_by_another_message_undoes_every_claim_and_row_of_this_one(kpn, known_device):
    message = _message(kpn, b"[1]")
    keys = claim_keys(kpn.pk, message.body_sha256, "msg_held")
    assert len(keys) == 2
    held = keys[1]
    MessageClaim.objects.create(key=held, message_id=uuid.uuid4(), claimed_at=timezone.now())

    stored = message_store(message=message, readings=[_reading()], claim_keys=keys,
                           device_lookup=identity_from_urn("DEVEUI", DEVEUI))  # fmt: skip

    assert stored is not None and not stored.claimed
    assert list(MessageClaim.objects.values_list("key", flat=True)) == [held]
    assert _counted_elsewhere() == (0, 0, 1)
    assert Device.objects.get(pk=known_device.pk).last_seen_at == known_device.last_seen_at


def test_a_device_that_does_not_exist_writes_nothing_and_says_so(kpn):
    message = _message(kpn, b"[2]")
    keys = claim_keys(kpn.pk, message.body_sha256, "")
    assert message_store(message=message, readings=[_reading()], claim_keys=keys,
                         device_lookup=identity_from_urn("DEVEUI", DEVEUI)) is None  # fmt: skip
    assert _counted_elsewhere() == (0, 0, 0)


def test_a_commit_that_fails_raises_its_own_error_and_leaves_the_connection_fit(kpn, known_device):
    # A message of a connection that does not exist: the foreign key is checked at commit,
    # which outside a transaction is the pipeline's end.
    message = _message(kpn, b"[3]")
    message.connection_id = uuid.uuid4()
    keys = claim_keys(message.connection_id, message.body_sha256, "")
    with pytest.raises(IntegrityError):
        message_store(message=message, readings=[_reading()], claim_keys=keys,
                      device_lookup=identity_from_urn("DEVEUI", DEVEUI))  # fmt: skip
    assert _counted_elsewhere() == (0, 0, 0)
    assert Device.objects.get(pk=known_device.pk).last_seen_at == known_device.last_seen_at
