"""PostgreSQL stopped for 10 s under ingest load: 503s in the window, no 2xx without its row.

Never the shared PostgreSQL: a throwaway cluster (initdb in a temporary directory, run
as the `postgres` OS user, on its own loopback port) is migrated and served by a real
gunicorn (deploy/gunicorn.conf.py, two workers). Four sender threads post signed KPN
Things messages, each body unique, for the whole run; the cluster is stopped for real
(`pg_ctl stop -m fast`), kept down for 10 s and started again, while gunicorn is left
alone. Every answer is kept in a ledger and compared with the rows afterwards.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.support.faults import ROOT, ThrowawayPostgres, WebServer, portal_env

pytestmark = pytest.mark.slow

SECRET = "Outage-Connection-Secret-0123456789!"
OUTAGE_SECONDS = 10.0
SENDERS = 4
# Django keeps a connection per worker and checks it before use (CONN_HEALTH_CHECKS), so
# the first request after the restart reconnects; a little slack for a loaded machine.
RECOVERY_ALLOWANCE = 5.0

SETUP = f"""
from ingest.models import Connection, ConnectionKind
from portal.models import Tenant
from portal.secrets import Actor, secret_set
tenant = Tenant.objects.create(slug="outage", name="Outage")
connection = Connection.objects.create(tenant=tenant, name="kpn", kind=ConnectionKind.KPN_THINGS)
secret_set(obj=connection, field="secret", value={SECRET!r}, actor=Actor(label="outage test"))
print("CONNECTION=" + str(connection.pk))
"""


@dataclass
class Sent:
    body: bytes
    started: float
    ended: float
    status: int | None
    answer: dict
    retry_after: str | None
    error: str = ""


@pytest.fixture(scope="module")
def cluster():
    pg = ThrowawayPostgres().init()
    pg.start()
    yield pg
    pg.destroy()


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _send_loop(base: str, connection_id: str, stop: threading.Event, out: list[Sent], index: int) -> None:
    with httpx.Client(base_url=base, timeout=20) as client:
        seq = 0
        while not stop.is_set():
            seq += 1
            body = json.dumps(
                [{"bn": f"urn:dev:SERIAL:S{index}:", "n": "seq", "v": seq, "t": time.time()}], separators=(",", ":")
            ).encode()
            token = hashlib.sha256(body + SECRET.encode()).hexdigest()
            headers = {"Content-Type": "application/json", "Things-Message-Token": token}
            started = time.time()
            try:
                response = client.post(f"/ingest/{connection_id}/", content=body, headers=headers)
            except httpx.HTTPError as exc:
                out.append(Sent(body, started, time.time(), None, {}, None, type(exc).__name__))
            else:
                try:
                    answer = response.json()
                except ValueError:
                    answer = {}
                out.append(
                    Sent(body, started, time.time(), response.status_code, answer, response.headers.get("Retry-After"))
                )
            time.sleep(0.1)


def test_postgresql_stopped_for_10s_answers_503_in_the_window_and_every_2xx_has_its_row(cluster, tmp_path, figures):
    """Pass: every request sent after the stop finished and answered before the start
    began gets 503 with Retry-After; no answer at all is anything but 200 or 503 (and
    every request gets one); every 200 names a committed message holding exactly the
    body sent; after the restart ingest answers 200 again by itself within a few
    seconds, without touching gunicorn."""
    database_url = cluster.create_database("portal")
    from django.conf import settings

    env = portal_env(database_url=database_url, broker_url=settings.CELERY_BROKER_URL, var_dir=tmp_path / "var")
    _manage(env, "migrate", "--no-input", "-v0")
    connection_id = next(
        line.split("=", 1)[1] for line in _manage(env, "shell", "-c", SETUP).splitlines() if line.startswith("CONN")
    )
    server = WebServer(directory=tmp_path / "web", env={**env, "LOG_FORMAT": "json"}, workers=2).start()
    sent: list[Sent] = []
    stop = threading.Event()
    senders = [
        threading.Thread(target=_send_loop, args=(server.base, connection_id, stop, sent, i), daemon=True)
        for i in range(SENDERS)
    ]
    try:
        for thread in senders:
            thread.start()
        time.sleep(4)
        stop_began = time.time()
        cluster.stop("fast")
        stop_done = time.time()
        time.sleep(OUTAGE_SECONDS)
        start_began = time.time()
        cluster.start()
        start_done = time.time()
        time.sleep(8)
    finally:
        stop.set()
        for thread in senders:
            thread.join(30)
        server.stop()

    inside = [s for s in sent if s.started >= stop_done and s.ended <= start_began]
    ok = [s for s in sent if s.status == 200]
    after = sorted((s for s in sent if s.started >= start_done), key=lambda s: s.started)
    first_ok_after = next((s for s in after if s.status == 200), None)
    recovery = (first_ok_after.ended - start_done) if first_ok_after else None
    with psycopg.connect(database_url) as db:
        rows = {
            str(message_id): bytes(body)
            for message_id, body in db.execute("SELECT id, body FROM ingest_message").fetchall()
        }
    stored_bodies = set(rows.values())
    figures(
        requests=len(sent),
        answered_200=len(ok),
        in_outage_window=len(inside),
        answered_503=sum(1 for s in sent if s.status == 503),
        rows=len(rows),
        outage_s=round(start_began - stop_began, 1),
        recovery_s=None if recovery is None else round(recovery, 2),
    )
    assert not [s.error for s in sent if s.status is None], "a request got no HTTP answer at all"
    assert {s.status for s in sent} <= {200, 503}, {s.status for s in sent}
    assert len(inside) >= SENDERS * 10, "too few requests fell inside the outage to say anything"
    assert all(s.status == 503 and s.retry_after for s in inside), "a request inside the outage was not a 503"
    for s in ok:
        message_id = s.answer["message_id"]
        assert rows.get(message_id) == s.body, f"answered 200 as {message_id} but that row is not there"
    assert not [s for s in inside if s.body in stored_bodies], "a request refused in the outage was stored"
    assert recovery is not None and recovery <= RECOVERY_ALLOWANCE, f"ingest did not recover by itself ({recovery})"
    assert all(s.status == 200 for s in after if s.started >= first_ok_after.ended), "503s after recovering"
