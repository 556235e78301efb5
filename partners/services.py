"""Every write of the partner loop: feedback on a lead, and the chase for feedback that is missing.

Feedback moves the lead's lifecycle through the services of `leads` and `routing` (so the stage
history, assignment log and announcements are the same as for a rep), and records a
`partner_feedback` activity whose status and reason scoring's behaviour rules can weight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from leads import mail, notifications
from leads.errors import Invalid, Refused
from leads.lifecycle import OPEN_STAGES
from leads.models import Activity, ActivityType, Lead, PartnerOrganization, Role, Stage, User
from leads.services import activity_record, lead_close, lead_transition
from routing import handover
from routing import selectors as routing_selectors
from routing.models import Assignment
from routing.services import RoutingError, assignment_accept, assignment_reject, lead_route
from webhooks import outbox
from webhooks.models import EventType

from .models import (
    REASONS_FOR,
    REPORT_STATUSES,
    FeedbackReason,
    FeedbackReminder,
    FeedbackStatus,
    PartnerFeedback,
    ReminderStep,
)

log = logging.getLogger(__name__)


class FeedbackInvalid(Invalid):
    """Feedback whose fields do not fit together (400); `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors, message="; ".join(f"{field}: {message}" for field, message in errors.items()))


class FeedbackRefused(Refused):
    """Feedback that the lead's state does not allow (closed, already accepted …): 409. A lead that
    is not routed to the partner's organisation is 404, as if it did not exist."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code, status=404 if code == "not_yours" else None)


# --- feedback ---------------------------------------------------------------------------------


def feedback_validate(
    *, status: str, reason: str = "", deal_value: Decimal | None = None, currency: str = ""
) -> dict[str, str]:
    """The status/reason/value rules as messages by field (empty: fine). Mirrors the DB constraints."""
    errors: dict[str, str] = {}
    if status not in FeedbackStatus.values:
        return {"status": f"Unknown status; one of: {', '.join(FeedbackStatus.values)}."}
    allowed = REASONS_FOR.get(status, ())
    if allowed and reason not in allowed:
        label = FeedbackStatus(status).label.lower()
        errors["reason"] = (
            f"A {label} lead needs a reason, one of: {', '.join(allowed)}."
            if not reason
            else f"'{reason}' is not a reason for {label}; one of: {', '.join(allowed)}."
        )
    elif not allowed and reason:
        errors["reason"] = "Only lost and declined take a reason (use the note for anything else)."
    if status == FeedbackStatus.WON:
        if deal_value is None or deal_value <= 0:
            errors["deal_value"] = "A won deal needs its value (greater than 0)."
        if currency and (len(currency) != 3 or not currency.isalpha()):
            errors["currency"] = "A currency is a three-letter ISO 4217 code, e.g. EUR."
    elif deal_value is not None:
        errors["deal_value"] = "Only a won deal has a value."
    return errors


def feedback_record(
    *,
    lead: Lead,
    user: User,
    status: str,
    reason: str = "",
    note: str = "",
    deal_value: Decimal | None = None,
    currency: str = "",
    external_id: str | None = None,
) -> tuple[PartnerFeedback, bool]:
    """Record a partner user's feedback on a lead routed to its organisation; return (feedback, created).

    One transaction: the feedback row, the lifecycle move, and a `partner_feedback` activity (which
    announces itself, so the lead is rescored). Lifecycle: accepted → sal; declined → rerouted to
    another target, never back to this partner; proposal → sql; won → won with the value; lost →
    lost with the reason; contacted, meeting and unreachable only record. Any feedback but a decline
    on a lead still waiting for acceptance accepts it first: a partner who reports on a lead works it.

    With an `external_id` a retry is safe: the same id of the same organisation returns the feedback
    recorded the first time (created False) and changes nothing. Raises FeedbackInvalid (fields do
    not fit together) or FeedbackRefused (the lead's state does not allow it); both change nothing.
    """
    org_id = user.partner_organization_id
    if user.role != Role.PARTNER or not org_id:
        raise FeedbackRefused("Only partner users report feedback.", "not_partner")
    external_id = (external_id or "").strip() or None
    reason, note, currency = reason.strip(), note.strip(), currency.strip().upper()
    with transaction.atomic():
        # Feedback on one lead is taken one at a time (and a replay waits for its original).
        locked = Lead.objects.select_for_update().get(pk=lead.pk)
        if external_id:
            existing = _replay(org_id, external_id, locked.pk)
            if existing:
                return existing, False
        if locked.partner_id != org_id:
            raise FeedbackRefused("This lead is not routed to your organisation.", "not_yours")
        errors = feedback_validate(status=status, reason=reason, deal_value=deal_value, currency=currency)
        if errors:
            raise FeedbackInvalid(errors)
        _check_stage(locked, status)
        try:
            with transaction.atomic():
                feedback = PartnerFeedback.objects.create(
                    lead=locked,
                    organization_id=org_id,
                    user=user,
                    status=status,
                    reason=reason,
                    note=note,
                    deal_value=deal_value if status == FeedbackStatus.WON else None,
                    currency=(currency or "EUR") if status == FeedbackStatus.WON else "",
                    external_id=external_id,
                )
        except IntegrityError:
            # The same external_id was committed by a concurrent request for another lead's row lock.
            existing = _replay(org_id, external_id, locked.pk) if external_id else None
            if existing is None:
                raise
            return existing, False
        _advance(locked, feedback, user)
        activity_record(
            lead=locked,
            type=ActivityType.PARTNER_FEEDBACK,
            occurred_at=feedback.at,
            properties=feedback_properties(feedback),
            actor=user,
        )
        if outbox.wants(EventType.PARTNER_FEEDBACK):
            outbox.record(EventType.PARTNER_FEEDBACK, locked.pk, {"feedback": feedback_webhook_data(feedback)})
    return feedback, True


def feedback_webhook_data(feedback: PartnerFeedback) -> dict[str, Any]:
    """What partner.feedback says of the feedback (the lead is beside it, as it stands after it)."""
    return {
        "id": feedback.pk,
        "partner_id": feedback.organization_id,
        "user_id": feedback.user_id,
        "status": feedback.status,
        "reason": feedback.reason,
        "note": feedback.note,
        "deal_value": f"{feedback.deal_value:.2f}" if feedback.deal_value is not None else None,
        "currency": feedback.currency,
        "external_id": feedback.external_id,
        "at": feedback.at.isoformat(),
    }


def feedback_properties(feedback: PartnerFeedback) -> dict[str, Any]:
    """What the activity carries: scoring's behaviour rules match on `status` and `reason`."""
    return {
        "feedback": feedback.pk,
        "partner": feedback.organization_id,
        "organization": feedback.organization.name,
        "status": feedback.status,
        "reason": feedback.reason,
        "note": feedback.note,
        "deal_value": str(feedback.deal_value) if feedback.deal_value is not None else None,
        "currency": feedback.currency,
    }


def _replay(org_id: int, external_id: str, lead_id: int) -> PartnerFeedback | None:
    existing = PartnerFeedback.objects.filter(organization_id=org_id, external_id=external_id).first()
    if existing and existing.lead_id != lead_id:
        raise FeedbackRefused(
            f"external_id '{external_id}' was already used for feedback on lead {existing.lead_id}.",
            "external_id_conflict",
        )
    return existing


def _check_stage(lead: Lead, status: str) -> None:
    """Refuse what the lead's stage does not allow, before anything is written."""
    if lead.stage not in OPEN_STAGES:
        raise FeedbackRefused(
            f"This lead is {Stage(lead.stage).label.lower()}; it takes no more feedback.", "lead_closed"
        )
    if status == FeedbackStatus.ACCEPTED and lead.stage != Stage.MQL:
        raise FeedbackRefused("You have already accepted this lead.", "already_accepted")
    if status == FeedbackStatus.DECLINED and lead.stage != Stage.MQL:
        raise FeedbackRefused(
            "You have already accepted this lead, so it cannot be declined; report it lost, with a reason.",
            "already_accepted",
        )


def _advance(lead: Lead, feedback: PartnerFeedback, user: User) -> None:
    status = feedback.status
    try:
        if status == FeedbackStatus.DECLINED:
            reason = f"Declined by {feedback.organization.name}: {FeedbackReason(feedback.reason).label}"
            assignment_reject(
                lead=lead, user=user, reason=reason + (f" ({feedback.note})" if feedback.note else ""), reroute=True
            )
            return
        if lead.stage == Stage.MQL:
            assignment_accept(lead=lead, user=user)
    except RoutingError as error:
        raise FeedbackRefused(error.message, error.code) from None
    lead.refresh_from_db(fields=["stage"])
    if status in (FeedbackStatus.PROPOSAL, FeedbackStatus.WON) and lead.stage == Stage.SAL:
        label = "Partner sent a proposal" if status == FeedbackStatus.PROPOSAL else "Partner won the deal"
        lead = lead_transition(lead=lead, to_stage=Stage.SQL, reason=label, actor=user)
    if status == FeedbackStatus.WON:
        lead_close(lead=lead, won=True, amount=feedback.deal_value, currency=feedback.currency, actor=user)
    elif status == FeedbackStatus.LOST:
        lead_close(lead=lead, won=False, reason=feedback.reason, note=feedback.note, actor=user)


# --- the chase: reminders and escalation ------------------------------------------------------


@dataclass(frozen=True)
class ChaseStep:
    step: str
    number: int = 1


def chase_step(*, handed_over_at: datetime, now: datetime, organization: PartnerOrganization) -> ChaseStep | None:
    """Where the chase of a handover without a report stands at `now` (None: nothing due yet).

    remind_after_days → "feedback due"; feedback_deadline_days → "overdue" #1, then every
    remind_every_days another; escalate_after_days → taken back. Only the current step counts, so
    a job that did not run for a while sends one reminder, not every one it missed.
    """
    elapsed = now - handed_over_at
    day = timedelta(days=1)
    if elapsed >= organization.escalate_after_days * day:
        return ChaseStep(ReminderStep.ESCALATED)
    if elapsed >= organization.feedback_deadline_days * day:
        late = elapsed - organization.feedback_deadline_days * day
        return ChaseStep(ReminderStep.OVERDUE, 1 + int(late / (organization.remind_every_days * day)))
    if elapsed >= organization.remind_after_days * day:
        return ChaseStep(ReminderStep.DUE)
    return None


def _reported(organization_id: int) -> Exists:
    """The lead has a report (any feedback but a bare acceptance) from this organisation since its handover."""
    return Exists(
        PartnerFeedback.objects.filter(
            lead=OuterRef("pk"),
            organization_id=organization_id,
            status__in=REPORT_STATUSES,
            at__gte=OuterRef("handed_over_at"),
        )
    )


def feedback_chase(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Chase leads whose partner has not reported on them since the handover: remind the partner's
    users when feedback is due and when it is overdue, and past the escalation limit take the lead
    back, reroute it (never to that partner) and tell the channel manager. Each step happens once per
    handover (FeedbackReminder), is recorded on the lead's timeline, and its e-mail goes out after
    the commit. Accepting alone is not a report; any other feedback stops the chase. Returns the
    number of steps taken by kind; at most `limit` leads per organisation and run.
    """
    now = now or timezone.now()
    done: dict[str, int] = {ReminderStep.DUE: 0, ReminderStep.OVERDUE: 0, ReminderStep.ESCALATED: 0}
    for org in PartnerOrganization.objects.select_related("channel_manager").order_by("pk"):
        waiting = list(
            Lead.objects.filter(
                partner=org,
                stage__in=OPEN_STAGES,
                handed_over_at__lte=now - timedelta(days=org.remind_after_days),
            )
            .exclude(_reported(org.pk))
            .order_by("handed_over_at", "pk")
            .values_list("pk", "handed_over_at")[:limit]
        )
        if not waiting:
            continue
        recorded = set(
            FeedbackReminder.objects.filter(organization=org, lead_id__in=[pk for pk, _ in waiting]).values_list(
                "lead_id", "handed_over_at", "step", "number"
            )
        )
        for lead_id, handed_over_at in waiting:
            if handed_over_at is None:  # handed_over_at__lte left none out; said again for mypy
                continue
            step = chase_step(handed_over_at=handed_over_at, now=now, organization=org)
            if step is None or (lead_id, handed_over_at, step.step, step.number) in recorded:
                continue
            if _chase_one(org, lead_id, handed_over_at, step, now):
                done[step.step] += 1
    return {str(k): v for k, v in done.items()}


def _chase_one(
    org: PartnerOrganization, lead_id: int, handed_over_at: datetime, step: ChaseStep, now: datetime
) -> bool:
    with transaction.atomic():
        lead = (
            Lead.objects.select_for_update(skip_locked=True)
            .filter(pk=lead_id, partner=org, handed_over_at=handed_over_at, stage__in=OPEN_STAGES)
            .exclude(_reported(org.pk))
            .first()
        )
        if lead is None:  # reported, moved on, or being worked on right now: the next run decides
            return False
        try:
            with transaction.atomic():
                reminder = FeedbackReminder.objects.create(
                    lead=lead,
                    organization=org,
                    handed_over_at=handed_over_at,
                    step=step.step,
                    number=step.number,
                    sent_at=now,
                )
        except IntegrityError:  # another run got there first
            return False
        due_at = org.feedback_due_at(handed_over_at)
        context = {
            "lead": lead,
            "company": lead.company or lead.email,
            "organization": org.name,
            "handed_over": mail.day(handed_over_at),
        }
        if step.step == ReminderStep.ESCALATED:
            manager = org.channel_manager
            people = [(manager.email, manager.first_name)] if manager is not None else []
            event, outcome = _take_back(lead, org)
            context.update(days=org.escalate_after_days, outcome=outcome, url=mail.link("leads:lead", lead.pk))
            template = "lead_taken_back"
        else:
            people = _partner_people(org)
            overdue = step.step == ReminderStep.OVERDUE
            event = (
                f"feedback overdue: reminder {step.number} to {org.name}"
                if overdue
                else f"feedback due by {due_at:%Y-%m-%d}: reminder to {org.name}"
            )
            context.update(
                due=mail.when(due_at),
                take_back=mail.day(handed_over_at + timedelta(days=org.escalate_after_days)),
                url=mail.link("partners:lead", lead.pk),
            )
            template = "feedback_overdue" if overdue else "feedback_due"
            if overdue:
                # In the app too, for each of the organisation's users (their bell), once per reminder.
                notifications.notify(
                    users=org.users.filter(is_active=True).values_list("pk", flat=True),
                    kind=notifications.Kind.FEEDBACK_OVERDUE,
                    key=f"reminder:{reminder.pk}",
                    text=gettext("Feedback overdue: %(company)s — due %(due)s") % {
                        "company": lead.company or lead.email,
                        "due": mail.when(due_at),
                    },
                    lead=lead,
                    url=reverse("partners:lead", args=[lead.pk]),
                )
        emails = [mail.render(template, {**context, "name": name}, to=to) for to, name in people if to]
        recipients = [email.to for email in emails]
        reminder.recipients = recipients
        reminder.save(update_fields=["recipients"])
        Activity.objects.create(
            lead=lead,
            type=ActivityType.ASSIGNMENT,
            occurred_at=now,
            properties={
                "event": event,
                "assignee": org.name,
                "partner": org.pk,
                "step": step.step,
                "number": step.number,
                "recipients": recipients,
                "due_at": due_at.isoformat(),
            },
        )
        # Sent after the commit by leads' sending task, which retries SMTP errors. The step is recorded
        # either way: a chase e-mail lost with the broker is not sent again (the next step will be).
        mail.emails_queue(emails)
    return True


def _take_back(lead: Lead, org: PartnerOrganization) -> tuple[str, str]:
    """End the partner's hold on the lead and route it to someone else (excluding this partner).
    Returns the timeline event and a sentence for the channel manager."""
    note = f"taken back: no feedback from {org.name} in {org.escalate_after_days} days"
    if lead.stage not in (Stage.MQL, Stage.SAL):
        # sql → anything but won/lost is not a move the lifecycle allows: the channel manager decides.
        return f"{note}; left with the partner (stage {lead.stage})", "The lead is past SQL; please follow it up."
    held = handover.current(lead.pk)
    if held is not None and held.partner_id == org.pk:
        handover.end(lead, held, "take_back", None, note, event=note)
    if lead.stage == Stage.SAL:
        # An accepted lead goes back through marketing (sal → mal → mql) so that it can be routed again.
        reason = f"Taken back from {org.name}: no feedback in {org.escalate_after_days} days"
        lead = lead_transition(lead=lead, to_stage=Stage.MAL, reason=reason)
        lead = lead_transition(lead=lead, to_stage=Stage.MQL, reason="Rerouted after a partner take-back")
    exclude = routing_selectors.previous_assignees(lead) | {("partner", org.pk)}
    assignment = lead_route(lead_id=lead.pk, exclude=exclude)
    where = assignment.assignee_label if assignment and (assignment.user_id or assignment.partner_id) else None
    if where is None:
        where = "the pool" if assignment and assignment.status == Assignment.Status.POOLED else "the unassigned queue"
    return f"{note}; rerouted to {where}", f"It was rerouted to {where}."


def _partner_people(org: PartnerOrganization) -> list[tuple[str, str]]:
    return sorted((e, name) for e, name in org.users.filter(is_active=True).values_list("email", "first_name") if e)
