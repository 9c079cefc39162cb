"""The plain-SQL helpers of the ingest hot path store and load exactly what the ORM would."""

from __future__ import annotations

import uuid

from devices.models import Reading
from ingest.selectors import connection_for_ingest
from ingest.services import message_ingest
from portal.fields import SealedSecret
from tests.ingest.conftest import SECRET, kpn_headers, senml


def test_a_connection_is_loaded_with_its_secret_sealed(kpn):
    loaded = connection_for_ingest(kpn.pk).connection
    assert isinstance(loaded.secret, SealedSecret) and loaded.secret.reveal() == SECRET
    assert {f.attname: getattr(loaded, f.attname) for f in kpn._meta.concrete_fields} == {
        f.attname: getattr(kpn, f.attname) for f in kpn._meta.concrete_fields
    }


def test_an_unknown_connection_is_none(db):
    assert connection_for_ingest(uuid.uuid4()) is None


def test_readings_are_stored_as_the_orm_would_store_them(kpn):
    body = senml({"n": "energy", "s": 5}, {"n": "label", "vs": "x"}, {"n": "flag", "vb": False})
    message_ingest(connection=kpn, body=body, headers=kpn_headers(body))
    # A sum alone leaves value SQL NULL (not JSON null); other values keep their JSON type.
    assert list(Reading.objects.filter(value__isnull=True).values_list("name", flat=True)) == ["energy"]
    assert Reading.objects.get(name="label").value == "x"
    assert Reading.objects.get(name="flag").value is False
