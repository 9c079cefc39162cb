"""The database at scale: 10 million readings and 1 million deliveries, and the queries that must stay fast.

Creates its own PostgreSQL database (`<DATABASE_URL's name>_dbscale`), migrates it with
the real migrations (so the indexes are the models' own), fills it with generate_series
(secondary indexes dropped during the load and built again after, as a restore would),
then times the queries the portal runs on it, each through the ORM exactly as the code
builds it:

- the delivery log page (portal/pages/deliveries.py: page count, rows, failed count),
- the readings list (the /api/v1/readings/ list: count and one page; the device page),
- the delivery engine's claim query (delivery.pump: pending, due, FOR UPDATE SKIP LOCKED),
- the /metrics queue gauges and one retention batch.

It writes EXPLAIN (ANALYZE, BUFFERS) plans and p50/p95 times to bench/RESULTS-db.md,
prints the table, and drops its database at the end (also on failure and Ctrl-C).

    python bench/db_scale.py [--readings 10000000] [--deliveries 1000000] [--runs 20] [--keep]
"""

from __future__ import annotations

import argparse
import datetime
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS-db.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TENANTS = 20
DEVICES_PER_TENANT = 1000
DESTINATIONS_PER_TENANT = 3
READINGS_PER_MESSAGE = 10
BIG_TABLES = ("ingest_message", "devices_reading", "delivery_delivery", "delivery_deliveryattempt")


# --- the database ---------------------------------------------------------------------------


def scale_urls(database_url: str) -> tuple[str, str, str]:
    """(admin URL, URL of the scale database, its name) from the suite's DATABASE_URL."""
    parts = urlsplit(database_url)
    name = f"{parts.path.lstrip('/') or 'portal'}_dbscale"
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(parts._replace(path=f"/{name}")), name


def database_create(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str, var_dir: Path) -> None:
    env = {**os.environ, "DATABASE_URL": url, "PORTAL_VAR_DIR": str(var_dir), "LOG_LEVEL": "WARNING"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )


# --- the data ---------------------------------------------------------------------------------

# Column expressions over the row number g. Message g belongs to tenant 1 when g is even
# (one big tenant with half the data), else to one of the other 19; it is g/N of 30 days old.
TENANT_OF = "(CASE WHEN {g} % 2 = 0 THEN 1 ELSE 2 + ({g} / 2) % 19 END)"


def _tenant(g: str) -> str:
    return TENANT_OF.format(g=g)


def message_columns(n: int) -> dict[str, str]:
    age = f"make_interval(secs => g * {30 * 86400.0 / n})"
    return {
        "id": "md5('m' || g)::uuid",
        "tenant_id": _tenant("g"),
        "connection_id": f"md5('c' || {_tenant('g')})::uuid",
        "device_id": f"({_tenant('g')} - 1) * {DEVICES_PER_TENANT} + 1 + (g / 7) % {DEVICES_PER_TENANT}",
        "received_at": f"now() - {age}",
        "status": "CASE WHEN g % 200 = 0 THEN 'invalid' ELSE 'accepted' END",
        "body": 'convert_to(\'[{"bn":"urn:dev:IMEI:\' || g || \':","n":"temperature","v":21.5}]\', \'UTF8\')',
        "body_sha256": "md5(g::text) || md5(g::text || 'x')",
        "readings_count": str(READINGS_PER_MESSAGE),
        "request_id": "md5('r' || g)",
        "skipped": "'[]'::jsonb",
    }


def reading_columns(n_messages: int) -> dict[str, str]:
    m = f"(g / {READINGS_PER_MESSAGE})"
    names = (
        "(ARRAY['temperature','humidity','battery','latitude','longitude','speed','heading','rssi','snr','pressure'])"
    )
    return {
        "id": "g + 1",
        "tenant_id": _tenant(m),
        "device_id": f"({_tenant(m)} - 1) * {DEVICES_PER_TENANT} + 1 + ({m} / 7) % {DEVICES_PER_TENANT}",
        "message_id": f"md5('m' || {m})::uuid",
        "name": f"{names}[g % {READINGS_PER_MESSAGE} + 1]",
        "unit": "'Cel'",
        "kind": "'number'",
        "value": "to_jsonb(round((g % 1000)::numeric / 10, 1))",
        "time": f"now() - make_interval(secs => {m} * {30 * 86400.0 / n_messages})",
    }


