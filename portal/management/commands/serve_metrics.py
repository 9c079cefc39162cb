"""A small exporter for machines that run Celery workers but no web process."""

from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.core.management.base import BaseCommand, CommandError
from prometheus_client import make_wsgi_app

from portal import metrics


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # one line per scrape is noise
        pass


class Command(BaseCommand):
    help = (
        "Serve this machine's worker metrics (the files under PROMETHEUS_MULTIPROC_DIR) on HOST:PORT. "
        "The database gauges stay with the web processes' /metrics. Bind it to an internal address."
    )

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1:9808", help="HOST:PORT to listen on (default 127.0.0.1:9808).")

    def handle(self, *args, bind: str, **options):
        host, _, port = bind.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError("--bind takes HOST:PORT")
        app = make_wsgi_app(metrics.machine_registry(include_database=False))
        with make_server(host.strip("[]"), int(port), app, handler_class=_QuietHandler) as server:
            self.stdout.write(f"Serving worker metrics of {metrics.root()} on http://{bind}/metrics")
            server.serve_forever()
