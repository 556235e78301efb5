"""What reps, partners and managers do with a lead handed to them: accept, reject, claim from a
pool, reassign, and their own availability. Each is one transaction through `routing.handover`."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from leads.lifecycle import OPEN_STAGES
from leads.models import Lead, Stage, User
from leads.services import lead_transition

from .. import handover, selectors
from ..handover import RoutingError
from ..models import Assignment, RepProfile, RoutingRule
from .notify import notify_on_commit
from .route import lead_route

DEFAULT_SLA_MINUTES = 60  # a lead handed over by hand, without a rule


def _open_assignment_for(lead: Lead, user: User) -> Assignment:
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("rule")
        .filter(lead=lead, status=Assignment.Status.ACTIVE)
        .first()
    )
    mine = assignment is not None and (
        assignment.user_id == user.pk
        or (assignment.partner_id is not None and assignment.partner_id == user.partner_organization_id)
    )
    if assignment is None or not mine:
        raise RoutingError("This lead is not waiting for your acceptance.", "not_yours")
    return assignment


@transaction.atomic
def assignment_accept(*, lead: Lead, user: User) -> Assignment:
    """The assignee accepts: the lead moves mql → sal and the SLA clock stops."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    assignment = _open_assignment_for(lead, user)
    handover.accept(lead, assignment, user)
    lead_transition(lead=lead, to_stage=Stage.SAL, actor=user)
    return assignment


def assignment_reject(*, lead: Lead, user: User, reason: str, reroute: bool | None = None) -> Assignment | None:
    """The assignee rejects: back to marketing (mql → mal) or routed to someone else, per the rule.
    `reroute` overrides the rule (a partner's decline is always routed on: partners.services)."""
    if not reason.strip():
        raise RoutingError("A rejection needs a reason.", "reason_required")
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        assignment = _open_assignment_for(lead, user)
        handover.end(lead, assignment, "reject", user, reason, event=f"rejected: {reason}")
        if reroute is None:
            reroute = bool(assignment.rule and assignment.rule.on_reject == RoutingRule.OnReject.REROUTE)
        if not reroute:
            lead_transition(lead=lead, to_stage=Stage.MAL, reason=reason, actor=user)
            return None
    return lead_route(lead_id=lead.pk, exclude=selectors.previous_assignees(lead), actor=user)


def pool_claim(*, user: User, lead: Lead | None = None) -> Assignment:
    """Claim a pooled lead: a given one (cherry-pick, shark tank, hybrid) or, with no lead, the
    oldest of the rep's blind pools ("get next": a blind pool's leads are never picked by id).
    First claim wins; a later one gets a clear "already taken". Capacity is checked under the
    rep's profile lock, after the lead's, the order routing takes them in, so parallel pulls of
    one rep never take it past its capacity."""
    with transaction.atomic():
        pool = selectors.pool_for(user)
        if lead is None:
            target = (
                pool.filter(pool_mode=RoutingRule.PoolMode.BLIND)
                .select_for_update(skip_locked=True, of=("self",))
                .first()
            )
            if target is None:
                raise RoutingError("No lead waits in your blind pools.", "pool_empty")
        else:
            target = _claimable(pool, lead, user)
        locked = Lead.objects.select_for_update().get(pk=target.lead_id)
        _check_capacity(user)
        minutes = target.rule.sla_minutes if target.rule else DEFAULT_SLA_MINUTES
        if not handover.claim(locked, target, user, timezone.now() + timedelta(minutes=minutes)):
            raise RoutingError("This lead was already taken.", "already_taken")
    return target


def _claimable(pool: QuerySet[Assignment], lead: Lead, user: User) -> Assignment:
    target = Assignment.objects.filter(lead=lead).select_related("rule").order_by("-assigned_at", "-pk").first()
    if target is None or not (target.pool_team_id or target.status == Assignment.Status.POOLED):
        raise RoutingError("This lead is not in a pool.", "not_in_pool")
    if target.status != Assignment.Status.POOLED:
        raise RoutingError("This lead was already taken.", "already_taken")
    if not pool.filter(pk=target.pk).exists():
        # The pool only lists what is still pooled: a claim that committed since the read above took
        # it out, and that is "already taken", not "not yours" (seen with 8 reps claiming at once).
        if Assignment.objects.filter(pk=target.pk).exclude(status=Assignment.Status.POOLED).exists():
            raise RoutingError("This lead was already taken.", "already_taken")
        raise RoutingError("This lead is not in your pool.", "not_your_pool")
    if target.pool_mode == RoutingRule.PoolMode.BLIND:
        raise RoutingError("Leads of a blind pool are pulled with “Get next lead”, not picked.", "blind_pool")
    return target


def _check_capacity(user: User) -> None:
    list(RepProfile.objects.select_for_update().filter(user=user).values_list("pk"))
    candidate = selectors.candidates({("rep", user.pk)}).get(("rep", user.pk))  # read after the lock
    if candidate is None or not candidate.active or candidate.away:
        raise RoutingError("You are not available for new leads.", "unavailable")
    if candidate.open_leads >= candidate.capacity:
        raise RoutingError(f"You are at capacity ({candidate.open_leads}/{candidate.capacity}).", "at_capacity")


@transaction.atomic
def rep_set_availability(*, user: User, away_until: datetime | None) -> RepProfile:
    profile, _ = RepProfile.objects.select_for_update().get_or_create(user=user)
    profile.away_until = away_until
    profile.save(update_fields=["away_until"])
    return profile


def assignment_reassign(
    *, lead: Lead, to_user: User, actor: User, note: str = "", over_capacity: bool = False
) -> Assignment:
    """A manager hands the lead to another rep (recorded under the manager's name). A rep at or
    above capacity takes it only when the manager confirmed (`over_capacity`); otherwise
    RoutingError "over_capacity" says how full the rep is."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead.pk)
        if lead.stage not in OPEN_STAGES:
            raise RoutingError(
                f"Only open leads (marketing qualified, sales accepted or qualified) can be handed to a rep; "
                f"this one is {Stage(lead.stage).label.lower()}.",
                "not_open",
            )
        list(RepProfile.objects.select_for_update().filter(user=to_user).values_list("pk"))
        candidate = selectors.candidates({("rep", to_user.pk)}).get(("rep", to_user.pk))
        name = to_user.get_full_name() or to_user.get_username()
        if candidate is not None and candidate.open_leads >= candidate.capacity and not over_capacity:
            raise RoutingError(
                f"{name} already has {candidate.open_leads} open leads, with room for {candidate.capacity}. "
                "Confirm to hand the lead over anyway.",
                "over_capacity",
            )
        assignment = handover.hand_to(
            lead,
            to_user,
            move="reassign",
            actor=actor,
            note=note or f"reassigned by {actor.get_username()}",
            due_at=timezone.now() + timedelta(minutes=DEFAULT_SLA_MINUTES),
        )
        notify_on_commit([assignment.pk])
    return assignment
