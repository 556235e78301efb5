"""The one application error: what a service refuses, said once, answered by every door.

A service raises an AppError (or one of its kinds) with the words for a person (`message`), a
stable `code` for a program, `extra` facts for the client, and the HTTP `status` that fits. The
doors never translate it by hand:

- the API: `leads.api.errors.exception_handler` answers `status` with `body()`;
- the pages: `leads.pages.shows_errors` shows `message` and answers as after the action.

Two kinds cover today's errors. `Invalid` (400): input that does not fit, field by field — the body
is DRF's own shape, `{field: [messages]}`. `Refused` (409): a move the state does not allow — the
body is `{"detail", "code", ...extra}`. A refusal that is really "not yours" sets status 404, and
the API answers it like any other 404 (it does not confirm that the object exists).

This module imports nothing of the project: every layer may raise these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class AppError(Exception):
    """A refusal of the application: message (for people), code (for programs), extra, HTTP status."""

    status: int = 400
    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        extra: Mapping[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra: dict[str, Any] = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The API's JSON body."""
        return {"detail": self.message, "code": self.code, **self.extra}


class Invalid(AppError):
    """Input a service refuses, field by field; nothing was written. `errors` maps a field (or
    NON_FIELD_ERRORS) to its message or messages."""

    status = 400
    code = "invalid"

    def __init__(self, errors: Mapping[str, str | Sequence[str]], *, message: str | None = None) -> None:
        self.errors: Mapping[str, str | Sequence[str]] = dict(errors)
        if message is None:
            message = " ".join(m for messages in self.field_errors().values() for m in messages)
        super().__init__(message)

    def field_errors(self) -> dict[str, list[str]]:
        """Every field's messages as a list (a single message too)."""
        return {field: [m] if isinstance(m, str) else list(m) for field, m in self.errors.items()}

    def body(self) -> dict[str, Any]:
        # A serializer's shape, so a client reads a service's rules and a serializer's the same way
        # (the API's handler files NON_FIELD_ERRORS under DRF's key for them).
        return self.field_errors()


class Refused(AppError):
    """A move the current state does not allow (409), or — status 404 — one on something that is not
    the caller's."""

    status = 409
    code = "refused"
