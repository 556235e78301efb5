"""/api/v1/webhooks/: subscriptions, their delivery log, replay and resume. For marketing managers
and staff without a role (webhooks.selectors.can_manage_webhooks); a partner gets 404 (InternalOnly),
anyone else 403; a token needs the `webhooks` scope. Writes go through webhooks.services."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from leads.api.permissions import InternalOnly
from leads.api.scopes import TokenHasScope
from leads.auth import signed_in_user
from leads.models import Scope

from .. import selectors, services
from ..models import WebhookSubscription
from .serializers import DeliverySerializer, PingSerializer, WebhookCreatedSerializer, WebhookSerializer


class CanManageWebhooks(BasePermission):
    message = "Only marketing managers and administrators manage webhooks."

    def has_permission(self, request, view) -> bool:
        return selectors.can_manage_webhooks(request.user)


class WebhookViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [IsAuthenticated, InternalOnly, CanManageWebhooks, TokenHasScope]
    required_scope = Scope.WEBHOOKS
    serializer_class = WebhookSerializer
    queryset = WebhookSubscription.objects.none()  # for the schema; get_queryset answers

    def get_queryset(self):
        return selectors.subscriptions()

    @extend_schema(request=WebhookSerializer, responses={201: WebhookCreatedSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = WebhookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = services.subscription_create(
            name=data["name"],
            url=data["url"],
            events=data["events"],
            filter=[dict(c) for c in data.get("filter", [])],
            secret=data.get("secret", ""),
            active=data.get("active", True),
            actor=signed_in_user(request),
        )
        return Response(WebhookCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args, **kwargs) -> Response:
        subscription = self.get_object()
        partial = kwargs.get("partial", False)
        serializer = WebhookSerializer(subscription, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        subscription = services.subscription_update(
            subscription=subscription,
            name=data.get("name"),
            url=data.get("url"),
            events=data.get("events"),
            filter=[dict(c) for c in data["filter"]] if "filter" in data else ([] if not partial else None),
            secret=data.get("secret"),
            active=data.get("active"),
        )
        return Response(WebhookSerializer(selectors.subscriptions().get(pk=subscription.pk)).data)

    def perform_destroy(self, instance: WebhookSubscription) -> None:
        services.subscription_delete(subscription=instance)

    @extend_schema(summary="The subscription's deliveries, newest first", responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="deliveries")
    def deliveries(self, request: Request, pk: str | None = None) -> Response:
        deliveries = selectors.deliveries_of(self.get_object())
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Send a delivery again (same event id, due now, a fresh 24 h)",
        request=None,
        responses=DeliverySerializer,
    )
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[0-9]+)/replay")
    def replay(self, request: Request, pk: str | None = None, delivery_id: str | None = None) -> Response:
        subscription = self.get_object()
        delivery = get_object_or_404(selectors.deliveries_of(subscription), pk=delivery_id)
        delivery = services.delivery_replay(delivery=delivery, actor=signed_in_user(request))
        return Response(DeliverySerializer(selectors.deliveries_of(subscription).get(pk=delivery.pk)).data)

    @extend_schema(summary="Lift a pause: the waiting deliveries go out", request=None, responses=WebhookSerializer)
    @action(detail=True, methods=["post"], url_path="resume")
    def resume(self, request: Request, pk: str | None = None) -> Response:
        subscription = services.subscription_resume(subscription=self.get_object(), actor=signed_in_user(request))
        return Response(WebhookSerializer(selectors.subscriptions().get(pk=subscription.pk)).data)

    @extend_schema(
        summary="Send a signed test event (webhook.ping) now and show the receiver's answer",
        request=None,
        responses=PingSerializer,
    )
    @action(detail=True, methods=["post"], url_path="ping")
    def ping(self, request: Request, pk: str | None = None) -> Response:
        outcome = services.subscription_ping(subscription=self.get_object())
        return Response(
            {"delivered": outcome.delivered, "response_code": outcome.response_code, "error": outcome.error}
        )
