from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from portal.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant and make OWNER (created when unknown) its admin."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, metavar="EMAIL")
        parser.add_argument("--password", default=None, metavar="PW")

    def handle(self, *args, slug, name, owner, password, **options):
        try:
            tenant, user = tenant_create(slug=slug, name=name, owner_email=owner, owner_password=password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name}) with admin {user.email}")
