from __future__ import annotations

from rest_framework import serializers

from routing.models import Assignment, RoutingRule


class RejectSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, allow_blank=False, trim_whitespace=True)


class ClaimSerializer(serializers.Serializer):
    lead = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="A lead of your pool (cherry-pick, shark tank, hybrid); omit it for the oldest of your blind pools",
    )


class AvailabilitySerializer(serializers.Serializer):
    away_until = serializers.DateTimeField(allow_null=True, help_text="null: available now")


class AvailabilityResultSerializer(serializers.Serializer):
    available = serializers.BooleanField()
    away_until = serializers.DateTimeField(allow_null=True)


class AssignmentSerializer(serializers.ModelSerializer):
    assignee = serializers.CharField(source="assignee_label", read_only=True)
    rule: serializers.SlugRelatedField[RoutingRule] = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "lead",
            "status",
            "assignee",
            "user",
            "partner",
            "rule",
            "strategy",
            "trace",
            "assigned_at",
            "due_at",
            "accepted_at",
            "ended_at",
            "note",
        ]
        read_only_fields = fields


class RoutingErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()


class PoolEntrySerializer(serializers.Serializer):
    """A pooled lead. In a blind pool only the wait is shown; the lead comes with the claim."""

    lead = serializers.SerializerMethodField()
    pool = serializers.SerializerMethodField()
    mode = serializers.ChoiceField(source="pool_mode", choices=RoutingRule.PoolMode.choices, read_only=True)
    waiting_since = serializers.DateTimeField(source="assigned_at")
    claim_by = serializers.DateTimeField(source="due_at", allow_null=True, help_text="The pool's SLA")
    escalated = serializers.SerializerMethodField(help_text="Nobody claimed it in time: the manager was told")

    def get_pool(self, entry) -> str:
        return entry.rule.name if entry.rule_id else "Team pool"

    def get_escalated(self, entry) -> bool:
        return entry.escalated_at is not None

    def get_lead(self, entry) -> dict | None:
        if entry.pool_mode == RoutingRule.PoolMode.BLIND:
            return None
        lead = entry.lead
        return {
            "id": lead.pk,
            "name": f"{lead.first_name} {lead.last_name}".strip(),
            "company": lead.company,
            "job_title": lead.job_title,
            "country": lead.country.code if lead.country else "",
            "score": lead.score,
            "grade": lead.grade,
            "product_interest": lead.product_interest,
        }
