"""The lead API: capture/upsert, list and filter, profile update, lifecycle moves, timeline, events."""

from __future__ import annotations

from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import filters, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import erasure, export, selectors, services
from leads.auth import signed_in_user
from leads.models import Lead, Scope

from .filters import LeadFilter
from .permissions import CanCapture, HandlesDataRequests, InternalOnly, LeadAccess
from .scopes import TokenHasScope
from .serializers import (
    ActivitySerializer,
    CaptureResultSerializer,
    CloseSerializer,
    ContactSerializer,
    EraseSerializer,
    EventBatchSerializer,
    EventSerializer,
    EventsResultSerializer,
    LeadCaptureSerializer,
    LeadSerializer,
    LeadWriteSerializer,
    NoteSerializer,
    QualificationSerializer,
    QualifySerializer,
    TransitionRefusedSerializer,
    TransitionSerializer,
)

FIELD_ERRORS = OpenApiResponse(description="Field errors (`{field: [message, …]}`); nothing was changed")
REFUSED = OpenApiResponse(TransitionRefusedSerializer, "The lead's stage does not allow it")


def _example(name: str, value: dict, *, status: int | None = None, summary: str = "") -> OpenApiExample:
    if status is None:
        return OpenApiExample(name, value=value, summary=summary or name, request_only=True)
    return OpenApiExample(name, value=value, summary=summary or name, response_only=True, status_codes=[str(status)])


BANT = {
    "budget": {"confirmed": True, "note": "40k approved for Q1"},
    "authority": {"confirmed": True, "note": "Talked to the CFO, who signs"},
    "need": {"confirmed": True, "note": "Replacing spreadsheets across 3 teams"},
    "timing": {"confirmed": True, "note": "Go-live before April"},
}


