"""The five scenarios of SPEC section 12, each with the baseline it is read against.

Execution order differs from the report's: delivery (2, with memory 5), isolation (3)
and fan-out (4) first, ingest (1) last, because ingest leaves tens of thousands of
messages (and their pending deliveries, with the workers stopped) that would otherwise
sit in the engine's way.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.loadgen import NOT_SENT, Sent, burst_post, paced_post
from bench.payloads import SignedBody, kpn_token, marker, senml_pack, wrk_data_write
from bench.portal_api import PortalApi, Route
from bench.processes import cpu_times, cpu_used, rss_peak_mb, rss_peak_reset
from bench.queries import delivery_queries, failed_attempts, ingest_queries
from bench.results import Report, fmt_mb, fmt_ms, fmt_rate, fmt_ratio, percentile
from bench.sink import SinkControl
from bench.stack import ROOT, Stack, worker_commands

DEVICES = 100  # distinct devices per connection, created by their first message
FANOUT_SECONDS = 90.0  # the most time the fan-out scenario spends
BACKLOG_SECONDS = 45.0  # the most time the delivery scenarios spend ingesting a backlog
WRK_THREADS = 2


@dataclass
class Bench:
    stack: Stack
    api: PortalApi
    sink: SinkControl
    report: Report
    run: str
    seq: itertools.count = field(default_factory=itertools.count)
    figures: dict = field(default_factory=dict)

    def items(self, routes: list[Route], count: int) -> list[tuple[str, SignedBody]]:
        """`count` fresh signed messages, spread round-robin over the routes' connections."""
        base_time = int(time.time())
        out = []
        for i in range(count):
            route = routes[i % len(routes)]
            seq = next(self.seq)
            body = senml_pack(run=self.run, seq=seq, device=seq % DEVICES, base_time=base_time)
            out.append(
                (route.ingest_path, SignedBody(seq=seq, body=body, token=kpn_token(body=body, secret=route.secret)))
            )
        return out

    def cpu(self, *names: str) -> dict[int, float]:
        """CPU times of the named children's processes ("postgres": the bench database's backends)."""
        pids = [pid for name in names if name in self.stack.procs.children for pid in self.stack.procs.group_pids(name)]
        if "postgres" in names:
            pids += self.stack.postgres_pids()
        return cpu_times(pids)

    def expected(self, routes: list[Route], sent: list[Sent]) -> set[tuple[str, str]]:
        """(marker, sink path) each accepted message should reach; none for a route without a sink path."""
        sink_path = {route.ingest_path: route.sink_path for route in routes}
        return {(s.marker, sink_path[s.target]) for s in sent if s.status == 200 and sink_path[s.target]}


class Receipts:
    """The sink's records of one phase, matched against the (marker, path) pairs expected."""

    def __init__(self, sink: SinkControl, expected: set[tuple[str, str]]) -> None:
        self.sink = sink
        self.expected = expected
        self.times: dict[tuple[str, str], float] = {}
        self.rejected = 0  # answered 401 by the sink: the token did not verify
        self.hung = 0  # held by the sink without an answer
        self.unexpected = 0

    def poll(self) -> int:
        """Fetch new records; returns how many expected receipts there are now."""
        for arrived, path, mark, status in self.sink.new_records():
            key = (mark, path)
            if status == 0:
                self.hung += 1
            elif status != 200:
                self.rejected += 1
            elif key in self.expected:
                self.times.setdefault(key, arrived)
            else:
                self.unexpected += 1
        return len(self.times)

    @property
    def complete(self) -> bool:
        return self.expected <= self.times.keys()

    def wait(self, *, timeout: float, until: int | None = None, interval: float = 0.1) -> Receipts:
        """Poll until every expected receipt (or `until` of them) is in, or timeout."""
        deadline = time.monotonic() + timeout
        target = len(self.expected) if until is None else until
        while self.poll() < target and time.monotonic() < deadline:
            time.sleep(interval)
        return self


def _accepted(sent: list[Sent], what: str) -> list[Sent]:
    """The messages answered 200; fails the run when any other answer came back."""
    refused = [s for s in sent if s.status != 200]
    if refused:
        codes = sorted({s.status for s in refused})
        raise RuntimeError(f"{what}: {len(refused)} of {len(sent)} messages not accepted (status {codes})")
    return sent


