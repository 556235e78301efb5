"""Database down → 503 with Retry-After, never 500.

PostgreSQL that does not answer, refuses connections, or runs into `lock_timeout` /
`statement_timeout` (settings: DATABASE_LOCK_TIMEOUT, DATABASE_STATEMENT_TIMEOUT) raises
OperationalError / InterfaceError wherever the request happens to touch it: in the view, in
`login_required` loading the session, in DRF's token authentication. The answer is the same:
503, `Retry-After`, JSON under /api/, a small page elsewhere. The client retries; capture and
events are idempotent (upsert by e-mail, events by external_id), so a retry never doubles anything.

Three places apply it, each for what the others cannot see:
- `DatabaseUnavailableMiddleware.process_exception`: errors raised by a view (and its decorators);
- `leads.api.errors.exception_handler`: errors inside DRF (it catches them before any middleware);
- `server_error` (handler500): errors raised by other middleware, which Django turns into a 500
  response before an outer middleware sees them.
"""

from __future__ import annotations

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.utils.cache import patch_cache_control
from django.views.defaults import server_error as django_server_error

log = logging.getLogger("leadportal.database")

# Seconds a client should wait before trying again; a restart or failover takes about this long.
RETRY_AFTER_S = 5
DETAIL = "The database is unavailable right now; nothing was changed by this request. Try again shortly."


def database_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "the database cannot serve this now" (not "this request is wrong").
    psycopg's own classes too: a connection pool's PoolTimeout or a raw cursor raises them unwrapped."""
    errors: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:
        import psycopg

        errors += [psycopg.OperationalError, psycopg.InterfaceError]
    except ImportError:  # pragma: no cover - SQLite-only installs
        pass
    return tuple(errors)


def is_database_unavailable(exc: BaseException | None) -> bool:
    return exc is not None and isinstance(exc, database_errors())


def log_unavailable(request: HttpRequest, exc: BaseException) -> None:
    log.warning("503 for %s %s: database unavailable (%s: %s)", request.method, request.path, type(exc).__name__, exc)


def unavailable_payload() -> dict[str, str]:
    return {"detail": DETAIL, "code": "database_unavailable"}


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 for this request: JSON for the API, a page for people. Renders without the database
    (no context processors, no session, no user)."""
    log_unavailable(request, exc)
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(unavailable_payload(), status=503)
    else:
        html = loader.render_to_string("503.html", {"retry_after": RETRY_AFTER_S})
        response = HttpResponse(html, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_S)
    # A half-done page must not be cached by a proxy as if it were the answer.
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_unavailable(exception):
            return unavailable_response(request, exception)
        return None


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: Django calls it inside the `except` that caught the error, so the error is still
    at hand; a database outage becomes the 503, anything else stays Django's 500."""
    exc = sys.exc_info()[1]
    if exc is not None and is_database_unavailable(exc):
        return unavailable_response(request, exc)
    try:  # with the person's context (their home link, the navigation) …
        html = loader.render_to_string(template_name, request=request)
    except Exception:  # … unless that is what fails: then the page alone, as Django renders it
        log.exception("The 500 page could not be rendered with its context")
        return django_server_error(request, template_name=template_name)
    return HttpResponse(html, status=500, content_type="text/html; charset=utf-8")


class UnstorableQueryMiddleware:
    """A NUL character in the query string (a filter, a search) cannot be sent to PostgreSQL: the
    ORM raises ValueError, which was a 500 (`/admin/leads/lead/?stage__exact=%00`). It is refused
    here, before any view: 400, in JSON for the API. (Bodies are checked by the forms and
    serializers, which prohibit NUL themselves.)"""

    MESSAGE = "The address contains a character that cannot be stored (NUL)."

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": self.MESSAGE}, status=400)
            return HttpResponse(self.MESSAGE, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class NoStoreMiddleware:
    """Pages for a signed-in person and every API answer carry personal data: no shared or browser
    cache keeps them (`Cache-Control: no-store, private`), unless the view said otherwise."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        personal = request.path.startswith("/api/") or (user is not None and user.is_authenticated)
        if personal and not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True, private=True)
        return response
