"""Every write of routing: route an MQL, accept, reject, claim from a pool, availability, SLA."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leads.conditions import evaluate
from leads.models import Activity, ActivityType, Lead, Stage, User
from leads.selectors import lead_facts
from leads.services import lead_transition
from partners.models import PartnerOrganization

from . import engine, selectors
from .models import Assignment, RepProfile, RoutingCounter, RoutingRule

log = logging.getLogger(__name__)


class RoutingError(Exception):
    """A routing action that cannot be done (not yours, already taken, at capacity …)."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message)
        self.message, self.code = message, code


# --- routing an MQL ------------------------------------------------------------------------


def route_lead(*, lead_id: int, exclude: Iterable[engine.Key] = (), actor: User | None = None) -> Assignment | None:
    """Hand an MQL to the first rule's best eligible candidate, or to a pool, or to the unassigned
    queue. Safe to run twice: a lead with an open assignment keeps it.

    Locks: the lead row (one router per lead), then the rows of the rules that match (their
    round-robin counters), then the candidates' profile rows (their capacity), always in id order,
    so parallel workers stay fair and never exceed a capacity.
    """
    with transaction.atomic():
        lead = Lead.objects.select_for_update().filter(pk=lead_id).first()
        if lead is None or lead.stage != Stage.MQL:
            return None
        current = Assignment.objects.filter(lead=lead, status__in=Assignment.OPEN).first()
        if current and current.status != Assignment.Status.UNASSIGNED:
            return current
        facts = lead_facts(lead)
        plan = selectors.plan()
        all_rules = plan.rules
        matching = [r for r in all_rules if all(evaluate(c, facts) for c in r.conditions)]
        list(RoutingRule.objects.select_for_update().filter(pk__in=[r.id for r in matching]).order_by("pk"))
        needs_owner = any(r.strategy == engine.ACCOUNT_OWNER for r in matching)
        owner = selectors.account_owner(lead) if needs_owner else None
        keys = {k for r in matching for k in r.candidates} | ({owner} if owner else set())
        _lock_candidates(keys)
        decision = engine.decide(
            facts,
            all_rules,
            selectors.candidates(keys),
            selectors.counters(r.id for r in matching),
            account_owner=owner,
            excluded=frozenset(exclude),
        )
        if current:  # an unassigned lead that gets a new chance
            _end(current, Assignment.Status.CLOSED, "routed again")
        assignment = _record(lead, decision, decision.trace, actor, plan.rows.get(decision.rule_id))
    if assignment.user_id or assignment.partner_id or assignment.status == Assignment.Status.POOLED:
        transaction.on_commit(lambda: notify(assignment.pk))
    return assignment


def _lock_candidates(keys: set[engine.Key]) -> None:
    rep_ids = sorted(k[1] for k in keys if k[0] == "rep")
    partner_ids = sorted(k[1] for k in keys if k[0] == "partner")
    if rep_ids:
        list(RepProfile.objects.select_for_update().filter(user_id__in=rep_ids).order_by("pk").values_list("pk"))
    if partner_ids:
        list(
            PartnerOrganization.objects.select_for_update().filter(pk__in=partner_ids).order_by("pk").values_list("pk")
        )


def _record(
    lead: Lead, decision: engine.Decision, trace: list[dict[str, Any]], actor: User | None, rule: RoutingRule | None
) -> Assignment:
    now = timezone.now()
    kind, ident = decision.assignee or (None, None)
    if decision.pooled:
        status = Assignment.Status.POOLED
    elif decision.assignee:
        status = Assignment.Status.ACTIVE
    else:
        status = Assignment.Status.UNASSIGNED
    assignment = Assignment.objects.create(
        lead=lead,
        user_id=ident if kind == "rep" else None,
        partner_id=ident if kind == "partner" else None,
        rule=rule,
        strategy=decision.strategy,
        status=status,
        trace=trace,
        assigned_at=now,
        due_at=now + timedelta(minutes=rule.sla_minutes) if rule and status != Assignment.Status.UNASSIGNED else None,
        created_by=actor,
    )
    if decision.assignee and rule:
        # The rule's row is locked, so update-else-create cannot race with another router.
        counter = RoutingCounter.objects.filter(rule=rule, user_id=assignment.user_id, partner_id=assignment.partner_id)
        if not counter.update(assigned=F("assigned") + 1):
            RoutingCounter.objects.create(
                rule=rule, user_id=assignment.user_id, partner_id=assignment.partner_id, assigned=1
            )
    _apply_owner(lead, assignment)
    _timeline(lead, assignment, actor)
    return assignment


