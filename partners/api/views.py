"""The API for partner systems: a partner user's organisation's leads, and feedback on them.

Scoped once, in partners.selectors.partner_leads: another organisation's lead is a 404 for every
endpoint; a user who is not a partner gets 403 (like the other role-bound endpoints)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from leads.api.scopes import TokenHasScope
from leads.auth import signed_in_user
from leads.models import Lead, Role, Scope
from partners import selectors, services
from partners.models import PartnerFeedback

from .filters import PartnerLeadFilter
from .serializers import (
    FeedbackInputSerializer,
    FeedbackRefusedSerializer,
    PartnerFeedbackSerializer,
    PartnerLeadSerializer,
)


class IsPartnerUser(BasePermission):
    message = "Only partner users use the partner API."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return user.is_authenticated and user.role == Role.PARTNER and bool(user.partner_organization_id)


@extend_schema_view(
    list=extend_schema(summary="Leads routed to your organisation (paginated; updated_since for delta sync)"),
    retrieve=extend_schema(summary="One lead routed to your organisation, with your feedback"),
)
class PartnerLeadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PartnerLeadSerializer
    permission_classes = [IsPartnerUser, TokenHasScope]
    required_scope = Scope.PARTNER
    filterset_class = PartnerLeadFilter
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Lead.objects.none()
        return selectors.partner_leads(signed_in_user(self.request)).order_by("-handed_over_at", "-pk")

    @extend_schema(
        summary="Report feedback on a lead: accepted, declined, contacted, meeting, proposal, won, lost, unreachable",
        description=(
            "accepted → sal; declined (with a reason) → routed to someone else, never back to you; "
            "proposal → sql; won (deal_value > 0) → won; lost (with a reason) → lost. A report on a lead "
            "still waiting for acceptance accepts it first. With `external_id`, a retry returns the "
            "feedback recorded the first time (200) and changes nothing."
        ),
        request=FeedbackInputSerializer,
        responses={
            201: PartnerFeedbackSerializer,
            200: OpenApiResponse(PartnerFeedbackSerializer, "The same external_id was recorded before"),
            409: OpenApiResponse(FeedbackRefusedSerializer, "The lead's state does not allow it"),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None, filter_backends=[])
    def feedback(self, request: Request, pk: str | None = None) -> Response:
        lead = self.get_queryset().filter(pk=self.kwargs["pk"]).first()
        org_id = signed_in_user(request).partner_organization_id
        if (
            lead is None
            and not PartnerFeedback.objects.filter(organization_id=org_id, lead_id=self.kwargs["pk"]).exists()
        ):
            raise NotFound()  # another organisation's lead (or none): 404 before looking at the body
        serializer = FeedbackInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if lead is None:
            # A retry of a decline: the lead has moved on, but the feedback is ours to see again.
            replay = PartnerFeedback.objects.filter(
                organization_id=org_id,
                external_id=(data["external_id"] or "").strip() or None,
                lead_id=self.kwargs["pk"],
            ).first()
            if replay is None:
                raise NotFound()
            return Response(PartnerFeedbackSerializer(replay).data, status=status.HTTP_200_OK)
        # FeedbackInvalid is a 400, FeedbackRefused a 409 ("not_yours" a 404): leads.api.errors answers them.
        feedback, created = services.feedback_record(lead=lead, user=signed_in_user(request), **data)
        return Response(
            PartnerFeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )
