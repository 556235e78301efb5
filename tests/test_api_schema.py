"""schemathesis drives every operation of the OpenAPI schema through the WSGI app, as staff (who may
do everything) and anonymously: no input may cause a 5xx, and every response must match the schema."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from leadportal.wsgi import application
from leads.tests.factories import LeadFactory, UserFactory
from leads.tokens import token_create

# Generating the schema needs no database, so it is loaded once, at collection.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Django closes "old" connections around each request; inside a test's transaction that would
    close the test's own connection (Django's test Client does the same disconnecting)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def staff_token(db):
    user = UserFactory(username="schema-staff", is_staff=True)
    LeadFactory.create_batch(3)  # something for the id-based operations to find
    return token_create(user=user, name="schemathesis")[1]


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_causes_a_server_error_or_breaks_the_schema(case, staff_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {staff_token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )


def test_the_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
