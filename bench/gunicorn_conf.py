"""gunicorn for the bench: production-like, loopback only, sized to the machine."""

import multiprocessing
import os

bind = os.environ["BENCH_WEB_BIND"]
if not bind.startswith(("127.", "[::1]", "localhost")):
    raise SystemExit("the bench web server binds to loopback only")
workers = int(os.environ.get("BENCH_WEB_WORKERS") or 2 * multiprocessing.cpu_count() + 1)
worker_class = os.environ.get("BENCH_WEB_WORKER_CLASS", "sync")
threads = int(os.environ.get("BENCH_WEB_THREADS", "1"))
backlog = 2048
keepalive = 5
timeout = 60
graceful_timeout = 5
accesslog = None
errorlog = "-"
loglevel = "warning"
proc_name = "portal-bench-web"
