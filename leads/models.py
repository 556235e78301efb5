"""The lead record and its lifecycle: who the lead is, what it did, how it moved."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries.fields import CountryField

from .conditions import FIELD_CHOICES, OPERATOR_CHOICES, ConditionError, describe, lead_condition


class Role(models.TextChoices):
    MARKETING = "marketing", "Marketing manager"
    SALES_MANAGER = "sales_manager", "Sales manager"
    SALES_REP = "sales_rep", "Sales rep"
    PARTNER = "partner", "Channel partner"
    INTEGRATION = "integration", "Integration client"


class PartnerOrganization(models.Model):
    """A channel partner's organisation: its territories, products, capacity and feedback policy.

    Here in `leads`, the lowest layer, because users, leads and routing refer to it as much as
    `partners` does (the portal, feedback, the chase). Its table keeps the name it was created with
    in `partners` (moved by state only in leads 0014 / partners 0003: no data moved).
    """

    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(default=True)
    territories = models.JSONField(default=list, blank=True, help_text="ISO country codes")
    products = models.JSONField(default=list, blank=True)
    capacity = models.PositiveIntegerField(default=50, help_text="Maximum open leads")
    created_at = models.DateTimeField(auto_now_add=True)

    # Feedback policy. Days count from the handover (Lead.handed_over_at).
    feedback_deadline_days = models.PositiveSmallIntegerField(
        default=5, help_text="The partner reports on a lead (contacted, meeting, won, lost …) within this many days"
    )
    remind_after_days = models.PositiveSmallIntegerField(
        default=3, help_text="First reminder ('feedback due') after this many days without a report"
    )
    remind_every_days = models.PositiveSmallIntegerField(
        default=2, help_text="Once the deadline has passed, remind again every this many days"
    )
    escalate_after_days = models.PositiveSmallIntegerField(
        default=14, help_text="Still no report after this many days: the lead is taken back and rerouted"
    )
    channel_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="managed_partners",
        help_text="Told when a lead is taken back from this partner",
    )

    class Meta:
        db_table = "partners_partnerorganization"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="partner_policy_in_order",
                condition=Q(feedback_deadline_days__gte=1)
                & Q(remind_after_days__gte=1)
                & Q(remind_after_days__lte=models.F("feedback_deadline_days"))
                & Q(remind_every_days__gte=1)
                & Q(escalate_after_days__gt=models.F("feedback_deadline_days")),
                violation_error_message=(
                    "Policy days must be in order: 1 ≤ first reminder ≤ deadline < escalation, and reminders "
                    "at least every day."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def feedback_due_at(self, handed_over_at: datetime) -> datetime:
        return handed_over_at + timedelta(days=self.feedback_deadline_days)


class User(AbstractUser):
    """A person or system using the portal. The role decides what it may see (leads.selectors)."""

    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    partner_organization = models.ForeignKey(
        PartnerOrganization,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="users",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="partner_user_has_organization",
                condition=~models.Q(role="partner") | models.Q(partner_organization__isnull=False),
            ),
        ]

    def save(self, *args, **kwargs) -> None:
        # Django's own test for "the password was changed" (AbstractBaseUser.save → password_changed):
        # set_password() ran since the last save. A hash upgrade at sign-in clears it: no change.
        # Every door sets the password this way (admin, password change and reset views, changepassword).
        # `_password` is AbstractBaseUser's, which django-stubs does not declare.
        password_changed = self._password is not None and self.pk is not None  # type: ignore[attr-defined]
        if not password_changed:
            return super().save(*args, **kwargs)
        from .tokens import token_revoke_for_user  # tokens imports this module

        with transaction.atomic():
            super().save(*args, **kwargs)
            token_revoke_for_user(user=self, reason=TokenRevokedReason.PASSWORD_CHANGED)


class Stage(models.TextChoices):
    NEW = "new", "New"
    MAL = "mal", "Marketing accepted"
    MQL = "mql", "Marketing qualified"
    SAL = "sal", "Sales accepted"
    SQL = "sql", "Sales qualified"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    DISQUALIFIED = "disqualified", "Disqualified"


class ConsentStatus(models.TextChoices):
    NONE = "none", "No consent"
    PENDING = "pending", "Opt-in pending"
    CONFIRMED = "confirmed", "Opt-in confirmed"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Grade(models.TextChoices):
    A = "A", "A"
    B = "B", "B"
    C = "C", "C"
    D = "D", "D"


MAX_COMPANY_SIZE = 5_000_000  # the largest employers have about 2.5 million people


class LostReason(models.TextChoices):
    """Why a deal was lost (shared by reps and partner feedback)."""

    NO_BUDGET = "no_budget", "No budget"
    NO_NEED = "no_need", "No need"
    BAD_TIMING = "bad_timing", "Bad timing"
    COMPETITOR = "competitor", "Chose a competitor"
    NO_AUTHORITY = "no_authority", "Not the decision maker"
    UNREACHABLE = "unreachable", "Could not be reached"
    PRICE = "price", "Too expensive"
    OTHER = "other", "Other"


class Lead(models.Model):
    # Stored normalised (stripped, lower case); the check constraint keeps it that way.
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    company = models.CharField(max_length=200, blank=True)
    company_domain = models.CharField(max_length=253, blank=True, db_index=True)
    job_title = models.CharField(max_length=200, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    company_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Employees", validators=[MaxValueValidator(MAX_COMPANY_SIZE)]
    )
    annual_revenue = models.DecimalField(max_digits=15, decimal_places=2, null=True, blank=True)
    country = CountryField(blank=True, db_index=True)
    language = models.CharField(max_length=10, blank=True, choices=settings.LANGUAGES)
    product_interest = models.CharField(max_length=100, blank=True)

    source = models.CharField(max_length=50, blank=True, db_index=True)
    campaign = models.CharField(max_length=200, blank=True, db_index=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    # The fields above are the first touch (the first capture that brought any of them) and stay; the
    # latest touch of a later capture is kept here as one unit, fields it did not send blank.
    latest_source = models.CharField(max_length=50, blank=True)
    latest_campaign = models.CharField(max_length=200, blank=True)
    latest_utm_source = models.CharField(max_length=200, blank=True)
    latest_utm_medium = models.CharField(max_length=200, blank=True)
    latest_utm_campaign = models.CharField(max_length=200, blank=True)
    latest_utm_term = models.CharField(max_length=200, blank=True)
    latest_utm_content = models.CharField(max_length=200, blank=True)
    latest_touch_at = models.DateTimeField(null=True, blank=True, help_text="When the latest touch was captured")

    consent_status = models.CharField(max_length=10, choices=ConsentStatus.choices, default=ConsentStatus.NONE)
    consent_at = models.DateTimeField(null=True, blank=True)

    stage = models.CharField(max_length=15, choices=Stage.choices, default=Stage.NEW, db_index=True)

    # Filled by the scoring app.
    # Not indexed: rescoring rewrites these columns for every lead, and with no index on them
    # PostgreSQL updates the row in place (HOT) instead of adding an entry to every index.
    score = models.FloatField(default=0)
    fit_score = models.FloatField(default=0)
    engagement_score = models.FloatField(default=0)
    grade = models.CharField(max_length=1, choices=Grade.choices, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)
    scoring_version = models.PositiveIntegerField(null=True, blank=True, help_text="Scoring model that scored it")
    # Raised in the same transaction as every change a score is computed from (an activity, the
    # profile). A computed score is stored only if the lead's revision is still the one it read, so
    # an older computation never overwrites what a newer change asked for (scoring.services).
    score_rev = models.BigIntegerField(default=0, editable=False)
    # The revision the stored score was computed from: behind `score_rev` only while a rescoring is
    # pending (both are written in the transactions that write the pending row and delete it).
    scored_rev = models.BigIntegerField(default=0, editable=False)

    # Filled by the routing app.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_leads"
    )
    partner = models.ForeignKey(
        PartnerOrganization, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads"
    )
    marketing_suppressed = models.BooleanField(default=False, help_text="Excluded from marketing campaigns")
    handed_over_at = models.DateTimeField(null=True, blank=True, help_text="When the current owner got it")
    respond_by = models.DateTimeField(
        null=True, blank=True, help_text="The owner must accept (or the partner report back) by then; empty once done"
    )

    # Filled when the deal closes (by a rep or a partner's feedback).
    deal_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    deal_currency = models.CharField(max_length=3, blank=True)
    lost_reason = models.CharField(max_length=30, blank=True, choices=LostReason.choices)
    closed_at = models.DateTimeField(null=True, blank=True)

    attributes = models.JSONField(default=dict, blank=True, help_text="Custom attributes")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    # Set when the person's data was erased at their request (leads.erasure): the row stays, anonymous,
    # for the reports' counts. Not indexed, so that lead updates stay in place (HOT) on PostgreSQL.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        editable=False,
    )

    class Meta:
        constraints = [
            models.CheckConstraint(name="lead_email_normalised", condition=models.Q(email=Lower("email"))),
        ]
        indexes = [
            # Load per owner (open leads, waiting, overdue) read from the index alone on PostgreSQL.
            models.Index(fields=["owner", "stage"], include=["respond_by"], name="lead_owner_stage_due"),
            models.Index(fields=["partner", "stage"], name="lead_partner_stage"),
            # The rep's queue in its own order (open leads, newest handover first, NULLS LAST) has a
            # PostgreSQL-only index from migration 0007: SQLite cannot index NULLS LAST.
            models.Index(fields=["partner", "-handed_over_at"], name="lead_partner_handover"),
            # SLA breaches: only leads waiting for acceptance carry a deadline.
            models.Index(fields=["respond_by"], condition=Q(respond_by__isnull=False), name="lead_waiting_due"),
        ]

    def __str__(self) -> str:
        if self.erased_at is not None:
            return f"Erased person #{self.pk}"
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name} <{self.email}>" if name else self.email


class LeadChange(models.Model):
    """The changes feed's key of one lead (leads.changes): the transaction that last changed it and a
    number of one sequence. Written only by the database's triggers (leads.sql, migration 0017) — on a
    lead's insert, update (bookkeeping alone excepted), delete, and on an activity stored for it.

    A table beside `leads_lead`, not columns on it: an index on the lead row's key would make every
    lead update non-HOT (bulk events fell from 15,665 to 4,058/s that way, commit 0701b98). `lead_id`
    is no foreign key: a deleted lead keeps its row (`deleted`), which the feed serves as a tombstone."""

    lead_id = models.BigIntegerField(primary_key=True)
    change_xid = models.BigIntegerField()
    change_seq = models.BigIntegerField()
    deleted = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["change_xid", "change_seq"], name="leadchange_key")]

    def __str__(self) -> str:
        return f"lead {self.lead_id} changed at {self.change_xid}.{self.change_seq}"


class ActivityType(models.TextChoices):
    CAPTURED = "captured", "Captured"
    FORM_SUBMIT = "form_submit", "Form submitted"
    PAGE_VIEW = "page_view", "Page viewed"
    DOWNLOAD = "download", "Download"
    EMAIL_OPEN = "email_open", "E-mail opened"
    EMAIL_CLICK = "email_click", "E-mail clicked"
    EMAIL_BOUNCE = "email_bounce", "E-mail bounced"
    WEBINAR = "webinar", "Webinar"
    EVENT = "event", "Event attended"
    DEMO_REQUEST = "demo_request", "Demo requested"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribed"
    NOTE = "note", "Note"
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    PROFILE_UPDATE = "profile_update", "Profile updated"
    STAGE_CHANGE = "stage_change", "Stage changed"
    ASSIGNMENT = "assignment", "Assignment"
    QUALIFICATION = "qualification", "Qualification (BANT)"
    PARTNER_FEEDBACK = "partner_feedback", "Partner feedback"


class Activity(models.Model):
    """One entry of a lead's timeline. (source, external_id) makes ingestion idempotent."""

    # No index of its own: activity_lead_timeline (lead, -occurred_at) serves lookups by lead, and
    # every index costs on bulk ingestion.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="activities", db_index=False)
    type = models.CharField(max_length=20, choices=ActivityType.choices)
    occurred_at = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=50, blank=True)
    # NULL for activities without an id of their own; NULLs never collide in the unique constraint.
    external_id = models.CharField(max_length=200, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "activities"
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="activity_unique_external_id"),
        ]
        indexes = [models.Index(fields=["lead", "-occurred_at"], name="activity_lead_timeline")]

    def __str__(self) -> str:
        return f"{self.get_type_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"


