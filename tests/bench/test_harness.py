"""The bench harness's pieces work (signing, wrk script, sink, result table, cleanup).

These check the harness, never the system's speed: `make bench` measures, `make test`
does not time anything.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from bench.payloads import MARKER_RE, kpn_token_valid, signed_bodies, wrk_data_write
from bench.processes import ProcessSet
from bench.results import Report, percentile, results_document, results_table
from bench.sink import SinkControl
from bench.stack import free_port
from bench.tls import bench_tls_create

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Bn1#0123456789abcdef0123456789abcdef"


def _kpn_rule(body: bytes, secret: str) -> str:
    # Written out again from SPEC section 5, independent of bench.payloads.
    return hashlib.sha256(body + secret.encode("utf-8")).hexdigest()


def _data_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "wrk.txt"
    wrk_data_write(
        path=path,
        bodies=signed_bodies(run="a1b2c3", start=0, count=count, secret=SECRET, devices=7, base_time=1_700_000_000),
    )
    return path


def test_wrk_data_lines_are_unique_six_record_senml_packs_whose_token_verifies(tmp_path):
    lines = _data_file(tmp_path, 50).read_bytes().splitlines()

    assert len(lines) == 50
    bodies = set()
    for line in lines:
        token, body = line.split(b" ", 1)
        assert token.decode() == _kpn_rule(body, SECRET)
        pack = json.loads(body)
        assert len(pack) == 6
        assert pack[0]["bn"].startswith("urn:dev:DEVEUI:")
        assert all("v" in record or "vs" in record for record in pack)
        assert MARKER_RE.search(body)
        bodies.add(body)
    assert len(bodies) == 50


def test_a_token_signed_with_another_secret_does_not_verify(tmp_path):
    token, body = _data_file(tmp_path, 1).read_bytes().splitlines()[0].split(b" ", 1)

    assert kpn_token_valid(body=body, secret=SECRET, token=token.decode())
    assert not kpn_token_valid(body=body, secret=SECRET + "x", token=token.decode())


class _Recorder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: list[tuple[str, bytes, str]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body, self.headers.get("Things-Message-Token", "")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (.ci/run installs it)")
def test_the_wrk_script_sends_each_pre_signed_body_once_with_its_token(tmp_path):
    data = _data_file(tmp_path, 20_000)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = dict(os.environ, BENCH_DATA=str(data), BENCH_PATH="/ingest/x/", BENCH_THREADS="2", BENCH_RATE="0")
        done = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c2",
                "-d1s",
                "-s",
                str(ROOT / "bench" / "ingest.lua"),
                f"http://127.0.0.1:{server.server_port}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        server.shutdown()
        server.server_close()

    result = json.loads(
        next(line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")).split(" ", 1)[1]
    )
    received = list(_Recorder.received)
    assert received
    assert result["wrapped"] == 0
    assert {path for path, _body, _token in received} == {"/ingest/x/"}
    assert all(token == _kpn_rule(body, SECRET) for _path, body, token in received)
    assert len({body for _path, body, _token in received}) == len(received)


def test_results_table_renders_every_row_as_markdown_with_unmet_targets_marked():
    report = Report()
    report.add("1 ingest", "best accepted msgs/s", "1,234/s", "2,000/s", "0.62", "≥ 1,000/s", True)
    report.add("4 fan-out", "last receipt | p99", "1,200 ms", "", "", "p99 ≤ 1 s", False)
    report.note("a note")

    table = results_table(report.rows).splitlines()
    document = results_document(report, cores=2, date="2026-01-01 00:00 UTC", duration_s=300, load_before=0.5)

    assert table[0] == "| Scenario | Measure | Portal | Baseline (same run) | Ratio | Target | Met |"
    assert table[1] == "|---|---|---|---|---|---|---|"
    assert table[2] == "| 1 ingest | best accepted msgs/s | 1,234/s | 2,000/s | 0.62 | ≥ 1,000/s | yes |"
    assert table[3] == "| 4 fan-out | last receipt \\| p99 | 1,200 ms |  |  | p99 ≤ 1 s | **no** |"
    assert "on 2 cores" in document
    assert "2026-01-01 00:00 UTC" in document
    assert "- a note" in document


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_sink_records_receipts_checks_tokens_and_holds_hanging_paths(tmp_path):
    tls = bench_tls_create(directory=tmp_path / "tls")
    port, control_port = free_port(), free_port()
    procs = ProcessSet(tmp_path)
    argv = [sys.executable, "-m", "bench.sink", "--port", str(port), "--control-port", str(control_port)]
    procs.start("sink", [*argv, "--cert", str(tls.cert_pem), "--key", str(tls.key_pem)], env=dict(os.environ), cwd=ROOT)
    control = SinkControl(f"http://127.0.0.1:{control_port}")
    try:
        for _ in range(100):
            try:
                control.stats()
                break
            except httpx.HTTPError:
                threading.Event().wait(0.1)
        control.configure(secrets={"/d/a": SECRET}, hang=["/d/hang"])
        token, body = _data_file(tmp_path, 1).read_bytes().splitlines()[0].split(b" ", 1)
        context = ssl.create_default_context(cafile=str(tls.ca_pem))
        with httpx.Client(verify=context, timeout=10.0) as client:
            good = client.post(
                f"https://127.0.0.1:{port}/d/a", content=body, headers={"Things-Message-Token": token.decode()}
            )
            bad = client.post(f"https://127.0.0.1:{port}/d/a", content=body, headers={"Things-Message-Token": "0" * 64})
            with pytest.raises(httpx.ReadTimeout):
                client.post(f"https://127.0.0.1:{port}/d/hang", content=body, timeout=0.5)
        records = control.new_records()
        stats = control.stats()
    finally:
        control.close()
        procs.stop_all()

    assert (good.status_code, bad.status_code) == (200, 401)
    mark = MARKER_RE.search(body).group().decode()
    assert [(path, found, status) for _t, path, found, status in records] == [
        ("/d/a", mark, 200),
        ("/d/a", mark, 401),
        ("/d/hang", mark, 0),
    ]
    assert stats["hung_total"] == 1
    assert stats["connections_total"] == 1  # all three on one kept-alive connection


def _in_group(pid: int, pgid: int) -> bool:
    """pid is a live (not zombie) member of process group pgid; a reused pid elsewhere does not count."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and int(fields[2]) == pgid


def test_stopping_the_process_set_ends_the_childs_whole_process_group(tmp_path):
    procs = ProcessSet(tmp_path)
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); print('up', flush=True); time.sleep(60)"
    child = procs.start("parent", [sys.executable, "-c", script], env=dict(os.environ), cwd=tmp_path)
    for _ in range(100):
        if len(procs.group_pids("parent")) == 2:
            break
        threading.Event().wait(0.05)
    pids = procs.group_pids("parent")

    procs.stop_all()

    assert len(pids) == 2
    assert not child.alive()
    # SIGKILL is delivered at once but a process takes a moment to go: allow a few seconds.
    for _ in range(100):
        if not any(_in_group(pid, child.pid) for pid in pids):
            break
        threading.Event().wait(0.05)
    assert not any(_in_group(pid, child.pid) for pid in pids)