OWNERSHIP_FIELDS = ("owner", "partner", "marketing_suppressed", "handed_over_at", "respond_by")


def _apply_owner(lead: Lead, assignment: Assignment) -> None:
    """On handover the lead belongs to the assignee and leaves marketing's campaigns."""
    handed_over = assignment.status in (Assignment.Status.ACTIVE, Assignment.Status.ACCEPTED)
    lead.owner_id = assignment.user_id if handed_over else None
    lead.partner_id = assignment.partner_id if handed_over else None
    lead.marketing_suppressed = handed_over or assignment.status == Assignment.Status.POOLED
    lead.handed_over_at = assignment.assigned_at if handed_over else None
    lead.respond_by = assignment.due_at if assignment.status == Assignment.Status.ACTIVE else None
    lead.save(update_fields=[*OWNERSHIP_FIELDS, "updated_at"])


def _timeline(lead: Lead, assignment: Assignment, actor: User | None, event: str = "") -> None:
    Activity.objects.create(
        lead=lead,
        type=ActivityType.ASSIGNMENT,
        occurred_at=timezone.now(),
        properties={
            "assignment": assignment.pk,
            "event": event or assignment.status,
            "assignee": assignment.assignee_label,
            "rule": assignment.rule.name if assignment.rule else "",
            "due_at": assignment.due_at.isoformat() if assignment.due_at else None,
        },
        created_by=actor,
    )


def _end(assignment: Assignment, status: str, note: str = "") -> None:
    assignment.status = status
    assignment.ended_at = timezone.now()
    if note:
        assignment.note = note
    assignment.save(update_fields=["status", "ended_at", "note"])


def notify(assignment_id: int) -> None:
    """E-mail the assignee (or, for a pool, every eligible rep). Runs after the commit."""
    assignment = Assignment.objects.select_related("lead", "user", "partner", "rule").get(pk=assignment_id)
    lead = assignment.lead
    if assignment.user_id:
        recipients = [assignment.user.email]
    elif assignment.partner_id:
        recipients = list(assignment.partner.users.values_list("email", flat=True))
    else:
        recipients = list(
            User.objects.filter(rep_profile__team_id=assignment.rule.team_id, is_active=True).values_list(
                "email", flat=True
            )
        )
    recipients = [r for r in recipients if r]
    if not recipients:
        return
    if assignment.status == Assignment.Status.POOLED:
        subject = f"New lead in the pool: {lead.company or lead.company_domain}"
    else:
        subject = f"New lead for you: {lead.company or lead.company_domain} (accept by {assignment.due_at:%H:%M} UTC)"
    body = (
        f"{lead} — {lead.job_title} at {lead.company}, {lead.country.name if lead.country else ''}\n"
        f"Score {lead.score:.0f}, grade {lead.grade or '–'}. Rule: {assignment.rule.name if assignment.rule else '–'}."
    )
    # One message each: a pool's reps do not see each other's addresses.
    send_mass_mail([(subject, body, settings.DEFAULT_FROM_EMAIL, [r]) for r in recipients], fail_silently=True)


# --- accept, reject, claim ---------------------------------------------------------------------