# -- scenario 2 and 3: delivery -------------------------------------------------------


@dataclass
class DeliveryFigures:
    backlog: int
    drain_delivered: int
    drain_rate: float
    start_to_last: float
    latency_rate: float
    latency_sent: int
    latency_delivered: int
    e2e_ms: list[float]
    rejected: int
    hung: int
    worker_cpu_ms: float
    postgres_cpu_ms: float

    @property
    def p50(self) -> float:
        return percentile(self.e2e_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.e2e_ms, 99)


def delivery_measure(
    b: Bench, *, routes: list[Route], backlog: int, rate: float, seconds: float, label: str
) -> DeliveryFigures:
    """Drain a backlog with fresh workers (throughput), then ingest at `rate` (end-to-end latency).

    Each phase has a time budget, so a slow system gives poor figures instead of a run
    that never ends: the backlog is what ingest accepted within BACKLOG_SECONDS.
    """
    stack = b.stack
    workers = [n for n in worker_commands() if n != "beat"]
    stack.stop_workers()
    t0 = time.monotonic()
    sent = _accepted(
        asyncio.run(
            burst_post(base_url=stack.web_url, items=b.items(routes, backlog), concurrency=8, seconds=BACKLOG_SECONDS)
        ),
        f"{label} backlog",
    )
    print(
        f"  {label}: ingested a backlog of {len(sent):,} in {time.monotonic() - t0:.1f} s (workers stopped)", flush=True
    )
    b.sink.reset()
    drained = Receipts(b.sink, b.expected(routes, sent))
    began, began_at = time.monotonic(), datetime.datetime.now(datetime.UTC)
    connections_before, sink_before = b.sink.stats()["connections_total"], b.cpu("sink")
    stack.start_workers()
    # Worker CPU is counted from the first receipt on, so start-up is left out.
    drained.wait(timeout=60.0, until=1, interval=0.01)
    worker_first, pg_first, count_first = b.cpu(*workers), b.cpu("postgres"), len(drained.times)
    drained.wait(timeout=max(30.0, len(sent) / 100))
    counted = max(len(drained.times) - count_first, 1)
    cpu_ms = 1000 * cpu_used(worker_first, b.cpu(*workers)) / counted
    pg_ms = 1000 * cpu_used(pg_first, b.cpu("postgres")) / counted
    sink_ms = 1000 * cpu_used(sink_before, b.cpu("sink")) / max(len(drained.times), 1)
    connections = b.sink.stats()["connections_total"] - connections_before
    times = sorted(drained.times.values())
    drain_rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else math.nan
    # The rate up to 99 % of the receipts shows whether a few stragglers (retries) stretched the drain.
    n99 = max(int(0.99 * len(times)), 2)
    rate99 = (n99 - 1) / (times[n99 - 1] - times[0]) if len(times) >= n99 and times[n99 - 1] > times[0] else math.nan
    failures = failed_attempts(
        stack=stack, destination_ids=[r.destination_id for r in routes if r.sink_path], since=began_at
    )
    start_to_last = times[-1] - began if times else math.nan
    print(
        f"  {label}: drained {len(times)}/{len(drained.expected)} in {start_to_last:.1f} s after worker start,"
        f" {drain_rate:,.0f} deliveries/s first to last receipt; CPU a delivery: worker {cpu_ms:.2f} ms,"
        f" PostgreSQL {pg_ms:.2f} ms, sink {sink_ms:.2f} ms; 99 % of them at {rate99:,.0f}/s; {connections}"
        f" TLS connections opened at the sink; failed attempts to healthy destinations: {dict(failures) or 'none'}",
        flush=True,
    )

    b.sink.reset()
    sent = asyncio.run(paced_post(base_url=stack.web_url, items=b.items(routes, int(rate * seconds)), rate=rate))
    offered = len(sent)
    sent = _accepted([s for s in sent if s.status != NOT_SENT], f"{label} paced")
    answered = {s.marker: s.answered_at for s in sent}
    span = max(s.answered_at for s in sent) - min(s.sent_at for s in sent) if sent else math.nan
    paced = Receipts(b.sink, b.expected(routes, sent)).wait(timeout=30.0)
    e2e = [(arrived - answered[mark]) * 1000 for (mark, _path), arrived in paced.times.items()]
    figures = DeliveryFigures(
        backlog=len(drained.expected),
        drain_delivered=len(times),
        drain_rate=drain_rate,
        start_to_last=start_to_last,
        latency_rate=len(sent) / span if span else math.nan,
        latency_sent=len(paced.expected),
        latency_delivered=len(paced.times),
        e2e_ms=e2e,
        rejected=drained.rejected + paced.rejected,
        hung=drained.hung + paced.hung,
        worker_cpu_ms=cpu_ms,
        postgres_cpu_ms=pg_ms,
    )
    print(
        f"  {label}: {len(e2e)}/{len(paced.expected)} delivered at {figures.latency_rate:,.0f} msg/s,"
        f" end-to-end p50 {figures.p50:.1f} ms p99 {figures.p99:.1f} ms",
        flush=True,
    )
    if offered > len(sent):
        b.report.note(
            f"{label}: ingest fell behind {rate:,.0f} msg/s; {offered - len(sent)} of {offered} paced messages"
            " were not sent (too many requests already waiting)."
        )
    if failures:
        what = ", ".join(f"{n} {kind}" for kind, n in failures.most_common())
        b.report.note(
            f"{label}: {sum(failures.values())} attempts to healthy destinations failed while draining ({what}) and"
            f" were retried; 99 % of the backlog went at {rate99:,.0f}/s. The engine opened {connections} TLS"
            " connections to the sink meanwhile."
        )
    if figures.rejected:
        b.report.note(
            f"{label}: the sink refused {figures.rejected} deliveries whose Things-Message-Token did not verify."
        )
    return figures


