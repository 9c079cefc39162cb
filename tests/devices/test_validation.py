"""devices/validation.py: the identifier rules the API, the portal's device form and the admin's share."""

from __future__ import annotations

import pytest

from devices.models import Device
from devices.validation import (
    IDENTITY_FIELDS,
    TAKEN,
    device_has_identity,
    device_identifiers_check,
    device_identity_refused,
)

pytestmark = pytest.mark.django_db


def test_identifiers_are_normalised_and_a_bad_one_says_its_rule(acme):
    checked = device_identifiers_check(tenant=acme, values={"dev_eui": "00aabbccddeeff11", "imei": "12", "serial": ""})

    assert checked.normalised == {"dev_eui": "00AABBCCDDEEFF11"}
    assert checked.problems == {"imei": "must be 14 to 16 digits"}


def test_an_identifier_of_another_device_of_the_tenant_is_taken_but_the_devices_own_is_not(acme, globex):
    mine = Device.objects.create(tenant=acme, serial="S1")
    Device.objects.create(tenant=globex, serial="G1")

    assert device_identifiers_check(tenant=acme, values={"serial": "S1"}).problems == {"serial": TAKEN}
    assert device_identifiers_check(tenant=acme, values={"serial": "S1"}, device=mine).problems == {}
    assert device_identifiers_check(tenant=acme, values={"serial": "G1"}).problems == {}


@pytest.mark.parametrize(
    ("values", "identity"),
    [
        ({"serial": "S1"}, True),
        ({"serial": "", "imei": "", "urn": ""}, False),
        ({"urn": "urn:dev:MAC:0024befffe804ff1:"}, True),
        # Messages naming urn:dev:SERIAL:S1: look up the serial field, not the urn.
        ({"serial": "", "urn": "urn:dev:SERIAL:S1:"}, False),
    ],
)
def test_a_device_has_an_identity_when_an_identifier_or_a_urn_of_another_type_names_it(values, identity):
    assert device_has_identity(values) is identity


@pytest.mark.parametrize(
    ("stored", "values", "refused"),
    [
        (None, {"serial": ""}, True),
        ({"serial": "S1"}, {"serial": ""}, True),
        ({"urn": "urn:dev:MAC:0024befffe804ff1:"}, {"urn": ""}, True),
        ({"serial": "S1"}, {"serial": "", "imei": "353785720001234"}, False),
        # Stored without an identity (before the rule): only a change of identifiers must give it one.
        ({}, {"serial": ""}, False),
        ({}, {"urn": "urn:dev:SERIAL:S1:"}, True),
        ({}, {"serial": "S1"}, False),
    ],
)
def test_a_save_is_refused_for_no_identity_when_it_is_new_or_changes_the_identifiers(acme, stored, values, refused):
    device = None if stored is None else Device.objects.create(tenant=acme, **stored)
    after = {name: values.get(name, getattr(device, name, "")) for name in IDENTITY_FIELDS}

    assert device_identity_refused(values=after, device=device, malformed=()) is refused


@pytest.mark.parametrize(
    ("stored", "malformed", "refused"),
    [
        (None, {"imei"}, False),
        (None, {"urn"}, False),
        ({"serial": "S1"}, {"dev_eui"}, False),
        # A field that names no device does not stand for an identifier given.
        (None, {"custom1"}, True),
    ],
)
def test_a_malformed_identity_field_is_refused_with_its_own_reason_not_the_no_identity_one(
    acme, stored, malformed, refused
):
    # Given the values a form is left with: a malformed value is dropped beside its own error.
    device = None if stored is None else Device.objects.create(tenant=acme, **stored)
    after = dict.fromkeys(IDENTITY_FIELDS, "")

    assert device_identity_refused(values=after, device=device, malformed=malformed) is refused
