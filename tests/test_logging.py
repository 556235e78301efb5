"""Structured logs and Sentry (leadportal/logs.py, leadportal/sentry.py): every line of a request names
its request_id and user_id, the answer echoes the id, a task's lines name task_id, task_name and the
lead; production writes JSON to stdout and reports to Sentry only with a DSN, without personal data.
Lines are read as the real formatter renders them (JSON), from a handler on the root logger."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import structlog
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import path

from leadportal import logs
from leads.models import Stage
from leads.tests.factories import LeadFactory
from routing.tasks import route_lead_task
from scoring.tasks import rescore_leads_task
from scoring.tests.factories import make_model

ROOT = Path(__file__).resolve().parent.parent
STRONG = "k3Y-for-the-logging-tests-only-" + "a1b2c3d4e5f6g7h8i9j0" * 2


@pytest.fixture
def lines():
    """The log lines written while the test runs, each as the dict its JSON line holds."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs_formatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    structlog.contextvars.clear_contextvars()

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    read.set_level = root.setLevel
    yield read
    root.removeHandler(handler)
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()


def logs_formatter() -> logging.Formatter:
    spec = dict(logs.formatter("json"))
    factory = spec.pop("()")
    return factory(**spec)


def only(found: list[dict], **match) -> dict:
    hits = [line for line in found if all(line.get(key) == value for key, value in match.items())]
    assert len(hits) == 1, (match, found)
    return hits[0]


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


# --- requests -------------------------------------------------------------------------------------


def test_a_signed_in_request_line_names_its_request_id_and_user_and_the_answer_echoes_the_id(rep_a, lines):
    client = Client()
    client.force_login(rep_a)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    line = only(lines(), logger="django.request")
    assert line["event"] == "Not Found: /no-such-page/"
    assert line["level"] == "warning"
    assert line["user_id"] == rep_a.pk
    assert is_uuid(line["request_id"])
    assert response.headers["X-Request-ID"] == line["request_id"]


def test_a_token_clients_lines_name_the_tokens_user(api, sales_manager, lines):
    response = api(sales_manager).get("/api/v1/leads/999999999/")

    assert response.status_code == 404
    line = only(lines(), logger="django.request")
    assert line["user_id"] == sales_manager.pk
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_at_debug_every_request_has_a_finished_line_without_its_query_string(api, sales_manager, lines):
    lines.set_level(logging.DEBUG)

    response = api(sales_manager).get("/api/v1/leads/?search=lena@example.com")

    assert response.status_code == 200
    found = lines()
    finished = only(found, event="request_finished")
    assert finished["code"] == 200
    assert finished["request"] == "GET /api/v1/leads/"  # no search term (a person) in the log
    assert finished["user_id"] == sales_manager.pk
    assert finished["request_id"] == response.headers["X-Request-ID"]
    assert finished["level"] == "debug"
    assert "lena@example.com" not in json.dumps(found)


def test_at_info_a_successful_request_writes_no_line(api, sales_manager, lines):
    response = api(sales_manager).get("/api/v1/leads/")

    assert response.status_code == 200
    assert [line for line in lines() if line["logger"].startswith(("django", "leadportal"))] == []


def test_an_incoming_request_id_is_kept(lines):
    response = Client().get("/no-such-page/", HTTP_X_REQUEST_ID="lb-7f3a.42:edge")

    assert response.headers["X-Request-ID"] == "lb-7f3a.42:edge"
    assert only(lines(), logger="django.request")["request_id"] == "lb-7f3a.42:edge"


@pytest.mark.parametrize(
    "hostile",
    ["a" * 65, "abc\ndef", "abc\n", "abc def", "id\r\nSet-Cookie: x=1", '{"level":"error"}', "ünïcode", ""],
)
def test_a_hostile_or_empty_request_id_is_replaced(hostile, lines):
    response = Client().get("/no-such-page/", HTTP_X_REQUEST_ID=hostile)

    request_id = response.headers["X-Request-ID"]
    assert is_uuid(request_id)
    assert only(lines(), logger="django.request")["request_id"] == request_id


