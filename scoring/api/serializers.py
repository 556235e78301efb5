from rest_framework import serializers

from scoring.models import BehaviorRule, ExclusionRule, FitRule, ScoringModel


class FitRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = FitRule
        fields = ["field", "operator", "value", "points", "label"]


class BehaviorRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = BehaviorRule
        fields = ["activity_type", "property", "operator", "value", "points", "max_points", "max_occurrences", "label"]


class ExclusionRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExclusionRule
        fields = ["category", "field", "operator", "value", "action", "points", "label"]


class ScoringModelSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(read_only=True)
    fit_rules = FitRuleSerializer(many=True, read_only=True)
    behavior_rules = BehaviorRuleSerializer(many=True, read_only=True)
    exclusion_rules = ExclusionRuleSerializer(many=True, read_only=True)

    class Meta:
        model = ScoringModel
        fields = [
            "version",
            "name",
            "mql_threshold",
            "min_grade",
            "half_life_days",
            "grade_a_min",
            "grade_b_min",
            "grade_c_min",
            "activated_at",
            "fit_rules",
            "behavior_rules",
            "exclusion_rules",
        ]


class ContributionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["fit", "exclusion", "behavior"])
    rule = serializers.CharField(source="label")
    raw = serializers.FloatField(help_text="Points before decay and caps")
    points = serializers.FloatField(help_text="What it adds to the score now")
    occurrences = serializers.IntegerField()


class LeadScoreSerializer(serializers.Serializer):
    lead = serializers.IntegerField()
    total = serializers.FloatField()
    fit = serializers.FloatField()
    engagement = serializers.FloatField()
    grade = serializers.CharField()
    disqualified = serializers.BooleanField()
    qualifies_for_mql = serializers.BooleanField()
    model_version = serializers.IntegerField()
    computed_at = serializers.DateTimeField()
    stored_score = serializers.FloatField(help_text="As stored by the last rescoring")
    scored_at = serializers.DateTimeField(allow_null=True)
    breakdown = ContributionSerializer(many=True)
