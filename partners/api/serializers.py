"""What a partner system sends and sees. A partner sees the lead's profile, score and stage, and its
own organisation's feedback — not marketing's attributes, campaigns, notes or the assignment trace."""

from __future__ import annotations

from rest_framework import serializers

from leads.api.serializers import CachedFieldsMixin, CountryCodeField, LanguageCodeField
from leads.models import Grade, Lead, User
from leads.services import CONTACT_FIELDS
from partners.models import FeedbackReason, FeedbackStatus, PartnerFeedback
from partners.services import feedback_validate


class PartnerFeedbackSerializer(serializers.ModelSerializer):
    user: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reason = serializers.ChoiceField(choices=FeedbackReason.choices, allow_blank=True, read_only=True)

    class Meta:
        model = PartnerFeedback
        fields = ["id", "lead", "status", "reason", "note", "deal_value", "currency", "at", "user", "external_id"]
        read_only_fields = fields


class PartnerLeadSerializer(CachedFieldsMixin, serializers.ModelSerializer):
    grade = serializers.ChoiceField(choices=Grade.choices, allow_blank=True, read_only=True)
    language = LanguageCodeField(read_only=True)
    country = CountryCodeField(read_only=True)
    feedback_due_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Report on the lead by then (null once reported)"
    )
    feedback = PartnerFeedbackSerializer(source="my_feedback", many=True, read_only=True)

    class Meta:
        model = Lead
        fields = [
            "id",
            "email",
            *CONTACT_FIELDS,
            "stage",
            "score",
            "grade",
            "handed_over_at",
            "respond_by",
            "feedback_due_at",
            "deal_value",
            "deal_currency",
            "lost_reason",
            "closed_at",
            "updated_at",
            "feedback",
        ]
        read_only_fields = fields


class FeedbackInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=FeedbackStatus.choices)
    reason = serializers.ChoiceField(
        choices=FeedbackReason.choices,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required for lost (a LostReason) and declined; no other status takes one",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=4000)
    deal_value = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, default=None, help_text="Won only, > 0"
    )
    currency = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=3, help_text="Won only; ISO 4217, default EUR"
    )
    external_id = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        max_length=200,
        help_text="Your id for this feedback: sending it again returns the first one (200) and changes nothing",
    )

    def validate(self, data: dict) -> dict:
        errors = feedback_validate(
            status=data["status"],
            reason=data["reason"].strip(),
            deal_value=data["deal_value"],
            currency=data["currency"].strip().upper(),
        )
        if errors:
            raise serializers.ValidationError(errors)
        return data


class FeedbackRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
