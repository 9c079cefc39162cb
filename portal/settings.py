"""Settings, read from the environment (12-factor) with safe development defaults.

Every variable is listed in the README's configuration table. Values that must be
secret (SECRET_KEY, FIELD_ENCRYPTION_KEYS) are generated once into var/ when unset, so
a fresh clone runs; production sets them explicitly.
"""

import base64
import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()


def _generated_once(name: str, make) -> str:
    """A value kept in var/<name>, made on first use (development only)."""
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or _generated_once("secret_key", lambda: secrets.token_urlsafe(50))
# Fernet keys for secrets at rest: the first encrypts, all decrypt. Never derived
# from SECRET_KEY, so leaking one does not reveal the other.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    _generated_once("field_encryption_key", _fernet_key)
]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=1_048_576)
DESTINATION_ALLOWED_PORTS = [int(p) for p in env.list("DESTINATION_ALLOWED_PORTS", default=["443"])]
DESTINATION_ALLOW_PRIVATE = env.bool("DESTINATION_ALLOW_PRIVATE", default=False)
DESTINATION_CA_BUNDLE = env.str("DESTINATION_CA_BUNDLE", default="") or None
# Delivery engine (delivery/engine.py, delivery/services.py): requests in flight per
# worker process and per destination, rows claimed at once, how long one task keeps
# pumping, and how often the sweeper and the probe of disabled destinations run.
DELIVERY_MAX_IN_FLIGHT = env.int("DELIVERY_MAX_IN_FLIGHT", default=256)
# 16 per destination: at 32, a fan-out opened hundreds of TLS connections at once and one
# hanging destination pushed the healthy ones' p99 to 4.3x (bench scenario 3); at 16 it
# is 1.5x with the same throughput; at 8 a single destination's throughput fell by a fifth.
DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION = env.int("DELIVERY_MAX_IN_FLIGHT_PER_DESTINATION", default=16)
DELIVERY_BATCH_SIZE = env.int("DELIVERY_BATCH_SIZE", default=100)
DELIVERY_RUN_SECONDS = env.float("DELIVERY_RUN_SECONDS", default=30.0)
DELIVERY_IDLE_SECONDS = env.float("DELIVERY_IDLE_SECONDS", default=1.0)
DELIVERY_POLL_SECONDS = env.float("DELIVERY_POLL_SECONDS", default=0.02)
DELIVERY_SWEEP_SECONDS = env.float("DELIVERY_SWEEP_SECONDS", default=30.0)
DELIVERY_PROBE_SECONDS = env.float("DELIVERY_PROBE_SECONDS", default=900.0)
DELIVERY_DISABLE_AFTER_SECONDS = env.float("DELIVERY_DISABLE_AFTER_SECONDS", default=86_400.0)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "portal",
    "devices",
    "ingest",
    "delivery",
]

MIDDLEWARE = [
    # First, so every log line of a request (other middleware's too) carries its request id.
    "portal.request_context.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
    "portal.middleware.CurrentTenantMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.tenancy",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast when PostgreSQL is gone, so ingest can answer 503 instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    # Parameters bound by the server, and statements a connection runs often prepared
    # once: psycopg then neither quotes every value in Python nor has PostgreSQL parse
    # and plan the ingest and delivery statements anew each time.
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    _prepare = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip().lower()
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None if _prepare in ("", "none", "off") else int(_prepare)
    # A prepared statement is still planned for its actual values each time: a generic
    # plan chosen for `next_attempt_at <= $1` or a batch's id array could be far worse
    # on a large table than the one the values call for.
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c plan_cache_mode=force_custom_plan")
    # Connection pooling (README "Scaling out"): Django's psycopg pool in each process, or
    # pgbouncer in transaction mode in front of PostgreSQL; not both.
    if env.bool("DATABASE_POOL", default=False):
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
            "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    if env.bool("DATABASE_PGBOUNCER", default=False):
        # Transaction pooling hands each transaction any server connection: no server-side cursors.
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        # Nor statements prepared on one server connection and run on another.
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Login throttling: five failures for one user name from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The login form posts the e-mail address in its "username" field.
AXES_USERNAME_FORM_FIELD = "username"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
globals().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")

# Security: strict by default; production behind a TLS proxy sets SECURE_SSL_REDIRECT.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Probes and the metrics scraper talk to the process directly, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("USE_X_FORWARDED_PROTO", default=False) else None
)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: every script is a file the portal serves itself; no inline
# script, no CDN. (Inline style attributes are allowed: they cannot run code.)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.authentication.TenantRolePermission"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Integration Portal API",
    "DESCRIPTION": "Connections, destinations, devices, messages, readings and deliveries of one tenant.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: many deployments have no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that share a field name get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "ConnectionKindEnum": "ingest.models.ConnectionKind",
        "ReadingKindEnum": "devices.models.Reading.Kind",
        "MessageStatusEnum": "ingest.models.Message.Status",
        "DeliveryStatusEnum": "delivery.models.Delivery.Status",
    },
}

# Celery: the database is the truth, the broker only a doorbell.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
else:
    # Longer than any countdown we ever use; long waits live in next_attempt_at.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Celery's Django fixup closes the database connection around every task unless told
# to reuse it; reconnecting per task costs a sender about half its throughput.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# The sweeper re-rings the doorbell for due deliveries and takes back stale claims;
# the probe tries disabled destinations again.
CELERY_BEAT_SCHEDULE["delivery-sweep"] = {"task": "delivery.tasks.deliveries_sweep", "schedule": DELIVERY_SWEEP_SECONDS}
CELERY_BEAT_SCHEDULE["delivery-probe"] = {"task": "delivery.tasks.destinations_probe", "schedule": 60.0}
# Django's LOGGING (JSON lines in production) applies to workers too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Queues per concern (README "Scaling out"): TASK_QUEUES="delivery.tasks.*=deliveries,portal.tasks.*=housekeeping"
# sends those tasks to those queues, for workers started with --queues. Unset: one queue, "celery".
CELERY_TASK_ROUTES: dict = {}
for _route in env.list("TASK_QUEUES", default=[]):
    _pattern, _, _queue = (part.strip() for part in _route.partition("="))
    if not _pattern or not _queue:
        raise ImproperlyConfigured(f"TASK_QUEUES: '{_route}' is not <task name pattern>=<queue>")
    CELERY_TASK_ROUTES[_pattern] = {"queue": _queue}

# Retention (per-tenant overrides in TenantSettings): pruned hourly in small batches.
CELERY_BEAT_SCHEDULE["portal-retention-prune"] = {"task": "portal.tasks.retention_prune", "schedule": 3600.0}
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
RETENTION_MAX_SECONDS = env.int("RETENTION_MAX_SECONDS", default=600)

# Prometheus metrics at /metrics: a Bearer token, or a direct request from an allowed address.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
# Upper-cased: gunicorn takes the same variable in either case, Python's logging only in capitals.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "portal.logging.JsonFormatter"},
        "text": {"()": "portal.logging.TextFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
