"""One error shape for the API: DRF's field-by-field messages, 409 for refused moves, and 503 with
Retry-After when the database is unavailable (DRF catches errors, token authentication's included,
before any middleware could: leadportal/middleware.py explains the rest)."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from leadportal import middleware
from leads.lifecycle import TransitionRefused


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, TransitionRefused):
        return Response(
            {
                "detail": exc.message,
                "code": "transition_refused",
                "from": exc.from_stage,
                "to": exc.to_stage,
                "allowed": exc.allowed,
            },
            status=status.HTTP_409_CONFLICT,
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