class StageChange(models.Model):
    """An audit row for every lifecycle move. actor NULL means the system (a worker) moved it."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=15, choices=Stage.choices)
    to_stage = models.CharField(max_length=15, choices=Stage.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reason = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["lead", "at"], name="stagechange_lead_at")]

    def __str__(self) -> str:
        return f"{self.from_stage} → {self.to_stage}"

    @property
    def actor_label(self) -> str:
        return self.actor.get_username() if self.actor is not None else "system"


class ConditionRow(models.Model):
    """A condition on a lead field as a row an admin edits (dropdown, dropdown, text): the one
    storage of the shared condition vocabulary, used by scoring rules and routing rules."""

    field = models.CharField(max_length=30, choices=FIELD_CHOICES)
    operator = models.CharField(max_length=12, choices=OPERATOR_CHOICES)
    value = models.CharField(max_length=1000, blank=True, help_text="Lists: comma-separated. Between: low, high")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return describe(self)  # "Country is one of Germany, Austria": what the admin's lists show

    def condition(self):
        return lead_condition(self.field, self.operator, self.value)

    def clean(self) -> None:
        try:
            self.condition()
        except ConditionError as exc:
            raise ValidationError(str(exc)) from None


class Qualification(models.Model):
    """BANT: budget, authority, need, timing — each confirmed or not, with a note. All four → SQL."""

    CRITERIA = ("budget", "authority", "need", "timing")

    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, related_name="qualification")
    budget = models.BooleanField(default=False)
    budget_note = models.TextField(blank=True)
    authority = models.BooleanField(default=False)
    authority_note = models.TextField(blank=True)
    need = models.BooleanField(default=False)
    need_note = models.TextField(blank=True)
    timing = models.BooleanField(default=False)
    timing_note = models.TextField(blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"BANT of lead {self.lead_id}: {self.confirmed_count}/4"

    @property
    def confirmed_count(self) -> int:
        return sum(getattr(self, name) for name in self.CRITERIA)

    @property
    def complete(self) -> bool:
        return self.confirmed_count == len(self.CRITERIA)


class Scope(models.TextChoices):
    """What an API token may be used for; the views say which one they need (leads.api.scopes)."""

    CAPTURE = "capture", "Capture leads and events"
    READ = "read", "Read the internal API"
    WORK = "work", "Work on leads (moves, notes, calls, accept, claim …)"
    PARTNER = "partner", "Partner API"
    WEBHOOKS = "webhooks", "Manage webhooks"


class TokenRevokedReason(models.TextChoices):
    ADMIN = "admin", "Revoked in the admin"
    PASSWORD_CHANGED = "password_changed", "The user's password changed"


class ApiToken(models.Model):
    """An API key, stored as its SHA-256 only (leads.tokens): the key is shown once, at creation.

    A key is 40 random URL-safe characters (240 bits), so a fast hash is enough: nobody can guess
    a key from its digest, and a slow salted hash would cost every API call a few milliseconds.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="Who uses it, e.g. 'Web form' or 'CRM sync'")
    # The key's first characters: found by them, told apart by them in the admin; not a secret alone.
    prefix = models.CharField(max_length=8, db_index=True)
    digest = models.CharField(max_length=64, unique=True)  # SHA-256 hex of the whole key
    scopes = models.CharField(max_length=100, help_text="Space-separated: capture, read, work, partner")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never expires")
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute")
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=20, choices=TokenRevokedReason.choices, blank=True)

    class Meta:
        verbose_name = "API token"
        constraints = [
            models.CheckConstraint(
                name="apitoken_revoked_with_reason",
                condition=Q(revoked_at__isnull=True, revoked_reason="")
                | Q(revoked_at__isnull=False) & ~Q(revoked_reason=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()


class SentEmail(models.Model):
    """An e-mail the mail server took, by the key its sender gave it (leads.mail.Email.key): a copy
    queued again (the reconciler after a killed worker, a database outage, a retry) finds its key
    here and is not sent a second time."""

    key = models.CharField(max_length=255, unique=True)
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class ErasedEmail(models.Model):
    """The SHA-256 of an e-mail address whose person was erased at their request (leads.erasure): a
    capture, an event or an import of that address is refused until the person opts in again (a
    confirmed double opt-in deletes the row). The address itself is kept nowhere."""

    digest = models.CharField(max_length=64, unique=True)
    erased_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "erased e-mail address"

    def __str__(self) -> str:
        return f"erased address {self.digest[:12]}…"


class Notification(models.Model):
    """An in-app notice for one person (the dashboard's bell): a lead handed to them, an SLA about to
    run out, a partner's feedback overdue, a lead taken back. Written by leads.notifications in the
    transaction of what it tells; `key` names the event, so one event makes one notice (a second
    run of a job, a retried task find theirs)."""

    class Kind(models.TextChoices):
        ASSIGNED = "assigned", "New lead for you"
        SLA_SOON = "sla_soon", "SLA soon due"
        FEEDBACK_OVERDUE = "feedback_overdue", "Feedback overdue"
        TAKEN_BACK = "taken_back", "Lead taken back"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    text = models.CharField(max_length=500)
    url = models.CharField(max_length=500, blank=True)
    key = models.CharField(max_length=120, help_text="The event told (one notice per person and event).")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind", "key"], name="notification_once_per_event")]
        indexes = [
            # The badge: a person's unread count; the list: theirs, newest first.
            models.Index(fields=["user", "-created_at"], name="notification_user_recent"),
            models.Index(fields=["user"], condition=Q(read_at__isnull=True), name="notification_unread"),
        ]

    def __str__(self) -> str:
        return self.text
