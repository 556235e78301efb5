"""Structured logs: one line per event, with the ids that tie it to a request, a user, a task or a lead.

structlog renders every line, ours and the libraries' (stdlib `logging` calls go through the same
formatter), as JSON (`LOG_FORMAT=json`, production's default) or as readable `key=value` text
(`console`, the default elsewhere). The ids are context variables, merged into every line:

- `request_id`: `RequestIdMiddleware` (outermost) takes a sane incoming `X-Request-ID` or makes one,
  and echoes it in the answer's `X-Request-ID`; `user_id`: `UserIdMiddleware` (after
  `AuthenticationMiddleware`), and the API token authentication for token clients;
- `task_id`, `task_name`: `task_started` / `task_finished` below, connected in leadportal/celery.py;
  a task queued from a request also carries that request's `request_id` and `user_id` (django-structlog
  puts them into the message's headers);
- `lead_id`: bound by the tasks that work on one lead.

Nothing here touches the database or the network: a line costs a dict and a write to stdout.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import structlog
from django.core.signals import request_finished
from django.utils.functional import SimpleLazyObject

# An incoming X-Request-ID is kept only if it is this: short, printable, no spaces or line breaks (a
# hostile one would forge lines in a text log or bloat every line); anything else gets a new id.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:+/=-]{1,64}")
REQUEST_ID_HEADER = "X-Request-ID"

FORMATS = ("json", "console")
_request_log = logging.getLogger("leadportal.request")

# What every line gets, from structlog and from the standard library alike (cheap, no I/O).
SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_structlog() -> None:
    """structlog's own loggers hand their events to the standard library, whose handler renders them
    (so LOG_LEVEL and the formatter apply to both). Below the level an event is dropped first thing."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def renderer(fmt: str) -> Any:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    # Plain tracebacks: with rich installed the default prints every frame's local variables (a lead's
    # e-mail and phone among them) and takes seconds for one error.
    return structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)


def formatter(fmt: str) -> dict[str, Any]:
    """A logging formatter (dictConfig shape) that renders lines in this format."""
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # The console renderer prints tracebacks itself; JSON gets them as a string field.
            *([structlog.processors.format_exc_info] if fmt == "json" else []),
            renderer(fmt),
        ],
        # Of the standard library's `extra` fields only these: django.request's `request` would print
        # the whole address, query string (a search for a person) included.
        "foreign_pre_chain": [*SHARED_PROCESSORS, structlog.stdlib.ExtraAdder(allow=("status_code",))],
    }


def logging_settings(*, fmt: str, level: str, stream: str = "stderr") -> dict[str, Any]:
    """settings.LOGGING: every logger through the structlog formatter to one stream (production: stdout,
    for the container's log collector; elsewhere stderr, so a command's own output stays apart)."""
    from django.core.exceptions import ImproperlyConfigured

    if fmt not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT={fmt!r}: use one of {', '.join(FORMATS)}.")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structlog": formatter(fmt)},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structlog", "stream": f"ext://sys.{stream}"}
        },
        "root": {"handlers": ["console"], "level": level},
    }


def request_id_for(incoming: str | None) -> str:
    """The request's id: the caller's (a proxy's, a client's) if it looks like an id, else a new one."""
    if incoming and REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


def clear(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


class RequestIdMiddleware:
    """Outermost: every line of the request, whichever middleware or view writes it (a 503 for a
    database outage, a lockout), carries `request_id`, and the answer's `X-Request-ID` header names it.
    The sane id replaces the incoming header, so whoever reads the header after it reads the same one.

    The ids stay bound until the response is closed (Django's request_finished signal): Django's own
    line about a 4xx/5xx (logger django.request) is written after the whole middleware chain."""

    def __init__(self, get_response):
        self.get_response = get_response
        request_finished.connect(clear, dispatch_uid="leadportal.logs.clear")

    def __call__(self, request):
        request_id = request_id_for(request.META.get("HTTP_X_REQUEST_ID"))
        request.META["HTTP_X_REQUEST_ID"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class UserIdMiddleware:
    """After AuthenticationMiddleware: binds `user_id` (None for an anonymous request; an API token's
    user is bound by leads.api.authentication, since DRF authenticates in the view). At DEBUG it writes
    `request_finished` with the status and the path (never the query string: a search names a person).

    Our own, not django-structlog's RequestMiddleware: that one costs about 50 µs a request (settings
    read on every call, headers parsed, two log calls, signals) on the benchmarked capture path, and
    three of its habits had to be overridden (a query string in its lines, a second traceback for an
    error, the context cleared before Django's own line about the answer)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        structlog.contextvars.bind_contextvars(user_id=self._user_id(request))
        response = self.get_response(request)
        if _request_log.isEnabledFor(logging.DEBUG):
            structlog.get_logger("leadportal.request").debug(
                "request_finished", code=response.status_code, request=f"{request.method} {request.path}"
            )
        return response

    @staticmethod
    def _user_id(request) -> int | None:
        session = getattr(request, "session", None)
        if session is None or session.session_key is None:
            return None  # no session cookie, nobody signed in: the user is not even looked up
        untouched = not session.accessed
        user = request.user
        user_id = user.pk
        if untouched:
            # Reading the user read the session, which would add `Vary: Cookie` to an answer that does
            # not depend on it; it counts as read again when someone really asks for the user.
            def get_user():
                session.accessed = True
                return user

            request.user = SimpleLazyObject(get_user)
            session.accessed = False
        return user_id


def task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """celery's task_prerun: bind the task's ids. An eager task runs inside a request or another task:
    their context is kept aside and given back by `task_finished`, the caller's ids stay on the task's
    lines (an eager task's lines carry the request's id as a worker's carry the queuing request's)."""
    if task is None:
        return
    outer = structlog.contextvars.get_contextvars()
    task.request._log_context_outer = outer
    queued_from = getattr(task.request, "__django_structlog__", None) or {}
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**{**queued_from, **outer})
    if "task_id" in outer:
        structlog.contextvars.bind_contextvars(parent_task_id=outer["task_id"])
    structlog.contextvars.bind_contextvars(task_id=task_id, task_name=task.name)


def task_finished(task: Any = None, **_: Any) -> None:
    """celery's task_postrun: the context of whatever ran the task, as it was before."""
    outer = getattr(getattr(task, "request", None), "_log_context_outer", None)
    structlog.contextvars.clear_contextvars()
    if outer:
        structlog.contextvars.bind_contextvars(**outer)


def bind(**ids: Any) -> None:
    """Add ids (`lead_id=...`) to every later line of this request or task."""
    structlog.contextvars.bind_contextvars(**ids)
