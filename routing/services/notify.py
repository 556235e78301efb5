"""The e-mails of routing: a new lead for its assignee (or a pool's reps), and the manager told
when a pool's SLA passed or an SLA chain ran out. Sent by a task after the commit; the assignment
rows are the durable record (`notified_at`), so the reconciler sends what a lost task did not."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mass_mail
from django.utils import timezone

from leadportal.celery import enqueue
from leads.models import Role, User

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
    "partner__name",
    *(
        f"lead__{name}"
        for name in ("first_name", "last_name", "email", "company", "company_domain", "job_title", "country")
    ),
    "lead__score",
    "lead__grade",
)


def notify_on_commit(assignment_ids: list[int]) -> None:
    """Queue the e-mails once the transaction commits: the e-mail (slow, may fail) is neither in
    the transaction nor in the router's way."""
    from ..tasks import notify_assignments_task

    if assignment_ids:
        enqueue(notify_assignments_task, assignment_ids)


def assignments_notify(*, assignment_ids: list[int]) -> None:
    """E-mail the people of these assignments: one query, one connection to the mail server."""
    messages = []
    rows = (
        Assignment.objects.select_related("lead", "user", "partner", "rule")
        # One that ended before its e-mail went out (accepted, claimed, replaced) needs none.
        .filter(pk__in=assignment_ids, status__in=Assignment.OPEN)
        .only(*NOTIFY_FIELDS)
        .order_by("pk")
    )
    for assignment in rows:
        messages += _messages(assignment)
    if messages:
        send_mass_mail(messages)  # an SMTP error fails the task, which retries (routing.tasks)
    Assignment.objects.filter(pk__in=assignment_ids, notified_at=None).update(notified_at=timezone.now())


def _team_id(assignment: Assignment) -> int | None:
    return assignment.pool_team_id or (assignment.rule.team_id if assignment.rule_id else None)


def manager_email(team_id: int | None) -> list[str]:
    email = Team.objects.filter(pk=team_id).values_list("manager__email", flat=True).first() if team_id else None
    return [email] if email else []


def _pool_recipients(assignment: Assignment) -> list[str]:
    offered = list(assignment.offered_to.filter(is_active=True).values_list("email", flat=True))
    if offered:
        return offered
    team_members = User.objects.filter(rep_profile__team_id=_team_id(assignment), is_active=True)
    return list(team_members.values_list("email", flat=True))


def _messages(assignment: Assignment) -> list[tuple[str, str, str, list[str]]]:
    lead = assignment.lead
    company = lead.company or lead.company_domain
    pooled = assignment.status == Assignment.Status.POOLED
    if assignment.status == Assignment.Status.UNASSIGNED:
        return _unassigned_messages(assignment, company)
    if assignment.user_id:
        recipients = [assignment.user.email]
    elif assignment.partner_id:
        recipients = list(assignment.partner.users.values_list("email", flat=True))
    else:
        recipients = _pool_recipients(assignment)
    body = (
        f"{lead} — {lead.job_title} at {lead.company}, {lead.country.name if lead.country else ''}\n"
        f"Score {lead.score:.0f}, grade {lead.grade or '–'}."
    )
    if not assignment.partner_id:  # the routing rule is the company's own business, not a partner's
        body += f" Rule: {assignment.rule.name if assignment.rule else '–'}."
    if pooled:
        subject = f"New lead in the pool: {company}"
    elif assignment.escalated_at and assignment.created_by_id is None:
        subject = f"Escalated to you: {company} (accept by {assignment.due_at:%H:%M} UTC)"
    elif assignment.due_at:
        subject = f"New lead for you: {company} (accept by {assignment.due_at:%H:%M} UTC)"
    else:
        subject = f"New lead for you: {company}"
    messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [r]) for r in recipients if r]
    if pooled and assignment.escalated_at:
        # The manager is told: nobody took the lead in time (or nobody else could take it).
        note = (
            f"{lead} waits in your team's pool since {assignment.assigned_at:%d %b %H:%M} UTC and nobody has "
            "claimed it. Hand it to a rep from the team page."
        )
        for email in manager_email(_team_id(assignment)):
            messages.append((f"Waiting in the pool: {company}", note, settings.DEFAULT_FROM_EMAIL, [email]))
    # One message each: a pool's reps do not see each other's addresses.
    return messages


def _unassigned_messages(assignment: Assignment, company: str) -> list[tuple[str, str, str, list[str]]]:
    """Nobody could take the MQL (no rule matched, or nobody eligible): the sales managers are told,
    once, when it enters the unassigned queue (a retry that still finds nobody says nothing more)."""
    lead = assignment.lead
    body = (
        f"{lead} — {lead.job_title} at {lead.company}: no routing rule could place this lead "
        f"(score {lead.score:.0f}, grade {lead.grade or '–'}). It waits in the unassigned queue on the team page; "
        "routing tries again every few minutes."
    )
    managers = User.objects.filter(role=Role.SALES_MANAGER, is_active=True).exclude(email="")
    return [
        (f"Nobody could take a lead: {company}", body, settings.DEFAULT_FROM_EMAIL, [email])
        for email in managers.order_by("pk").values_list("email", flat=True)
    ]
