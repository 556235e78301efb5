"""The feedback channel partners report on leads, and the reminders that chase it.

The organisations themselves (PartnerOrganization) are in `leads`: routing, the users and the leads
refer to them too, and a shared entity belongs in the lowest layer that needs it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from leads.models import Lead, LostReason, PartnerOrganization


class FeedbackStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    CONTACTED = "contacted", "Contacted"
    MEETING = "meeting", "Meeting held"
    PROPOSAL = "proposal", "Proposal sent"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    UNREACHABLE = "unreachable", "Could not reach the lead"


class FeedbackReason(models.TextChoices):
    """Why a partner lost a deal (LostReason, shared with the reps) or declined a lead."""

    NO_BUDGET = LostReason.NO_BUDGET.value, LostReason.NO_BUDGET.label
    NO_NEED = LostReason.NO_NEED.value, LostReason.NO_NEED.label
    BAD_TIMING = LostReason.BAD_TIMING.value, LostReason.BAD_TIMING.label
    COMPETITOR = LostReason.COMPETITOR.value, LostReason.COMPETITOR.label
    NO_AUTHORITY = LostReason.NO_AUTHORITY.value, LostReason.NO_AUTHORITY.label
    UNREACHABLE = LostReason.UNREACHABLE.value, LostReason.UNREACHABLE.label
    PRICE = LostReason.PRICE.value, LostReason.PRICE.label
    OTHER = LostReason.OTHER.value, LostReason.OTHER.label
    # Only for declining a lead.
    NO_CAPACITY = "no_capacity", "No capacity to take it on"
    OUTSIDE_TERRITORY = "outside_territory", "Outside our territory"
    NOT_OUR_PRODUCT = "not_our_product", "Product we do not sell"
    EXISTING_RELATIONSHIP = "existing_relationship", "Conflict with an existing relationship"


# The reasons each status takes; every other status takes none.
REASONS_FOR: dict[str, tuple[str, ...]] = {
    FeedbackStatus.LOST: tuple(LostReason.values),
    FeedbackStatus.DECLINED: (
        FeedbackReason.NO_CAPACITY,
        FeedbackReason.OUTSIDE_TERRITORY,
        FeedbackReason.NOT_OUR_PRODUCT,
        FeedbackReason.EXISTING_RELATIONSHIP,
        FeedbackReason.NO_NEED,
        FeedbackReason.OTHER,
    ),
}
# Statuses that report on the lead itself; accepting alone is not a report (see partners.services).
REPORT_STATUSES = tuple(s for s in FeedbackStatus.values if s != FeedbackStatus.ACCEPTED)


class PartnerFeedback(models.Model):
    """One report of a partner on a lead. (organization, external_id) makes client retries idempotent."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="partner_feedback")
    organization = models.ForeignKey(PartnerOrganization, on_delete=models.PROTECT, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=12, choices=FeedbackStatus.choices)
    reason = models.CharField(max_length=30, choices=FeedbackReason.choices, blank=True)
    note = models.TextField(blank=True)
    deal_value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    at = models.DateTimeField(default=timezone.now)
    # NULL when the client sends none; NULLs never collide in the unique constraint.
    external_id = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name_plural = "partner feedback"
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="feedback_unique_external_id"),
            models.CheckConstraint(name="feedback_status_valid", condition=Q(status__in=FeedbackStatus.values)),
            models.CheckConstraint(
                name="feedback_reason_fits_status",
                condition=(
                    Q(status=FeedbackStatus.LOST, reason__in=REASONS_FOR[FeedbackStatus.LOST])
                    | Q(status=FeedbackStatus.DECLINED, reason__in=REASONS_FOR[FeedbackStatus.DECLINED])
                    | (~Q(status__in=[FeedbackStatus.LOST, FeedbackStatus.DECLINED]) & Q(reason=""))
                ),
            ),
            models.CheckConstraint(
                name="feedback_value_only_when_won",
                condition=(
                    Q(status=FeedbackStatus.WON, deal_value__gt=0) & ~Q(currency="")
                    | ~Q(status=FeedbackStatus.WON) & Q(deal_value__isnull=True, currency="")
                ),
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-at"], name="feedback_org_at"),
            models.Index(fields=["lead", "at"], name="feedback_lead_at"),
        ]

    def __str__(self) -> str:
        return f"{self.organization} on lead {self.lead_id}: {self.get_status_display()}"


class ReminderStep(models.TextChoices):
    DUE = "due", "Feedback due"
    OVERDUE = "overdue", "Feedback overdue"
    ESCALATED = "escalated", "Taken back (escalated)"


class FeedbackReminder(models.Model):
    """A step of the chase for a handover, recorded before its e-mail goes out: the unique
    constraint makes every step happen once, however often (or however parallel) the job runs."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="feedback_reminders")
    organization = models.ForeignKey(PartnerOrganization, on_delete=models.CASCADE, related_name="reminders")
    handed_over_at = models.DateTimeField(help_text="The handover being chased")
    step = models.CharField(max_length=10, choices=ReminderStep.choices)
    number = models.PositiveSmallIntegerField(default=1, help_text="Overdue reminders are counted")
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-sent_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "organization", "handed_over_at", "step", "number"], name="reminder_once_per_step"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_step_display()} #{self.number} for lead {self.lead_id} ({self.organization})"