def test_the_ids_do_not_outlive_the_request(rep_a, lines):
    client = Client()
    client.force_login(rep_a)
    client.get("/no-such-page/")

    logging.getLogger("leadportal.test").warning("between requests")

    line = only(lines(), event="between requests")
    assert "request_id" not in line
    assert "user_id" not in line


def test_request_id_for():
    assert logs.request_id_for("Root-1.2:3+4/5=6_7") == "Root-1.2:3+4/5=6_7"
    assert logs.request_id_for("x" * 64) == "x" * 64
    assert is_uuid(logs.request_id_for("x" * 65))
    assert is_uuid(logs.request_id_for(None))


# --- tasks ----------------------------------------------------------------------------------------


def test_an_eager_task_logs_with_its_task_id_name_and_lead(db, lines):
    lead = LeadFactory()

    result = rescore_leads_task.delay([lead.pk])

    line = only(lines(), logger="celery.app.trace")
    assert line["task_id"] == result.id
    assert line["task_name"] == "scoring.tasks.rescore_leads"
    assert line["lead_id"] == lead.pk


def test_a_task_for_several_leads_names_none_of_them(db, lines):
    first, second = LeadFactory(), LeadFactory()

    result = rescore_leads_task.delay([first.pk, second.pk])

    line = only(lines(), logger="celery.app.trace")
    assert line["task_id"] == result.id
    assert "lead_id" not in line


def test_an_eager_task_keeps_the_callers_ids_and_gives_them_back(db, lines):
    lead = LeadFactory()
    structlog.contextvars.bind_contextvars(request_id="req-1", user_id=7)

    result = rescore_leads_task.delay([lead.pk])

    line = only(lines(), logger="celery.app.trace")
    assert (line["request_id"], line["user_id"], line["task_id"]) == ("req-1", 7, result.id)
    # After the task the caller's lines are the caller's again: no task_id or lead_id left behind.
    assert structlog.contextvars.get_contextvars() == {"request_id": "req-1", "user_id": 7}


@pytest.mark.django_db(transaction=True)  # the task runs after the capture's commit, inside the request
def test_a_task_queued_in_a_capture_carries_the_requests_id(api, integration, lines):
    make_model(activate=True)  # so the capture queues its lead's rescoring

    response = api(integration).post("/api/v1/leads/", {"email": "ada@example.com", "first_name": "Ada"})

    assert response.status_code == 201, response.content
    line = only(lines(), logger="celery.app.trace", task_name="scoring.tasks.rescore_leads")
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["user_id"] == integration.pk
    assert line["lead_id"] == response.json()["id"]
    assert is_uuid(line["task_id"])


def test_the_log_format_must_be_json_or_console():
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT='xml'"):
        logs.logging_settings(fmt="xml", level="INFO")


# --- production: JSON on stdout, Sentry with a DSN only -------------------------------------------

PROBE = """
import json, logging, sys
import django
django.setup()
from django.conf import settings
import structlog
logging.getLogger("leadportal.probe").warning("probe %s", "line", extra={"status_code": 418})
report = {"sentry_imported": "sentry_sdk" in sys.modules}
if report["sentry_imported"]:
    import sentry_sdk
    client = sentry_sdk.get_client()
    options = client.options
    report.update(
        active=client.is_active(),
        integrations=sorted(client.integrations),
        send_default_pii=options["send_default_pii"],
        max_request_body_size=options["max_request_body_size"],
        include_local_variables=options["include_local_variables"],
        traces_sample_rate=options["traces_sample_rate"],
        environment=options["environment"],
        release=options["release"],
        dsn=options["dsn"],
    )
print("REPORT " + json.dumps(report), file=sys.stderr)
"""