# Delivery g's state, both even (the big tenant's) and odd row numbers in each: 2 % pending
# (g % 100 in 0, 1; the even half due, a backlog), 5 % failed (2 to 6), the rest succeeded.
PENDING = "g % 100 IN (0, 1)"
FAILED = "g % 100 BETWEEN 2 AND 6"


def delivery_columns(n: int) -> dict[str, str]:
    created = f"now() - make_interval(secs => g * {30 * 86400.0 / n})"
    return {
        "id": "md5('d' || g)::uuid",
        "tenant_id": _tenant("g"),
        "message_id": "md5('m' || g)::uuid",
        "destination_id": f"md5('dest' || {_tenant('g')} || '-' || g % {DESTINATIONS_PER_TENANT})::uuid",
        "status": f"CASE WHEN {PENDING} THEN 'pending' WHEN {FAILED} THEN 'failed' ELSE 'succeeded' END",
        "attempts_count": f"CASE WHEN {FAILED} THEN 3 ELSE 1 END",
        "series_attempts": f"CASE WHEN {FAILED} THEN 3 ELSE 1 END",
        "next_attempt_at": "CASE WHEN g % 100 = 0 THEN now() - make_interval(secs => g % 3600)"
        " WHEN g % 100 = 1 THEN now() + make_interval(secs => 60 + g % 36000) END",
        "last_status_code": f"CASE WHEN {PENDING} THEN 503 WHEN {FAILED} THEN 500 ELSE 200 END",
        "created_at": created,
        "delivered_at": f"CASE WHEN NOT ({PENDING} OR {FAILED}) THEN {created} + interval '150 milliseconds' END",
    }


def attempt_columns(n: int) -> dict[str, str]:
    # One attempt per delivery; a failed one's is numbered 3 (the last of its series).
    return {
        "id": "g + 1",
        "delivery_id": "md5('d' || g)::uuid",
        "number": f"CASE WHEN {FAILED} THEN 3 ELSE 1 END",
        "started_at": f"now() - make_interval(secs => g * {30 * 86400.0 / n})",
        "duration_ms": "40 + g % 200",
        "status_code": f"CASE WHEN {PENDING} THEN 503 WHEN {FAILED} THEN 500 ELSE 200 END",
        "success": f"NOT ({PENDING} OR {FAILED})",
    }


_FILLERS = {
    "character varying": "''",
    "text": "''",
    "integer": "0",
    "smallint": "0",
    "bigint": "0",
    "double precision": "0",
    "boolean": "false",
    "jsonb": "'[]'::jsonb",
    "bytea": "''::bytea",
    "uuid": "gen_random_uuid()",
    "timestamp with time zone": "now()",
}


def insert_sql(conn, table: str, columns: dict[str, str], count: int, start: int = 0, where: str = "") -> str:
    """INSERT … SELECT over generate_series; NOT NULL columns not given get a neutral value."""
    rows = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s"
        " AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
        [table],
    ).fetchall()
    columns = dict(columns)
    for name, data_type in rows:
        if name not in columns:
            columns[name] = _FILLERS[data_type]
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(columns.values())
    series = f"generate_series({start}, {start + count - 1})"
    condition = f" WHERE {where}" if where else ""
    return f"INSERT INTO {table} ({names}) SELECT {values} FROM {series} AS g{condition}"  # noqa: S608 (our own SQL)


