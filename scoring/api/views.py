from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leads import selectors as lead_selectors
from leads.api.permissions import InternalOnly
from leads.api.scopes import TokenHasScope
from leads.auth import signed_in_user
from scoring import engine, selectors, services

from .serializers import LeadScoreSerializer, ScoringModelSerializer

NO_MODEL = "No scoring model is active."


class IsInternal(BasePermission):
    """Marketing, sales and staff; the weights are not for partners or integration clients."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return user.is_authenticated and lead_selectors.can_read_leads(user)


class ActiveModelView(APIView):
    permission_classes = [InternalOnly, IsInternal, TokenHasScope]

    @extend_schema(
        summary="The active scoring model: threshold, minimum grade, half-life, rules", responses=ScoringModelSerializer
    )
    def get(self, request: Request) -> Response:
        model = selectors.active_model()
        if model is None:
            raise NotFound(NO_MODEL)
        return Response(ScoringModelSerializer(selectors.model_with_rules(model.pk)).data)


class LeadScoreView(APIView):
    permission_classes = [InternalOnly, IsAuthenticated, TokenHasScope]

    @extend_schema(
        summary="A lead's score now, with the breakdown of every rule that contributed", responses=LeadScoreSerializer
    )
    def get(self, request: Request, pk: int) -> Response:
        lead = get_object_or_404(lead_selectors.lead_visible_to(signed_in_user(request)), pk=pk)
        now = timezone.now()
        spec, score = services.lead_score_explain(lead=lead, now=now)
        if spec is None or score is None:
            raise NotFound(NO_MODEL)
        data = {
            "lead": lead.pk,
            "total": score.total,
            "fit": score.fit,
            "engagement": score.engagement,
            "grade": score.grade,
            "disqualified": score.disqualified,
            "qualifies_for_mql": engine.qualifies_for_mql(spec, score.total, score.grade, score.disqualified),
            "model_version": spec.version,
            "computed_at": now,
            "stored_score": lead.score,
            "scored_at": lead.scored_at,
            "breakdown": score.breakdown,
        }
        return Response(LeadScoreSerializer(data).data)
