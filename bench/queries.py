"""SQL statements per ingested message and per delivery: figures that do not depend on load.

Throughput on a shared 2-core machine moves with whatever else runs; the number of
statements a message or a delivery costs does not. Both are counted in this process
(Django on the bench database, CaptureQueriesContext), through the same code paths the
servers run: the full middleware stack and view for ingest, the pump for delivery.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bench.payloads import SignedBody
from bench.stack import Stack


@dataclass
class QueryCount:
    per_item: float
    items: int
    kinds: Counter  # first word of each statement (SELECT, INSERT, …) over all items

    def describe(self) -> str:
        kinds = ", ".join(f"{n / max(self.items, 1):.1f} {kind}" for kind, n in self.kinds.most_common())
        return f"{self.per_item:.1f} SQL statements ({kinds})"


def _kind(sql: str) -> str:
    return sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"


def ingest_queries(*, stack: Stack, path: str, bodies: list[SignedBody]) -> QueryCount:
    """Statements per accepted message, through Django's test client (middleware and view)."""
    stack.django_setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(SERVER_NAME="127.0.0.1")
    kinds: Counter = Counter()
    total = 0
    for item in bodies:
        with CaptureQueriesContext(connection) as captured:
            answer = client.post(
                path, data=item.body, content_type="application/json", HTTP_THINGS_MESSAGE_TOKEN=item.token
            )
        if answer.status_code != 200:
            raise RuntimeError(f"ingest answered {answer.status_code} while counting queries: {answer.content[:300]!r}")
        total += len(captured.captured_queries)
        kinds.update(_kind(q["sql"]) for q in captured.captured_queries)
    connection.close()
    return QueryCount(per_item=total / max(len(bodies), 1), items=len(bodies), kinds=kinds)


def delivery_queries(*, stack: Stack, expected: int) -> QueryCount:
    """Statements per succeeded delivery of one pump run (the deliveries_pump task's body)."""
    stack.django_setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from delivery.pump import deliveries_run

    with CaptureQueriesContext(connection) as captured:
        stats = deliveries_run(seconds=60, idle_seconds=0.5)
    kinds = Counter(_kind(q["sql"]) for q in captured.captured_queries)
    connection.close()
    delivered = stats.succeeded or expected
    return QueryCount(per_item=len(captured.captured_queries) / max(delivered, 1), items=delivered, kinds=kinds)


def failed_attempts(*, stack: Stack, destination_ids: list[str], since) -> Counter:
    """Failed attempts to these destinations since `since`, by error class (or status code)."""
    stack.django_setup()
    from django.db import connection

    from delivery.models import DeliveryAttempt

    rows = DeliveryAttempt.objects.filter(
        delivery__destination_id__in=destination_ids, started_at__gte=since, success=False
    ).values_list("error_class", "status_code")
    found = Counter(error_class or f"status {code}" for error_class, code in rows)
    connection.close()
    return found
