"""Upgrading past the admin's lower-case urns (migration devices 0004): a device whose urn
was stored as typed (urn:dev:mac:…:) is found by the messages that name it afterwards."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from devices.models import Device
from ingest.models import Message
from tests.ingest.conftest import kpn_headers, senml

urns_upper_cased = importlib.import_module("devices.migrations.0004_urn_type_upper_case").urns_upper_cased

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_device_saved_with_a_lower_case_type_gets_the_messages_that_name_it(http, kpn, acme):
    typed = Device.objects.create(tenant=acme, name="typed in the admin", urn="urn:dev:mac:0a1b2c3d:")

    assert urns_upper_cased(apps, None) == []

    typed.refresh_from_db()
    assert typed.urn == "urn:dev:MAC:0a1b2c3d:", "the ID is kept as it was, only the TYPE changes"
    body = senml({"n": "temperature", "v": 21.5}, device="urn:dev:mac:0a1b2c3d:")
    answer = http.post(f"/ingest/{kpn.pk}/", content=body, headers=kpn_headers(body))
    assert answer.status_code == 200, answer.text
    assert Message.objects.get(pk=answer.json()["message_id"]).device_id == typed.pk
    assert Device.objects.filter(tenant=acme).count() == 1, "no second device was made"


def test_a_urn_another_device_already_holds_is_left_for_an_admin_and_named(acme, capsys):
    typed = Device.objects.create(tenant=acme, name="typed in the admin", urn="urn:dev:mac:0a1b2c3d:")
    made = Device.objects.create(tenant=acme, name="made by a message", urn="urn:dev:MAC:0a1b2c3d:")

    assert urns_upper_cased(apps, None) == ["urn:dev:mac:0a1b2c3d:"]

    typed.refresh_from_db()
    made.refresh_from_db()
    assert (typed.urn, made.urn) == ("urn:dev:mac:0a1b2c3d:", "urn:dev:MAC:0a1b2c3d:")
    said = capsys.readouterr().out
    assert str(typed.pk) in said and str(made.pk) in said and "merge" in said


def test_urns_already_upper_case_and_other_tenants_are_untouched(acme, globex):
    upper = Device.objects.create(tenant=acme, name="api", urn="urn:dev:DVNUUID:abc-def:")
    theirs = Device.objects.create(tenant=globex, name="theirs", urn="urn:dev:MAC:0a1b2c3d:")
    lower = Device.objects.create(tenant=acme, name="ours", urn="urn:dev:mac:0a1b2c3d:")

    assert urns_upper_cased(apps, None) == []

    assert Device.objects.get(pk=upper.pk).urn == "urn:dev:DVNUUID:abc-def:"
    assert Device.objects.get(pk=theirs.pk).urn == "urn:dev:MAC:0a1b2c3d:"
    assert Device.objects.get(pk=lower.pk).urn == "urn:dev:MAC:0a1b2c3d:", "another tenant's urn is no conflict"
