"""Routing one MQL: the first rule's best eligible candidate, a pool, or the unassigned queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from leads.conditions import LEAD_FIELDS
from leads.models import Lead, PartnerOrganization, Stage, User
from leads.selectors import lead_facts

from .. import engine, handover, selectors
from ..models import Assignment, RepProfile, RoutingCounter, RoutingRule
from .notify import notify_on_commit


class _LockEverything(Exception):
    """The fast path's rule could not place the lead once its candidates were locked."""


def lead_route(*, lead_id: int, exclude: Iterable[engine.Key] = (), actor: User | None = None) -> Assignment | None:
    """Hand an MQL to the first rule's best eligible candidate, or to a pool, or to the unassigned
    queue. Safe to run twice: a lead with an open assignment keeps it.

    Locks: the lead row (one router per lead), then the rule whose round-robin counters change,
    then the candidates' profile rows (their capacity), each kind in id order, so parallel workers
    stay fair and never exceed a capacity. Fast path: the first matching rule that has anybody to
    offer is usually the one that places the lead, so only it and its candidates are locked and
    read; when their state (read under the lock) says otherwise, that transaction is rolled back
    and the decision is made again with every matching rule and candidate locked.
    """
    excluded = frozenset(exclude)
    try:
        with transaction.atomic():
            assignment, created = _route(lead_id, excluded, actor, fast=True)
    except _LockEverything:
        with transaction.atomic():
            assignment, created = _route(lead_id, excluded, actor, fast=False)
    # The assignee, a pool's reps, or — nobody could take it — the sales managers.
    if created and assignment is not None:
        notify_on_commit([assignment.pk])
    return assignment


def _route(
    lead_id: int, excluded: frozenset[engine.Key], actor: User | None, fast: bool
) -> tuple[Assignment | None, bool]:
    # What the decision reads; the ownership fields are written with update_fields.
    lead = Lead.objects.select_for_update().filter(pk=lead_id).only("stage", *LEAD_FIELDS).first()
    if lead is None or lead.stage != Stage.MQL:
        return None, False
    # A statement of its own, after the lock: one that waited for the lock would still see the
    # assignments as they were when it started.
    open_ids = list(
        Assignment.objects.filter(lead=lead, status__in=Assignment.OPEN).order_by().values_list("pk", flat=True)[:1]
    )
    current = Assignment.objects.get(pk=open_ids[0]) if open_ids else None
    if current and current.status != Assignment.Status.UNASSIGNED:
        return current, False
    facts = lead_facts(lead)
    plan = selectors.plan()
    matching = plan.ruleset.matching(facts)
    if fast:
        target, keys, owner = _first_placing(matching, lambda: selectors.account_owner(lead))
        locked = [target] if target and target.strategy != engine.POOL else []
    else:
        target, owner = None, None
        if any(r.strategy == engine.ACCOUNT_OWNER for r in matching):
            owner = selectors.account_owner(lead)
        keys = {k for r in matching for k in r.candidates} | ({owner} if owner else set())
        locked = matching
    if locked:
        rule_ids = sorted(r.id for r in locked)
        list(RoutingRule.objects.select_for_update().filter(pk__in=rule_ids).order_by("pk").values_list("pk"))
    lock_candidates(keys)
    decision = engine.decide(
        facts,
        plan.ruleset,
        selectors.candidates(keys),
        selectors.counters(r.id for r in locked),
        account_owner=owner,
        excluded=excluded,
    )
    if fast and target is not None and decision.rule_id != target.id:
        raise _LockEverything
    if current and decision.assignee is None and not decision.pooled:
        return current, False  # still nobody: it keeps its place (and its history) in the unassigned queue
    rule = plan.rows.get(decision.rule_id) if decision.rule_id is not None else None
    return _record(lead, decision, actor, rule, current), True


def _first_placing(
    matching: list[engine.Rule], owner_of: Callable[[], engine.Key | None]
) -> tuple[engine.Rule | None, set[engine.Key], engine.Key | None]:
    """The first matching rule that has somebody to offer (or is a pool), its candidates, and the
    account owner if an account-owner rule on the way needed it looked up (`owner_of()`)."""
    looked_up, owner = False, None
    for rule in matching:
        if rule.strategy == engine.POOL:
            return rule, set(rule.candidates), owner  # a hybrid pool's reps (whom it is offered to)
        if rule.strategy == engine.ACCOUNT_OWNER:
            if not looked_up:
                owner, looked_up = owner_of(), True
            if owner:
                return rule, {owner}, owner
        elif rule.candidates:
            return rule, set(rule.candidates), owner
    return None, set(), owner


def lock_candidates(keys: set[engine.Key]) -> None:
    rep_ids = sorted(k[1] for k in keys if k[0] == "rep")
    partner_ids = sorted(k[1] for k in keys if k[0] == "partner")
    if rep_ids:
        list(RepProfile.objects.select_for_update().filter(user_id__in=rep_ids).order_by("pk").values_list("pk"))
    if partner_ids:
        list(
            PartnerOrganization.objects.select_for_update().filter(pk__in=partner_ids).order_by("pk").values_list("pk")
        )


def _record(
    lead: Lead, decision: engine.Decision, actor: User | None, rule: RoutingRule | None, held: Assignment | None
) -> Assignment:
    row = assignment_row(lead, decision, actor, rule, timezone.now())
    assignment = handover.start(lead, row, actor, decision.assignee_name, held=held)
    if decision.offered:
        handover.offered(assignment, [key[1] for key in decision.offered])
    if decision.assignee and rule:
        # The rule's row is locked, so update-else-create cannot race with another router.
        counter = RoutingCounter.objects.filter(rule=rule, user=assignment.user_id, partner=assignment.partner_id)
        if not counter.update(assigned=F("assigned") + 1):
            RoutingCounter.objects.create(
                rule=rule, user_id=assignment.user_id, partner_id=assignment.partner_id, assigned=1
            )
    return assignment


def assignment_row(
    lead: Lead, decision: engine.Decision, actor: User | None, rule: RoutingRule | None, now: datetime
) -> Assignment:
    """The assignment a decision makes (not saved: `handover.start` saves it)."""
    kind, ident = decision.assignee or (None, None)
    if decision.pooled:
        status = Assignment.Status.POOLED
    elif decision.assignee:
        status = Assignment.Status.ACTIVE
    else:
        status = Assignment.Status.UNASSIGNED
    pooled = status == Assignment.Status.POOLED
    return Assignment(
        lead=lead,
        user_id=ident if kind == "rep" else None,
        partner_id=ident if kind == "partner" else None,
        rule=rule,
        strategy=decision.strategy,
        status=status,
        trace=decision.trace,
        assigned_at=now,
        due_at=now + timedelta(minutes=rule.sla_minutes) if rule and status != Assignment.Status.UNASSIGNED else None,
        created_by=actor,
        pool_team_id=rule.team_id if pooled and rule else None,
        pool_mode=rule.pool_mode if pooled and rule else "",
    )
