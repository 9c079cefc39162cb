"""Shared fixtures: named people in two tenants, and API clients acting as them.

acme is the tenant under test: alice is its admin, bob an editor, vera a viewer.
charlie is the outsider: admin of globex, member of nothing in acme. Every tenant-owned
endpoint gets its cross-tenant test by asking as charlie.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest
from rest_framework.test import APIClient

from portal.models import Membership, Role, Tenant, User
from portal.services import api_key_create

# Prometheus files of this session (and of the workers and servers it starts) in a
# directory of their own, set before anything imports prometheus-client (portal.metrics).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ["PORTAL_METRICS_ROOT"] = tempfile.mkdtemp(prefix="portal-metrics-")
atexit.register(shutil.rmtree, os.environ["PORTAL_METRICS_ROOT"], True)

PASSWORD = "Correct-Horse-Battery-9"

# Shared helpers of tests/support: test PKI, HTTPS sink, Celery worker subprocess.
pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture
def acme(db) -> Tenant:
    return Tenant.objects.create(slug="acme", name="Acme Sensors")


@pytest.fixture
def globex(db) -> Tenant:
    return Tenant.objects.create(slug="globex", name="Globex Logistics")


def _member(tenant: Tenant, email: str, role: str) -> User:
    user = User.objects.create_user(email=email, password=PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, role=role)
    return user


@pytest.fixture
def alice(acme) -> User:
    return _member(acme, "alice@acme.test", Role.ADMIN)


@pytest.fixture
def bob(acme) -> User:
    return _member(acme, "bob@acme.test", Role.EDITOR)


@pytest.fixture
def vera(acme) -> User:
    return _member(acme, "vera@acme.test", Role.VIEWER)


@pytest.fixture
def charlie(globex) -> User:
    return _member(globex, "charlie@globex.test", Role.ADMIN)


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_superuser(email="staff@platform.test", password=PASSWORD)


def _client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def api_as():
    """api_as(user) → an APIClient logged in as that user (session auth)."""
    return _client_for


@pytest.fixture
def key_client():
    """key_client(tenant, role='editor') → an APIClient sending a new API key of that tenant."""

    def make(tenant: Tenant, role: str = Role.EDITOR) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(tenant=tenant, role=role).key}")
        return client

    return make
