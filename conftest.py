"""Shared fixtures: one persona per role and tenant, API clients, and skips for missing services."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from leads.models import Role
from leads.tests.factories import PartnerOrganizationFactory, UserFactory
from leads.tokens import token_create
from tests.tiers import SERIAL, SLOW

# Browser tests drive Debian's Chromium (Playwright cannot download its own browsers here).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://… (as .ci/run does)")
    skip_redis = pytest.mark.skip(reason="needs a Redis broker: set REDIS_URL=redis://… (as .ci/run does)")
    skip_rabbitmq = pytest.mark.skip(reason="needs RabbitMQ: set RABBITMQ_URL=amqp://… (as .ci/run does)")
    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)
        if item.nodeid.startswith(SLOW + SERIAL) or "browser" in item.keywords:
            item.add_marker(pytest.mark.slow)
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not os.environ.get("REDIS_URL"):
            item.add_marker(skip_redis)
        if "rabbitmq" in item.keywords and not os.environ.get("RABBITMQ_URL"):
            item.add_marker(skip_rabbitmq)
        if "browser" in item.keywords and not os.path.exists(CHROMIUM):
            item.add_marker(pytest.mark.skip(reason=f"needs Chromium at {CHROMIUM}: apt-get install -y chromium"))


@pytest.fixture(autouse=True)
def _no_outage_left_over(monkeypatch):
    """A test that made the broker or the cache fail leaves a pause behind (leadportal.celery.send and
    the API throttle skip them for a few seconds): the next test starts without it."""
    import leadportal.celery
    from leads.api import throttling

    monkeypatch.setattr(leadportal.celery, "_broker_down_until", 0.0)
    monkeypatch.setattr(throttling, "_cache_down_until", 0.0)


@pytest.fixture(autouse=True)
def _forget_broker_failures():
    """A broker failure in one test (a stopped Redis) must not pause the next test's sends."""
    from leadportal.celery import reset_broker_pause

    reset_broker_pause()
    yield
    reset_broker_pause()


@pytest.fixture(autouse=True)
def _process_caches_cleared():
    """Every test starts with empty per-process caches (leads.caches: a rule set, an engine model,
    compiled SQL or a snapshot kept by an earlier test's process would otherwise be reused)."""
    from leads import caches

    caches.clear()
    yield
    caches.clear()


@pytest.fixture
def sql_twins(monkeypatch):
    """`sql_twins(module, act, look)` for the contract tests of an app's `sql.py`: runs `act()` once
    with the module's PostgreSQL statements and once with their portable twins (module.postgresql
    patched), each in a savepoint rolled back afterwards, and returns both runs as
    (act's result, look() before the rollback, the SQL sent but savepoints)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    def run(module, act, look=lambda: None):
        real, runs = module.postgresql, []
        for pg in (True, False):
            monkeypatch.setattr(module, "postgresql", lambda pg=pg: pg)
            with transaction.atomic(), CaptureQueriesContext(connection) as queries:
                result = act()
                sent = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
                runs.append((result, look(), sent))
                transaction.set_rollback(True)
        monkeypatch.setattr(module, "postgresql", real)
        return runs

    return run


@pytest.fixture
def settled():
    """`settled()`: wait until the changes feed (leads.changes) serves every lead change committed so
    far. On PostgreSQL it serves only changes of transactions older than the oldest one running, and a
    writing transaction anywhere on the server — another database's too, xids are the cluster's —
    holds that back until it ends; on a shared server that can be a while."""
    import time

    from django.db import connection

    from leads import sql
    from leads.models import LeadChange

    def wait(timeout: float = 90.0) -> None:
        if not sql.postgresql():
            return
        newest = LeadChange.objects.order_by("-change_xid").values_list("change_xid", flat=True).first() or 0
        deadline = time.monotonic() + timeout
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
                if cursor.fetchone()[0] > newest or time.monotonic() > deadline:
                    return
                time.sleep(0.05)

    return wait


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture
def marketing(db):
    return UserFactory(username="maria", role=Role.MARKETING, is_staff=True)


@pytest.fixture
def sales_manager(db):
    return UserFactory(username="sam", role=Role.SALES_MANAGER, is_staff=True)


@pytest.fixture
def rep_a(db):
    return UserFactory(username="rita", role=Role.SALES_REP)


@pytest.fixture
def rep_b(db):
    return UserFactory(username="rob", role=Role.SALES_REP)


@pytest.fixture
def partner_org_a(db):
    return PartnerOrganizationFactory(name="Alpine Resellers")


@pytest.fixture
def partner_org_b(db):
    return PartnerOrganizationFactory(name="Nordic Channel")


@pytest.fixture
def partner_a(partner_org_a):
    return UserFactory(username="pia", role=Role.PARTNER, partner_organization=partner_org_a)


@pytest.fixture
def partner_b(partner_org_b):
    return UserFactory(username="paul", role=Role.PARTNER, partner_organization=partner_org_b)


@pytest.fixture
def integration(db):
    return UserFactory(username="webforms", role=Role.INTEGRATION)


@pytest.fixture
def api():
    """`api(user)` → an APIClient with a new token of that user, with all the scopes its role allows
    (`api(user, scopes=["read"])` fewer; `api(None)`: anonymous)."""

    def make(user=None, scopes=None) -> APIClient:
        client = APIClient()
        if user is not None:
            _token, key = token_create(user=user, name="test", scopes=scopes)
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make
