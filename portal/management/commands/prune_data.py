from django.core.management.base import BaseCommand

from portal.retention import retention_prune


class Command(BaseCommand):
    help = "Remove messages, readings and finished deliveries past their retention now (beat does it hourly)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per transaction.")
        parser.add_argument("--max-seconds", type=float, default=None, help="Stop after this long; the rest waits.")

    def handle(self, *args, batch_size=None, max_seconds=None, **options):
        result = retention_prune(batch_size=batch_size, max_seconds=max_seconds)
        for label, count in sorted(result.removed.items()):
            self.stdout.write(f"{label}: {count}")
        if not result.complete:
            self.stdout.write("Stopped before the end; the next run continues.")
