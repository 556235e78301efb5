"""The pages' answer to an AppError, in one place (the API's is leads/api/errors.py).

A page action that a service refuses shows the refusal's words as an error message and answers as
after the action. Which page that is, the view says once, with `@shows_errors(back)`:
`back(request, *args, **kwargs)` is the answer (the lead page: htmx gets it refreshed, a browser is
redirected to it; the pool; the partner's lead page …).

A page without its own `back` still never turns an AppError into a 500: `AppErrorMiddleware` shows
the message and sends the person back where the action came from (htmx is told to go there too),
or, for an error whose status is 404, answers the site's 404 page.

Input errors that belong on a form (LeadInvalid, FeedbackInvalid) are caught by the view first: it
knows the form to re-render with them (422), this module does not.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.defaults import page_not_found

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
