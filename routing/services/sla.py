"""Deadlines: an assignment not accepted in time is reassigned or escalated, a pooled lead nobody
claimed in time is escalated, and a chain that runs out of people ends with the rule's fallback
(the team manager, or the team's pool) — never silently unassigned. The unassigned queue gets
another chance every few minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from leads.models import Lead, Stage, User

from .. import handover, selectors
from ..models import Assignment, RepProfile, RoutingRule, Team
from .notify import notify_on_commit
from .route import lead_route

SLA_BATCH = 500  # overdue assignments one run handles
RETRY_BATCH = 500  # unassigned leads one retry run routes again


def sla_enforce(*, now: datetime | None = None, limit: int = SLA_BATCH) -> int:
    """Assignments past their deadline. Waiting for acceptance: reassigned to the next eligible
    candidate (never one who had it) or escalated to the team manager, per rule; if nobody is left,
    the rule's fallback takes it. Pooled and unclaimed: the manager is told (a hybrid offer widens
    to the team). Returns how many were handled."""
    now = now or timezone.now()
    handled = 0
    overdue = list(
        Assignment.objects.filter(status=Assignment.Status.ACTIVE, due_at__lt=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    for assignment_id in overdue:
        handled += _expire(assignment_id, now)
    unclaimed = list(
        Assignment.objects.filter(status=Assignment.Status.POOLED, due_at__lt=now, escalated_at=None)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    for assignment_id in unclaimed:
        handled += _escalate_pooled(assignment_id, now)
    return handled


def _locked(assignment_id: int, status: str, now: datetime) -> Assignment | None:
    return (
        Assignment.objects.select_for_update(skip_locked=True, of=("self", "lead"))
        .select_related("rule", "rule__team", "lead", "user")
        .filter(pk=assignment_id, status=status, due_at__lt=now)
        .first()
    )


def _expire(assignment_id: int, now: datetime) -> int:
    with transaction.atomic():
        assignment = _locked(assignment_id, Assignment.Status.ACTIVE, now)
        if assignment is None:
            return 0
        lead, rule = assignment.lead, assignment.rule
        handover.end(lead, assignment, "expire", None, "not accepted in time", event="SLA missed")
        team = _team(assignment)
        if rule and rule.on_sla_breach == RoutingRule.OnBreach.ESCALATE and team and team.manager_id:
            _escalate_to_manager(lead, team, rule, "escalated: SLA missed")
            return 1
    # One transaction: an "unassigned" the fallback replaces at once is never announced.
    with transaction.atomic():
        placed = lead_route(lead_id=lead.pk, exclude=selectors.previous_assignees(lead))
        if placed is None or placed.status == Assignment.Status.UNASSIGNED:
            _fallback(lead.pk, rule, team)
    return 1


def _team(assignment: Assignment) -> Team | None:
    """The team responsible for the lead: the rule's, else the last assignee's."""
    if assignment.rule is not None and assignment.rule.team_id:
        return assignment.rule.team
    if assignment.user_id:
        profile = RepProfile.objects.select_related("team").filter(user_id=assignment.user_id).first()
        return profile.team if profile else None
    return None


def _escalate_to_manager(lead: Lead, team: Team, rule: RoutingRule | None, note: str) -> Assignment:
    if team.manager_id is None:  # the callers escalate only to a team with a manager
        raise ValueError(f"Team {team.pk} has no manager to escalate to.")
    manager = User.objects.get(pk=team.manager_id)
    assignment = handover.hand_to(
        lead,
        manager,
        move="escalate",
        actor=None,
        note=note,
        due_at=timezone.now() + timedelta(minutes=rule.sla_minutes if rule else 60),
        rule=rule,
        event=f"escalated to {manager.get_full_name() or manager.get_username()}: {note.split(': ', 1)[-1]}",
    )
    notify_on_commit([assignment.pk])
    return assignment


def _fallback(lead_id: int, rule: RoutingRule | None, team: Team | None) -> None:
    """Nobody else could take the lead after a missed SLA: the rule's fallback, the manager told."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        held = handover.current(lead_id)
        if lead.stage != Stage.MQL or (held is not None and held.status != Assignment.Status.UNASSIGNED):
            return  # placed, or moved on, meanwhile
        note = "SLA chain ran out: nobody else could take the lead"
        wants_pool = rule is not None and rule.fallback == RoutingRule.Fallback.POOL
        if team and wants_pool:
            minutes = rule.sla_minutes if rule else 60
            pooled = handover.to_pool(
                lead,
                team.pk,
                rule=rule,
                note=note,
                due_at=timezone.now() + timedelta(minutes=minutes),
                event=f"{note}; put in {team.name}'s pool, manager told",
            )
            notify_on_commit([pooled.pk])
        elif team and team.manager_id:
            _escalate_to_manager(lead, team, rule, f"escalated: {note}")
        # No team and no manager: it stays in the unassigned queue, which every sales manager sees.


def _escalate_pooled(assignment_id: int, now: datetime) -> int:
    with transaction.atomic():
        assignment = _locked(assignment_id, Assignment.Status.POOLED, now)
        if assignment is None:
            return 0
        handover.escalate_pooled(assignment.lead, assignment, "not claimed in time: manager told")
        notify_on_commit([assignment.pk])
    return 1


def unassigned_retry(*, limit: int = RETRY_BATCH) -> int:
    """Leads in the unassigned queue get another chance (reps may be back) — never with someone
    who had them before (a partner that declined, a rep who let the SLA pass)."""
    ids = list(
        Assignment.objects.filter(status=Assignment.Status.UNASSIGNED)
        .order_by("assigned_at")
        .values_list("lead_id", flat=True)[:limit]
    )
    for lead in Lead.objects.filter(pk__in=ids).only("pk"):
        lead_route(lead_id=lead.pk, exclude=selectors.previous_assignees(lead))
    return len(ids)
