"""The encrypted secret field: stored encrypted, never shown, failing closed."""

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from ingest.models import Connection, ConnectionKind
from portal.fields import SealedSecret, SecretUnavailable

CANARY = "Canary-Secret-0123456789-abcdefXYZ!"


@pytest.fixture
def stored(acme) -> Connection:
    conn = Connection.objects.create(tenant=acme, name="kpn", kind=ConnectionKind.KPN_THINGS, secret=CANARY)
    return Connection.objects.get(pk=conn.pk)


def test_secret_reads_back_sealed_and_reveals_the_value(stored):
    assert isinstance(stored.secret, SealedSecret)
    assert stored.secret.reveal() == CANARY


def test_the_column_holds_ciphertext_not_the_secret(stored):
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM ingest_connection WHERE id = %s", [stored.pk])
        (raw,) = cursor.fetchone()
    assert CANARY not in raw
    assert raw.startswith("gAAAA")  # a Fernet token


def test_saving_seals_the_value_on_the_instance_too(acme):
    conn = Connection.objects.create(tenant=acme, name="kpn", kind=ConnectionKind.KPN_THINGS, secret=CANARY)
    assert isinstance(conn.secret, SealedSecret)
    assert CANARY not in repr(conn.__dict__)


def test_repr_and_str_never_show_the_value(stored):
    assert CANARY not in repr(stored.secret)
    assert CANARY not in str(stored.secret)
    assert CANARY not in repr(vars(stored))


def test_a_secret_no_key_decrypts_fails_closed(stored, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    reloaded = Connection.objects.get(pk=stored.pk)
    with pytest.raises(SecretUnavailable) as excinfo:
        reloaded.secret.reveal()
    message = str(excinfo.value)
    assert "FIELD_ENCRYPTION_KEYS" in message
    assert reloaded.secret.token not in message
    assert CANARY not in message


def test_a_secret_revealed_before_its_key_was_retired_is_refused_after(stored, settings):
    assert stored.secret.reveal() == CANARY  # decrypted once, and kept by the process
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(SecretUnavailable):
        Connection.objects.get(pk=stored.pk).secret.reveal()


def test_any_listed_key_decrypts_and_the_first_encrypts(stored, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    assert Connection.objects.get(pk=stored.pk).secret.reveal() == CANARY
    fresh = Connection.objects.create(tenant=stored.tenant, name="n", kind=ConnectionKind.KPN_THINGS, secret=CANARY)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    assert Connection.objects.get(pk=fresh.pk).secret.reveal() == CANARY


def test_the_encryption_key_is_not_derived_from_secret_key(stored, settings):
    settings.SECRET_KEY = "something-else-entirely-" * 3
    assert Connection.objects.get(pk=stored.pk).secret.reveal() == CANARY


def test_an_unset_secret_reads_as_none(acme):
    conn = Connection.objects.create(tenant=acme, name="kpn", kind=ConnectionKind.KPN_THINGS)
    assert Connection.objects.get(pk=conn.pk).secret is None
    assert Connection.objects.get(pk=conn.pk).secret_set is False
