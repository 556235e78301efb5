"""One error shape for the API: DRF's field-by-field messages, plus 409 for refused moves."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

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
    return drf_exception_handler(exc, context)
