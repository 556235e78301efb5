"""Outages degrade, they don't fail: with real services taken away.

- Redis (broker and cache) stops: capture, events and a rep's accept still answer and commit; the
  rate limit is off while the cache is away (it fails open), the work waits for the reconciler.
- PostgreSQL does not answer: a real server (gunicorn) answers 503 with Retry-After — JSON for the
  API, a page for people — and /healthz says 503.
- PostgreSQL is stuck (a lock held on leads_lead): requests give up after DATABASE_LOCK_TIMEOUT with
  the same 503 instead of hanging, /healthz says 503, and all is well once the lock is gone.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from django.db import OperationalError, connection
from django.test import Client, RequestFactory
from rest_framework.views import APIView

import leadportal.celery
from leadportal import middleware
from leadportal.settings.base import database
from leads.api import throttling
from leads.models import Activity, ActivityType, Lead, Stage
from leads.tests.factories import LeadFactory
from leads.tokens import token_create
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team, mql
from tests.worker import ROOT, free_port, new_queue, producer, redis_server, wait_for

needs_redis_server = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server on PATH")
HTMX = {"HTTP_HX_REQUEST": "true"}
CAPTURE = {"email": "ada@outage.example", "first_name": "Ada", "company": "Outage Ltd"}
EVENTS = [
    {"email": "ada@outage.example", "type": "demo_request", "external_id": "o-1", "source": "web"},
    {"email": "ada@outage.example", "type": "page_view", "properties": {"url": "/pricing"}},
]


# --- Redis away -----------------------------------------------------------------------------------------


@contextmanager
def redis_as_broker_and_cache(settings, monkeypatch, rate: str = "1000/minute"):
    """A private Redis as this process's cache and broker, with the API throttle on (the test
    settings turn it off) at `rate`."""
    monkeypatch.setattr(throttling, "_cache_down_until", 0.0)
    monkeypatch.setattr(leadportal.celery, "_broker_down_until", 0.0)
    monkeypatch.setattr(APIView, "throttle_classes", [throttling.FixedWindowUserRateThrottle])
    monkeypatch.setattr(throttling.FixedWindowUserRateThrottle, "rate", rate, raising=False)
    with redis_server() as server:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
            }
        }
        queue = new_queue()
        with producer(queue, broker_url=server.url):
            yield server, queue


@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_capture_and_events_are_accepted_and_committed(api, integration, settings, monkeypatch):
    client = api(integration)
    with redis_as_broker_and_cache(settings, monkeypatch, rate="2/minute") as (server, _):
        # Given the throttle counts in this Redis: the third call in the minute is refused.
        assert client.post("/api/v1/leads/", {"email": "one@outage.example"}).status_code == 201
        assert client.post("/api/v1/leads/", {"email": "two@outage.example"}).status_code == 201
        assert client.post("/api/v1/leads/", {"email": "three@outage.example"}).status_code == 429
        assert not Lead.objects.filter(email="three@outage.example").exists()
        (key,) = redis.Redis.from_url(server.url).keys("*throttle_user_*")
        assert redis.Redis.from_url(server.url).get(key) == b"3"
        # When Redis stops (broker and cache alike)
        server.stop()

        started = time.monotonic()
        captured = client.post("/api/v1/leads/", CAPTURE)
        events = client.post("/api/v1/events/", EVENTS, format="json")
        elapsed = time.monotonic() - started

    # Then both are accepted (the limit is off while the cache is away), committed, and fast enough.
    assert captured.status_code == 201, captured.content
    assert events.status_code == 201, events.content
    assert elapsed < 10
    lead = Lead.objects.get(email="ada@outage.example")
    assert captured.json()["id"] == lead.pk
    assert list(Activity.objects.filter(lead=lead).order_by("pk").values_list("type", flat=True)) == [
        ActivityType.CAPTURED,
        ActivityType.DEMO_REQUEST,
        ActivityType.PAGE_VIEW,
    ]


@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_with_redis_down_a_rep_accepts_a_lead_on_the_dashboard(settings, monkeypatch):
    team, _ = make_team(size=2)
    make_rule("Everyone", team=team, sla_minutes=30)
    lead = mql(_run_now)  # routed while tasks still run in-process
    assignment = Assignment.objects.get(lead=lead)
    assignee = assignment.user
    client = Client()
    client.force_login(assignee)

    with redis_as_broker_and_cache(settings, monkeypatch) as (server, _):
        server.stop()
        response = client.post(f"/app/leads/{lead.pk}/accept/", **HTMX)

    assert response.status_code == 200
    assert b"Accepted: the lead is yours (SAL)." in response.content
    lead.refresh_from_db()
    assignment.refresh_from_db()
    assert (lead.stage, lead.owner, assignment.status) == (Stage.SAL, assignee, "accepted")


@contextmanager
def _run_now(execute: bool = True):
    """Stands in for django_capture_on_commit_callbacks in a transactional test: commits run them."""
    yield []


# --- PostgreSQL away or stuck: a real server --------------------------------------------------------------


class Server:
    """gunicorn serving the portal in a subprocess, asked over HTTP."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.log = Path(ROOT / "var" / f"outage-gunicorn-{self.port}.log")
        self.log.parent.mkdir(exist_ok=True)
        # No broker: tasks run in the server's process, nothing lands on a shared Redis's queues.
        base_env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
        self.env = {
            **base_env,
            "DJANGO_SETTINGS_MODULE": "leadportal.settings.local",
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            **env,
        }

    def __enter__(self) -> Server:
        with self.log.open("w") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "leadportal.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                    "--timeout",
                    "30",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        up = wait_for(self._answers, timeout=20, interval=0.1)
        assert up, self.log.read_text()[-3000:]
        return self

    def __exit__(self, *exc) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
        self.log.unlink(missing_ok=True)

    def _answers(self) -> bool:
        try:
            self.request("GET", "/accounts/login/", timeout=1)
            return True
        except OSError:
            return False

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 20):
        """(status, headers, body bytes, seconds taken)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Host": "127.0.0.1", **(headers or {})}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read(), time.monotonic() - started
        finally:
            conn.close()


def assert_api_503(status, headers, body) -> None:
    assert status == 503, body
    assert headers["Retry-After"] == str(middleware.RETRY_AFTER_S)
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"detail": middleware.DETAIL, "code": "database_unavailable"}


def assert_page_503(status, headers, body) -> None:
    assert status == 503, body
    assert headers["Retry-After"] == str(middleware.RETRY_AFTER_S)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"LeadPortal is back in a moment" in body
    assert f"please try again in {middleware.RETRY_AFTER_S} seconds".encode() in body


def test_with_postgresql_down_api_pages_and_healthz_answer_503():
    closed = free_port()  # nothing listens there
    with Server({"DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed}/leadportal"}) as server:
        api = server.request("POST", "/api/v1/leads/", CAPTURE, {"Authorization": "Token " + "0" * 40})
        page = server.request("GET", "/app/", headers={"Cookie": "sessionid=" + "x" * 32})
        health = server.request("GET", "/healthz")

    assert_api_503(*api[:3])
    assert_page_503(*page[:3])
    status, _, body, _ = health
    assert status == 503
    assert json.loads(body) == {"status": "unavailable", "database": "error: OperationalError", "broker": "eager"}
    assert max(api[3], page[3], health[3]) < 10


@contextmanager
def lock_table(table: str):
    """Another connection holds ACCESS EXCLUSIVE on `table` until the block ends."""
    db = connection.settings_dict
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], password=db["PASSWORD"] or None
    ) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            locker.rollback()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_stuck_database_answers_503_within_the_lock_timeout_and_healthz_says_so(integration, rep_a, settings):
    db = connection.settings_dict
    token = token_create(user=integration, name="outage")[1]
    LeadFactory(email="kept@outage.example", owner=rep_a, stage=Stage.SAL)
    web = Client()
    web.force_login(rep_a)
    session = web.cookies["sessionid"].value
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DATABASE_LOCK_TIMEOUT": "1000",
        "DATABASE_CONN_MAX_AGE": "0",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the session signed here is valid there
    }
    auth = {"Authorization": f"Token {token}"}
    with Server(env) as server:
        assert server.request("GET", "/healthz")[0] == 200
        with lock_table(Lead._meta.db_table):
            api = server.request("POST", "/api/v1/leads/", CAPTURE, auth)
            page = server.request("GET", "/app/", headers={"Cookie": f"sessionid={session}"})
            health = server.request("GET", "/healthz")
        after = server.request("POST", "/api/v1/leads/", CAPTURE, auth)
        health_after = server.request("GET", "/healthz")

    # While the lock is held: 503s, each after about the lock timeout (1 s), none hanging.
    assert_api_503(*api[:3])
    assert 0.9 < api[3] < 5
    assert_page_503(*page[:3])
    assert 0.9 < page[3] < 5
    assert health[0] == 503
    assert json.loads(health[2])["database"] == "error: OperationalError"
    assert health[3] < 5
    # Nothing was written while it was stuck; afterwards the same request goes through.
    assert after[0] == 201, after[2]
    assert Lead.objects.filter(email="ada@outage.example").count() == 1
    assert health_after[0] == 200
    assert json.loads(health_after[2]) == {"status": "ok", "database": "ok", "broker": "eager"}


# --- the bounds themselves --------------------------------------------------------------------------------


def test_database_settings_bound_statements_and_locks(monkeypatch):
    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT", "1234")
    monkeypatch.setenv("DATABASE_LOCK_TIMEOUT", "567")
    monkeypatch.delenv("DATABASE_POOL_MAX_SIZE", raising=False)
    db = database("postgres://app@db.example:5432/leadportal")
    assert db["OPTIONS"] == {"options": "-c statement_timeout=1234 -c lock_timeout=567", "connect_timeout": 5}
    assert db["CONN_MAX_AGE"] == 60
    assert database("sqlite:////tmp/x.sqlite3").get("OPTIONS", {}) == {}  # SQLite has no such settings


def test_database_pool_switch(monkeypatch):
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "4")
    monkeypatch.setenv("DATABASE_POOL_TIMEOUT", "2.5")
    db = database("postgres://app@db.example:5432/leadportal")
    assert db["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 2.5}
    assert (db["CONN_MAX_AGE"], db["CONN_HEALTH_CHECKS"]) == (0, False)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_connection_runs_with_the_configured_timeouts():
    options = connection.settings_dict["OPTIONS"]["options"]
    with connection.cursor() as cursor:
        # pg_settings gives both in milliseconds.
        cursor.execute(
            "SELECT (SELECT setting FROM pg_settings WHERE name = 'lock_timeout'),"
            " (SELECT setting FROM pg_settings WHERE name = 'statement_timeout')"
        )
        lock_ms, statement_ms = cursor.fetchone()
    assert f"-c statement_timeout={statement_ms} -c lock_timeout={lock_ms}" in options


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_pooled_process_serves_queries_with_the_timeouts():
    db = connection.settings_dict
    script = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute(\"SELECT current_setting('statement_timeout'), current_setting('lock_timeout')\")\n"
        "    print(*c.fetchone(), connection.pool.max_size, connection.pool.__class__.__name__)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leadportal.settings.local",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DATABASE_POOL_MAX_SIZE": "3",
        "DATABASE_STATEMENT_TIMEOUT": "600000",
        "DATABASE_LOCK_TIMEOUT": "2000",
    }
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split() == ["10min", "2s", "3", "ConnectionPool"]


# --- a database error outside any view (e.g. saving the session) ----------------------------------------------


def test_handler500_turns_a_database_error_into_503_and_leaves_other_errors_500():
    request = RequestFactory().get("/app/")
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        unavailable = middleware.server_error(request)
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        bug = middleware.server_error(request)

    assert_page_503(unavailable.status_code, dict(unavailable.items()), unavailable.content)
    assert bug.status_code == 500
    assert "Retry-After" not in bug
