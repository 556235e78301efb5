"""The pages' answer to an AppError, in one place (the API's is leads/api/errors.py).

A page action that a service refuses shows the refusal's words as an error message and answers as
after the action. Which page that is, the view says once, with `@shows_errors(back)`:
`back(request, *args, **kwargs)` is the answer (the lead page: htmx gets it refreshed, a browser is
redirected to it; the pool; the partner's lead page …).

A page without its own `back` still never turns an AppError into a 500: `AppErrorMiddleware` shows
the message and sends the person back where the action came from (htmx is told to go there too),
or, for an error whose status is 404, answers the site's 404 page.

Error pages (templates/403.html, 404.html, 500.html) are the site's own in every mode: Django's
handlers render them when DEBUG is off; with DEBUG on, `FriendlyErrorsMiddleware` renders them for
everyone but staff, who alone get Django's technical pages (URL patterns, tracebacks).

Input errors that belong on a form (LeadInvalid, FeedbackInvalid) are caught by the view first: it
knows the form to re-render with them (422), this module does not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import loader
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.log import log_response
from django.views.defaults import page_not_found

from leadportal.middleware import is_database_unavailable, server_error

from .errors import AppError

Answer = Callable[..., HttpResponse]


def shows_errors(back: Answer) -> Callable[[Answer], Answer]:
    """A page view whose AppErrors are shown as a message on the page that `back` answers with."""

    def decorate(view: Answer) -> Answer:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except AppError as error:
                messages.error(request, error.message)
                return back(request, *args, **kwargs)

        return wrapper

    return decorate


def back_where_from(request: HttpRequest) -> str:
    """The page the request came from (this site's only), else home. Never the page that failed
    itself when it was a GET: that would go round in circles."""
    referer = request.headers.get("referer", "")
    hosts = {request.get_host()}
    safe = url_has_allowed_host_and_scheme(referer, allowed_hosts=hosts, require_https=request.is_secure())
    if referer and safe and not (request.method == "GET" and urlsplit(referer).path == request.path):
        return referer
    return "/"


class AppErrorMiddleware:
    """An AppError that no page view answered: the message, and back to where the person was."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, AppError) or request.path.startswith("/api/"):
            return None  # the API's own handler answers there
        if exception.status == 404:
            return page_not_found(request, Http404())
        messages.error(request, exception.message)
        target = back_where_from(request)
        if getattr(request, "htmx", False):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return HttpResponseRedirect(target)


def shows_technical_errors(request: HttpRequest) -> bool:
    """DEBUG's technical pages are for superusers (developers) only; the API keeps its own answers."""
    user = getattr(request, "user", None)
    developer = user is not None and user.is_authenticated and user.is_superuser
    return not settings.DEBUG or developer or request.path.startswith("/api/")


def _error_page(request: HttpRequest, status: int, exception: BaseException) -> HttpResponse:
    """The styled page; in DEBUG, staff (marketing) also read what went wrong, in one line."""
    user = getattr(request, "user", None)
    staff = user is not None and user.is_authenticated and user.is_staff
    detail = f"{type(exception).__name__}: {exception}" if staff else ""
    html = loader.render_to_string(f"{status}.html", {"detail": detail, "request_path": request.path}, request)
    return HttpResponse(html, status=status, content_type="text/html; charset=utf-8")


class FriendlyErrorsMiddleware:
    """With DEBUG on, anyone but a superuser gets the styled 404 and 500 pages, not Django's
    technical ones (which list every URL pattern, or a traceback); staff see one line of detail on
    them. With DEBUG off it does nothing: Django's own handlers already answer with the templates.
    After AuthenticationMiddleware (it asks who is asking) and inside CommonMiddleware (whose
    slash-appending redirect still applies to its 404)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not shows_technical_errors(request):
            try:
                resolve(request.path_info, getattr(request, "urlconf", None))
            except Resolver404:  # no view at all: Django would list the URL patterns
                response = _error_page(request, 404, Http404(f"No page at {request.path}"))
                log_response("Not Found: %s", request.path, response=response, request=request)
                return response
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if shows_technical_errors(request) or isinstance(exception, AppError) or is_database_unavailable(exception):
            return None  # AppErrorMiddleware and DatabaseUnavailableMiddleware answer those
        if isinstance(exception, (PermissionDenied, SuspiciousOperation, BadRequest)):
            return None  # Django's handlers answer (403: templates/403.html in every mode)
        if isinstance(exception, Http404):
            return _error_page(request, 404, exception)
        # An unexpected error: signalled and logged as Django does (Sentry listens), then the page.
        got_request_exception.send(sender=None, request=request)
        try:
            response = _error_page(request, 500, exception)
        except Exception:  # noqa: BLE001 - the page's context is what fails: the page alone
            response = server_error(request)
        log_response(
            "%s: %s", response.reason_phrase, request.path, response=response, request=request, exception=exception
        )
        return response
