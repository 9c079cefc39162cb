"""API authentication by tenant key, and the role permission every resource uses.

Kept apart from portal.api so that DRF can import these from settings without
importing views (which would import them back).
"""

from __future__ import annotations

from rest_framework import authentication, exceptions, permissions

from portal.models import Role
from portal.services import api_key_authenticate
from portal.tenancy import tenant_context_for


class ApiKeyPrincipal:
    """Stands in for request.user when a request authenticates with an API key."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, api_key) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("The Authorization header has no API key after 'Bearer'.")
        api_key = api_key_authenticate(key=key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class TenantRolePermission(permissions.BasePermission):
    """Any member reads; editors and admins write; `admin_only` views need admins."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        context = tenant_context_for(request)
        if context is None:
            self.message = "You are not a member of any tenant."
            return False
        request.tenant_context = context
        if getattr(view, "admin_only", False):
            return context.allows(Role.ADMIN)
        if request.method in permissions.SAFE_METHODS:
            return True
        return context.allows(Role.EDITOR)