@extend_schema_view(
    list=extend_schema(summary="List leads (paginated, filterable)"),
    retrieve=extend_schema(summary="One lead"),
    create=extend_schema(
        summary="Capture a lead (upsert by e-mail)",
        description=(
            "Creates the lead (201) or updates the one with this e-mail (200). The answer is the lead's id, "
            "whether it is new, and its stage: a capture never reads back what else is known about a person."
        ),
        request=LeadCaptureSerializer,
        responses={201: CaptureResultSerializer, 200: CaptureResultSerializer, 400: FIELD_ERRORS},
    ),
    partial_update=extend_schema(summary="Update a lead's profile", request=LeadWriteSerializer),
)
class LeadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = LeadSerializer
    permission_classes = [InternalOnly, LeadAccess, TokenHasScope]
    required_scope = {"create": Scope.CAPTURE}  # reading: read; the rest: work (leads.api.scopes)
    filterset_class = LeadFilter
    filter_backends = [
        # The stubs make GenericViewSet generic in its model; filter_backends is the settings' default.
        *viewsets.GenericViewSet.filter_backends,  # type: ignore[misc]
        filters.SearchFilter,
        filters.OrderingFilter,
    ]
    search_fields = ["first_name", "last_name", "email", "company"]
    ordering_fields = ["score", "created_at", "updated_at"]
    ordering = ["-created_at", "-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Lead.objects.none()
        return selectors.lead_visible_to(signed_in_user(self.request))

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = LeadCaptureSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        double_opt_in = data.pop("double_opt_in", False)
        lead, created = services.lead_capture(
            data=data, source="api", actor=signed_in_user(request), double_opt_in=double_opt_in
        )
        answer = CaptureResultSerializer({"id": lead.pk, "created": created, "stage": lead.stage}).data
        return Response(answer, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def partial_update(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = LeadWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_update(lead=lead, data=serializer.validated_data, actor=signed_in_user(request))
        return Response(LeadSerializer(lead).data)

    @extend_schema(
        summary="Move a lead to another stage (recycle, disqualify …)",
        description=(
            "Moves that need data or belong to someone are refused with 409 and `use`, the endpoint that "
            "makes them: to `sql` → `/qualify/` (BANT), to `won`/`lost` → `/close/`, `mql` → `sal` → "
            "`/accept/` (the assignee)."
        ),
        request=TransitionSerializer,
        responses={200: LeadSerializer, 409: OpenApiResponse(TransitionRefusedSerializer, "Move refused")},
        examples=[
            _example("Recycle to marketing", {"to": "mal", "reason": "No project before next year"}),
            _example(
                "Refused: closing needs /close/",
                {
                    "detail": "Closing a deal as won needs its value and currency. Use POST /api/v1/leads/42/close/.",
                    "code": "transition_refused",
                    "from": "sql",
                    "to": "won",
                    "allowed": ["won", "lost"],
                    "use": "/api/v1/leads/42/close/",
                },
                status=409,
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_move(
            lead=lead,
            to_stage=serializer.validated_data["to"],
            reason=serializer.validated_data["reason"],
            actor=signed_in_user(request),
        )
        return Response(LeadSerializer(lead).data)

    @extend_schema(
        summary="Record BANT (budget, authority, need, timing); all four confirmed makes the lead SQL",
        description=(
            "Criteria not given keep their value; a given criterion replaces its `confirmed` and `note`. "
            "A confirmed criterion needs a note. For a lead in `sal` or `sql` (else 409)."
        ),
        request=QualifySerializer,
        responses={200: QualificationSerializer, 400: FIELD_ERRORS, 409: REFUSED},
        examples=[
            _example("All four confirmed", BANT),
            _example("One criterion", {"timing": {"confirmed": False, "note": "Budget round in March"}}),
            _example(
                "Sales-qualified",
                {
                    "lead": 42,
                    "stage": "sql",
                    **BANT,
                    "confirmed_count": 4,
                    "complete": True,
                    "updated_at": "2026-11-20T10:00:00Z",
                },
                status=200,
            ),
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None, filter_backends=[])
    def qualify(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = QualifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        qualification = services.lead_qualify(lead=lead, criteria=serializer.criteria(), actor=signed_in_user(request))
        lead.refresh_from_db(fields=["stage"])
        return Response(QualificationSerializer(QualificationSerializer.state(qualification, stage=lead.stage)).data)

    @extend_schema(
        summary="Close the deal: won (with its value) or lost (with a reason)",
        description=(
            "`won`: `deal_value` > 0 and `currency` (ISO 4217, default EUR), from `sql`. "
            "`lost`: `reason` from the list and an optional `note`, from `sal` or `sql`. Another stage: 409."
        ),
        request=CloseSerializer,
        responses={200: LeadSerializer, 400: FIELD_ERRORS, 409: REFUSED},
        examples=[
            _example("Won", {"outcome": "won", "deal_value": "18500.00", "currency": "EUR"}),
            _example("Lost", {"outcome": "lost", "reason": "competitor", "note": "Went with Acme"}),
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None, filter_backends=[])
    def close(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = CloseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            lead = services.lead_close(
                lead=lead,
                won=data["outcome"] == "won",
                amount=data.get("deal_value"),
                currency=data["currency"],
                reason=data["reason"],
                note=data["note"],
                actor=signed_in_user(request),
            )
        except services.LeadInvalid as invalid:
            raise invalid.renamed({"amount": "deal_value"}) from None
        return Response(LeadSerializer(lead).data)

    @extend_schema(
        summary="Add a note to the lead's timeline",
        request=NoteSerializer,
        responses={201: ActivitySerializer, 400: FIELD_ERRORS},
        examples=[_example("Note", {"text": "Prefers e-mail; call after 3 pm"})],
    )
    @action(detail=True, methods=["post"], filterset_class=None, filter_backends=[])
    def notes(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        activity = services.lead_note_add(
            lead=lead, text=serializer.validated_data["text"], actor=signed_in_user(request)
        )
        return Response(ActivitySerializer(activity).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Log a call or meeting that took place",
        description="`occurred_at` defaults to now; a time in the future or before the lead was created is a 400.",
        request=ContactSerializer,
        responses={201: ActivitySerializer, 400: FIELD_ERRORS},
        examples=[
            _example(
                "Call",
                {"kind": "call", "summary": "Walked through pricing", "occurred_at": "2026-11-20T09:30:00Z"},
            ),
            _example("Meeting, now", {"kind": "meeting", "summary": "Demo with the IT team"}),
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None, filter_backends=[])
    def calls(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = ContactSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        activity = services.lead_contact_log(
            lead=lead,
            kind=data["kind"],
            summary=data["summary"],
            occurred_at=data["occurred_at"],
            actor=signed_in_user(request),
        )
        return Response(ActivitySerializer(activity).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Everything the portal holds about the lead's person (GDPR access request)",
        description=(
            "Profile, consent, activities, stage history, BANT, assignments and partner feedback, as JSON. "
            "Marketing managers and superusers only (others: 403); token scope `read`."
        ),
        responses={
            200: inline_serializer(
                "PersonalDataExport",
                {
                    "exported_at": serializers.DateTimeField(),
                    "lead": serializers.DictField(),
                    "activities": serializers.ListField(child=serializers.DictField()),
                    "stage_history": serializers.ListField(child=serializers.DictField()),
                    "qualification": serializers.DictField(allow_null=True),
                    "assignments": serializers.ListField(child=serializers.DictField()),
                    "partner_feedback": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="export",
        url_name="export",
        filterset_class=None,
        filter_backends=[],
        permission_classes=[InternalOnly, LeadAccess, HandlesDataRequests, TokenHasScope],
    )
    def personal_data(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        answer = Response(erasure.lead_export(lead))
        answer["Content-Disposition"] = f'inline; filename="lead-{lead.pk}-personal-data.json"'
        return answer

    @extend_schema(
        summary="Erase the lead's person (GDPR erasure request)",
        description=(
            "Anonymises e-mail, names, phone, job title, custom attributes, free text and personal event "
            "properties; keeps the anonymous record for the reports; withdraws consent; disqualifies a lead "
            "nobody in sales has taken yet; sends `lead.erased`; refuses later captures, events and imports "
            "of the address until the person opts in again. Records who erased it and when. Twice: 409. "
            "Marketing managers and superusers only (others: 403); token scope `work`."
        ),
        request=EraseSerializer,
        responses={
            400: FIELD_ERRORS,
            200: inline_serializer(
                "ErasureResult",
                {
                    "id": serializers.IntegerField(),
                    "erased_at": serializers.DateTimeField(),
                    "erased_by": serializers.CharField(allow_null=True),
                },
            ),
            409: OpenApiResponse(description="Erased already"),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        filterset_class=None,
        filter_backends=[],
        permission_classes=[InternalOnly, LeadAccess, HandlesDataRequests, TokenHasScope],
    )
    def erase(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        user = signed_in_user(request)
        lead = self.get_object()
        EraseSerializer(data=request.data).is_valid(raise_exception=True)
        lead = erasure.lead_erase(lead=lead, actor=user)
        return Response({"id": lead.pk, "erased_at": lead.erased_at, "erased_by": user.get_username()})

    @extend_schema(summary="The lead's timeline, newest first", responses=ActivitySerializer(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, filter_backends=[])
    def activities(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        page = self.paginate_queryset(selectors.lead_timeline(self.get_object()))
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)

    # --- export: the filtered list as a file -------------------------------------------------------

    def perform_content_negotiation(self, request: Request, force: bool = False):
        # `?format=csv|xlsx` picks the export's file type, not a DRF renderer: its answers are files
        # (HttpResponse) and its errors JSON.
        if getattr(self, "action", None) == "list_export":
            return JSONRenderer(), JSONRenderer.media_type
        return super().perform_content_negotiation(request, force)

    @extend_schema(
        operation_id="v1_leads_list_export",
        summary="Export the lead list as CSV or Excel (the list's filters, search and ordering; what you may see)",
        description=(
            "`format=csv` (streamed, UTF-8 with BOM) or `format=xlsx`. Columns: the list's fields, with human "
            "headers. A text that starts with = + - @, a tab or a carriage return is prefixed with a single "
            "quote, so no spreadsheet runs it as a formula."
        ),
        parameters=[OpenApiParameter("format", str, enum=["csv", "xlsx"], required=True)],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"),
            (200, export.XLSX_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="Excel workbook"),
            400: FIELD_ERRORS,
        },
    )
    @action(detail=False, methods=["get"], url_path="export", url_name="list-export", pagination_class=None)
    def list_export(self, request: Request, **kwargs) -> HttpResponse | StreamingHttpResponse | Response:
        kind = request.query_params.get("format", "")
        if kind not in ("csv", "xlsx"):
            return Response({"format": ['One of "csv", "xlsx".']}, status=status.HTTP_400_BAD_REQUEST)
        leads = self.filter_queryset(self.get_queryset())
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        if kind == "csv":
            response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
                export.csv_lines(export.lead_rows(leads), export.headers()), content_type="text/csv; charset=utf-8"
            )
        else:
            if leads.count() > export.XLSX_MAX_ROWS:
                return Response(
                    {"format": [f"An Excel sheet holds at most {export.XLSX_MAX_ROWS:,} leads: export CSV."]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            response = HttpResponse(
                export.xlsx_bytes(export.lead_rows(leads), export.headers()), content_type=export.XLSX_CONTENT_TYPE
            )
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.{kind}"'
        return response


class EventsView(APIView):
    permission_classes = [InternalOnly, CanCapture, TokenHasScope]
    required_scope = Scope.CAPTURE

    @extend_schema(
        summary="Ingest events (one object or a list of up to 1,000)",
        description=(
            "Each event names its lead by `lead` (id) or `email` (an unknown e-mail captures a new lead). "
            "Replaying an event with the same `source` + `external_id` stores it once. "
            "If any item is invalid, nothing of the batch is stored and the errors are keyed by item index."
        ),
        request=EventSerializer(many=True),
        responses={201: EventsResultSerializer, 200: EventsResultSerializer},
    )
    def post(self, request: Request) -> Response:
        items = request.data if isinstance(request.data, list) else [request.data]
        batch = EventBatchSerializer(data=items)
        if not batch.is_valid():
            return Response(_errors_by_index(batch.errors), status=status.HTTP_400_BAD_REQUEST)
        result = services.events_ingest(events=batch.validated_data, actor=signed_in_user(request))
        return Response(result, status=status.HTTP_201_CREATED if result["stored"] else status.HTTP_200_OK)


def _errors_by_index(errors) -> dict:
    if isinstance(errors, list):  # per-item errors, positional, {} for valid items
        items = {str(i): e for i, e in enumerate(errors) if e}
    elif isinstance(errors, dict) and "non_field_errors" not in errors:
        items = errors  # already keyed by index (EventBatchSerializer.validate)
    else:
        return {"detail": "Invalid batch; nothing was stored.", "errors": errors}
    return {"detail": f"{len(items)} invalid item(s); nothing was stored.", "items": items}
