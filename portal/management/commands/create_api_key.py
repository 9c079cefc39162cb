from django.core.management.base import BaseCommand, CommandError

from portal.models import Role, Tenant
from portal.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for the tenant SLUG and print the key, and only the key."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--label", default="")
        parser.add_argument("--role", default=Role.EDITOR, choices=Role.values)

    def handle(self, *args, slug, label, role, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug '{slug}'.")
        self.stdout.write(api_key_create(tenant=tenant, label=label, role=role).key)
