"""Errors to Sentry, when production settings are given a SENTRY_DSN (imported only then).

What leaves is the error and where it happened, never a lead's personal data: no request body
(`max_request_body_size="never"`), no cookies, user or client address (`send_default_pii=False`),
no local variables of the stack frames (a traceback in a service would carry the lead's name, e-mail
and phone), no query string (a search names a person) and of the headers only a few harmless ones;
Celery task arguments are filtered by the SDK itself without PII; a log line's extra data is dropped;
e-mail addresses and PostgreSQL's "Key (…)=(value)" are redacted from messages, exception texts and
breadcrumbs. Each event gets the log context's ids as tags (request_id, task_id, lead_id, ...), so an
event and its log lines are found together.
"""

from __future__ import annotations

import logging
import re
from typing import Any, cast

import sentry_sdk
import structlog
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

# Log-context ids that become tags on an event (leadportal/logs.py binds them).
TAGGED_IDS = ("request_id", "user_id", "task_id", "task_name", "parent_task_id", "lead_id")
KEPT_HEADERS = {"content-type", "content-length", "accept", "host", "x-request-id"}
# What a message or an exception's text may still quote: PostgreSQL's "DETAIL: Key (email)=(…)" of a
# constraint violation, an e-mail address. Replaced wherever text leaves (event, exception, breadcrumb).
REDACT = re.compile(r"(?<=\)=\().*?(?=\)(?: already exists| is not present|\.|$))|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.M)
REDACTED = "[redacted]"


def redact(text: Any) -> Any:
    return REDACT.sub(REDACTED, text) if isinstance(text, str) else text


def scrub(sent: Event, hint: Hint | None = None) -> Event:
    """before_send / before_send_transaction: what the SDK's own options leave of the request is cut
    to method, address without query string and a few headers; the log ids are added as tags."""
    event = cast(dict[str, Any], sent)
    request = event.get("request")
    if isinstance(request, dict):
        headers = request.get("headers") or {}
        event["request"] = {
            "method": request.get("method"),
            "url": (request.get("url") or "").split("?", 1)[0],
            "headers": {name: value for name, value in headers.items() if name.lower() in KEPT_HEADERS},
        }
    for exception in (event.get("exception") or {}).get("values") or []:
        exception["value"] = redact(exception.get("value"))
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        logentry["message"] = redact(logentry.get("message"))
        logentry["formatted"] = redact(logentry.get("formatted"))
        logentry.pop("params", None)
    # A log line's `extra` may hold objects whose text names a person (django.request's request, with
    # its query string); the Celery integration's own entry (task name, arguments filtered) stays.
    if "extra" in event:
        event["extra"] = {key: value for key, value in event["extra"].items() if key == "celery-job"}
    tags = event.setdefault("tags", {})
    for key, value in structlog.contextvars.get_contextvars().items():
        if key in TAGGED_IDS and value is not None:
            tags.setdefault(key, str(value))
    return sent


def scrub_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint | None = None) -> Breadcrumb:
    """before_breadcrumb: the message (redacted), not the log record's extra data."""
    crumb["message"] = redact(crumb.get("message"))
    if crumb.get("category") != "query":  # SQL without its parameters (send_default_pii=False)
        crumb.pop("data", None)
    return crumb


def sentry_init(*, dsn: str, environment: str, release: str | None, traces_sample_rate: float) -> None:
    # django-structlog's task_enqueued lines (DEBUG) are no breadcrumbs worth their dict.
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
        before_breadcrumb=scrub_breadcrumb,
    )
