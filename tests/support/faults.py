"""Fault-injection helpers: throwaway servers to break, a canary, a tripwire, a web server.

- `ThrowawayRedis`: a `redis-server` of its own on a free loopback port (never the
  shared one), to FLUSHALL and restart.
- `ThrowawayPostgres`: a PostgreSQL cluster of its own (initdb in a temporary
  directory, as the `postgres` OS user when run as root) on a free loopback port, to
  stop and start for real.
- `WebServer`: the portal served by a real gunicorn (deploy/gunicorn.conf.py) on a free
  loopback port, against any database.
- `Canary`: a TCP listener on 127.0.0.1 and ::1 that records every connection made to it
  (a request the URL guard should have stopped).
- `connect_tripwire()`: records every `socket.connect` of this process (a Python audit
  hook) and refuses, before any packet leaves, each one to an address outside this
  machine, so a broken URL guard is caught without sending traffic to a private or
  metadata address.
- `figures`: a place for fault tests to put the numbers they measured; the reliability
  conftest prints them at the end of the run (and `record_property` keeps them in JUnit).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.1) -> float:
    """Poll until `predicate()` is true; returns the seconds it took (AssertionError on timeout)."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _kill_group(process: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


# -- figures ------------------------------------------------------------------------------

FIGURES: list[tuple[str, dict[str, object]]] = []


def figures_report(test: str, **values: object) -> None:
    """Keep the figures a fault test measured; printed in the run's summary."""
    FIGURES.append((test, values))


# -- Redis ---------------------------------------------------------------------------------


class ThrowawayRedis:
    """A redis-server of this test's own on a free loopback port; nothing kept on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def start(self) -> ThrowawayRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            import pytest

            pytest.skip("redis-server is not installed here: no throwaway Redis to break")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.directory), "--logfile", str(self.log_path), "--daemonize", "no"]
        self.process = subprocess.Popen(args, start_new_session=True, stdout=subprocess.DEVNULL)
        wait_until(self._answers, timeout=20, what="the throwaway redis-server")
        return self

    def _answers(self) -> bool:
        try:
            client = self.client()
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False

    def flushall(self) -> None:
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        """Gone at once, as a crash would leave it (SIGKILL): what it held is lost."""
        _kill_group(self.process)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


# -- PostgreSQL ----------------------------------------------------------------------------


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if found:
        return found[0].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        import pytest

        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed: no throwaway cluster")
    return Path(initdb).resolve().parent


class ThrowawayPostgres:
    """A PostgreSQL cluster of this test's own, really stopped and started.

    As root it runs as the `postgres` OS user (PostgreSQL refuses root), in a temporary
    directory that user owns; it listens on 127.0.0.1 only, on a free port, trust auth.
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.data = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        command = list(args)
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, timeout=timeout, capture_output=True, text=True)

    def init(self) -> ThrowawayPostgres:
        if self._as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c synchronous_commit=off -c full_page_writes=off"
        pg_ctl = str(self.bin / "pg_ctl")
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


# -- a real web server -----------------------------------------------------------------------


class WebServer:
    """The portal under gunicorn on a free loopback port; its log in `log_path`."""

    def __init__(self, *, directory: Path, env: dict[str, str], workers: int = 2) -> None:
        self.port = free_port()
        self.directory = directory
        self.log_path = directory / "gunicorn.log"
        self.env = {
            **env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "PYTHONUNBUFFERED": "1",
        }
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> WebServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as answer:
                    return answer.status == 200
            except (OSError, urllib.error.URLError):
                return False

        wait_until(up, timeout=timeout, what="gunicorn to answer /healthz", interval=0.2)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        _kill_group(self.process, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            _kill_group(self.process)
            self.process.wait(5)
        self.process = None


def portal_env(*, database_url: str, broker_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a portal process (web or worker) of these tests."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "PORTAL_VAR_DIR": str(var_dir),
            "LOG_FORMAT": "text",
            "EMAIL_URL": "consolemail://",
        }
    )
    env.update(extra)
    return env


# -- canary and tripwire ----------------------------------------------------------------------


class Canary:
    """Listens on 127.0.0.1 and ::1 (one port); every connection it accepts is recorded."""

    def __init__(self) -> None:
        self.port = 0
        self.connections: list[str] = []
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Canary:
        for _ in range(20):
            port = free_port()
            try:
                v4 = socket.create_server(("127.0.0.1", port))
            except OSError:
                continue
            try:
                v6 = socket.create_server(("::1", port), family=socket.AF_INET6)
            except OSError:
                v4.close()
                continue
            self.port, self._sockets = port, [v4, v6]
            break
        else:
            raise RuntimeError("no free port for the canary on both 127.0.0.1 and ::1")
        for listener in self._sockets:
            listener.settimeout(0.1)
            thread = threading.Thread(target=self._accept, args=(listener,), daemon=True, name="canary")
            thread.start()
            self._threads.append(thread)
        return self

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(str(peer[0]))
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        for listener in self._sockets:
            listener.close()


def is_this_machine(host: str) -> bool:
    """Loopback (any form) or the unspecified address, which Linux connects to loopback."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


@dataclass
class Tripwire:
    connects: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


_tripwires: list[Tripwire] = []
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    if event != "socket.connect" or not _tripwires:
        return
    address = args[1]
    if not isinstance(address, tuple):
        return  # a unix socket
    host = str(address[0])
    for wire in list(_tripwires):
        wire.connects.append(host)
    if not is_this_machine(host):
        for wire in list(_tripwires):
            wire.blocked.append(host)
        raise ConnectionRefusedError(f"tripwire: a test tried to connect to {host}; refused before sending")


@contextlib.contextmanager
def connect_tripwire():
    """Record every socket.connect of this process; refuse any to an address not on this machine."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # audit hooks cannot be removed: it is disarmed when no tripwire is active
        _hook_installed = True
    wire = Tripwire()
    _tripwires.append(wire)
    try:
        yield wire
    finally:
        _tripwires.remove(wire)


_summary_printed = False


def figures_terminal_summary(terminalreporter) -> None:
    """Print the fault tests' figures once, whichever conftest calls it (see tests/reliability/conftest.py)."""
    global _summary_printed
    if _summary_printed or not FIGURES:
        return
    _summary_printed = True
    terminalreporter.section("fault and security figures")
    for test, values in FIGURES:
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        terminalreporter.write_line(f"{test}: {shown}")


# -- TLS -------------------------------------------------------------------------------------


def rsa_server_cert(pki, label: str = "rsa", names: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")):
    """A server certificate with an RSA key (for RSA key exchange suites), signed by the test CA."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from tests.support.tls import ServerCert, _san

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(pki.ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(pki.ca_key, hashes.SHA256())
    )
    cert_path, key_path = pki.directory / f"{label}.pem", pki.directory / f"{label}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ServerCert(cert_path=cert_path, key_path=key_path, subject_cn=names[0])


def tls_negotiated(host: str, port: int) -> tuple[str, str]:
    """(version, cipher) a client that accepts anything gets from a server: what it really offers."""
    import ssl
    import warnings

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection((host, port), timeout=10) as sock, ctx.wrap_socket(sock) as tls:
        return tls.version() or "", (tls.cipher() or ("",))[0]
