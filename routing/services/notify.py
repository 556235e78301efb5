"""The e-mails of routing: a new lead for its assignee (a rep, a partner's users or a pool's reps),
the manager told when a pool's SLA passed or an SLA chain ran out, the sales managers told when
nobody could take an MQL. Each is a template in `templates/emails/` (see `leads.mail`).

The assignment row is the durable record: `notified_at` is set by the sending task only after the mail
server took the e-mail (`ASSIGNMENT_NOTIFIED`), so the reconciler (routing.drift) sends what a lost
task, a broker outage or an SMTP error that outlived its retries left unsent."""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime, timedelta
from typing import cast

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_countries.fields import Country

from leadportal.celery import enqueue
from leads import dashboard, mail
from leads.formatting import format_points
from leads.models import Lead, Role, User
from leads.selectors import lead_timeline
from leads.templatetags.dashboard import describe

from ..models import Assignment, Team

# What an e-mail needs (a lead row has some fifty columns; a batch loads fifty of them).
NOTIFY_FIELDS = (
    "status",
    "due_at",
    "escalated_at",
    "assigned_at",
    "pool_team_id",
    "created_by_id",
    "rule__name",
    "rule__team_id",
    "user__email",
    "user__first_name",
    "partner__name",
    *(
        f"lead__{name}"
        for name in ("first_name", "last_name", "email", "company", "company_domain", "job_title", "country")
    ),
    "lead__score",
    "lead__grade",
)

# The sending task's hook (leads.mail.on_sent), registered in RoutingConfig.ready().
ASSIGNMENT_NOTIFIED = "routing.assignment_notified"

Recipient = tuple[str, str]  # e-mail address, first name


def notify_on_commit(assignment_ids: list[int]) -> None:
    """Queue the e-mails once the transaction commits: the e-mail (slow, may fail) is neither in
    the transaction nor in the request or the router's way."""
    from ..tasks import notify_assignments_task

    if assignment_ids:
        enqueue(notify_assignments_task, assignment_ids)


def assignment_notified(assignment_id: int) -> None:
    """An e-mail of this assignment went out (the sending task's hook; safe to call twice)."""
    Assignment.objects.filter(pk=assignment_id, notified_at=None).update(notified_at=timezone.now())


def assignments_notify(*, assignment_ids: list[int]) -> int:
    """Queue the e-mails of these assignments, one sending task per recipient. Skipped: those that
    ended before their e-mail went out (accepted, claimed, replaced), those already e-mailed and those
    whose e-mails are queued and may still be retrying (a repeated task or a reconciler run sends
    nothing twice). One with nobody to tell is recorded as told. Returns the number of e-mails queued."""
    now = timezone.now()
    # Not queued, or queued longer ago than the reconciler waits for any work (its task may have died
    # with a killed worker or failed in a database outage): then its e-mails are queued again. Each
    # carries a key (`_keyed`), so a copy whose first went out meanwhile is not sent twice.
    claimable = Q(notify_queued_at=None) | Q(notify_queued_at__lt=now - timedelta(seconds=settings.LOOP_STALE_AFTER))
    unsent = Assignment.objects.filter(claimable, status__in=Assignment.OPEN, notified_at=None)
    rows = (
        unsent.select_related("lead", "user", "partner", "rule")
        .filter(pk__in=assignment_ids)
        .only(*NOTIFY_FIELDS)
        .order_by("pk")
    )
    queued = 0
    for assignment in rows:
        if not unsent.filter(pk=assignment.pk).update(notify_queued_at=now):
            continue  # another task or reconciler run got there first
        emails = _keyed(assignment, _emails(assignment))
        if emails:
            queued += mail.emails_queue(
                emails,
                sent=(ASSIGNMENT_NOTIFIED, assignment.pk),
                refused=functools.partial(_unclaim, assignment.pk, now),
            )
        else:
            assignment_notified(assignment.pk)
    return queued


def _keyed(assignment: Assignment, emails: list[mail.Email]) -> list[mail.Email]:
    """Each e-mail with its key: this assignment, this round of telling (an escalation asks again),
    which message, to whom."""
    asked = int((assignment.escalated_at or assignment.assigned_at).timestamp())
    prefix = f"assignment:{assignment.pk}:{asked}"
    return [dataclasses.replace(email, key=f"{prefix}:{email.name}:{email.to}") for email in emails]


def _unclaim(assignment_id: int, claimed_at: datetime) -> None:
    """The broker took none of the assignment's e-mails: nothing is on its way, so the next
    reconciler run may queue them again (instead of waiting out retries that never started)."""
    Assignment.objects.filter(pk=assignment_id, notified_at=None, notify_queued_at=claimed_at).update(
        notify_queued_at=None
    )


def _team_id(assignment: Assignment) -> int | None:
    return assignment.pool_team_id or (assignment.rule.team_id if assignment.rule is not None else None)


def _manager(team_id: int | None) -> list[Recipient]:
    row = (
        Team.objects.filter(pk=team_id).values_list("manager__email", "manager__first_name").first()
        if team_id
        else None
    )
    return [(row[0], row[1] or "")] if row and row[0] else []


