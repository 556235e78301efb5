"""Scoring models: versioned weights, rules, thresholds and decay, tuned by marketing in the admin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from leads.conditions import OPERATOR_CHOICES, ConditionError, describe, describe_property, property_condition
from leads.models import ActivityType, ConditionRow, Grade, Lead


class ScoringModel(models.Model):
    """One version of the scoring weights. Draft → active → archived; exactly one is active."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    name = models.CharField(max_length=120)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, editable=False)
    mql_threshold = models.FloatField(
        "MQL threshold", default=60, help_text="A lead with at least this score becomes an MQL"
    )
    min_grade = models.CharField(
        "minimum grade",
        max_length=1, choices=Grade.choices, default=Grade.C, help_text="…and at least this grade (A is best)"
    )
    half_life_days = models.FloatField(
        "half-life (days)",
        default=30, validators=[MinValueValidator(0.5)], help_text="Engagement points halve every so many days"
    )
    grade_a_min = models.FloatField("grade A from", default=40, help_text="Fit score for grade A")
    grade_b_min = models.FloatField("grade B from", default=25, help_text="Fit score for grade B")
    grade_c_min = models.FloatField("grade C from", default=10, help_text="Fit score for grade C; below is D")
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="active"), name="one_active_scoring_model"),
            models.CheckConstraint(
                name="grade_bands_descend",
                condition=Q(grade_a_min__gte=F("grade_b_min")) & Q(grade_b_min__gte=F("grade_c_min")),
                violation_error_message="Grade bands must go down: A above B above C above D.",
            ),
            models.CheckConstraint(
                name="half_life_positive",
                condition=Q(half_life_days__gt=0),
                violation_error_message="The half-life must be more than 0 days.",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version} {self.name} ({self.get_status_display()})"

    @property
    def version(self) -> int:
        return self.pk

    def qualification_values(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in BOUNDED_FIELDS}

    def ceiling(self) -> ScoreCeiling:
        """The highest score this version's saved rules allow."""
        if self.pk is None:
            return score_ceiling((), (), ())
        return score_ceiling(self.fit_rules.all(), self.behavior_rules.all(), self.exclusion_rules.all())

    def qualification_problems(self) -> list[str]:
        """What is wrong with the threshold and the grade bands, against the saved rules, in words."""
        values = self.qualification_values()
        errors = {**range_errors(values)}
        for name, messages in ceiling_errors(values, self.ceiling()).items():
            errors[name] = errors.get(name, []) + messages
        return [message for name in BOUNDED_FIELDS for message in errors.get(name, [])]

    def clean(self) -> None:
        # Keyed by field, so that the form shows them next to the field and Django does not also
        # report the grade_bands_descend constraint by its name.
        errors = range_errors(self.qualification_values())
        if errors:
            raise ValidationError(errors)


BOUNDED_FIELDS = ("mql_threshold", "grade_a_min", "grade_b_min", "grade_c_min")
_FIELD_WORDS = {
    "mql_threshold": "The MQL threshold",
    "grade_a_min": "Grade A's band",
    "grade_b_min": "Grade B's band",
    "grade_c_min": "Grade C's band",
}


