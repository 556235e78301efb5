"""GET /api/v1/leads/changes/ — the changes feed (leads.changes), for integrations that sync every lead."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import changes, selectors
from leads.errors import Invalid
from leads.models import Scope

from .permissions import InternalOnly
from .scopes import TokenHasScope
from .serializers import LeadSerializer


class SeesAllLeads(BasePermission):
    """The feed is every lead or nothing: marketing, sales managers and staff. A rep's share of it
    would be a feed whose leads vanish when they change hands, so reps (and integration clients,
    which may capture but not read) get 403."""

    message = "Only marketing, sales managers and staff may read the changes feed."

    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and selectors.can_see_all_leads(request.user)


def _limit(raw: str | None) -> int:
    if raw in (None, ""):
        return changes.LIMIT_DEFAULT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= changes.LIMIT_MAX:
        raise Invalid({"limit": f"A whole number from 1 to {changes.LIMIT_MAX}."})
    return limit


class LeadChangesView(APIView):
    permission_classes = [InternalOnly, SeesAllLeads, TokenHasScope]
    required_scope = Scope.READ

    @extend_schema(
        summary="The leads changed after a cursor (the lossless changes feed)",
        description=(
            "Every lead whose profile, stage, score, owner/partner or activities changed after `after`, "
            "in the order the changes committed, each once with its current state and its `change` key; "
            "erased leads as `{id, erased: true, change}`, deleted ones as `{id, deleted: true, change}`. "
            "Pass the answer's `next` as `after` to read on (also when "
            "`results` is empty: nothing new yet). Paging while writes go on never skips a change; a lead "
            "changed again comes again, with its newer state. Start without `after`. For marketing, sales "
            "managers and staff (token scope `read`); reps and integration clients get 403, partners 404."
        ),
        parameters=[
            OpenApiParameter("after", str, description="A `next` cursor from an earlier page; none: from the start."),
            OpenApiParameter("limit", int, description=f"1–{changes.LIMIT_MAX}, default {changes.LIMIT_DEFAULT}."),
        ],
        responses={
            200: inline_serializer(
                "LeadChangesPage",
                {
                    "results": serializers.ListField(
                        child=serializers.DictField(),
                        help_text="A lead as GET /api/v1/leads/{id}/ answers it, with `change` (its key) and "
                        "`erased: false`; or a tombstone `{id, erased: true, change}` (erased) or `{id, deleted: true, "
                        "change}` (deleted).",
                    ),
                    "next": serializers.CharField(help_text="The cursor to pass as `after` next time."),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        after = changes.cursor_decode(request.query_params.get("after"))
        page, next_key = changes.changes_page(after=after, limit=_limit(request.query_params.get("limit")))
        results = [
            changes.change_body(
                change,
                LeadSerializer(change.lead).data
                if change.lead is not None and not changes.is_erased(change.lead)
                else None,
            )
            for change in page
        ]
        return Response({"results": results, "next": changes.cursor_encode(next_key)})
