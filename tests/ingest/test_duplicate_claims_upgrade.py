"""Upgrading to duplicate claims (migration ingest 0003): what arrived in the last 24 h
before the upgrade still makes its repeats duplicates afterwards."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from ingest.models import Message, MessageClaim
from tests.ingest.conftest import kpn_headers, senml, sw_headers

claims_of_recent_messages = importlib.import_module("ingest.migrations.0003_message_claims").claims_of_recent_messages

pytestmark = pytest.mark.django_db(transaction=True)

RECENT = senml({"n": "temperature", "v": 1})
OLD = senml({"n": "temperature", "v": 2})


def _stored_before_the_upgrade(http, connection, body, headers, *, age=timedelta(0)) -> str:
    message_id = http.post(f"/ingest/{connection.pk}/", content=body, headers=headers).json()["message_id"]
    Message.objects.filter(pk=message_id).update(received_at=timezone.now() - age)
    MessageClaim.objects.all().delete()  # as if it had been stored by the previous version
    return message_id


def test_messages_of_the_last_day_get_claims_and_older_ones_do_not(http, kpn):
    recent = _stored_before_the_upgrade(http, kpn, RECENT, kpn_headers(RECENT), age=timedelta(hours=23))
    _stored_before_the_upgrade(http, kpn, OLD, kpn_headers(OLD), age=timedelta(hours=25))

    claims_of_recent_messages(apps, None)

    again = http.post(f"/ingest/{kpn.pk}/", content=RECENT, headers=kpn_headers(RECENT)).json()
    assert again == {"message_id": recent, "readings": 1, "duplicate": True}
    assert "duplicate" not in http.post(f"/ingest/{kpn.pk}/", content=OLD, headers=kpn_headers(OLD)).json()


def test_a_webhook_id_of_the_last_day_is_claimed_too(http, webhooks):
    first = _stored_before_the_upgrade(http, webhooks, RECENT, sw_headers(RECENT, msg_id="msg_before"))

    claims_of_recent_messages(apps, None)

    other = http.post(f"/ingest/{webhooks.pk}/", content=OLD, headers=sw_headers(OLD, msg_id="msg_before")).json()
    assert other["message_id"] == first and other["duplicate"] is True
