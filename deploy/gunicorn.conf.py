"""gunicorn settings for the portal's web processes.

    gunicorn -c deploy/gunicorn.conf.py portal.wsgi

Every value can be changed from the environment (the systemd unit and the container
set them): GUNICORN_BIND (or PORT), WEB_CONCURRENCY, GUNICORN_THREADS,
GUNICORN_TIMEOUT, GUNICORN_MAX_REQUESTS, FORWARDED_ALLOW_IPS, LOG_FORMAT, LOG_LEVEL.
"""

import multiprocessing
import os
import socket
from pathlib import Path

# The project root, so `portal` imports wherever gunicorn was started from.
chdir = str(Path(__file__).resolve().parent.parent)
wsgi_app = "portal.wsgi:application"

bind = [os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"]
# Web processes are stateless: the usual (2 x cores) + 1, one request at a time each.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
# More than one thread switches to the gthread worker (keep-alive to the proxy; one
# database connection per thread).
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Off by default: every recycled process leaves its metrics files until the next restart.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# Addresses of the TLS-terminating proxy whose X-Forwarded-* headers are trusted.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# systemd (or the container runtime) signals the master; no control socket shared by every instance in $HOME.
control_socket_disable = True
# A tmpfs for the worker heartbeat files where there is one (containers often have a slow /tmp).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 (a heartbeat file, not data)

# The portal logs each request itself (portal.access, JSON with the request id): no
# second access log here. gunicorn's own lines use the same formatter.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
_format = os.environ.get("LOG_FORMAT", "json")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "portal.logging.JsonFormatter"},
        "text": {"()": "portal.logging.TextFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _format if _format in ("json", "text") else "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["console"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
        # gunicorn logs access lines whenever logconfig_dict is set: keep them quiet (they carry query strings).
        "gunicorn.access": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}


def on_starting(server):
    """The master, before it forks: its workers write metrics under <metrics dir>/web-<host name>/, emptied now.

    The host name keeps the web containers that share one metrics volume apart.
    """
    from portal import metrics

    metrics.multiprocess_dir_claim(f"web-{socket.gethostname()}")


def child_exit(server, worker):
    from portal import metrics

    metrics.process_dead(worker.pid)
