"""One error shape for the API: DRF's field-by-field messages (the services' LeadInvalid too), 409 for
refused moves (with `use` when another endpoint makes the move), and 503 with
Retry-After when the database is unavailable (DRF catches errors, token authentication's included,
before any middleware could: leadportal/middleware.py explains the rest)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.urls import reverse
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from leadportal import middleware
from leads.lifecycle import TransitionRefused
from leads.services import LeadInvalid, TransitionElsewhere


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is an HTML 400 page; an API client gets JSON that says the limit.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
        return Response(
            {"detail": f"The request body is too large: at most {limit} MB.", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, TransitionRefused):
        payload = {
            "detail": exc.message,
            "code": "transition_refused",
            "from": exc.from_stage,
            "to": exc.to_stage,
            "allowed": exc.allowed,
        }
        if isinstance(exc, TransitionElsewhere):
            # The endpoint that makes this move (this app's /qualify/ and /close/, routing's /accept/).
            payload["use"] = reverse(f"lead-{exc.use}", kwargs={"pk": exc.lead_id})
            payload["detail"] = f"{exc.message} Use POST {payload['use']}."
        return Response(payload, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, LeadInvalid):
        # A service's field rules: the same 400 shape as the serializers' own messages.
        return Response(
            {(api_settings.NON_FIELD_ERRORS_KEY if f == NON_FIELD_ERRORS else f): m for f, m in exc.errors.items()},
            status=status.HTTP_400_BAD_REQUEST,
        )
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