def in_production(tmp_path, script: str, **env: str) -> subprocess.CompletedProcess:
    """Runs `script` in a fresh interpreter with the production settings (a strong key, SQLite in
    `tmp_path`, none of this machine's DJANGO_/SENTRY_/LOG_ variables), `env` on top; it must succeed."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "SENTRY_", "LOG_"))}
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "leadportal.settings.production",
            "DJANGO_SECRET_KEY": STRONG,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def probe(tmp_path, **env: str) -> tuple[dict, list[dict]]:
    result = in_production(tmp_path, PROBE, **env)
    report = json.loads(result.stderr.split("REPORT ", 1)[1])
    return report, [json.loads(line) for line in result.stdout.splitlines()]


def test_production_writes_json_lines_to_stdout_and_without_a_dsn_leaves_sentry_alone(tmp_path):
    report, stdout = probe(tmp_path)

    assert report == {"sentry_imported": False}
    line = only(stdout, logger="leadportal.probe")
    assert (line["event"], line["level"], line["status_code"]) == ("probe line", "warning", 418)
    assert line["timestamp"].endswith("Z")


def test_production_with_a_dsn_starts_sentry_with_django_and_celery_and_no_personal_data(tmp_path):
    report, _ = probe(
        tmp_path,
        SENTRY_DSN="http://public@127.0.0.1:9/1",  # nothing listens there; nothing is sent in this test
        SENTRY_ENVIRONMENT="staging",
        SENTRY_RELEASE="1.2.3",
        SENTRY_TRACES_SAMPLE_RATE="0.25",
    )

    assert report["active"] is True
    assert {"django", "celery", "logging"} <= set(report["integrations"])
    assert report["send_default_pii"] is False
    assert report["max_request_body_size"] == "never"
    assert report["include_local_variables"] is False
    assert (report["environment"], report["release"], report["traces_sample_rate"]) == ("staging", "1.2.3", 0.25)
    assert report["dsn"] == "http://public@127.0.0.1:9/1"


def test_production_sentry_defaults_send_no_traces_and_name_the_commit(tmp_path):
    report, _ = probe(tmp_path, SENTRY_DSN="http://public@127.0.0.1:9/1")

    # Without SENTRY_RELEASE the SDK names the checked-out commit (None in an image without .git).
    git = ["git", "rev-parse", "HEAD"]
    commit = subprocess.run(git, cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip() or None  # noqa: S603
    assert (report["environment"], report["release"], report["traces_sample_rate"]) == ("production", commit, 0.0)


SEND = """
import json, logging, sys
import django
django.setup()
import sentry_sdk, structlog
from sentry_sdk.transport import Transport

class Kept(Transport):
    sent = []
    def capture_envelope(self, envelope):
        self.sent.append(envelope.serialize().decode())

sentry_sdk.get_client().transport = Kept()
structlog.contextvars.bind_contextvars(request_id="req-sentry", lead_id=41)
logging.getLogger("leads").info("rescoring ada@example.com")  # a breadcrumb of the next event

def lead_capture(email):
    lead_phone = "+49 30 555 0100"  # a local variable that must not travel
    raise ValueError(f"duplicate key\\nDETAIL:  Key (email)=({email}) already exists.")

try:
    lead_capture("ada@example.com")
except ValueError:
    sentry_sdk.capture_exception()
