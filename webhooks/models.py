"""Outbound webhooks: who wants which events (subscriptions), what happened (events, the outbox) and
each attempt to tell a subscription about one event (deliveries).

An event and its deliveries are written in the transaction that made the change
(`webhooks.outbox.record`), so a crash or a broker outage after the commit delays a delivery but never
loses it; workers send them (`webhooks.services.deliveries_send`), a beat job picks up what no task did.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from leads.models import ConditionRow


class EventType(models.TextChoices):
    LEAD_CREATED = "lead.created", "A lead was created"
    LEAD_UPDATED = "lead.updated", "A lead's profile changed"
    LEAD_STAGE_CHANGED = "lead.stage_changed", "A lead moved to another stage"
    LEAD_MQL = "lead.mql", "A lead became marketing qualified"
    LEAD_ASSIGNED = "lead.assigned", "A lead was assigned (rep, partner or pool)"
    LEAD_ACCEPTED = "lead.accepted", "A rep or partner accepted a lead"
    LEAD_CLOSED = "lead.closed", "A lead was closed (won or lost)"
    PARTNER_FEEDBACK = "partner.feedback", "A partner reported feedback"
    LEAD_ERASED = "lead.erased", "A lead's personal data was erased"


def new_secret() -> str:
    """32 random URL-safe characters (192 bits): the HMAC key a receiver verifies with."""
    return secrets.token_urlsafe(24)


class WebhookSubscription(models.Model):
    """A receiver: where to POST, which event types, for which leads (all `filter_conditions` hold)."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="Event types this subscription receives")
    secret = models.CharField(max_length=100, default=new_secret)
    active = models.BooleanField(default=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(max_length=500, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


class WebhookFilterCondition(ConditionRow):
    """One condition of a subscription's filter (all must hold): the routing and scoring rules'
    vocabulary and editor (leads.conditions)."""

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="conditions")

    class Meta:
        ordering = ["pk"]


class WebhookEvent(models.Model):
    """Something that happened, as sent to every subscription that wants it. `lead_id` is a plain
    number, not a foreign key: an erased or deleted lead keeps its history (its payloads scrubbed)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=30, choices=EventType.choices)
    lead_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["created_at"], name="webhookevent_created")]  # the daily prune

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class WebhookDelivery(models.Model):
    """One event for one subscription: pending until a 2xx (delivered) or 24 h of failures (failed)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (gave up)"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # While a worker sends it; a killed worker's claim runs out and the delivery is sent again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The due deliveries (beat job): pending ones by when they are next due; small, partial.
            models.Index(fields=["next_attempt_at"], name="webhookdelivery_due", condition=Q(status="pending")),
            # A subscription's delivery log, newest first; its pending ones on resume.
            models.Index(fields=["subscription", "status", "next_attempt_at"], name="webhookdelivery_sub"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.subscription_id}: {self.status}"
