"""Reads of the webhooks app that more than one door needs."""

from __future__ import annotations

from django.db.models import QuerySet

from leads.models import Role, User

from .models import WebhookDelivery, WebhookSubscription


def can_manage_webhooks(user: User) -> bool:
    """Marketing managers, and staff without a role (administrators); nobody else — sales
    managers are staff too, but webhooks are marketing's integration."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.role == Role.MARKETING or (user.is_staff and not user.role)


def subscriptions() -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.prefetch_related("conditions").order_by("pk")


def deliveries_of(subscription: WebhookSubscription) -> QuerySet[WebhookDelivery]:
    """A subscription's delivery log, newest first, with each delivery's event."""
    return (
        WebhookDelivery.objects.filter(subscription=subscription).select_related("event").order_by("-created_at", "-pk")
    )
