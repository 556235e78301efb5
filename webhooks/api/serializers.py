"""Input and output shapes of /api/v1/webhooks/. The secret is write-only: only the answer to a
create shows it (WebhookCreatedSerializer), once."""

from __future__ import annotations

from rest_framework import serializers

from leads.conditions import FIELD_CHOICES, OPERATOR_CHOICES

from ..models import EventType, WebhookDelivery, WebhookSubscription


class ConditionSerializer(serializers.Serializer):
    field = serializers.ChoiceField(choices=FIELD_CHOICES)
    operator = serializers.ChoiceField(choices=OPERATOR_CHOICES)
    value = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), min_length=1)
    filter = ConditionSerializer(many=True, required=False, help_text="Conditions on the lead; all must hold")
    secret = serializers.CharField(
        write_only=True,
        required=False,
        min_length=16,
        max_length=100,
        help_text="The HMAC key; generated when not given, shown once in the answer to the create",
    )
    url = serializers.URLField(max_length=500)

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "name",
            "url",
            "events",
            "filter",
            "secret",
            "active",
            "paused_at",
            "paused_reason",
            "consecutive_failures",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "paused_at",
            "paused_reason",
            "consecutive_failures",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def to_representation(self, instance: WebhookSubscription) -> dict:
        data = super().to_representation(instance)
        data["filter"] = [
            {"field": c.field, "operator": c.operator, "value": c.value} for c in instance.conditions.all()
        ]
        return data


class WebhookCreatedSerializer(WebhookSerializer):
    """The answer to a create: with the secret, this once."""

    secret = serializers.CharField(read_only=True)

    class Meta(WebhookSerializer.Meta):
        pass


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    created = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "response_code",
            "last_error",
            "first_attempt_at",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
            "created",
        ]
        read_only_fields = fields


class PingSerializer(serializers.Serializer):
    delivered = serializers.BooleanField()
    response_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
