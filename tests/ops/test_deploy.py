"""deploy/: the production settings pass `check --deploy`; the units, image and compose file hold together.

No container engine runs here, so the Dockerfile and compose file are checked by reading
them: every file they copy or name exists, the image runs as a user, the services wait
for what they need, and the commands are the portal's real ones.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def production_env(tmp_path: Path) -> dict[str, str]:
    """deploy/production.env.example as an operator fills it in: fresh secrets for each CHANGE-ME."""
    values = {}
    for line in (DEPLOY / "production.env.example").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        values[name] = value
    values["SECRET_KEY"] = secrets.token_urlsafe(50)
    values["FIELD_ENCRYPTION_KEYS"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    values["METRICS_TOKEN"] = secrets.token_urlsafe(32)
    values = {name: value.replace("CHANGE-ME", "filled-in") for name, value in values.items()}
    # Local paths instead of the server's /var/lib/portal.
    values["PORTAL_VAR_DIR"] = str(tmp_path / "var")
    values["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "var" / "prometheus")
    return values


def run_check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_the_production_settings(tmp_path):
    result = run_check_deploy(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_would_catch_a_production_setting_left_out(tmp_path):
    env = production_env(tmp_path)
    env["SECURE_SSL_REDIRECT"] = "false"
    result = run_check_deploy(env)
    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


def test_the_log_level_may_be_given_in_lower_case_as_gunicorn_takes_it(tmp_path):
    env = production_env(tmp_path)
    env["LOG_LEVEL"] = "warning"
    result = run_check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_of_the_example_is_one_the_portal_or_gunicorn_reads():
    names = [
        line.partition("=")[0]
        for line in (DEPLOY / "production.env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    readers = [ROOT / "portal" / "settings.py", ROOT / "portal" / "metrics.py", DEPLOY / "gunicorn.conf.py"]
    code = "\n".join(p.read_text() for p in readers)
    unread = [n for n in names if f'"{n}"' not in code and n != "PROMETHEUS_MULTIPROC_DIR"]
    assert unread == []
    assert len(names) == len(set(names))


# --- systemd ------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_units_verify_clean(tmp_path):
    # The units name /opt/portal; point them at this checkout so their commands exist.
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/portal", str(ROOT))
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(units) == 4
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


def test_systemd_units_run_the_portals_commands_as_an_unprivileged_user():
    units = {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}
    assert "gunicorn -c /opt/portal/deploy/gunicorn.conf.py" in units["portal-web.service"]
    assert "celery -A portal worker" in units["portal-worker@.service"]
    assert "celery -A portal beat" in units["portal-beat.service"]
    assert "manage.py serve_metrics" in units["portal-metrics.service"]
    for name, text in units.items():
        assert "User=portal" in text, name
        assert "EnvironmentFile=/etc/portal/portal.env" in text, name
        assert "Restart=on-failure" in text, name


# --- the image ------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_the_image_copies_only_files_that_exist_and_the_ignore_file_lets_through():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = [rest for keyword, rest in dockerfile_instructions() if keyword == "COPY" and "--from" not in rest]
    assert copies
    for rest in copies:
        *sources, _ = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), source


def test_the_image_is_pinned_runs_as_a_user_and_serves_with_gunicorn():
    instructions = dockerfile_instructions()
    bases = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert bases and all(":" in b and not b.endswith(":latest") for b in bases)
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert [k for k, _ in instructions].index("USER") > [k for k, _ in instructions].index("RUN")
    (cmd,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert cmd == '["gunicorn", "-c", "deploy/gunicorn.conf.py"]'
    assert any(keyword == "HEALTHCHECK" and "/healthz" in rest for keyword, rest in instructions)
    assert not any(keyword == "ADD" for keyword, _ in instructions)
    assert (ROOT / "requirements" / "base.txt").exists()


# --- compose ----------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_the_five_services_and_each_waits_for_what_it_needs():
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("web", "worker", "beat"):
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["redis"]["condition"] == "service_healthy"
        assert needs["migrate"]["condition"] == "service_completed_successfully"
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
        assert "image" in service or "build" in service, name
        if "healthcheck" in services[name]:
            assert services[name]["healthcheck"].get("disable") or services[name]["healthcheck"]["test"]


def test_compose_runs_the_portals_commands_with_one_shared_state_volume():
    doc = compose()
    services = doc["services"]
    assert services["web"]["command"] == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "portal", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "portal", "beat"]
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    for name in ("web", "worker", "beat", "migrate"):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / ".." / service["build"]["dockerfile"]).resolve().exists()
        assert service["env_file"] == ["production.env"]
        assert "portal-state:/var/lib/portal" in service["volumes"]
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/var/lib/portal/")
    assert set(doc["volumes"]) == {"postgres-data", "portal-state"}
    # Published on the host's loopback only: the TLS proxy is the way in.
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
