"""`make bench`: SPEC section 12's scenarios against baselines taken in the same run.

Starts everything it needs on loopback (its own PostgreSQL database `portal_bench`,
Redis database 5, an HTTPS sink with a throwaway CA, gunicorn, Celery worker and beat),
runs the scenarios, prints a markdown table and writes it to bench/RESULTS.md. Every
process it starts is stopped on the way out, on failure and on Ctrl-C too.

    python bench/run.py [--only delivery,isolation,fanout,ingest] [--no-write] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.portal_api import PortalApi  # noqa: E402
from bench.processes import ProcessSet, machine_cpu, own_cpu  # noqa: E402
from bench.results import Report, results_document, results_table  # noqa: E402
from bench.scenarios import (  # noqa: E402
    Bench,
    scenario_delivery,
    scenario_fanout,
    scenario_ingest,
    scenario_isolation,
)
from bench.sink import SinkControl  # noqa: E402
from bench.stack import Stack, redis_flush_own  # noqa: E402
from bench.tls import bench_tls_create  # noqa: E402

SCENARIOS = ("delivery", "isolation", "fanout", "ingest")
RESULTS = ROOT / "bench" / "RESULTS.md"


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _row_order(report: Report) -> None:
    """Report rows in scenario order 1-5, whatever order they ran in."""
    report.rows.sort(key=lambda row: row.scenario.split(" ", 1)[0])


def bench_run(*, only: tuple[str, ...], write: bool, quick: bool = False) -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per sink poll otherwise
    cores = os.cpu_count() or 0
    load_before = os.getloadavg()[0]
    machine_before, own_before = machine_cpu(), own_cpu()
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    procs = ProcessSet(tmp)
    report = Report()
    ok = False
    stack = None
    try:
        stack = Stack(tmp=tmp, tls=bench_tls_create(directory=tmp / "tls"), procs=procs)
        print(f"Bench database {stack.database_url.rsplit('/', 1)[-1]}, Redis db {stack.redis_url.rsplit('/', 1)[-1]}")
        print("Preparing the database (dropped and migrated anew)…", flush=True)
        stack.prepare_storage()
        stack.start_sink()
        stack.start_web()
        api = PortalApi.for_new_tenant(stack=stack, slug="bench")
        sink = SinkControl(stack.control_url)
        bench = Bench(stack=stack, api=api, sink=sink, report=report, run=secrets.token_hex(3))
        scale = 0.1 if quick else 1.0  # --quick: a short run to try the harness, not figures
        if "delivery" in only:
            scenario_delivery(bench, backlog=int(4000 * scale), rate=200, seconds=15 * scale)
        if "isolation" in only:
            scenario_isolation(bench, backlog=int(4000 * scale), rate=200, seconds=15 * scale)
        if "fanout" in only:
            scenario_fanout(bench, destinations=50, repeats=int(40 * scale))
        if "ingest" in only:
            scenario_ingest(bench, levels=(8,) if quick else (4, 16, 64), seconds=3 if quick else 8, paced_rate=500)
        api.close()
        sink.close()
        ok = True
    except KeyboardInterrupt:
        print("\nInterrupted; stopping everything the bench started.", file=sys.stderr)
    except Exception as exc:
        print(f"\nThe bench failed: {exc}", file=sys.stderr)
        for child in procs.children.values():
            print(f"--- last lines of {child.name} ---\n{child.log_tail()}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        if stack is not None:
            with contextlib.suppress(Exception):  # a broker that is down must not hide the run's own error
                redis_flush_own(stack.redis_url)  # the doorbells ingest left for the stopped workers
        if ok and not os.environ.get("BENCH_KEEP_LOGS"):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            for data in tmp.glob("wrk-*.txt"):  # tens of MB of pre-signed bodies; the logs are what matter
                data.unlink()
            print(f"Logs kept in {tmp}", file=sys.stderr)
    if ok and os.environ.get("BENCH_KEEP_LOGS"):
        print(f"Logs kept in {tmp}")
    if not ok:
        return 130
    _row_order(report)
    machine_after, own_after = machine_cpu(), own_cpu()
    capacity = machine_after[1] - machine_before[1]
    if capacity > 0:
        busy = (machine_after[0] - machine_before[0]) / capacity
        ours = (own_after - own_before) / capacity
        report.note(
            f"during the run the machine's CPUs were {busy:.0%} busy: the bench's own processes (servers, workers,"
            f" sink, load generators) used {ours:.0%} of them, PostgreSQL and everything else the other"
            f" {busy - ours:.0%}."
        )
    if load_before > cores / 2:
        report.note(
            f"the machine was busy before the run (load average {load_before:.1f} on {cores} cores):"
            " other processes shared the CPU, so rates are lower and latencies higher than on an idle machine."
        )
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    document = results_document(
        report, cores=cores, date=date, duration_s=time.monotonic() - started, load_before=load_before
    )
    print()
    print(results_table(report.rows))
    print()
    for note in report.notes:
        print(f"- {note}")
    if write:
        RESULTS.write_text(document)
        print(f"\nWritten to {RESULTS.relative_to(ROOT)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks of SPEC section 12.")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--no-write", action="store_true", help="print the table but leave bench/RESULTS.md alone")
    parser.add_argument("--quick", action="store_true", help="a short run to try the harness (implies --no-write)")
    args = parser.parse_args()
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    write = not args.no_write and not args.quick and set(only) == set(SCENARIOS)
    return bench_run(only=only, write=write, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
