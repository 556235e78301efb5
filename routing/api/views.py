"""Accept / reject / claim / availability / assignment history. Refusals (RoutingError, and
TransitionRefused from the lifecycle) are answered by leads.api.errors: 409 with detail and code."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import selectors as lead_selectors
from leads.api.permissions import InternalOnly
from leads.api.scopes import TokenHasScope
from leads.api.serializers import LeadSerializer
from leads.auth import signed_in_user
from leads.models import Lead, Role
from routing import selectors, services
from routing.services import RoutingError

from .serializers import (
    AssignmentSerializer,
    AvailabilityResultSerializer,
    AvailabilitySerializer,
    ClaimSerializer,
    PoolEntrySerializer,
    RejectSerializer,
    RoutingErrorSerializer,
)

REFUSED = OpenApiResponse(RoutingErrorSerializer, "Refused (not yours, already taken, at capacity …)")


class IsSalesRep(BasePermission):
    message = "Only sales reps and managers do this."

    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and request.user.role in (Role.SALES_REP, Role.SALES_MANAGER)


def visible_lead(request: Request, pk: int) -> Lead:
    return get_object_or_404(lead_selectors.lead_visible_to(signed_in_user(request)), pk=pk)


class AcceptView(APIView):
    permission_classes = [InternalOnly, IsSalesRep, TokenHasScope]

    @extend_schema(
        summary="Accept a lead handed to you (mql → sal)",
        request=None,
        responses={200: AssignmentSerializer, 409: REFUSED},
    )
    def post(self, request: Request, pk: int) -> Response:
        lead = visible_lead(request, pk)
        assignment = services.assignment_accept(lead=lead, user=signed_in_user(request))
        return Response(AssignmentSerializer(assignment).data)


class RejectView(APIView):
    permission_classes = [InternalOnly, IsSalesRep, TokenHasScope]

    @extend_schema(
        summary="Reject a lead with a reason (back to marketing, or routed on, per rule)",
        request=RejectSerializer,
        responses={200: AssignmentSerializer, 204: None, 409: REFUSED},
    )
    def post(self, request: Request, pk: int) -> Response:
        lead = visible_lead(request, pk)
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reason = serializer.validated_data["reason"]
        rerouted = services.assignment_reject(lead=lead, user=signed_in_user(request), reason=reason)
        if rerouted is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSerializer(rerouted).data)


class AssignmentsView(APIView):
    permission_classes = [InternalOnly, IsAuthenticated, TokenHasScope]

    @extend_schema(
        summary="The lead's assignment history with the decision trace", responses=AssignmentSerializer(many=True)
    )
    def get(self, request: Request, pk: int) -> Response:
        lead = visible_lead(request, pk)
        return Response(AssignmentSerializer(selectors.lead_assignments(lead), many=True).data)


class PoolView(APIView):
    permission_classes = [InternalOnly, IsSalesRep, TokenHasScope]

    @extend_schema(
        summary="Leads you may claim: with details (cherry-pick, shark tank) or only how long "
        "they have waited (blind pull: details after the claim)",
        responses=PoolEntrySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        entries = selectors.pool_for(signed_in_user(request))[:200]
        return Response(PoolEntrySerializer(entries, many=True).data)


class PoolClaimView(APIView):
    permission_classes = [InternalOnly, IsSalesRep, TokenHasScope]

    @extend_schema(
        summary="Claim a lead from your pool: a given one, or the oldest of your blind pools",
        description=(
            "Capacity is checked under your profile's lock: parallel claims never take you past it. "
            "Blind pools' leads are pulled with an empty body (oldest first), never by id (409 `blind_pool`)."
        ),
        request=ClaimSerializer,
        responses={200: LeadSerializer, 409: REFUSED},
    )
    def post(self, request: Request) -> Response:
        serializer = ClaimSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lead_id = serializer.validated_data.get("lead")
        lead = Lead.objects.filter(pk=lead_id).first() if lead_id else None
        if lead_id and lead is None:
            raise RoutingError("This lead is not in a pool.", "not_in_pool")
        assignment = services.pool_claim(user=signed_in_user(request), lead=lead)
        return Response(LeadSerializer(assignment.lead).data)


class AvailabilityView(APIView):
    permission_classes = [InternalOnly, IsSalesRep, TokenHasScope]

    @extend_schema(
        summary="Set yourself away until a time (routing skips you), or available (null)",
        request=AvailabilitySerializer,
        responses=AvailabilityResultSerializer,
    )
    def post(self, request: Request) -> Response:
        serializer = AvailabilitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        away_until = serializer.validated_data["away_until"]
        profile = services.rep_set_availability(user=signed_in_user(request), away_until=away_until)
        return Response({"available": not profile.is_away(), "away_until": profile.away_until})
