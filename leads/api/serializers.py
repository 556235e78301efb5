"""Input and output shapes of the lead API. Thin: validation here, writes in leads.services."""

from __future__ import annotations

import functools
import re
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_countries import countries
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from leads.limits import json_object_problem
from leads.models import Activity, ActivityType, Grade, Lead, LostReason, Qualification, Stage, User
from leads.services import (
    BANT_NOTE_MAX_LENGTH,
    CLOSE_NOTE_MAX_LENGTH,
    CONTACT_KINDS,
    CONTACT_SUMMARY_MAX_LENGTH,
    LATEST_TOUCH_FIELDS,
    NOTE_MAX_LENGTH,
    PROFILE_FIELDS,
    STATE_FIELDS,
)

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


def validate_json_object(value: Any) -> dict:
    check_json_object(value)
    return value


def check_json_object(value: Any) -> None:
    """validate_json_object as a field's validator (whose answer DRF does not read)."""
    if (problem := json_object_problem(value)) is not None:
        raise serializers.ValidationError(problem)


if TYPE_CHECKING:
    _ModelSerializer = serializers.ModelSerializer
else:
    _ModelSerializer = object  # a mixin: the serializer it is mixed into is the next in line


class CachedFieldsMixin(_ModelSerializer):
    """DRF rebuilds a ModelSerializer's fields from the model on every instance (about 1 ms for a
    lead). Work out the fields once per class and give every instance fresh ones made from the same
    arguments; a deep copy would copy the 250 country choices each time, which costs more."""

    _prototype_fields: ClassVar[dict[str, serializers.Field]]  # each class's own, made on first use

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        prototype = cls.__dict__.get("_prototype_fields")
        if prototype is None:
            prototype = super().get_fields()
            cls._prototype_fields = prototype
        # Field.__new__ keeps each field's arguments in _args/_kwargs (DRF's __deepcopy__ uses them);
        # the stubs do not declare them.
        return {
            name: field.__class__(*field._args, **field._kwargs)  # type: ignore[union-attr]
            for name, field in prototype.items()
        }


COUNTRY_CODES = frozenset(code for code, _ in countries)
LANGUAGE_CODES = frozenset(code for code, _ in settings.LANGUAGES)


class _CodeField(serializers.CharField):
    """A code from a fixed set, checked against a frozenset. (A ChoiceField over 250 countries costs
    a quarter of a millisecond to build, and the capture endpoint builds several per request.)"""

    codes: frozenset[str] = frozenset()
    kind = ""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def normalise(self, value: str) -> str:
        return value

    def to_internal_value(self, data):
        value = self.normalise(super().to_internal_value(data))
        if value and value not in self.codes:
            raise serializers.ValidationError(f'"{data}" is not a valid {self.kind}.')
        return value

    def to_representation(self, value):
        return str(value.code if hasattr(value, "code") else value or "")


@extend_schema_field({"type": "string", "enum": ["", *sorted(COUNTRY_CODES)], "description": "ISO 3166-1 alpha-2"})
class CountryCodeField(_CodeField):
    codes, kind = COUNTRY_CODES, "ISO 3166-1 alpha-2 country code"

    def normalise(self, value: str) -> str:
        return value.upper()


@extend_schema_field({"type": "string", "enum": ["", *sorted(LANGUAGE_CODES)]})
class LanguageCodeField(_CodeField):
    codes, kind = LANGUAGE_CODES, "language code"

    def normalise(self, value: str) -> str:
        return value.lower()


