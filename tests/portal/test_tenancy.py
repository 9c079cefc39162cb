"""One tenant-scoping mechanism: the request's tenant, and 404 for another tenant's rows."""

import pytest
from django.http import Http404
from django.test import RequestFactory

from ingest.models import Connection, ConnectionKind
from portal.tenancy import tenant_context_for, tenant_object_or_404, tenant_switch


def test_a_member_acts_for_their_tenant_with_their_role(acme, bob):
    request = RequestFactory().get("/")
    request.user = bob
    request.session = {}
    context = tenant_context_for(request)
    assert context.tenant == acme
    assert context.role == "editor"
    assert context.can_edit and not context.is_admin


def test_another_tenants_object_is_not_found(acme, globex):
    foreign = Connection.objects.create(tenant=globex, name="g", kind=ConnectionKind.KPN_THINGS)
    own = Connection.objects.create(tenant=acme, name="a", kind=ConnectionKind.KPN_THINGS)
    assert tenant_object_or_404(Connection, acme, pk=own.pk) == own
    with pytest.raises(Http404):
        tenant_object_or_404(Connection, acme, pk=foreign.pk)
    with pytest.raises(Http404):
        tenant_object_or_404(Connection, acme, pk="not-a-uuid")


def test_a_user_cannot_switch_to_a_tenant_they_are_not_in(acme, globex, bob):
    request = RequestFactory().post("/")
    request.user = bob
    request.session = {}
    assert tenant_switch(request, globex.pk) is False
    assert tenant_switch(request, acme.pk) is True
