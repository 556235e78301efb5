"""Routing's in-app notifications (leads.notifications), written in the transaction of the move they
tell (routing.handover calls these): a lead handed to you, a lead taken back from you; and the beat
job's "SLA soon due". Times as the e-mails say them (leads.mail.when).
A notice names its assignment (`key`), so a move or a job run twice tells once."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from leads import mail, notifications
from leads.formatting import format_points
from leads.models import Lead, Role, User

from .models import Assignment

Kind = notifications.Kind
SLA_SOON = timedelta(minutes=15)  # the queue's countdown turns amber from here too
SLA_SOON_BATCH = 500


def _who(lead: Lead) -> str:
    name = f"{lead.first_name} {lead.last_name}".strip() or lead.email
    return f"{name} ({lead.company})" if lead.company else name


def _partner_users(org_ids: set[int]) -> dict[int, list[int]]:
    users: dict[int, list[int]] = {}
    rows = User.objects.filter(partner_organization_id__in=org_ids, role=Role.PARTNER, is_active=True)
    for user_id, org_id in rows.values_list("pk", "partner_organization_id"):
        users.setdefault(org_id, []).append(user_id)
    return users


def assigned(pairs: list[tuple[Lead, Assignment]]) -> None:
    """"New lead for you": the rep a lead was handed to (waiting for acceptance, or reassigned as
    accepted), or a partner organisation's users. Pools and the unassigned queue tell nobody here."""
    partner_users = _partner_users({a.partner_id for _, a in pairs if a.partner_id})
    for lead, assignment in pairs:
        if assignment.user_id:
            users, url = [assignment.user_id], reverse("leads:lead", args=[lead.pk])
        elif assignment.partner_id:
            users, url = partner_users.get(assignment.partner_id, []), reverse("partners:lead", args=[lead.pk])
        else:
            continue
        text = gettext("New lead for you: %(who)s, score %(score)s") % {
            "who": _who(lead),
            "score": format_points(lead.score),
        }
        if assignment.due_at:
            text += " — " + gettext("accept by %(when)s") % {"when": mail.when(assignment.due_at)}
        notifications.notify(
            users=users, kind=Kind.ASSIGNED, key=f"assignment:{assignment.pk}", text=text, lead=lead, url=url
        )


def taken_back(lead: Lead, assignment: Assignment, note: str) -> None:
    """"Lead taken back": the rep whose assignment ended without them (SLA missed, a manager's
    reassignment, a take-back)."""
    if not assignment.user_id:
        return
    text = gettext("Taken back from you: %(who)s") % {"who": _who(lead)}
    if note:
        text += f" — {note}"
    notifications.notify(
        users=[assignment.user_id], kind=Kind.TAKEN_BACK, key=f"assignment:{assignment.pk}", text=text, lead=lead
    )


def sla_soon(*, now: datetime | None = None, limit: int = SLA_SOON_BATCH) -> int:
    """Beat job: each rep whose lead waits for acceptance and runs out within SLA_SOON is told once
    (per assignment; the unique key makes the next minute's run a no-op for it). Returns how many
    notices were offered."""
    now = now or timezone.now()
    due = list(
        Assignment.objects.filter(
            status=Assignment.Status.ACTIVE, user__isnull=False, due_at__gt=now, due_at__lte=now + SLA_SOON
        )
        .select_related("lead")
        .only("pk", "user_id", "due_at", "lead__first_name", "lead__last_name", "lead__email", "lead__company")
        .order_by("due_at")[:limit]
    )
    told = 0
    for assignment in due:
        lead = assignment.lead
        if assignment.due_at is None:  # filtered out above; said again for mypy
            continue
        text = gettext("SLA soon due: accept %(who)s by %(when)s") % {
            "who": _who(lead),
            "when": mail.when(assignment.due_at),
        }
        told += notifications.notify(
            users=[assignment.user_id],
            kind=Kind.SLA_SOON,
            key=f"assignment:{assignment.pk}",
            text=text,
            lead=lead,
            url=reverse("leads:lead", args=[lead.pk]),
        )
    return told