def _people(users: QuerySet[User]) -> list[Recipient]:
    return [(email, name or "") for email, name in users.values_list("email", "first_name") if email]


def _pool_recipients(assignment: Assignment) -> list[Recipient]:
    offered = _people(assignment.offered_to.filter(is_active=True).order_by("pk"))
    if offered:
        return offered
    team_id = _team_id(assignment)
    if team_id is None:  # no team (it was deleted): nobody to offer it to; team_id=None would match every teamless user
        return []
    team_members = User.objects.filter(rep_profile__team_id=team_id, is_active=True).order_by("pk")
    return _people(team_members)


def _about(lead: Lead) -> str:
    """The lead in a line, as much as is known: "CTO at Initech, Germany"."""
    company = lead.company or lead.company_domain
    role = f"{lead.job_title} at {company}" if lead.job_title and company else lead.job_title or company
    # The django plugin types a CountryField as the CharField it extends (str); it holds a Country.
    country = cast(Country, lead.country).name if lead.country else ""
    return ", ".join(part for part in (role, country) if part)


def _lead_context(lead: Lead) -> dict[str, object]:
    return {
        "lead": lead,
        "company": lead.company or lead.company_domain or lead.email,
        "about": _about(lead),
        "score": format_points(lead.score),
        "grade": lead.grade or "–",
    }


def _emails(assignment: Assignment) -> list[mail.Email]:
    # One e-mail each: a pool's reps do not see each other's addresses.
    lead = assignment.lead
    if assignment.status == Assignment.Status.UNASSIGNED:
        return _unassigned_emails(assignment)
    context = {
        **_lead_context(lead),
        "deadline": mail.when(assignment.due_at) if assignment.due_at else "",
        "rule": assignment.rule.name if assignment.rule is not None else "–",
    }
    if assignment.status == Assignment.Status.POOLED:
        team_id = _team_id(assignment)
        names = Team.objects.filter(pk=team_id).values_list("name", flat=True) if team_id is not None else None
        team = (names.first() if names is not None else None) or "your team"
        context.update(team=team, url=mail.link("routing:pool"))
        reps = _pool_recipients(assignment)
        emails = [mail.render("pool_new", {**context, "name": name}, to=to) for to, name in reps]
        if assignment.escalated_at:
            # The manager is told: nobody took the lead in time (or nobody else could take it).
            waiting = {
                **context,
                "since": mail.when(assignment.assigned_at),
                "url": mail.link("routing:team"),
                "lead_url": mail.link("leads:lead", lead.pk),
            }
            emails += [
                mail.render("pool_waiting", {**waiting, "name": name}, to=to)
                for to, name in _manager(_team_id(assignment))
            ]
        return emails
    partner = assignment.partner
    if partner is not None:
        # A partner's users read their share of the lead only: no rule, nothing else internal.
        shared = {key: context[key] for key in ("lead", "company", "about", "score", "grade", "deadline")}
        shared.update(organization=partner.name, url=mail.link("partners:lead", lead.pk))
        users = _people(partner.users.filter(is_active=True).order_by("pk"))
        return [mail.render("lead_handed_to_partner", {**shared, "name": name}, to=to) for to, name in users]
    user = assignment.user
    if user is None or not user.email:
        return []
    escalated = assignment.escalated_at and assignment.created_by_id is None
    context.update(url=mail.link("leads:lead", lead.pk), name=user.first_name)
    if not escalated:
        context.update(_handover_details(lead.pk))
    return [mail.render("lead_escalated" if escalated else "lead_assigned", context, to=user.email)]


HANDOVER_ACTIVITIES = 3
HANDOVER_REASONS = 3


def _handover_details(lead_id: int) -> dict[str, object]:
    """What the rep's hand-over e-mail adds: how to reach the person, why the score (its top
    reasons, scoring's through leads.dashboard) and the lead's last activities, in words."""
    lead = Lead.objects.get(pk=lead_id)  # every field: the score's reasons read the whole profile
    recent = lead_timeline(lead)[:HANDOVER_ACTIVITIES]
    return {
        "email": lead.email,
        "phone": lead.phone,
        "reasons": dashboard.score_reasons(lead, HANDOVER_REASONS),
        "activities": [(mail.when(a.occurred_at), *describe(a)) for a in recent],
    }


def _unassigned_emails(assignment: Assignment) -> list[mail.Email]:
    """Nobody could take the MQL (no rule matched, or nobody eligible): the sales managers are told,
    once, when it enters the unassigned queue (a retry that still finds nobody says nothing more)."""
    lead = assignment.lead
    context = {**_lead_context(lead), "url": mail.link("routing:team"), "lead_url": mail.link("leads:lead", lead.pk)}
    managers = User.objects.filter(role=Role.SALES_MANAGER, is_active=True).exclude(email="").order_by("pk")
    return [mail.render("lead_unassigned", {**context, "name": name}, to=to) for to, name in _people(managers)]