def secondary_indexes(conn, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the indexes that back no constraint: dropped for the load, built after."""
    return conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table],
    ).fetchall()


@dataclass
class LoadReport:
    steps: list[tuple[str, float]] = field(default_factory=list)
    sizes: list[tuple[str, int, str, str]] = field(default_factory=list)
    indexes: list[tuple[str, str, str]] = field(default_factory=list)


def _session(url: str):
    conn = psycopg.connect(url, autocommit=True)
    # A bulk load as a restore does it: no FK triggers, secondary indexes built once at the end.
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET maintenance_work_mem = '1GB'")
    return conn


def data_load(url: str, *, readings: int, deliveries: int, report: LoadReport) -> None:
    """Fill the tables on two connections at once (one per core), then build the indexes the same way."""
    messages = max(readings // READINGS_PER_MESSAGE, deliveries)
    lock = threading.Lock()

    def step(conn, label: str, sql: str | list[str]) -> None:
        started = time.perf_counter()
        for statement in [sql] if isinstance(sql, str) else sql:
            conn.execute(statement)
        with lock:
            report.steps.append((label, time.perf_counter() - started))
            print(f"  {label}: {report.steps[-1][1]:.1f} s", flush=True)

    with _session(url) as conn:
        dropped = [index for t in BIG_TABLES for index in secondary_indexes(conn, t)]
        for name, _ in dropped:
            conn.execute(f"DROP INDEX {name}")
        step(conn, "tenants, connections, devices, destinations", small_tables_sql(conn))
        half = readings // 2
        lanes = [
            [
                (f"{messages:,} messages", insert_sql(conn, "ingest_message", message_columns(messages), messages)),
                (
                    f"readings 1-{half:,}",
                    insert_sql(conn, "devices_reading", reading_columns(messages), half),
                ),
                (
                    # The attempts the queries here read: those of failed and pending deliveries.
                    "attempts of failed and pending deliveries",
                    insert_sql(
                        conn,
                        "delivery_deliveryattempt",
                        attempt_columns(deliveries),
                        deliveries,
                        where=f"{PENDING} OR {FAILED}",
                    ),
                ),
            ],
            [
                (
                    f"readings {half + 1:,}-{readings:,}",
                    insert_sql(conn, "devices_reading", reading_columns(messages), readings - half, start=half),
                ),
                (
                    f"{deliveries:,} deliveries",
                    insert_sql(conn, "delivery_delivery", delivery_columns(deliveries), deliveries),
                ),
            ],
        ]

    def run_lane(lane: list[tuple[str, str]]) -> None:
        with _session(url) as lane_conn:
            for label, sql in lane:
                step(lane_conn, label, sql)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(run_lane, lane) for lane in lanes]:
            future.result()

    # Index builds: both connections take the next one from one queue, the readings' first.
    jobs: queue.Queue = queue.Queue()
    for name, definition in sorted(dropped, key=lambda index: "devices_reading" not in index[1]):
        jobs.put((f"index {name}", definition))

    def build() -> None:
        with _session(url) as build_conn:
            while True:
                try:
                    label, sql = jobs.get_nowait()
                except queue.Empty:
                    return
                step(build_conn, label, sql)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(build) for _ in range(2)]:
            future.result()

    with _session(url) as conn:
        for table in ("portal_tenant", "devices_device", "devices_reading", "delivery_deliveryattempt"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"  # noqa: S608
            )
        # Autovacuum would have done this by now in production: visibility map and statistics.
        vacuumed = (*BIG_TABLES, "devices_device", "delivery_destination")
        step(conn, "VACUUM ANALYZE", [f"VACUUM (ANALYZE) {t}" for t in vacuumed])
        for table in BIG_TABLES:
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            heap, idx = conn.execute(
                "SELECT pg_size_pretty(pg_table_size(%s)), pg_size_pretty(pg_indexes_size(%s))", [table, table]
            ).fetchone()
            report.sizes.append((table, rows, heap, idx))
            for name, definition in conn.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
                " WHERE i.indrelid = %s::regclass ORDER BY 1",
                [table],
            ).fetchall():
                size = conn.execute("SELECT pg_size_pretty(pg_relation_size(%s::regclass))", [name]).fetchone()[0]
                report.indexes.append((name, size, definition.split(" USING ", 1)[1]))


def small_tables_sql(conn) -> list[str]:
    per = DESTINATIONS_PER_TENANT
    return [
        insert_sql(
            conn,
            "portal_tenant",
            {
                "id": "g",
                "slug": "'tenant-' || g",
                "name": "'Tenant ' || g",
                "created_at": "now()",
                "updated_at": "now()",
            },
            TENANTS,
            start=1,
        ),
        insert_sql(
            conn,
            "ingest_connection",
            {
                "id": "md5('c' || g)::uuid",
                "tenant_id": "g",
                "name": "'KPN ' || g",
                "kind": "'kpn-things'",
                "enabled": "true",
                "auth_mode": "'basic'",
                "device_key_header": "'X-Device-Key'",
                "auto_create_devices": "true",
            },
            TENANTS,
            start=1,
        ),
        insert_sql(
            conn,
            "devices_device",
            {
                "id": "g",
                "tenant_id": f"(g - 1) / {DEVICES_PER_TENANT} + 1",
                "serial": "'SER' || g",
                "imei": "(350000000000000 + g)::text",
                "urn": "'urn:dev:IMEI:' || (350000000000000 + g) || ':'",
                "tags": "'[]'::jsonb",
            },
            TENANTS * DEVICES_PER_TENANT,
            start=1,
        ),
        insert_sql(
            conn,
            "delivery_destination",
            {
                "id": f"md5('dest' || (g / {per} + 1) || '-' || g % {per})::uuid",
                "tenant_id": f"g / {DESTINATIONS_PER_TENANT} + 1",
                "name": "'Receiver ' || g",
                "url": "'https://receiver.example/hook/' || g",
                "method": "'POST'",
                "signature": "'things-token'",
                "auth_type": "'none'",
                "payload_format": "'senml'",
                "max_attempts": "3",
                "timeout_seconds": "5",
                # Two of the 60 are disabled.
                "enabled": "g % 30 <> 29",
            },
            TENANTS * DESTINATIONS_PER_TENANT,
        ),
    ]


# --- the queries ----------------------------------------------------------------------------


@dataclass
class Measured:
    name: str
    what: str
    times_ms: list[float]
    plans: list[tuple[str, str]]  # (sql, plan)

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(name: str, what: str, run: Callable[[random.Random], None], *, runs: int) -> Measured:
    """Time `run` (warm, `runs` times); EXPLAIN ANALYZE every statement of its first run."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    rng = random.Random(7)
    with CaptureQueriesContext(connection) as captured:
        run(rng)
    times = []
    budget = time.monotonic() + 6.0
    # `runs` runs, or fewer (never under 10) when a slow query would make the bench long.
    while len(times) < runs and (len(times) < 10 or time.monotonic() < budget):
        started = time.perf_counter()
        run(rng)
        times.append((time.perf_counter() - started) * 1000)
    plans = []
    for query in captured.captured_queries:
        sql = query["sql"]
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plans.append((sql, "\n".join(row[0] for row in cursor.fetchall())))
            transaction.set_rollback(True)  # a FOR UPDATE's locks go with it
    measured = Measured(name, what, times, plans)
    print(f"  {name}: p50 {measured.p50:.1f} ms, p95 {measured.p95:.1f} ms", flush=True)
    return measured


def scenarios(runs: int, *, readings: int, deliveries: int) -> list[Measured]:
    from django.core.paginator import Paginator
    from django.db import transaction
    from django.utils import timezone

    from delivery.models import Delivery, Destination
    from devices.models import Device, Reading
    from portal import metrics
    from portal.models import Tenant
    from portal.retention import due_messages, due_succeeded_deliveries

    big = Tenant.objects.get(pk=1)
    small = Tenant.objects.get(pk=2)
    big_destinations = list(Destination.objects.filter(tenant=big).order_by("pk"))
    big_devices = list(Device.objects.filter(tenant=big).values_list("pk", flat=True))

    def delivery_log(tenant, page: int = 1, **filters) -> Callable[[random.Random], None]:
        # portal/pages/deliveries.py delivery_list: one page, its count, and the failed count of the filter.
        def run(rng: random.Random) -> None:
            chosen = {k: (v(rng) if callable(v) else v) for k, v in filters.items()}
            qs = Delivery.objects.for_tenant(tenant).filter(**chosen)
            rows = Paginator(qs.select_related("destination", "message__device").order_by("-created_at"), 50)
            list(rows.get_page(page).object_list)
            qs.filter(status=Delivery.Status.FAILED).count()

        return run

    def readings_api(tenant, **filters) -> Callable[[random.Random], None]:
        # /api/v1/readings/: the tenant's readings, Meta ordering (-time, -id), PageNumberPagination (count + 50).
        def run(rng: random.Random) -> None:
            chosen = {k: (v(rng) if callable(v) else v) for k, v in filters.items()}
            qs = Reading.objects.filter(tenant=tenant).filter(**chosen)
            qs.count()
            list(qs[:50])

        return run

    def device_page(rng: random.Random) -> None:
        # portal/pages/devices.py: the device's last 50 readings.
        device = rng.choice(big_devices)
        list(Reading.objects.for_tenant(big).filter(device_id=device).order_by("-time", "-id")[:50])

    def claim(rng: random.Random) -> None:
        # The engine's claim (delivery.pump.deliveries_claim), in a transaction rolled back.
        try:
            from delivery.pump import due_deliveries
        except ImportError:  # the engine moved: the same query by hand
            due_deliveries = None
        now = timezone.now()
        with transaction.atomic():
            qs = (
                due_deliveries(now)
                if due_deliveries
                else Delivery.objects.filter(status="pending", next_attempt_at__lte=now).order_by("next_attempt_at")
            )
            list(
                qs.select_for_update(skip_locked=True, of=("self",)).values_list(
                    "id", "destination_id", "message_id", "attempts_count"
                )[:100]
            )
            transaction.set_rollback(True)

    def gauges(rng: random.Random) -> None:
        metrics.delivery_queue_stats()

    def retention_batch(rng: random.Random) -> None:
        now = timezone.now()
        list(due_succeeded_deliveries(tenant_id=big.pk, now=now, days=7).order_by().values_list("pk", flat=True)[:1000])
        list(due_messages(tenant_id=big.pk, now=now, days=30).order_by().values_list("pk", flat=True)[:1000])

    day_ago = timezone.now() - datetime.timedelta(days=1)
    big_share, small_share = deliveries // 2, deliveries // 2 // (TENANTS - 1)
    per_device = readings // 2 // DEVICES_PER_TENANT
    plan = [
        (
            "delivery log, big tenant",
            f"page 1 of {big_share:,} deliveries: count, 50 rows, failed count",
            delivery_log(big),
        ),
        ("delivery log, big tenant, page 100", "the same at OFFSET 4950", delivery_log(big, page=100)),
        (
            "delivery log, status=failed",
            f"big tenant, {big_share // 20:,} failed",
            delivery_log(big, status="failed"),
        ),
        (
            "delivery log, one destination",
            f"big tenant, one of {DESTINATIONS_PER_TENANT} destinations",
            delivery_log(big, destination=lambda rng: rng.choice(big_destinations)),
        ),
        ("delivery log, small tenant", f"{small_share:,} deliveries", delivery_log(small)),
        ("readings API, big tenant", f"{readings // 2:,} readings: count + 50 newest", readings_api(big)),
        (
            "readings API, one device",
            f"big tenant, {per_device:,} readings of the device",
            readings_api(big, device_id=lambda rng: rng.choice(big_devices)),
        ),
        ("readings API, name + last day", "big tenant", readings_api(big, name="temperature", time__gte=day_ago)),
        ("device page readings", "50 newest readings of one device", device_page),
        (
            "engine claim",
            f"100 of {deliveries // 100:,} due / {deliveries // 50:,} pending, FOR UPDATE SKIP LOCKED",
            claim,
        ),
        ("/metrics queue gauges", "pending count, oldest ages, disabled destinations", gauges),
        ("retention batch select", "1,000 due succeeded deliveries + 1,000 due messages", retention_batch),
    ]
    return [measure(name, what, run, runs=runs) for name, what, run in plan]


# --- the report ----------------------------------------------------------------------------


def results_table(measured: list[Measured]) -> str:
    lines = ["| query | what | p50 ms | p95 ms |", "|---|---|---:|---:|"]
    for m in measured:
        lines.append(f"| {m.name} | {m.what} | {m.p50:.1f} | {m.p95:.1f} |")
    return "\n".join(lines)


def results_document(
    measured: list[Measured], load: LoadReport, *, readings: int, deliveries: int, runs: int, elapsed: float
) -> str:
    out = [
        "# Database at scale",
        "",
        f"`python bench/db_scale.py` (part of `make bench`), {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC:",
        f"{readings:,} readings and {deliveries:,} deliveries in PostgreSQL "
        f"({TENANTS} tenants, one with half of the data; {TENANTS * DEVICES_PER_TENANT:,} devices; 2 % of deliveries "
        "pending, half of those due; 5 % failed; attempts for the failed and pending ones). "
        "Times are the ORM calls the code makes, warm cache, "
        f"{runs} runs each, on this machine (2 cores; load average {os.getloadavg()[0]:.1f} at the end, "
        f"other work included). Whole run: {elapsed:.0f} s.",
        "",
        results_table(measured),
        "",
        "## Load",
        "",
        "| step | seconds |",
        "|---|---:|",
        *[f"| {label} | {seconds:.1f} |" for label, seconds in load.steps],
        "",
        "| table | rows | heap | indexes |",
        "|---|---:|---:|---:|",
        *[f"| {t} | {rows:,} | {heap} | {idx} |" for t, rows, heap, idx in load.sizes],
        "",
        "## Indexes",
        "",
        "| index | size | definition |",
        "|---|---:|---|",
        *[f"| {name} | {size} | `{definition}` |" for name, size, definition in load.indexes],
        "",
        "## Plans",
        "",
    ]
    for m in measured:
        out += [f"### {m.name}", ""]
        for sql, plan in m.plans:
            out += ["```sql", sql if len(sql) < 1500 else sql[:1500] + " …", "```", "```", plan, "```", ""]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards (to look at it).")
    parser.add_argument("--no-write", action="store_true", help="Print the table only; leave RESULTS-db.md alone.")
    args = parser.parse_args()

    started = time.monotonic()
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal")
    admin_url, url, name = scale_urls(database_url)
    print(f"db_scale: database {name}", flush=True)
    var_dir = Path(tempfile.mkdtemp(prefix="portal-dbscale-"))
    database_create(admin_url, name)
    try:
        migrate(url, var_dir)
        load = LoadReport()
        data_load(url, readings=args.readings, deliveries=args.deliveries, report=load)

        os.environ["DATABASE_URL"] = url
        os.environ["PORTAL_VAR_DIR"] = str(var_dir)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        os.environ["LOG_LEVEL"] = "WARNING"
        import django

        django.setup()
        measured = scenarios(args.runs, readings=args.readings, deliveries=args.deliveries)
        from django.db import connections

        connections.close_all()
        elapsed = time.monotonic() - started
        table = results_table(measured)
        print()
        print(table)
        if not args.no_write:
            RESULTS.write_text(
                results_document(
                    measured, load, readings=args.readings, deliveries=args.deliveries, runs=args.runs, elapsed=elapsed
                )
            )
            print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
    finally:
        if not args.keep:
            database_drop(admin_url, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