def httpx_baseline(b: Bench, *, count: int, sink_path: str, env_var: str) -> dict:
    """The plain httpx keep-alive loop, in its own process, to the same sink."""
    env = dict(b.stack.env)
    argv = [
        sys.executable,
        "-m",
        "bench.httpx_loop",
        "--url",
        b.stack.sink_url + sink_path,
        "--ca",
        str(b.stack.tls.ca_pem),
        "--secret-env",
        env_var,
        "--count",
        str(count),
        "--run",
        b.run,
        "--start",
        str(next(b.seq) + 10_000_000),
    ]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise RuntimeError(f"httpx baseline failed:\n{done.stdout}\n{done.stderr}")


def memory_peaks(b: Bench) -> dict[str, tuple[float, int]]:
    """Per role, the largest peak RSS of one process (MB) and how many processes it had."""
    peaks = {}
    for role, names in (("web", ["web"]), ("worker", [n for n in worker_commands() if n != "beat"])):
        values = [
            rss_peak_mb(pid)
            for name in names
            if name in b.stack.procs.children
            for pid in b.stack.procs.group_pids(name)
        ]
        values = [v for v in values if v is not None]
        peaks[role] = (max(values) if values else math.nan, len(values))
    return peaks


def scenario_delivery(b: Bench, *, backlog: int, rate: float, seconds: float) -> DeliveryFigures:
    print("Scenario 2: delivery to one destination (and 5: memory)", flush=True)
    route, dest_secret = b.api.route_create(name="delivery", sink_path="/d/delivery")
    base_secret = "Bn1#" + os.urandom(16).hex()
    b.sink.configure(secrets={"/d/delivery": dest_secret, "/d/baseline": base_secret})
    b.stack.env["BENCH_BASELINE_SECRET"] = base_secret
    # Start the web processes' peak RSS afresh, so scenario 5 reads the peak during 2.
    for pid in b.stack.procs.group_pids("web"):
        rss_peak_reset(pid)

    # SQL statements per delivery, counted on a small batch sent by the pump in this process.
    b.stack.stop_workers()
    sent = asyncio.run(burst_post(base_url=b.stack.web_url, items=b.items([route], 200), concurrency=8))
    _accepted(sent, "delivery query count")
    counted = delivery_queries(stack=b.stack, expected=len(sent))
    b.report.note(f"delivery: {counted.describe()} per delivery, over a pump run of {counted.items} deliveries.")
    print(f"  delivery: {counted.describe()} per delivery", flush=True)

    ours = delivery_measure(b, routes=[route], backlog=backlog, rate=rate, seconds=seconds, label="delivery")
    peaks = memory_peaks(b)
    baseline = httpx_baseline(b, count=backlog, sink_path="/d/baseline", env_var="BENCH_BASELINE_SECRET")
    print(
        f"  baseline: httpx keep-alive loop {baseline['rate']:,.0f} POSTs/s ({baseline['ok']}/{baseline['count']} 200)"
    )

    ratio = ours.drain_rate / baseline["rate"] if baseline["rate"] else math.nan
    b.report.add(
        "2 delivery",
        f"deliveries/s, backlog of {backlog:,} to 1 destination",
        fmt_rate(ours.drain_rate),
        f"{fmt_rate(baseline['rate'])} (httpx keep-alive loop)",
        fmt_ratio(ratio),
        "≥ 0.5x baseline",
        ratio >= 0.5 and ours.drain_delivered == backlog,
    )
    b.report.add(
        "2 delivery",
        f"end-to-end (ingest 2xx → sink) at {ours.latency_rate:,.0f} msg/s, p50 / p99",
        f"{fmt_ms(ours.p50)} / {fmt_ms(ours.p99)}",
        "",
        "",
        "p99 ≤ 250 ms",
        ours.p99 <= 250 and ours.latency_delivered == ours.latency_sent,
    )
    if ours.drain_delivered < backlog or ours.latency_delivered < ours.latency_sent:
        b.report.note(
            f"delivery: {backlog - ours.drain_delivered} of the backlog and "
            f"{ours.latency_sent - ours.latency_delivered} of the paced messages had not reached the sink in time."
        )
    cpu_total = ours.worker_cpu_ms + ours.postgres_cpu_ms
    b.report.note(
        f"delivery: CPU per delivery while draining the backlog: worker processes {ours.worker_cpu_ms:.2f} ms,"
        f" PostgreSQL {ours.postgres_cpu_ms:.2f} ms (from the first receipt on, start-up left out); on"
        f" {os.cpu_count()} idle cores that allows at most ~{1000 * (os.cpu_count() or 1) / cpu_total:,.0f}"
        " deliveries/s before the sink's share."
    )
    web_peak, web_n = peaks["web"]
    worker_peak, worker_n = peaks["worker"]
    b.report.add(
        "5 memory",
        f"peak RSS of one worker process during 2 (largest of {worker_n})",
        fmt_mb(worker_peak),
        "",
        "",
        "≤ 200 MB",
        worker_peak <= 200,
    )
    b.report.add(
        "5 memory",
        f"peak RSS of one web process during 2 (largest of {web_n})",
        fmt_mb(web_peak),
        "",
        "",
        "≤ 200 MB",
        web_peak <= 200,
    )
    b.figures["delivery"] = ours
    return ours


