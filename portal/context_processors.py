from portal.tenancy import memberships_of


def tenancy(request) -> dict:
    context = getattr(request, "tenant_context", None)
    return {
        "tenant_context": context if context else None,
        "memberships": memberships_of(getattr(request, "user", None)) if hasattr(request, "user") else [],
    }
