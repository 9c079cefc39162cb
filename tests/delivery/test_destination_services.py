"""destination_create / destination_update: the one way the API and the portal save a destination."""

from __future__ import annotations

import pytest

from delivery.models import Destination
from delivery.services import destination_create, destination_update
from portal.models import SecretAuditLog
from portal.secrets import whsec_form
from tests.delivery.conftest import ACTOR, SECRET

pytestmark = pytest.mark.django_db

FIELDS = {"name": "Receiver", "url": "https://receiver.example/in"}


def _audit(destination: Destination) -> list[tuple[str, str]]:
    return sorted(SecretAuditLog.objects.filter(object_id=str(destination.pk)).values_list("field", "action"))


def test_create_without_a_secret_generates_one_answered_once_with_its_whsec_form(acme, connection):
    new = destination_create(
        tenant=acme, fields=FIELDS, secrets={}, headers={"X-A": "[SERIAL]"}, connections=[connection], actor=ACTOR
    )

    stored = Destination.objects.get(pk=new.destination.pk)
    assert stored.secret.reveal() == new.generated_secret and new.whsec == whsec_form(new.generated_secret)
    assert [h.name for h in stored.header_rows.all()] == ["X-A"]
    assert list(stored.connections.all()) == [connection]
    assert _audit(stored) == [("secret", "set")]


def test_create_with_a_secret_answers_none_generated_and_sets_the_other_secrets(acme):
    new = destination_create(
        tenant=acme,
        fields={**FIELDS, "auth_type": "basic", "auth_username": "u"},
        secrets={"auth_password": "pw", "secret": SECRET},
        actor=ACTOR,
    )

    stored = Destination.objects.get(pk=new.destination.pk)
    assert new.generated_secret is None and new.whsec == whsec_form(SECRET)
    assert stored.secret.reveal() == SECRET and stored.auth_password.reveal() == "pw"
    assert _audit(stored) == [("auth_password", "set"), ("secret", "set")]


def test_update_leaves_what_is_not_given_and_an_empty_secret_clears(acme, connection):
    destination = destination_create(
        tenant=acme,
        fields=FIELDS,
        secrets={"secret": SECRET, "auth_password": "pw"},
        headers={"X-A": "1"},
        connections=[connection],
        actor=ACTOR,
    ).destination

    destination_update(destination=destination, fields={"name": "Renamed"}, secrets={"auth_password": ""}, actor=ACTOR)

    stored = Destination.objects.get(pk=destination.pk)
    assert stored.name == "Renamed" and stored.auth_password is None and stored.secret.reveal() == SECRET
    assert [h.name for h in stored.header_rows.all()] == ["X-A"] and list(stored.connections.all()) == [connection]


def test_update_switching_enabled_off_is_a_user_disabling_even_when_the_instance_already_says_so(acme):
    destination = destination_create(tenant=acme, fields=FIELDS, secrets={"secret": SECRET}, actor=ACTOR).destination
    destination.enabled = False  # as a bound ModelForm leaves it

    destination_update(destination=destination, fields={"enabled": False}, secrets={}, actor=ACTOR)

    stored = Destination.objects.get(pk=destination.pk)
    assert not stored.enabled and stored.disabled_reason == "disabled by a user"