def scenario_isolation(b: Bench, *, backlog: int, rate: float, seconds: float) -> DeliveryFigures:
    print("Scenario 3: isolation, ten destinations, one hanging", flush=True)
    routes = []
    secrets_by_path = {}
    for i in range(10):
        route, dest_secret = b.api.route_create(name=f"isolation-{i}", sink_path=f"/d/isolation-{i}")
        routes.append(route)
        secrets_by_path[route.sink_path] = dest_secret
    hanging = routes[0]
    b.sink.configure(secrets=secrets_by_path, hang=[hanging.sink_path])
    healthy_expected = [r for r in routes if r is not hanging]
    # Expect receipts only on the nine healthy paths; the hanging one never answers.
    measure_routes = [*healthy_expected, Route(hanging.connection_id, hanging.ingest_path, hanging.secret)]
    ours = delivery_measure(b, routes=measure_routes, backlog=backlog, rate=rate, seconds=seconds, label="isolation")
    b.stack.stop_workers()
    stats = b.sink.stats()
    b.api.destination_delete(hanging.destination_id)  # its retries must not run into scenario 4

    alone: DeliveryFigures | None = b.figures.get("delivery")
    base_rate = alone.drain_rate if alone else math.nan
    base_p99 = alone.p99 if alone else math.nan
    rate_ratio = ours.drain_rate / base_rate if base_rate else math.nan
    p99_ratio = ours.p99 / base_p99 if base_p99 else math.nan
    b.report.add(
        "3 isolation",
        "healthy deliveries/s (9 of 10 destinations; 1 hangs)",
        fmt_rate(ours.drain_rate),
        f"{fmt_rate(base_rate)} (scenario 2)",
        fmt_ratio(rate_ratio),
        "≥ 0.90x scenario 2",
        rate_ratio >= 0.9,
    )
    b.report.add(
        "3 isolation",
        f"healthy end-to-end p99 at {ours.latency_rate:,.0f} msg/s",
        fmt_ms(ours.p99),
        f"{fmt_ms(base_p99)} (scenario 2)",
        fmt_ratio(p99_ratio),
        "≤ 2x scenario 2",
        p99_ratio <= 2.0,
    )
    b.report.note(
        f"isolation: one message in ten went to a destination that never answers (timeout 5 s); "
        f"it received {stats['hung_total']} requests, each held until the engine gave up."
    )
    return ours


