"""The pinned management commands: create_tenant and create_api_key."""

import io

import pytest
from django.core.management import CommandError, call_command

from portal.models import ApiKey, Membership, Role, Tenant
from portal.services import api_key_authenticate

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_makes_the_owner_its_admin_who_can_log_in():
    output = run("create_tenant", "acme", "--name", "Acme", "--owner", "Owner@Acme.test", "--password", "pw-Long-1234")
    tenant = Tenant.objects.get(slug="acme")
    membership = Membership.objects.get(tenant=tenant)
    assert membership.role == Role.ADMIN
    assert membership.user.email == "owner@acme.test"
    assert membership.user.check_password("pw-Long-1234")
    assert "acme" in output


def test_create_tenant_refuses_a_duplicate_slug():
    run("create_tenant", "acme", "--name", "Acme", "--owner", "a@acme.test")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "acme", "--name", "Other", "--owner", "b@acme.test")
    assert Tenant.objects.count() == 1


def test_create_tenant_refuses_a_bad_email():
    with pytest.raises(CommandError, match="not a valid e-mail"):
        run("create_tenant", "acme", "--name", "Acme", "--owner", "not-an-email")
    assert not Tenant.objects.exists()


def test_create_api_key_prints_only_a_working_key(acme):
    output = run("create_api_key", "acme", "--label", "ci")
    key = output.strip()
    assert output == key + "\n"
    api_key = api_key_authenticate(key=key)
    assert api_key.tenant == acme
    assert api_key.label == "ci"
    assert key not in ApiKey.objects.values_list("key_hash", flat=True)


def test_create_api_key_refuses_an_unknown_tenant():
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        run("create_api_key", "nope")
