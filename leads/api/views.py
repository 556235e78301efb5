"""The lead API: capture/upsert, list and filter, profile update, lifecycle moves, timeline, events."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import selectors, services
from leads.models import Lead

from .filters import LeadFilter
from .permissions import CanCapture, LeadAccess
from .serializers import (
    ActivitySerializer,
    EventBatchSerializer,
    EventSerializer,
    EventsResultSerializer,
    LeadCaptureSerializer,
    LeadSerializer,
    LeadWriteSerializer,
    TransitionRefusedSerializer,
    TransitionSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List leads (paginated, filterable)"),
    retrieve=extend_schema(summary="One lead"),
    create=extend_schema(
        summary="Capture a lead (upsert by e-mail)",
        request=LeadCaptureSerializer,
        responses={201: LeadSerializer, 200: LeadSerializer},
    ),
    partial_update=extend_schema(summary="Update a lead's profile", request=LeadWriteSerializer),
)
class LeadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = LeadSerializer
    permission_classes = [LeadAccess]
    filterset_class = LeadFilter
    filter_backends = [
        *viewsets.GenericViewSet.filter_backends,
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
        return selectors.lead_visible_to(self.request.user)

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = LeadCaptureSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead, created = services.lead_capture(data=serializer.validated_data, source="api", actor=request.user)
        return Response(LeadSerializer(lead).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def partial_update(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = LeadWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_update(lead=lead, data=serializer.validated_data, actor=request.user)
        return Response(LeadSerializer(lead).data)

    @extend_schema(
        summary="Move a lead to another stage",
        request=TransitionSerializer,
        responses={200: LeadSerializer, 409: OpenApiResponse(TransitionRefusedSerializer, "Move refused")},
    )
    @action(detail=True, methods=["post"])
    def transition(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        lead = self.get_object()
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead = services.lead_transition(
            lead=lead,
            to_stage=serializer.validated_data["to"],
            reason=serializer.validated_data["reason"],
            actor=request.user,
        )
        return Response(LeadSerializer(lead).data)

    @extend_schema(summary="The lead's timeline, newest first", responses=ActivitySerializer(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, filter_backends=[])
    def activities(self, request: Request, pk: str | None = None, **kwargs) -> Response:
        page = self.paginate_queryset(selectors.lead_timeline(self.get_object()))
        return self.get_paginated_response(ActivitySerializer(page, many=True).data)


class EventsView(APIView):
    permission_classes = [CanCapture]

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
        result = services.events_ingest(events=batch.validated_data, actor=request.user)
        return Response(result, status=status.HTTP_201_CREATED if result["stored"] else status.HTTP_200_OK)


def _errors_by_index(errors) -> dict:
    if isinstance(errors, list):  # per-item errors, positional, {} for valid items
        items = {str(i): e for i, e in enumerate(errors) if e}
    elif isinstance(errors, dict) and "non_field_errors" not in errors:
        items = errors  # already keyed by index (EventBatchSerializer.validate)
    else:
        return {"detail": "Invalid batch; nothing was stored.", "errors": errors}
    return {"detail": f"{len(items)} invalid item(s); nothing was stored.", "items": items}