logging.getLogger("partners.services").error(
    "Could not send %d partner chase e-mail(s)", 2, extra={"request": "GET /api/v1/leads/?search=ada@example.com"}
)
sentry_sdk.flush()
print("SENT " + json.dumps(Kept.sent), file=sys.stderr)
"""


def test_an_event_sent_to_sentry_carries_no_lead_data_but_the_log_ids(tmp_path):
    # The transport above keeps what would be sent.
    result = in_production(tmp_path, SEND, SENTRY_DSN="http://public@127.0.0.1:9/1")
    sent = json.loads(result.stderr.split("SENT ", 1)[1])
    events = [json.loads(line) for envelope in sent for line in envelope.splitlines() if '"event_id"' in line]
    events = [event for event in events if "level" in event]
    assert len(events) == 2, sent
    text = json.dumps(sent)
    assert "ada@example.com" not in text
    assert "555 0100" not in text
    error, logged = events
    assert (
        error["exception"]["values"][-1]["value"] == "duplicate key\nDETAIL:  Key (email)=([redacted]) already exists."
    )
    assert error["tags"]["request_id"] == "req-sentry" and error["tags"]["lead_id"] == "41"
    assert error["breadcrumbs"]["values"][-1]["message"] == "rescoring [redacted]"
    assert logged["logentry"]["message"] == "Could not send %d partner chase e-mail(s)"
    assert "request" not in logged.get("extra", {})


def test_an_event_keeps_no_body_query_string_or_private_headers_and_gets_the_log_ids():
    from leadportal.sentry import scrub

    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="req-9", user_id=3, lead_id=41, note="not an id")
    try:
        event = scrub(
            {
                "request": {
                    "method": "POST",
                    "url": "https://portal.example/api/v1/leads/capture/?email=ada@example.com",
                    "query_string": "email=ada@example.com",
                    "data": {"email": "ada@example.com", "phone": "+49 30 1234"},
                    "cookies": {"sessionid": "s3cr3t"},
                    "env": {"REMOTE_ADDR": "203.0.113.9"},
                    "headers": {
                        "Content-Type": "application/json",
                        "Referer": "https://portal.example/leads/?search=ada@example.com",
                        "Authorization": "Token abc",
                        "X-Request-ID": "req-9",
                    },
                },
                "tags": {"celery_task_id": "t-1"},
            }
        )
    finally:
        structlog.contextvars.clear_contextvars()

    assert event == {
        "request": {
            "method": "POST",
            "url": "https://portal.example/api/v1/leads/capture/",
            "headers": {"Content-Type": "application/json", "X-Request-ID": "req-9"},
        },
        "tags": {"celery_task_id": "t-1", "request_id": "req-9", "user_id": "3", "lead_id": "41"},
    }


def test_a_routing_task_names_its_lead(db, lines):
    lead = LeadFactory(stage=Stage.MQL)

    result = route_lead_task.delay(lead.pk)

    line = only(lines(), logger="celery.app.trace")
    assert (line["task_id"], line["task_name"], line["lead_id"]) == (result.id, "routing.tasks.route_lead", lead.pk)


def broken_view(request):
    raise RuntimeError("boom in a view")


urlpatterns = [path("boom/", broken_view)]  # for the test below (pytest.mark.urls)


@pytest.mark.urls(__name__)
def test_an_unhandled_error_is_one_line_with_its_traceback_and_ids(rep_a, lines):
    client = Client(raise_request_exception=False)
    client.force_login(rep_a)

    response = client.get("/boom/", HTTP_X_REQUEST_ID="req-500")

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    errors = [line for line in lines() if line["level"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["logger"] == "django.request"
    assert (errors[0]["request_id"], errors[0]["user_id"]) == ("req-500", rep_a.pk)
    assert "RuntimeError: boom in a view" in errors[0]["exception"]


def test_naming_the_user_does_not_count_as_reading_the_session(rep_a, lines):
    """Otherwise every answer to a signed-in browser would get `Vary: Cookie` because of a log line."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.sessions.backends.db import SessionStore
    from django.http import HttpResponse
    from django.test import RequestFactory

    session = SessionStore()
    session[SESSION_KEY] = str(rep_a.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = rep_a.get_session_auth_hash()
    session.save()
    request = RequestFactory().get("/")
    request.session = SessionStore(session.session_key)
    seen = {}

    def view(request):
        seen["user_id"] = structlog.contextvars.get_contextvars()["user_id"]
        seen["accessed_in_view"] = request.session.accessed
        return HttpResponse("ok")

    AuthenticationMiddleware(logs.UserIdMiddleware(view))(request)

    assert seen == {"user_id": rep_a.pk, "accessed_in_view": False}
    assert request.user.pk == rep_a.pk  # someone really asks for the user: now the session was read
    assert request.session.accessed is True
