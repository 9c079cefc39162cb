from django.utils.functional import SimpleLazyObject

from portal.tenancy import tenant_context_for


class CurrentTenantMiddleware:
    """Sets `request.tenant_context` (lazily) for logged-in members of the portal."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant_context = SimpleLazyObject(lambda: tenant_context_for(request))
        return self.get_response(request)
