"""Errors to Sentry, when production settings are given a SENTRY_DSN (imported only then).

What leaves is the error and where it happened, never a lead's personal data: no request body
(`max_request_body_size="never"`), no cookies, user or client address (`send_default_pii=False`),
no local variables of the stack frames (a traceback in a service would carry the lead's name, e-mail
and phone), no query string (a search names a person) and of the headers only a few harmless ones;
Celery task arguments are filtered by the SDK itself without PII. Each event gets the log context's
ids as tags (request_id, task_id, lead_id, ...), so an event and its log lines are found together.
"""

from __future__ import annotations

import logging
from typing import Any

import sentry_sdk
import structlog
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger

# Log-context ids that become tags on an event (leadportal/logs.py binds them).
TAGGED_IDS = ("request_id", "user_id", "task_id", "task_name", "parent_task_id", "lead_id")
KEPT_HEADERS = {"content-type", "content-length", "accept", "host", "x-request-id"}


def scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """before_send / before_send_transaction: what the SDK's own options leave of the request is cut
    to method, address without query string and a few headers; the log ids are added as tags."""
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        event["request"] = {
            "method": request.get("method"),
            "url": (request.get("url") or "").split("?", 1)[0],
            "headers": {name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS},
        }
    tags = event.setdefault("tags", {})
    for key, value in structlog.contextvars.get_contextvars().items():
        if key in TAGGED_IDS and value is not None:
            tags.setdefault(key, str(value))
    return event


def sentry_init(*, dsn: str, environment: str, release: str | None, traces_sample_rate: float) -> None:
    # django-structlog's request and task lines are structlog dicts (a request_failed repeats the
    # error the Django integration already reports): not turned into events or breadcrumbs.
    ignore_logger("django_structlog.middlewares.request")
    ignore_logger("django_structlog.celery.receivers")
    sentry_sdk.init(
        dsn=dsn,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(),
            # Lines at INFO and above are breadcrumbs of the next event; ERROR lines are events.
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        environment=environment,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        before_send=scrub,
        before_send_transaction=scrub,
    )
