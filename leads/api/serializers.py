"""Input and output shapes of the lead API. Thin: validation here, writes in leads.services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_countries.serializer_fields import CountryField
from django_countries.serializers import CountryFieldMixin
from rest_framework import serializers

from leads.models import Activity, ActivityType, Grade, Lead, Stage, StageChange
from leads.services import PROFILE_FIELDS

MAX_JSON_KEYS = 100
# Types that belong to the portal itself and may not be injected by another system.
SYSTEM_ACTIVITY_TYPES = {
    ActivityType.CAPTURED,
    ActivityType.PROFILE_UPDATE,
    ActivityType.STAGE_CHANGE,
    ActivityType.ASSIGNMENT,
    ActivityType.PARTNER_FEEDBACK,
}
EVENT_TYPES = [(value, label) for value, label in ActivityType.choices if value not in SYSTEM_ACTIVITY_TYPES]
MAX_CLOCK_SKEW = timedelta(hours=1)
MAX_EVENTS_PER_BATCH = 1000


def _check_json_text(value: Any, path: str = "") -> None:
    """PostgreSQL's jsonb refuses NUL characters and lone surrogates: refuse them here, with a message."""
    if isinstance(value, str):
        if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise serializers.ValidationError(f"{path or 'value'} contains characters that cannot be stored.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_text(key, path)
            _check_json_text(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_text(item, f"{path}[{index}]")


def validate_json_object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be a JSON object.")
    if len(value) > MAX_JSON_KEYS:
        raise serializers.ValidationError(f"At most {MAX_JSON_KEYS} keys.")
    _check_json_text(value)
    return value


class LeadSerializer(CountryFieldMixin, serializers.ModelSerializer):
    # Blank is a valid value of these choice fields (not yet graded, language unknown).
    grade = serializers.ChoiceField(choices=Grade.choices, allow_blank=True, read_only=True)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, allow_blank=True, read_only=True)
    country = CountryField(allow_blank=True, read_only=True)

    class Meta:
        model = Lead
        fields = [
            "id",
            "email",
            *PROFILE_FIELDS,
            "stage",
            "score",
            "fit_score",
            "engagement_score",
            "grade",
            "owner",
            "partner",
            "marketing_suppressed",
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LeadWriteSerializer(CountryFieldMixin, serializers.ModelSerializer):
    """Profile fields a client may send; shared by capture (POST) and update (PATCH)."""

    attributes = serializers.JSONField(required=False, validators=[validate_json_object])

    class Meta:
        model = Lead
        fields = [*PROFILE_FIELDS, "attributes"]
        extra_kwargs = {f: {"required": False} for f in PROFILE_FIELDS}

    def validate_company_domain(self, value: str) -> str:
        return value.strip().lower()


class LeadCaptureSerializer(LeadWriteSerializer):
    # Capture is an upsert: an existing e-mail is not an error, so no unique validator here.
    email = serializers.EmailField(max_length=254)

    class Meta(LeadWriteSerializer.Meta):
        fields = ["email", *LeadWriteSerializer.Meta.fields]


class TransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=Stage.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class TransitionRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    to = serializers.CharField()
    allowed = serializers.ListField(child=serializers.CharField())

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField()  # a Python keyword, so declared here
        return fields


class ActivitySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Activity
        fields = ["id", "type", "occurred_at", "properties", "source", "external_id", "created_by", "created_at"]
        read_only_fields = fields


class StageChangeSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = StageChange
        fields = ["from_stage", "to_stage", "actor", "reason", "at"]
        read_only_fields = fields


class EventSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    lead = serializers.IntegerField(required=False, min_value=1, help_text="Lead id; or give `email`")
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    occurred_at = serializers.DateTimeField(required=False, help_text="Defaults to the time of receipt")
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    source = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")
    properties = serializers.JSONField(required=False, validators=[validate_json_object])

    def validate_occurred_at(self, value):
        if value > timezone.now() + MAX_CLOCK_SKEW:
            raise serializers.ValidationError("occurred_at lies in the future.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("email")) == bool(attrs.get("lead")):
            raise serializers.ValidationError({"email": ["Give exactly one of email and lead."]})
        attrs.setdefault("occurred_at", timezone.now())
        if "lead" in attrs:
            attrs["lead_id"] = attrs.pop("lead")
        return attrs


class EventBatchSerializer(serializers.ListSerializer):
    """Up to 1,000 events; every item valid or nothing is stored. Errors are keyed by item index."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("child", EventSerializer())
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", MAX_EVENTS_PER_BATCH)
        super().__init__(*args, **kwargs)

    def validate(self, attrs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lead_ids = {item["lead_id"] for item in attrs if item.get("lead_id")}
        if lead_ids:
            missing = lead_ids - set(Lead.objects.filter(pk__in=lead_ids).values_list("pk", flat=True))
            errors = {
                str(i): {"lead": [f"Lead {item['lead_id']} does not exist."]}
                for i, item in enumerate(attrs)
                if item.get("lead_id") in missing
            }
            if errors:
                raise serializers.ValidationError(errors)
        return attrs


class EventsResultSerializer(serializers.Serializer):
    stored = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    leads_created = serializers.IntegerField()