# -- scenario 4: fan-out --------------------------------------------------------------


def scenario_fanout(b: Bench, *, destinations: int, repeats: int, warmup: int = 6) -> None:
    print(f"Scenario 4: fan-out, one message to {destinations} destinations", flush=True)
    connection_id, ingest_path, secret = b.api.connection_create(name="fan-out")
    secrets_by_path = {}
    for i in range(destinations):
        path = f"/d/fan-{i:02d}"
        _id, dest_secret = b.api.destination_create(
            name=f"fan-out {i:02d}", sink_path=path, connection_id=connection_id
        )
        secrets_by_path[path] = dest_secret
    b.sink.configure(secrets=secrets_by_path)
    route = Route(connection_id=connection_id, ingest_path=ingest_path, secret=secret)
    if "worker" not in b.stack.procs.children:
        b.stack.start_workers()
    client = httpx.Client(base_url=b.stack.web_url, timeout=30.0)
    last_ms: list[float] = []
    first_ms: list[float] = []
    missing = 0
    cold_ms = math.nan
    b.sink.reset()
    gaps = random.Random(4)  # the same spacing every run
    deadline = time.monotonic() + FANOUT_SECONDS
    for i in range(warmup + repeats):
        if time.monotonic() > deadline:
            b.report.note(
                f"fan-out: stopped after {i - warmup} messages, at the scenario's {FANOUT_SECONDS:.0f} s budget."
            )
            break
        # Messages arrive independently: some while the last pump still runs, some after it went idle.
        gap = gaps.uniform(0.0, 2.0)
        time.sleep(gap)
        [(path, item)] = b.items([route], 1)
        mark = marker(run=b.run, seq=item.seq)
        answer = client.post(
            path, content=item.body, headers={"Content-Type": "application/json", "Things-Message-Token": item.token}
        )
        answered = time.monotonic()
        if answer.status_code != 200:
            raise RuntimeError(f"fan-out ingest answered {answer.status_code}: {answer.text[:300]}")
        got = Receipts(b.sink, {(mark, p) for p in secrets_by_path}).wait(timeout=10.0, interval=0.02)
        if i == 0 and got.times:
            cold_ms = (max(got.times.values()) - answered) * 1000
        if i < warmup:
            continue
        if len(got.times) < destinations:
            missing += destinations - len(got.times)
            continue
        last_ms.append((max(got.times.values()) - answered) * 1000)
        first_ms.append((min(got.times.values()) - answered) * 1000)
        if last_ms[-1] > 1000:
            spread = sorted((t - answered) * 1000 for t in got.times.values())
            print(
                f"  fan-out message {i - warmup + 1}: {gap:.2f} s after the previous one's last receipt; receipts"
                f" from {spread[0]:,.0f} ms, median {spread[len(spread) // 2]:,.0f} ms, last {spread[-1]:,.0f} ms",
                flush=True,
            )
    client.close()
    p99 = percentile(last_ms, 99)
    slow = sorted(ms for ms in last_ms if ms > 1000)
    print(
        f"  fan-out: last receipt p50 {percentile(last_ms, 50):.0f} ms p99 {p99:.0f} ms over {len(last_ms)} repeats"
        f"; over 1 s: {', '.join(f'{ms:,.0f} ms' for ms in slow) or 'none'}",
        flush=True,
    )
    b.report.add(
        "4 fan-out",
        f"last of {destinations} receipts after ingest 2xx, p50 / p99 over {len(last_ms)} messages",
        f"{fmt_ms(percentile(last_ms, 50))} / {fmt_ms(p99)}",
        "",
        "",
        "p99 ≤ 1 s",
        p99 <= 1000 and missing == 0,
    )
    b.report.note(
        f"fan-out: first receipt p50 {fmt_ms(percentile(first_ms, 50))}; {warmup} warm-up messages not counted"
        f" (each worker process makes its 50 clients and TLS connections on its first fan-out message: the very"
        f" first message's last receipt came after {fmt_ms(cold_ms)})"
        + (f"; {len(slow)} of {len(last_ms)} took over 1 s" if slow else "")
        + (f"; {missing} deliveries did not arrive within 10 s" if missing else "")
        + "."
    )
    b.stack.stop_workers()


