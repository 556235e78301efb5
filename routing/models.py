"""Teams, rep profiles, accounts, ordered routing rules and the assignment log."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leads.models import ConditionRow, Lead, PartnerOrganization

# Region names a rep's territory may use instead of listing countries.
REGIONS: dict[str, list[str]] = {
    "DACH": ["DE", "AT", "CH"],
    "NORDICS": ["SE", "NO", "DK", "FI", "IS"],
    "BENELUX": ["BE", "NL", "LU"],
    "UKI": ["GB", "IE"],
    "NA": ["US", "CA"],
    "SOUTH": ["ES", "PT", "IT", "FR"],
}


def expand_territories(territories: list[str]) -> frozenset[str]:
    countries: set[str] = set()
    for item in territories:
        countries.update(REGIONS.get(item.upper(), [item.upper()]))
    return frozenset(countries)


class Seniority(models.IntegerChoices):
    JUNIOR = 1, "Junior"
    MID = 2, "Mid-level"
    SENIOR = 3, "Senior"


class Team(models.Model):
    name = models.CharField(max_length=120, unique=True)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RepProfile(models.Model):
    """How routing sees a sales rep: availability, capacity and what they cover."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rep_profile")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="reps")
    active = models.BooleanField(default=True)
    away_until = models.DateTimeField(null=True, blank=True, help_text="Routing skips the rep until then")
    capacity = models.PositiveIntegerField(default=25, help_text="Maximum open leads (MQL, SAL, SQL)")
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)], help_text="Weighted round robin")
    seniority = models.PositiveSmallIntegerField(choices=Seniority.choices, default=Seniority.MID)
    territories = models.JSONField(default=list, blank=True, help_text="Countries or regions (DACH, NORDICS …)")
    languages = models.JSONField(default=list, blank=True)
    products = models.JSONField(default=list, blank=True)
    industries = models.JSONField(default=list, blank=True)
    min_company_size = models.PositiveIntegerField(null=True, blank=True)
    max_company_size = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_full_name() or self.user.get_username()}"

    def is_away(self, now=None) -> bool:
        return self.away_until is not None and self.away_until > (now or timezone.now())


class Account(models.Model):
    """A known company: its domain, its owner, and whether it already buys from us."""

    domain = models.CharField(max_length=253, unique=True)
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    existing_customer = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.domain})"

    def save(self, *args, **kwargs):
        self.domain = self.domain.strip().lower()
        super().save(*args, **kwargs)


class Strategy(models.TextChoices):
    DIRECT = "direct", "Direct (one rep)"
    ROUND_ROBIN = "round_robin", "Round robin"
    WEIGHTED = "weighted_round_robin", "Weighted round robin"
    PERFORMANCE = "performance_weighted", "Performance-weighted (partners: by their outcomes)"
    LEAST_LOADED = "least_loaded", "Least loaded"
    ACCOUNT_OWNER = "account_owner", "Account owner"
    POOL = "pool", "Pool (reps claim)"


class RoutingRule(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAFT = "draft", "Draft (simulations only)"
        OFF = "off", "Off"

    class Target(models.TextChoices):
        REP = "rep", "A rep"
        TEAM = "team", "A team"
        PARTNERS = "partners", "Partners"
        POOL = "pool", "A pool (team members claim)"

    class PoolMode(models.TextChoices):
        CHERRY_PICK = "cherry_pick", "Cherry-pick (list with details)"
        SHARK_TANK = "shark_tank", "Shark tank (all notified, first claim wins)"
        BLIND = "blind", "Blind pull (details after the claim)"
        HYBRID = "hybrid", "Hybrid (offered to a few matching reps, then claimed)"

    class OnBreach(models.TextChoices):
        REASSIGN = "reassign", "Reassign to the next eligible"
        ESCALATE = "escalate", "Escalate to the team manager"

    class Fallback(models.TextChoices):
        MANAGER = "manager", "The team manager"
        POOL = "pool", "The team's pool"

    class OnReject(models.TextChoices):
        TO_MARKETING = "to_marketing", "Back to marketing (MAL)"
        REROUTE = "reroute", "Route to someone else"

    name = models.CharField(max_length=120)
    priority = models.PositiveIntegerField(default=100, help_text="Lower runs first; the first matching rule wins")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    target = models.CharField(max_length=10, choices=Target.choices, default=Target.TEAM)
    strategy = models.CharField(max_length=25, choices=Strategy.choices, default=Strategy.ROUND_ROBIN)
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    partners = models.ManyToManyField(PartnerOrganization, blank=True, related_name="+")
    pool_mode = models.CharField(max_length=12, choices=PoolMode.choices, default=PoolMode.CHERRY_PICK)
    pool_size = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1)],
        help_text="Hybrid pools: how many of the best-fitting available reps a lead is offered to",
    )
    match_profile = models.BooleanField(
        "match the lead to profiles",
        default=False, help_text="Only candidates whose territories, languages, products … fit the lead"
    )
    min_seniority = models.PositiveSmallIntegerField(
        "minimum seniority", choices=Seniority.choices, null=True, blank=True
    )
    sla_minutes = models.PositiveIntegerField(
        "SLA (minutes)",
        default=60,
        validators=[MinValueValidator(1)],
        help_text="Minutes to accept (or, in a pool, to be claimed)",
    )
    on_sla_breach = models.CharField(
        "when the SLA is missed", max_length=10, choices=OnBreach.choices, default=OnBreach.REASSIGN
    )
    fallback = models.CharField(
        max_length=10,
        choices=Fallback.choices,
        default=Fallback.MANAGER,
        help_text="Where a lead goes when nobody else can take it after a missed SLA (the manager is told)",
    )
    on_reject = models.CharField(
        "when rejected", max_length=15, choices=OnReject.choices, default=OnReject.TO_MARKETING
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "pk"]

    def __str__(self) -> str:
        return f"{self.priority}. {self.name}"

    @property
    def is_hybrid_pool(self) -> bool:
        return self.target == self.Target.POOL and self.pool_mode == self.PoolMode.HYBRID

    def clean(self) -> None:
        if self.strategy == Strategy.PERFORMANCE and self.target != self.Target.PARTNERS:
            raise ValidationError({"strategy": "Performance-weighted routing chooses among partners."})
        field, message = TARGET_NEEDS.get(self.target, ("", ""))
        if field in ("rep", "team") and not getattr(self, f"{field}_id"):  # partners: the form checks them
            raise ValidationError({field: message})
        if (self.target == self.Target.POOL) != (self.strategy == Strategy.POOL):
            raise ValidationError({"strategy": "A pool target goes with the pool strategy, and only it."})
        if self.fallback == self.Fallback.POOL and not self.team_id:
            raise ValidationError({"fallback": "A fallback to the team's pool needs a team."})
        if self.target == self.Target.REP and self.strategy not in (Strategy.DIRECT, Strategy.ACCOUNT_OWNER):
            raise ValidationError({"strategy": "A single rep is routed to directly."})


