"""The customer portal's pages: thin views over the services of each app.

Every view is wrapped by `tenant_page`, which decides the tenant and enforces the role;
every object is looked up with `portal.tenancy.tenant_object_or_404`.
"""
