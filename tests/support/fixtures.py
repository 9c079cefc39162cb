"""Shared pytest fixtures built on tests/support (loaded by tests/conftest.py).

- `test_pki` (session): a test CA and server certificates (tests/support/tls.py).
- `destination_settings`: private addresses allowed and the test CA trusted, as the
  delivery engine needs to reach local sinks.
- `sink_factory`: `make(cert=..., **options)` starts an `HttpsSink` (tests/support/sink.py),
  adds its port to DESTINATION_ALLOWED_PORTS, and stops it after the test.
- `https_sink`: one sink with the valid test certificate.
- `celery_worker`: `start(beat=False, concurrency=1, extra_env=None)` runs a real worker
  subprocess (tests/support/celery_worker.py) against the test database and the
  test broker (flushed first); every one is stopped after the test.
"""

from __future__ import annotations

import pytest

from tests.support.celery_worker import CeleryWorker, broker_flush
from tests.support.sink import HttpsSink
from tests.support.tls import TestPki


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def destination_settings(settings, test_pki):
    settings.DESTINATION_ALLOW_PRIVATE = True
    settings.DESTINATION_CA_BUNDLE = str(test_pki.ca_path)
    settings.DESTINATION_ALLOWED_PORTS = [443]
    return settings


@pytest.fixture
def sink_factory(destination_settings, test_pki):
    started: list[HttpsSink] = []

    def make(*, cert="valid", **options) -> HttpsSink:
        chosen = getattr(test_pki, cert) if isinstance(cert, str) else cert
        sink = HttpsSink(cert=chosen, **options).start()
        started.append(sink)
        destination_settings.DESTINATION_ALLOWED_PORTS = [*destination_settings.DESTINATION_ALLOWED_PORTS, sink.port]
        return sink

    yield make
    for sink in started:
        sink.stop()


@pytest.fixture
def https_sink(sink_factory) -> HttpsSink:
    return sink_factory()


@pytest.fixture
def celery_worker(transactional_db, settings, tmp_path):
    workers: list[CeleryWorker] = []
    broker_flush()

    def start(*, beat: bool = False, concurrency: int = 1, extra_env: dict[str, str] | None = None, name: str = ""):
        worker = CeleryWorker(var_dir=tmp_path / "celery", name=name or f"w{len(workers) + 1}")
        workers.append(worker)
        return worker.start(beat=beat, concurrency=concurrency, extra_env=extra_env)

    yield start
    for worker in workers:
        worker.stop()
    broker_flush()