# The field each target needs, and what the form says when it is missing (partners, a many-to-many
# field, are checked by the admin's form: routing.forms.RoutingRuleForm).
TARGET_NEEDS: dict[str, tuple[str, str]] = {
    RoutingRule.Target.REP: ("rep", "A rule that goes to a rep needs the rep: pick one under “A rep”."),
    RoutingRule.Target.TEAM: ("team", "A rule that goes to a team needs the team: pick one under “The team”."),
    RoutingRule.Target.POOL: (
        "team",
        "A pool belongs to a team: pick the team whose reps claim its leads under “The team”.",
    ),
    RoutingRule.Target.PARTNERS: (
        "partners",
        "A rule that goes to partners needs at least one partner: choose them under “Partners”.",
    ),
}


class RuleCondition(ConditionRow):
    """One condition of a rule (all must hold). Same vocabulary and editor as scoring rules."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="conditions")

    class Meta:
        ordering = ["pk"]


class RoutingCounter(models.Model):
    """How many leads a rule has handed to each candidate: the state of (weighted) round robin.
    It lives in the database so that parallel workers share it (under the rule's row lock)."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="counters")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    partner = models.ForeignKey(PartnerOrganization, null=True, blank=True, on_delete=models.CASCADE)
    assigned = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "user"], name="counter_rule_user"),
            models.UniqueConstraint(fields=["rule", "partner"], name="counter_rule_partner"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.user_id or self.partner_id} × {self.assigned}"


class Assignment(models.Model):
    """Who got a lead, by which rule and why. At most one open assignment per lead (DB constraint)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Waiting for acceptance"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "SLA missed"
        REASSIGNED = "reassigned", "Reassigned"
        POOLED = "pooled", "In a pool"
        UNASSIGNED = "unassigned", "No rule could place it"
        CLOSED = "closed", "Closed"

    OPEN = (Status.ACTIVE, Status.POOLED, Status.UNASSIGNED)

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    partner = models.ForeignKey(
        PartnerOrganization, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignments"
    )
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    strategy = models.CharField(max_length=25, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    trace = models.JSONField(default=list, blank=True)
    assigned_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set once the assignee (or the pool's reps) was e-mailed; an open assignment still without it
    # after a while is sent by the reconciler (its task was lost with a dead worker or broker).
    notified_at = models.DateTimeField(null=True, blank=True)
    # When its e-mails were last queued: while their tasks may still be retrying (leads.mail.RETRYING_FOR)
    # neither a repeated task nor the reconciler queues them again, so an SMTP outage sends no copies.
    notify_queued_at = models.DateTimeField(null=True, blank=True)
    # A pooled lead: whose reps may claim it, how (the rule's pool mode, or cherry-pick for a lead
    # that fell back to the pool), and — hybrid — the few reps it is offered to (empty: the team).
    pool_team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pool_mode = models.CharField(max_length=12, choices=RoutingRule.PoolMode.choices, blank=True)
    offered_to = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # When the manager was told about this lead (a pool's SLA passed, or an SLA chain ran out).
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-assigned_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead"], condition=Q(status__in=["active", "pooled", "unassigned"]), name="one_open_assignment"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="assignment_sla"),
            models.Index(fields=["user", "status"], name="assignment_user_status"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.assignee_label} ({self.status})"

    @property
    def assignee_label(self) -> str:
        if self.user is not None:
            return self.user.get_full_name() or self.user.get_username()
        if self.partner_id:
            return str(self.partner)
        return "pool" if self.status == self.Status.POOLED else "nobody"
