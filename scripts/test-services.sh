# Sourced by `make test` and `make bench`: make sure PostgreSQL and Redis answer, and
# export DATABASE_URL, REDIS_URL and CELERY_BROKER_URL for the suite.
# Uses DATABASE_URL / REDIS_URL when set; otherwise 127.0.0.1:5432 and 127.0.0.1:6379,
# starting the local servers when they are installed but stopped.

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/portal}"
: "${REDIS_URL:=redis://127.0.0.1:6379/0}"
export DATABASE_URL REDIS_URL
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-$REDIS_URL}"

_pg_up() { .venv/bin/python - <<'PY'
import os, sys, psycopg
url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
try:
    psycopg.connect(url, connect_timeout=3).close()
except Exception as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
PY
}
_redis_up() { .venv/bin/python -c "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL'], socket_timeout=3).ping()" 2>/dev/null; }

if ! _pg_up 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        echo "PostgreSQL is not answering; starting the local cluster"
        for version in $(ls /etc/postgresql); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
        done
        for _ in $(seq 1 30); do _pg_up 2>/dev/null && break; sleep 1; done
    fi
    if ! _pg_up; then
        echo "make: PostgreSQL is needed at $DATABASE_URL and does not answer." >&2
        echo "      Install and start it (Debian: apt-get install postgresql) or set DATABASE_URL." >&2
        return 1 2>/dev/null || exit 1
    fi
fi

if ! _redis_up; then
    if command -v redis-server >/dev/null 2>&1; then
        echo "Redis is not answering; starting a local redis-server that keeps nothing on disk"
        mkdir -p /tmp/portal-redis
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
            --dir /tmp/portal-redis --logfile /tmp/portal-redis/redis.log >/dev/null
        for _ in $(seq 1 30); do _redis_up && break; sleep 1; done
    fi
    if ! _redis_up; then
        echo "make: Redis is needed at $REDIS_URL and does not answer." >&2
        echo "      Install and start it (Debian: apt-get install redis-server) or set REDIS_URL." >&2
        return 1 2>/dev/null || exit 1
    fi
fi
