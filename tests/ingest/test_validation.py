"""ingest/validation.py: one set of connection rules, answered alike by the API and the portal form."""

from __future__ import annotations

import pytest
from django.test import Client

from ingest.validation import connection_errors, device_key_header_errors

PLUG = "fbc063cb-4dd4-41b3-917a-e2d1ea907f75"


def test_a_header_name_with_a_space_or_colon_is_refused_and_a_token_is_taken():
    assert device_key_header_errors("X-Device-Key") == []
    assert device_key_header_errors("X Key") and device_key_header_errors("X:Key")
    assert device_key_header_errors("X-Key\n")


def test_digital_matter_basic_needs_a_user_name_and_device_keys_do_not():
    basic = connection_errors(kind="digital-matter", auth_mode="basic", username="", plug_uuid=None)
    keyed = connection_errors(kind="digital-matter", auth_mode="device-key", username="", plug_uuid=None)
    assert basic == {"username": ["Required for HTTP Basic: the user name the sender sends."]}
    assert keyed == {}


def test_only_kpn_things_takes_a_plug_uuid():
    assert connection_errors(kind="kpn-things", auth_mode="basic", username="", plug_uuid=PLUG) == {}
    other = connection_errors(kind="standard-webhooks", auth_mode="basic", username="", plug_uuid=PLUG)
    assert other == {"plug_uuid": ["Only KPN Things connections check Things-Plug-UUID."]}


def test_a_whsec_key_is_a_secret_only_for_standard_webhooks():
    whsec = "whsec_" + "A" * 44
    common = {"auth_mode": "basic", "username": "", "plug_uuid": None, "secret": whsec}
    assert connection_errors(kind="standard-webhooks", **common) == {}
    assert "secret" in connection_errors(kind="kpn-things", **common)


def test_an_unknown_kind_checks_nothing_else():
    assert connection_errors(kind=None, auth_mode="basic", username="", plug_uuid=PLUG, secret="short") == {}


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "digital-matter", "auth_mode": "basic"},
        {"kind": "digital-matter", "auth_mode": "device-key", "plug_uuid": PLUG},
        {"kind": "digital-matter", "auth_mode": "device-key", "device_key_header": "X Key"},
        {"kind": "kpn-things", "auth_mode": "basic", "secret": "too-short"},
    ],
)
def test_the_api_and_the_portal_form_answer_the_same_words(bob, api_as, fields):
    api = api_as(bob).post("/api/v1/connections/", {"name": "C", **fields}, format="json")
    page = Client()
    page.force_login(bob)
    form = page.post(
        "/connections/new/", {"name": "C", "device_key_header": "X-Device-Key", "enabled": "on", **fields}
    ).context["form"]
    assert api.status_code == 400
    assert api.json() == {name: list(errors) for name, errors in form.errors.items()}