# -- scenario 1: ingest ---------------------------------------------------------------


def wrk_run(b: Bench, *, path: str, data: Path, connections: int, seconds: int, rate: float = 0) -> dict:
    env = dict(
        os.environ,
        BENCH_DATA=str(data),
        BENCH_PATH=path,
        BENCH_THREADS=str(WRK_THREADS),
        BENCH_RATE=str(rate),
    )
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "bench" / "ingest.lua"),
        b.stack.web_url,
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
            seconds_run = result["duration_us"] / 1e6
            result["rate"] = result["ok"] / seconds_run if seconds_run else 0.0
            result["p50_ms"] = result["p50_us"] / 1000
            result["p99_ms"] = result["p99_us"] / 1000
            result["sent_rate"] = result["requests"] / seconds_run if seconds_run else 0.0
            return result
    raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _wrk_data(b: Bench, route: Route, lines: int) -> Path:
    path = b.stack.tmp / f"wrk-{next(b.seq)}.txt"
    items = (item for _path, item in b.items([route], lines))
    wrk_data_write(path=path, bodies=items)
    return path


def scenario_ingest(b: Bench, *, levels: tuple[int, ...], seconds: int, paced_rate: float) -> None:
    print("Scenario 1: ingest (workers stopped; the bare view is the baseline)", flush=True)
    b.stack.stop_workers()
    # A connection with one destination, as customers have it: each message also makes a
    # Delivery row and rings the broker. The deliveries wait (no workers): ingest alone is measured.
    route, dest_secret = b.api.route_create(name="ingest", sink_path="/d/ingest")
    b.sink.configure(secrets={"/d/ingest": dest_secret})
    ceiling = 6000  # unique bodies per second of run: more than this server can accept
    warm = wrk_run(b, path=route.ingest_path, data=_wrk_data(b, route, 16 * 1000), connections=16, seconds=3)
    print(f"  warm-up: {warm['rate']:,.0f} msg/s", flush=True)
    counted = ingest_queries(stack=b.stack, path=route.ingest_path, bodies=[item for _p, item in b.items([route], 50)])
    accepted = warm["ok"] + counted.items
    b.report.note(f"ingest: {counted.describe()} per accepted message (middleware and view, {counted.items} messages).")
    print(f"  ingest: {counted.describe()} per message", flush=True)
    best = {"ours": None, "bare": None}
    for level in levels:
        data = _wrk_data(b, route, ceiling * seconds)
        web0, pg0 = b.cpu("web"), b.cpu("postgres")
        ours = wrk_run(b, path=route.ingest_path, data=data, connections=level, seconds=seconds)
        web1, pg1 = b.cpu("web"), b.cpu("postgres")
        bare = wrk_run(b, path="/bench/bare/", data=data, connections=level, seconds=seconds)
        web2 = b.cpu("web")
        ours["cpu_ms"] = 1000 * cpu_used(web0, web1) / max(ours["requests"], 1)
        ours["pg_ms"] = 1000 * cpu_used(pg0, pg1) / max(ours["requests"], 1)
        bare["cpu_ms"] = 1000 * cpu_used(web1, web2) / max(bare["requests"], 1)
        data.unlink()
        accepted += ours["ok"]
        if ours["wrapped"]:
            b.report.note(f"ingest c={level}: wrk ran out of unique bodies; repeats were answered as duplicates.")
        for name, result in (("ours", ours), ("bare", bare)):
            if best[name] is None or result["rate"] > best[name]["rate"]:
                best[name] = dict(result, level=level)
        errors = ours["other"] + ours["errors_connect"] + ours["errors_read"] + ours["errors_timeout"]
        print(
            f"  c={level}: ingest {ours['rate']:,.0f} msg/s p50 {ours['p50_ms']:.1f} ms p99 {ours['p99_ms']:.1f} ms"
            f" CPU/msg web {ours['cpu_ms']:.2f} ms PostgreSQL {ours['pg_ms']:.2f} ms (non-200/errors {errors});"
            f" bare view {bare['rate']:,.0f}/s p99 {bare['p99_ms']:.1f} ms web CPU {bare['cpu_ms']:.2f} ms/req",
            flush=True,
        )
        b.report.add(
            "1 ingest",
            f"accepted msgs/s at {level} connections (p50 / p99)",
            f"{fmt_rate(ours['rate'])} ({fmt_ms(ours['p50_ms'])} / {fmt_ms(ours['p99_ms'])})",
            f"{fmt_rate(bare['rate'])} ({fmt_ms(bare['p50_ms'])} / {fmt_ms(bare['p99_ms'])}) bare view",
            fmt_ratio(ours["rate"] / bare["rate"] if bare["rate"] else math.nan),
            "",
            None,
        )
        if errors:
            b.report.note(f"ingest c={level}: {errors} requests were not answered 200 (status or socket errors).")
    top, top_bare = best["ours"], best["bare"]
    b.report.note(
        f"ingest: CPU per message at c={top['level']}: web processes {top['cpu_ms']:.2f} ms, PostgreSQL"
        f" {top['pg_ms']:.2f} ms (bare view: {top_bare['cpu_ms']:.2f} ms per request); on {os.cpu_count()} idle"
        f" cores that allows at most ~{1000 * (os.cpu_count() or 1) / (top['cpu_ms'] + top['pg_ms']):,.0f} msg/s"
        " before wrk's own share."
    )
    ratio = top["rate"] / top_bare["rate"] if top_bare["rate"] else math.nan
    b.report.add(
        "1 ingest",
        "best accepted msgs/s",
        f"{fmt_rate(top['rate'])} (c={top['level']})",
        f"{fmt_rate(top_bare['rate'])} (c={top_bare['level']}) bare view",
        fmt_ratio(ratio),
        "≥ 1,000/s and ≥ 0.5x bare",
        top["rate"] >= 1000 and ratio >= 0.5,
    )
    rates = [paced_rate]
    if abs(top["rate"] / 2 - paced_rate) > 0.1 * paced_rate:
        rates.append(round(top["rate"] / 2))
    for rate in rates:
        data = _wrk_data(b, route, int(rate * 12 * 1.2) + 1000)
        paced = wrk_run(b, path=route.ingest_path, data=data, connections=32, seconds=12, rate=rate)
        data.unlink()
        accepted += paced["ok"]
        print(
            f"  paced {rate:,.0f}/s: got {paced['rate']:,.0f}/s"
            f" p50 {paced['p50_ms']:.1f} ms p99 {paced['p99_ms']:.1f} ms"
        )
        half_of = "half of the 1,000/s target" if rate == paced_rate else "half of the best rate above"
        b.report.add(
            "1 ingest",
            f"latency at {rate:,.0f} msg/s offered ({half_of}), p50 / p99",
            f"{fmt_ms(paced['p50_ms'])} / {fmt_ms(paced['p99_ms'])} at {fmt_rate(paced['rate'])}",
            "",
            "",
            "p99 ≤ 50 ms",
            paced["p99_ms"] <= 50 and paced["rate"] >= 0.95 * rate,
        )
    stored = b.api.messages_count(connection_id=route.connection_id)
    if stored is not None:
        # Requests still in flight when wrk stops are stored but not counted by wrk: stored >= answered.
        b.report.note(
            f"ingest: {accepted:,} messages were answered 200 and the portal's API lists {stored:,} stored for the"
            f" connection{'' if stored >= accepted else ' — fewer than answered: messages were lost'}"
            " (requests in flight when wrk stops are stored but not counted)."
        )
