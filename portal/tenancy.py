"""The one place that decides which tenant a request acts for, and with which role.

API requests with a key act for the key's tenant; logged-in members act for the tenant
chosen in their session (their first one until they switch). Tenant-owned rows are
only ever looked up through `scoped()` / `tenant_object_or_404()`, which filter by
that tenant, so another tenant's id answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404

from portal.models import ApiKey, Membership, Role, Tenant, role_at_least

SESSION_TENANT_KEY = "tenant_id"


@dataclass(frozen=True)
class TenantContext:
    tenant: Tenant
    role: str

    def allows(self, needed: str) -> bool:
        return role_at_least(self.role, needed)

    @property
    def can_edit(self) -> bool:
        return self.allows(Role.EDITOR)

    @property
    def is_admin(self) -> bool:
        return self.allows(Role.ADMIN)


def memberships_of(user) -> QuerySet[Membership]:
    if user is None or not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")


def tenant_context_for(request) -> TenantContext | None:
    """The tenant and role of this request, or None when it acts for no tenant."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return TenantContext(tenant=auth.tenant, role=auth.role)
    user = getattr(request, "user", None)
    memberships = memberships_of(user)
    session = getattr(request, "session", None)
    chosen = session.get(SESSION_TENANT_KEY) if session is not None else None
    membership = None
    if chosen is not None:
        membership = memberships.filter(tenant_id=chosen).first()
    if membership is None:
        membership = memberships.first()
    if membership is None:
        return None
    return TenantContext(tenant=membership.tenant, role=membership.role)


def tenant_switch(request, tenant_id: int) -> bool:
    """Make `tenant_id` the session's tenant; False when the user is no member of it."""
    if not memberships_of(request.user).filter(tenant_id=tenant_id).exists():
        return False
    request.session[SESSION_TENANT_KEY] = tenant_id
    return True


def scoped(model_or_queryset, tenant: Tenant) -> QuerySet:
    qs = model_or_queryset if isinstance(model_or_queryset, QuerySet) else model_or_queryset._default_manager.all()
    return qs.filter(tenant=tenant)


def tenant_object_or_404(model_or_queryset, tenant: Tenant | None, **lookup) -> Model:
    """The tenant's object matching `lookup`; 404 for a missing one or another tenant's."""
    if tenant is None:
        raise Http404("No tenant.")
    try:
        return scoped(model_or_queryset, tenant).get(**lookup)
    except (ObjectDoesNotExist, ValueError, ValidationError):
        raise Http404("Not found.") from None