def _open_assignment_for(lead: Lead, user: User) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(lead=lead, status=Assignment.Status.ACTIVE)
        .first()
    )
    mine = assignment and (
        assignment.user_id == user.pk
        or (assignment.partner_id and assignment.partner_id == user.partner_organization_id)
    )
    if not mine:
        raise RoutingError("This lead is not waiting for your acceptance.", "not_yours")
    return assignment


@transaction.atomic
def assignment_accept(*, lead: Lead, user: User) -> Assignment:
    """The assignee accepts: the lead moves mql → sal and the SLA clock stops."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    assignment = _open_assignment_for(lead, user)
    lead_transition(lead=lead, to_stage=Stage.SAL, actor=user)
    assignment.status = Assignment.Status.ACCEPTED
    assignment.accepted_at = timezone.now()
    assignment.save(update_fields=["status", "accepted_at"])
    lead.respond_by = None
    lead.save(update_fields=["respond_by", "updated_at"])
    _timeline(lead, assignment, user, "accepted")
    return assignment


def assignment_reject(*, lead: Lead, user: User, reason: str, reroute: bool | None = None) -> Assignment | None:
    """The assignee rejects: back to marketing (mql → mal) or routed to someone else, per the rule.
    `reroute` overrides the rule (a partner's decline is always routed on: partners.services)."""
    if not reason.strip():
        raise RoutingError("A rejection needs a reason.", "reason_required")
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        assignment = _open_assignment_for(lead, user)
        _end(assignment, Assignment.Status.REJECTED, reason)
        _timeline(lead, assignment, user, f"rejected: {reason}")
        if reroute is None:
            reroute = bool(assignment.rule and assignment.rule.on_reject == RoutingRule.OnReject.REROUTE)
        if not reroute:
            lead_transition(lead=lead, to_stage=Stage.MAL, reason=reason, actor=user)
            lead.owner = lead.partner = lead.handed_over_at = lead.respond_by = None
            lead.marketing_suppressed = False
            lead.save(update_fields=[*OWNERSHIP_FIELDS, "updated_at"])
            return None
    return route_lead(lead_id=lead.pk, exclude=selectors.previous_assignees(lead), actor=user)


def pool_claim(*, user: User, lead: Lead | None = None) -> Assignment:
    """Claim a pooled lead (a given one, or the next one for a blind pull). First claim wins; a
    later one gets a clear "already taken". The claim is one conditional UPDATE: its row count
    says who won."""
    candidate = selectors.candidates({("rep", user.pk)}).get(("rep", user.pk))
    if candidate is None or not candidate.active or candidate.away:
        raise RoutingError("You are not available for new leads.", "unavailable")
    if candidate.open_leads >= candidate.capacity:
        raise RoutingError(f"You are at capacity ({candidate.open_leads}/{candidate.capacity}).", "at_capacity")
    pool = selectors.pool_for(user)
    with transaction.atomic():
        if lead is None:
            target = pool.select_for_update(skip_locked=True, of=("self",)).first()
            if target is None:
                raise RoutingError("The pool is empty.", "pool_empty")
        else:
            target = Assignment.objects.filter(lead=lead).select_related("rule").order_by("-pk").first()
            if target is None or target.rule is None or target.rule.target != RoutingRule.Target.POOL:
                raise RoutingError("This lead is not in a pool.", "not_in_pool")
            if not pool.filter(rule_id=target.rule_id).exists() and target.status == Assignment.Status.POOLED:
                raise RoutingError("This lead is not in your pool.", "not_your_pool")
        now = timezone.now()
        won = Assignment.objects.filter(pk=target.pk, status=Assignment.Status.POOLED).update(
            status=Assignment.Status.ACTIVE,
            user=user,
            assigned_at=now,
            due_at=now + timedelta(minutes=target.rule.sla_minutes if target.rule else 60),
        )
        if not won:
            raise RoutingError("This lead was already taken.", "already_taken")
        target.refresh_from_db()
        locked = Lead.objects.select_for_update().get(pk=target.lead_id)
        _apply_owner(locked, target)
        _timeline(locked, target, user, "claimed from the pool")
    return target


@transaction.atomic
def rep_set_availability(*, user: User, away_until: datetime | None) -> RepProfile:
    profile, _ = RepProfile.objects.select_for_update().get_or_create(user=user)
    profile.away_until = away_until
    profile.save(update_fields=["away_until"])
    return profile


@transaction.atomic
def assignment_reassign(*, lead: Lead, to_user: User, actor: User, note: str = "") -> Assignment:
    """A manager hands the lead to another rep (recorded)."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    for current in Assignment.objects.select_for_update().filter(lead=lead, status__in=Assignment.OPEN):
        _end(current, Assignment.Status.REASSIGNED, note or f"reassigned by {actor.get_username()}")
    now = timezone.now()
    assignment = Assignment.objects.create(
        lead=lead,
        user=to_user,
        strategy="manual",
        status=Assignment.Status.ACTIVE if lead.stage == Stage.MQL else Assignment.Status.ACCEPTED,
        trace=[{"result": f"reassigned by {actor.get_username()}", "note": note}],
        note=note,
        assigned_at=now,
        due_at=now + timedelta(minutes=60) if lead.stage == Stage.MQL else None,
        accepted_at=None if lead.stage == Stage.MQL else now,
        created_by=actor,
    )
    _apply_owner(lead, assignment)
    _timeline(lead, assignment, actor, "reassigned")
    transaction.on_commit(lambda: notify(assignment.pk))
    return assignment


# --- SLA -------------------------------------------------------------------------------------------


def sla_enforce(*, now: datetime | None = None, limit: int = 500) -> int:
    """Assignments not accepted by their due time: reassign to the next eligible candidate (never
    the same one) or escalate to the team manager, per rule. Returns how many were handled."""
    now = now or timezone.now()
    handled = 0
    overdue = list(
        Assignment.objects.filter(status=Assignment.Status.ACTIVE, due_at__lt=now)
        .order_by("due_at")
        .values_list("pk", flat=True)[:limit]
    )
    for assignment_id in overdue:
        with transaction.atomic():
            assignment = (
                Assignment.objects.select_for_update(skip_locked=True, of=("self", "lead"))
                .select_related("rule", "lead")
                .filter(pk=assignment_id, status=Assignment.Status.ACTIVE, due_at__lt=now)
                .first()
            )
            if assignment is None:
                continue
            lead = assignment.lead
            _end(assignment, Assignment.Status.EXPIRED, "not accepted in time")
            _timeline(lead, assignment, None, "SLA missed")
            escalate = assignment.rule and assignment.rule.on_sla_breach == RoutingRule.OnBreach.ESCALATE
            manager = assignment.rule.team.manager if escalate and assignment.rule.team_id else None
        if manager:
            assignment_reassign(lead=lead, to_user=manager, actor=manager, note="escalated: SLA missed")
        else:
            route_lead(lead_id=lead.pk, exclude=selectors.previous_assignees(lead))
        handled += 1
    return handled


def sync_with_stage(*, lead_id: int, from_stage: str, to_stage: str) -> None:
    """Keep the open assignment in step with lifecycle moves made elsewhere (API, admin, partners):
    accepted when the lead reaches SAL, closed when it leaves MQL any other way."""
    if from_stage != Stage.MQL:
        return
    now = timezone.now()
    open_ = Assignment.objects.filter(lead_id=lead_id, status__in=Assignment.OPEN)
    if to_stage == Stage.SAL:
        open_.filter(status=Assignment.Status.ACTIVE).update(status=Assignment.Status.ACCEPTED, accepted_at=now)
    Lead.objects.filter(pk=lead_id).exclude(respond_by=None).update(respond_by=None)
    open_.update(status=Assignment.Status.CLOSED, ended_at=now, note=f"lead moved to {to_stage}")
