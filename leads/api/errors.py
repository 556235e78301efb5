"""One error shape for the API. Every refusal of a service is an AppError (leads/errors.py) and is
answered here, once, with its status and body: DRF's field-by-field messages for Invalid (400, the
serializers' own shape), `{"detail", "code", ...extra}` for Refused (409; with `use` when another
endpoint makes the move), and a plain 404 for an error whose status is 404 (it does not confirm the
object exists). Views never translate them by hand. Besides: 413 for a body over the limit, and
503 with Retry-After when the database is unavailable (DRF catches errors, token authentication's
included, before any middleware could: leadportal/middleware.py explains the rest)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from leadportal import middleware
from leads.errors import AppError, Invalid


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is an HTML 400 page; an API client gets JSON that says the limit.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        return Response(
            {"detail": f"The request body is too large: at most {limit} MB.", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, AppError):
        return app_error_response(exc, context)
    if middleware.is_database_unavailable(exc):
        if context.get("request") is not None:
            middleware.log_unavailable(context["request"], exc)
        set_rollback()
        return Response(
            middleware.unavailable_payload(),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(middleware.RETRY_AFTER_S), "Cache-Control": "no-store"},
        )
    return drf_exception_handler(exc, context)


def app_error_response(exc: AppError, context: dict[str, Any]) -> Response | None:
    """An AppError's answer: its status and its body (nothing the service began is kept)."""
    if exc.status == status.HTTP_404_NOT_FOUND:
        # Like any other 404 (another tenant's object): the message would confirm it exists.
        return drf_exception_handler(exceptions.NotFound(), context)
    set_rollback()
    body = exc.body()
    if isinstance(exc, Invalid):  # a service's NON_FIELD_ERRORS under DRF's key for them
        body = {(api_settings.NON_FIELD_ERRORS_KEY if f == NON_FIELD_ERRORS else f): m for f, m in body.items()}
    return Response(body, status=exc.status)
