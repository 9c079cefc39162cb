"""What every page shares: the role check, the tenant, htmx detection, no-store answers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from portal.models import Role
from portal.tenancy import TenantContext

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def tenant_page(*, read: str = Role.VIEWER, write: str = Role.EDITOR) -> Callable:
    """A page of the request's tenant: `read` role for GET, `write` role for anything else.

    Sets `request.tenant` and `request.ctx` (the TenantContext). A logged-in user who is
    a member of no tenant gets a page saying so.
    """

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            context = request.tenant_context
            if not context:
                return render(request, "portal/no_tenant.html", status=403)
            needed = read if request.method in SAFE_METHODS else write
            if not context.allows(needed):
                raise PermissionDenied("Your role does not allow this.")
            request.ctx = TenantContext(tenant=context.tenant, role=context.role)
            request.tenant = context.tenant
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def admin_page(view: Callable) -> Callable:
    """A page only the tenant's admins may see or use (members, API keys)."""
    return tenant_page(read=Role.ADMIN, write=Role.ADMIN)(view)


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def render_once(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    """A page holding something shown only once (a new secret or key): never cached."""
    response = render(request, template, context, status=status)
    add_never_cache_headers(response)
    response["Cache-Control"] = "no-store, private"
    return response


def editor_page(view: Callable) -> Callable:
    """A form page: only editors and admins may even open it."""
    return tenant_page(read=Role.EDITOR, write=Role.EDITOR)(view)
