"""Secret strength, generation, rotation with grace, re-encryption and the audit log."""

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from ingest.models import Connection, ConnectionKind
from portal.models import SecretAuditLog
from portal.secrets import (
    Actor,
    secret_generate,
    secret_rotate,
    secret_set,
    secret_strength_errors,
    validate_secret_strength,
    whsec_form,
    whsec_key_bytes,
)

STRONG = "Strong-Secret-With-32-Chars-abc1!"


@pytest.mark.parametrize(
    ("value", "lacks"),
    [
        ("Short1!a", "at least 32 characters"),
        ("all-lower-case-but-long-enough-123!", "an upper-case letter"),
        ("ALL-UPPER-CASE-BUT-LONG-ENOUGH-123!", "a lower-case letter"),
        ("No-Digits-Here-But-Long-Enough-Yes!", "a digit"),
        ("NoSpecialCharactersButLongEnough123", "one of"),
    ],
)
def test_a_weak_secret_is_refused_saying_what_it_lacks(value, lacks):
    with pytest.raises(ValidationError) as excinfo:
        validate_secret_strength(value)
    assert lacks in excinfo.value.messages[0]


def test_a_strong_secret_passes():
    validate_secret_strength(STRONG)


def test_generated_secrets_are_strong_and_different():
    made = {secret_generate() for _ in range(50)}
    assert len(made) == 50
    assert all(secret_strength_errors(s) == [] for s in made)


def test_whsec_form_round_trips_to_the_utf8_key():
    assert whsec_key_bytes(whsec_form(STRONG)) == STRONG.encode()


def test_a_whsec_secret_is_accepted_only_where_allowed_and_when_well_formed():
    good = whsec_form("x" * 32)
    validate_secret_strength(good, allow_whsec=True)
    with pytest.raises(ValidationError):
        validate_secret_strength("whsec_" + "A" * 8, allow_whsec=True)  # 6 bytes
    with pytest.raises(ValidationError):
        validate_secret_strength("whsec_not base64!", allow_whsec=True)


@pytest.fixture
def conn(acme) -> Connection:
    conn = Connection.objects.create(tenant=acme, name="kpn", kind=ConnectionKind.KPN_THINGS)
    secret_set(obj=conn, field="secret", value=STRONG, actor=Actor(label="test"))
    return Connection.objects.get(pk=conn.pk)


def _in_force(conn: Connection) -> list[str]:
    return [sealed.reveal() for sealed in Connection.objects.get(pk=conn.pk).secrets_in_force()]


def test_rotation_with_grace_keeps_both_secrets_until_expiry_then_only_the_new(conn, alice):
    result = secret_rotate(obj=conn, grace_seconds=3600, actor=Actor(user=alice, label=alice.email))
    new = result.generated_secret
    assert new and new != STRONG
    assert _in_force(conn) == [new, STRONG]

    Connection.objects.filter(pk=conn.pk).update(previous_secret_expires_at=timezone.now() - timedelta(seconds=1))
    assert _in_force(conn) == [new]


def test_rotation_without_grace_drops_the_old_secret_at_once(conn):
    secret_rotate(obj=conn, new_secret="Another-Strong-Secret-32-chars-9?", actor=Actor())
    assert _in_force(conn) == ["Another-Strong-Secret-32-chars-9?"]


def test_a_supplied_secret_is_never_echoed(conn):
    result = secret_rotate(obj=conn, new_secret="Another-Strong-Secret-32-chars-9?", actor=Actor())
    assert result.generated_secret is None


def test_a_weak_rotated_secret_is_refused_and_nothing_changes(conn):
    with pytest.raises(ValidationError):
        secret_rotate(obj=conn, new_secret="weak", actor=Actor())
    assert _in_force(conn) == [STRONG]


def test_every_secret_change_is_audited_without_the_value(conn, alice):
    secret_rotate(obj=conn, grace_seconds=60, actor=Actor(user=alice, label=alice.email))
    rows = list(SecretAuditLog.objects.filter(object_id=str(conn.pk)).order_by("created_at"))
    assert [r.action for r in rows] == ["set", "rotate"]
    assert rows[1].actor_user == alice
    assert rows[1].tenant == conn.tenant
    for row in rows:
        assert STRONG not in str(vars(row))


def test_reencrypt_secrets_moves_every_row_to_the_new_key(conn, settings, acme):
    other = Connection.objects.create(tenant=acme, name="b", kind=ConnectionKind.KPN_THINGS, secret=STRONG)
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    call_command("reencrypt_secrets")

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is retired
    for pk in (conn.pk, other.pk):
        assert Connection.objects.get(pk=pk).secret.reveal() == STRONG
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM ingest_connection")
        tokens = [row[0] for row in cursor.fetchall()]
    assert all(Fernet(new_key).decrypt(t.encode()).decode() == STRONG for t in tokens)