class LeadSerializer(CachedFieldsMixin, serializers.ModelSerializer):
    # Blank is a valid value of these choice fields (not yet graded, language unknown).
    grade = serializers.ChoiceField(choices=Grade.choices, allow_blank=True, read_only=True)
    lost_reason = serializers.ChoiceField(choices=LostReason.choices, allow_blank=True, read_only=True)
    language = LanguageCodeField(read_only=True)
    country = CountryCodeField(read_only=True)

    class Meta:
        model = Lead
        fields = [
            "id",
            "email",
            *PROFILE_FIELDS,
            *STATE_FIELDS,
            "handed_over_at",
            "respond_by",
            "deal_value",
            "deal_currency",
            "lost_reason",
            "closed_at",
            *LATEST_TOUCH_FIELDS,
            "attributes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CaptureResultSerializer(serializers.Serializer):
    """What a capture answers: the lead's id, whether it was new, and its stage — nothing else of an
    existing lead, so a client that knows an e-mail address learns no more about that person than
    it sent (the phone, score, owner, partner and attributes stay inside the company)."""

    id = serializers.IntegerField()
    created = serializers.BooleanField()
    stage = serializers.ChoiceField(choices=Stage.choices)


class LeadWriteSerializer(CachedFieldsMixin, serializers.ModelSerializer):
    """Profile fields a client may send; shared by capture (POST) and update (PATCH)."""

    country = CountryCodeField()
    language = LanguageCodeField()

    attributes = serializers.JSONField(required=False, validators=[check_json_object])

    class Meta:
        model = Lead
        fields = [*PROFILE_FIELDS, "attributes"]
        extra_kwargs = {f: {"required": False} for f in PROFILE_FIELDS}

    def validate_company_domain(self, value: str) -> str:
        return value.strip().lower()


class LeadCaptureSerializer(LeadWriteSerializer):
    # Capture is an upsert: an existing e-mail is not an error, so no unique validator here.
    email = serializers.EmailField(max_length=254)
    double_opt_in = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Send the lead the confirmation e-mail; its link confirms consent (a capture cannot)",
    )

    class Meta(LeadWriteSerializer.Meta):
        fields = ["email", *LeadWriteSerializer.Meta.fields, "double_opt_in"]


class TransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=Stage.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class TransitionRefusedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    to = serializers.CharField()
    allowed = serializers.ListField(child=serializers.CharField())
    use = serializers.CharField(
        required=False, help_text="A move this endpoint does not make: the endpoint that makes it (POST)"
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.CharField()  # a Python keyword, so declared here
        return fields


class CriterionSerializer(serializers.Serializer):
    confirmed = serializers.BooleanField()
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=BANT_NOTE_MAX_LENGTH,
        help_text="What confirms it (required when confirmed)",
    )


class QualifySerializer(serializers.Serializer):
    """BANT: the criteria given replace their stored value (confirmed and note); the others stay."""

    budget = CriterionSerializer(required=False)
    authority = CriterionSerializer(required=False)
    need = CriterionSerializer(required=False)
    timing = CriterionSerializer(required=False)

    def criteria(self) -> dict[str, tuple[bool, str]]:
        return {name: (value["confirmed"], value["note"]) for name, value in self.validated_data.items()}


class CriterionStateSerializer(serializers.Serializer):
    confirmed = serializers.BooleanField()
    note = serializers.CharField()


class QualificationSerializer(serializers.Serializer):
    """A lead's BANT and its stage; made from `QualificationSerializer.state(...)`."""

    lead = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices)
    budget = CriterionStateSerializer()
    authority = CriterionStateSerializer()
    need = CriterionStateSerializer()
    timing = CriterionStateSerializer()
    confirmed_count = serializers.IntegerField(min_value=0, max_value=4)
    complete = serializers.BooleanField(help_text="All four confirmed: the lead is sales-qualified")
    updated_at = serializers.DateTimeField()

    @staticmethod
    def state(qualification: Qualification, *, stage: str) -> dict[str, Any]:
        return {
            "lead": qualification.lead_id,
            "stage": stage,
            **{
                name: {"confirmed": getattr(qualification, name), "note": getattr(qualification, f"{name}_note")}
                for name in Qualification.CRITERIA
            },
            "confirmed_count": qualification.confirmed_count,
            "complete": qualification.complete,
            "updated_at": qualification.updated_at,
        }


OUTCOMES = [("won", "Won"), ("lost", "Lost")]


class CloseSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=OUTCOMES)
    deal_value = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, help_text="won: the deal's value, > 0"
    )
    currency = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=3, help_text="won: ISO 4217 code (default EUR)"
    )
    reason = serializers.ChoiceField(
        choices=LostReason.choices, required=False, allow_blank=True, default="", help_text="lost: why"
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=CLOSE_NOTE_MAX_LENGTH)


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=NOTE_MAX_LENGTH)


class ContactSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(kind, ActivityType(kind).label) for kind in CONTACT_KINDS])
    summary = serializers.CharField(max_length=CONTACT_SUMMARY_MAX_LENGTH)
    occurred_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When it took place (default: now); not in the future, not before the lead was created",
    )


class ActivitySerializer(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Activity
        fields = ["id", "type", "occurred_at", "properties", "source", "external_id", "created_by", "created_at"]
        read_only_fields = fields


class EventSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    lead = serializers.IntegerField(required=False, min_value=1, help_text="Lead id; or give `email`")
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    occurred_at = serializers.DateTimeField(required=False, help_text="Defaults to the time of receipt")
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    # A declared field, not Field.source: DRF's metaclass takes it off the class; the stubs cannot tell.
    source = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")  # type: ignore[assignment]
    properties = serializers.JSONField(required=False, validators=[check_json_object])

    def run_validation(self, data=serializers.empty):
        fast = fast_event(data)
        return fast if fast is not None else super().run_validation(data)

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


EVENT_KEYS = frozenset(EventSerializer._declared_fields)
EVENT_TYPE_VALUES = frozenset(value for value, _ in EVENT_TYPES)
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@functools.lru_cache(maxsize=20_000)
def _valid_email(email: str) -> bool:
    try:
        EmailValidator()(email)
    except DjangoValidationError:
        return False
    return len(email) <= 254


def _clean_text(value: Any, max_length: int) -> bool:
    return type(value) is str and len(value) <= max_length and value == value.strip() and not UNSTORABLE.search(value)


def fast_event(data: Any) -> dict[str, Any] | None:
    """The usual, well-formed event, checked without DRF's per-field machinery: a batch of 1,000
    validates in a few milliseconds instead of about 100. Anything unusual returns None and takes
    the full EventSerializer path, which also writes the error messages; a property test keeps the
    two in agreement."""
    if type(data) is not dict or not data.keys() <= EVENT_KEYS:
        return None
    email, lead = data.get("email"), data.get("lead")
    if ("email" in data and email is None) or ("lead" in data and lead is None):
        return None  # an explicit null is for the full validation to refuse
    kind = data.get("type")
    if (email is None) == (lead is None) or type(kind) is not str or kind not in EVENT_TYPE_VALUES:
        return None
    result: dict[str, Any] = {}
    if email is not None:
        if type(email) is not str or email != email.strip() or not _valid_email(email):
            return None
        result["email"] = email
    result["type"] = data["type"]
    raw_time = data.get("occurred_at")
    if raw_time is None:
        if "occurred_at" in data:
            return None
        result["occurred_at"] = timezone.now()
    else:
        parsed = parse_datetime(raw_time) if type(raw_time) is str else None
        if parsed is None or parsed.tzinfo is None:
            return None
        try:
            parsed = parsed.astimezone(UTC)
        except OverflowError:
            return None
        if parsed > timezone.now() + MAX_CLOCK_SKEW:
            return None
        result["occurred_at"] = parsed
    for key, limit in (("external_id", 200), ("source", 50)):
        if key in data:
            if not _clean_text(data[key], limit):
                return None
            result[key] = data[key]
    result.setdefault("source", "")
    if "properties" in data:
        try:
            result["properties"] = validate_json_object(data["properties"])
        except serializers.ValidationError:
            return None
    if lead is not None:
        if type(lead) is not int or lead < 1:
            return None
        result["lead_id"] = lead
    return result


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


class EraseSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(
        help_text="Must be true: erasing a person's data cannot be undone.",
    )

    def validate_confirm(self, value: bool) -> bool:
        if not value:
            raise serializers.ValidationError("Send true to erase: it cannot be undone.")
        return value
