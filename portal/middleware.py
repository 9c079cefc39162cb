from csp.middleware import CSPMiddleware
from django.conf import settings
from django.utils.functional import SimpleLazyObject

from portal.tenancy import tenant_context_for


class CurrentTenantMiddleware:
    """Sets `request.tenant_context` (lazily) for logged-in members of the portal."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant_context = SimpleLazyObject(lambda: tenant_context_for(request))
        return self.get_response(request)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, except that a response exempt from the policy is passed on untouched.

    django-csp builds the whole policy string before it looks at the exemption: on the
    webhook endpoint, whose JSON answers are exempt, that was a twentieth of a request's CPU.
    """

    def process_response(self, request, response):
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        if getattr(response, "_csp_exempt", False) and not report_only:
            return response
        return super().process_response(request, response)
