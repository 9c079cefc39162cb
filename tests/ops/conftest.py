"""Helpers for the operations tests: scraping /metrics and reading its samples."""

from __future__ import annotations

import io
import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.logging import JsonFormatter


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent (a counter never incremented is not exported)."""
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def scrape(client, db):
    """scrape() → the text of GET /metrics, as a loopback client gets it."""

    def get() -> str:
        response = client.get("/metrics")
        assert response.status_code == 200, response.content
        return response.content.decode()

    return get


@pytest.fixture
def json_lines():
    """Everything logged during the test, formatted as production formats it; lines() parses them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)

    class Captured:
        @staticmethod
        def text() -> str:
            return stream.getvalue()

        @staticmethod
        def lines() -> list[dict]:
            return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield Captured
    root.removeHandler(handler)