def points_text(value: float) -> str:
    """60.0 → "60", 12.5 → "12.5", -10.0 → "-10": how a person writes points."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class ScoreCeiling:
    """The highest scores a version's rules allow (see `scoring.engine`): fit when every fit rule
    with positive points holds at once, plus every behaviour rule at its cap (`max_points`, or
    `points × max_occurrences`: an activity counts at most its full points, decay only lowers it).
    `total` is None when a behaviour rule gives points without either cap: a lead can then reach
    any score. It is an upper bound: rules that exclude each other (two job titles) cannot all
    hold, so the real best lead may score less."""

    fit: float
    total: float | None
    uncapped: tuple[str, ...] = ()  # the behaviour rules without a cap, by label

    def describe(self) -> str:
        if self.total is None:
            names = ", ".join(f"“{name}”" for name in self.uncapped)
            return (
                f"No upper bound: {names} can add points without limit (give it a cap or a maximum number"
                " of times to bound the score)."
            )
        return (
            f"At most {points_text(self.total)} points: {points_text(self.fit)} from fit rules and"
            f" {points_text(self.total - self.fit)} from behaviour rules at their caps."
        )


def score_ceiling(
    fit_rules: Iterable[FitRule], behavior_rules: Iterable[BehaviorRule], exclusion_rules: Iterable[ExclusionRule]
) -> ScoreCeiling:
    fit = sum(max(rule.points or 0.0, 0.0) for rule in fit_rules)
    fit += sum(max(rule.points or 0.0, 0.0) for rule in exclusion_rules if rule.action == ExclusionRule.Action.PENALTY)
    engagement = 0.0
    uncapped = []
    for rule in behavior_rules:
        if (rule.points or 0.0) <= 0:
            continue
        caps = [rule.max_points] if rule.max_points is not None else []
        if rule.max_occurrences:
            caps.append(rule.points * rule.max_occurrences)
        if caps:
            engagement += min(caps)
        else:
            uncapped.append(str(rule))
    return ScoreCeiling(fit, None if uncapped else fit + engagement, tuple(uncapped))


def range_errors(values: Mapping[str, float | None]) -> dict[str, list[str]]:
    """Threshold and bands at 0 or more, bands descending (A ≥ B ≥ C); the rules play no part.
    A value that is None (its field did not parse) is skipped."""
    errors: dict[str, list[str]] = {}
    for name in BOUNDED_FIELDS:
        value = values.get(name)
        if value is not None and value < 0:
            errors[name] = [f"{_FIELD_WORDS[name]} must be 0 or more, not {points_text(value)}."]
    a, b, c = (values.get(name) for name in BOUNDED_FIELDS[1:])
    for (name, high, high_grade), (low, low_grade) in (
        (("grade_a_min", a, "A"), (b, "B")),
        (("grade_b_min", b, "B"), (c, "C")),
    ):
        if high is not None and low is not None and high < low:
            errors.setdefault(name, []).append(
                f"Grade bands must descend: grade {high_grade} needs at least the fit of grade {low_grade}"
                f" ({points_text(low)}), not {points_text(high)}."
            )
    return errors


def ceiling_errors(values: Mapping[str, float | None], ceiling: ScoreCeiling) -> dict[str, list[str]]:
    """The threshold and the bands above the highest score the rules allow (nothing when unbounded)."""
    if ceiling.total is None:
        return {}
    errors: dict[str, list[str]] = {}
    top = points_text(ceiling.total)
    for name in BOUNDED_FIELDS:
        value = values.get(name)
        if value is not None and value > ceiling.total:
            errors[name] = [
                f"{_FIELD_WORDS[name]} is {points_text(value)}, but no lead can score more than {top}"
                " with these rules. Lower it, or add rules or raise their caps."
            ]
    return errors


class _ConditionRule(ConditionRow):
    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE)
    points = models.FloatField()
    label = models.CharField(max_length=120, blank=True)

    class Meta:
        abstract = True


class FitRule(_ConditionRule):
    """Profile data → points (may be negative)."""

    class Meta:
        ordering = ["pk"]
        default_related_name = "fit_rules"

    def __str__(self) -> str:
        return self.label or describe(self)


class ExclusionRule(_ConditionRule):
    """Competitors, press, applicants, free-mail: disqualify the lead, or a large negative fit."""

    class Category(models.TextChoices):
        COMPETITOR = "competitor", "Competitor"
        PRESS = "press", "Press"
        APPLICANT = "applicant", "Job applicant"
        FREE_MAIL = "free_mail", "Free e-mail address"
        OTHER = "other", "Other"

    class Action(models.TextChoices):
        DISQUALIFY = "disqualify", "Disqualify"
        PENALTY = "penalty", "Penalty (negative fit)"

    category = models.CharField(max_length=12, choices=Category.choices)
    action = models.CharField(max_length=12, choices=Action.choices, default=Action.DISQUALIFY)
    points = models.FloatField(default=0, help_text="Penalty points (negative); ignored when disqualifying")

    class Meta:
        ordering = ["pk"]
        default_related_name = "exclusion_rules"

    def __str__(self) -> str:
        return self.label or f"{self.get_category_display()}: {describe(self)}"


class BehaviorRule(models.Model):
    """An activity (optionally with a condition on its properties) → points, decaying with age."""

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE)
    activity_type = models.CharField(max_length=20, choices=ActivityType.choices)
    property = models.CharField(max_length=60, blank=True, help_text="e.g. url, asset, campaign (optional)")
    operator = models.CharField(max_length=12, choices=OPERATOR_CHOICES, blank=True)
    value = models.CharField(max_length=1000, blank=True)
    points = models.FloatField()
    max_points = models.FloatField(
        "max points",
        null=True, blank=True, validators=[MinValueValidator(0)], help_text="Cap on this rule's points per lead"
    )
    max_occurrences = models.PositiveIntegerField(
        "at most (times)",
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Count at most the latest N"
    )
    label = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["pk"]
        default_related_name = "behavior_rules"

    def __str__(self) -> str:
        return self.label or self.describe()

    def describe(self) -> str:
        """"Page view where url contains '/pricing'": the activity by its label, the condition in words."""
        where = f" where {describe_property(self.property, self.operator, self.value)}" if self.property else ""
        return f"{self.get_activity_type_display()}{where}"

    def condition(self):
        if not self.property and not self.operator:
            return None
        if not self.property or not self.operator:
            raise ConditionError("Give both a property and an operator, or neither.")
        return property_condition(self.property, self.operator, self.value)

    def clean(self) -> None:
        try:
            self.condition()
        except ConditionError as exc:
            raise ValidationError(str(exc)) from None


class ScoringModelChange(models.Model):
    """Audit trail: who created, cloned, edited or activated which version."""

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="changes")
    action = models.CharField(max_length=20)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"v{self.model_id} {self.action} by {self.actor or 'system'}"


class RescoreRun(models.Model):
    """A set-based rescoring of every lead (after activation, or the daily decay), in batches.

    `cursor` is the last lead id done, committed with each batch: a crash resumes there.
    """

    class Kind(models.TextChoices):
        ACTIVATION = "activation", "Model activated"
        DECAY = "decay", "Daily decay"
        MANUAL = "manual", "Started by an operator (rescore_all)"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        SUPERSEDED = "superseded", "Superseded"

    model = models.ForeignKey(ScoringModel, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    as_of = models.DateTimeField(help_text="Decay is computed at this instant for the whole run")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    cursor = models.BigIntegerField(default=0)
    batch_size = models.PositiveIntegerField(default=20_000)
    became_mql = models.PositiveIntegerField("became MQL", default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} v{self.model_id}: {self.done}/{self.total}"

    @property
    def rate(self) -> float | None:
        """Leads per second so far."""
        seconds = ((self.finished_at or self.updated_at) - self.started_at).total_seconds()
        return self.done / seconds if seconds > 0 and self.done else None

    @property
    def seconds_left(self) -> float | None:
        if self.status != self.Status.RUNNING or not self.rate:
            return None
        return max(self.total - self.done, 0) / self.rate


class PendingRescore(models.Model):
    """A lead waiting to be rescored: written in the transaction of the change that asked for it, so
    it survives a dead worker and a broker outage. One row per lead (the primary key): a burst of
    events for one lead makes one row and one queued task. A task claims rows for a while
    (`claimed_until`) before it computes, and deletes them when it stores scores that include every
    change they stand for; a change that arrives meanwhile releases the claim and queues a task."""

    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, primary_key=True, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"lead {self.lead_id} since {self.requested_at:%H:%M:%S}"
