import secrets as random

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.models import Tenant, User
from portal.services import api_key_create, tenant_create

DEMO_SLUG = "demo"
DEMO_EMAIL = "demo@example.com"


class Command(BaseCommand):
    help = "Make sure the demo tenant exists; print its login and a new API key."

    def handle(self, *args, **options):
        password = random.token_urlsafe(12)
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant, _ = tenant_create(slug=DEMO_SLUG, name="Demo", owner_email=DEMO_EMAIL, owner_password=password)
        else:
            user = User.objects.get(email=DEMO_EMAIL)
            user.set_password(password)
            user.save(update_fields=["password"])
        key = api_key_create(tenant=tenant, label="make run").key
        self.stdout.write(f"Login: {settings.PORTAL_BASE_URL}/accounts/login/ user {DEMO_EMAIL} password {password}")
        self.stdout.write(f"API key: {key}")
