from django.core.management.base import BaseCommand, CommandError

from portal.fields import SecretUnavailable
from portal.secrets import secrets_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args, **options):
        try:
            changed = secrets_reencrypt()
        except SecretUnavailable as exc:
            raise CommandError(f"Stopped: {exc}. No key in FIELD_ENCRYPTION_KEYS opens a stored secret.") from None
        total = sum(changed.values())
        for label, count in changed.items():
            self.stdout.write(f"{label}: {count} row(s) re-encrypted")
        self.stdout.write(f"Done: {total} row(s) re-encrypted with the first key.")
