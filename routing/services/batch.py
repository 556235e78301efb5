"""Routing waiting MQLs together: under load a worker places a batch in one transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from leads.conditions import LEAD_FIELDS
from leads.models import Lead, Stage, StageChange
from leads.selectors import lead_facts

from .. import caches, engine, handover, selectors, sql
from ..models import Assignment, RoutingCounter, RoutingRule
from .notify import notify_on_commit
from .route import assignment_row, lead_route, lock_candidates

ROUTE_BATCH = 100  # MQLs one routing task may place in one transaction
WAITING_WINDOW = timedelta(hours=1)  # how far back a waiting MQL is looked for


def leads_route_waiting(*, lead_id: int, limit: int = ROUTE_BATCH) -> int | None:
    """What the routing task does: route this MQL and, in the same transaction, other MQLs whose
    own routing tasks are still queued behind it (under load, a worker routes them in batches:
    the locks, the rule set and the candidates' state are taken once). Their tasks find them
    placed and have nothing left to do. Same decisions and locks as `lead_route`; a lead that has
    been routed before (rerouting, recycled) or that the batch cannot place on its fast path is
    routed on its own by `lead_route`. Returns the id of the lead's open assignment, if any."""
    placed_already = sql.open_assignment_id(lead_id)  # every task of a batch's leads asks: one plain statement
    if placed_already:
        return placed_already  # a duplicate, or a lead an earlier batch placed
    placed, leftover = _route_batch(lead_id, limit) if limit > 1 else ({}, [])
    for other in leftover:
        if other != lead_id:
            lead_route(lead_id=other)
    assignment = placed.get(lead_id) or lead_route(lead_id=lead_id)
    return assignment.pk if assignment else None


def _waiting(now: datetime) -> QuerySet[Lead]:
    """MQLs never routed since they became MQL: a stage change put them there (so a routing task
    was queued for each), and no assignment exists for them yet."""
    return (
        Lead.objects.filter(stage=Stage.MQL, updated_at__gte=now - WAITING_WINDOW)
        .filter(Exists(StageChange.objects.filter(lead=OuterRef("pk"), to_stage=Stage.MQL)))
        .exclude(Exists(Assignment.objects.filter(lead=OuterRef("pk"))))
    )


def _route_batch(lead_id: int, limit: int) -> tuple[dict[int, Assignment], list[int]]:
    now = timezone.now()
    waiting = _waiting(now)
    others = list(waiting.exclude(pk=lead_id).order_by("updated_at", "pk").values_list("pk", flat=True)[: limit - 1])
    if not others:
        return {}, []  # the worker keeps up: lead_route's fast path is the cheaper way for one lead
    with transaction.atomic():
        # Another router's leads are skipped, not waited for; the re-check after the lock is a
        # statement of its own (one that waited would not see the assignments made meanwhile).
        leads = list(
            Lead.objects.select_for_update(skip_locked=True)
            .filter(pk__in=[lead_id, *others], stage=Stage.MQL)
            .only("stage", *LEAD_FIELDS)  # what the decision reads; the rows are written by id
            .order_by("pk")
        )
        routed = set(Assignment.objects.filter(lead__in=leads).values_list("lead_id", flat=True))
        wanted = {lead_id, *others}
        leads = [lead for lead in leads if lead.pk not in routed and lead.pk in wanted]
        if not leads or (lead_id not in {lead.pk for lead in leads} and len(leads) < 2):
            return {}, [lead.pk for lead in leads]
        plan = selectors.plan()
        facts = {lead.pk: lead_facts(lead) for lead in leads}
        matching = {lead.pk: plan.ruleset.matching(facts[lead.pk]) for lead in leads}
        owners = selectors.account_owners(
            [lead for lead in leads if any(r.strategy == engine.ACCOUNT_OWNER for r in matching[lead.pk])]
        )
        # Decide first on the candidates' state read without locks, to learn which rule places
        # each lead; then lock those rules and their candidates, read them again and decide again.
        # A lead whose decision changed under the locks is routed on its own afterwards.
        everyone = {k for rules in matching.values() for r in rules for k in r.candidates} | set(owners.values())
        snapshot = _snapshot(everyone)
        predicted = {}
        for lead in leads:
            decision = engine.decide(facts[lead.pk], plan.ruleset, snapshot, {}, account_owner=owners.get(lead.pk))
            predicted[lead.pk] = decision.rule_id
            if decision.assignee:
                chosen = snapshot[decision.assignee]
                snapshot[decision.assignee] = replace(chosen, open_leads=chosen.open_leads + 1)
        leftover = [lead.pk for lead in leads if predicted[lead.pk] is None and _could_place(matching[lead.pk])]
        leads = [lead for lead in leads if lead.pk not in leftover]
        placing = {plan.rows[rule_id] for rule_id in predicted.values() if rule_id is not None}
        rule_ids = sorted(r.pk for r in placing if r.strategy != engine.POOL)
        keys: set[engine.Key] = set()
        for rule in plan.ruleset.rules:
            if rule.id in rule_ids:
                keys |= set(rule.candidates)
        keys |= {owners[lead.pk] for lead in leads if lead.pk in owners and _is_owner_rule(plan, predicted[lead.pk])}
        if rule_ids:
            list(RoutingRule.objects.select_for_update().filter(pk__in=rule_ids).order_by("pk").values_list("pk"))
        lock_candidates(keys)
        candidates = {**snapshot, **selectors.candidates(keys)}
        counters = selectors.counters(rule_ids)
        decided = []
        for lead in leads:
            decision = engine.decide(
                facts[lead.pk], plan.ruleset, candidates, counters, account_owner=owners.get(lead.pk)
            )
            if decision.rule_id != predicted[lead.pk]:
                leftover.append(lead.pk)  # the state changed meanwhile: placed on its own, all locked
                continue
            if decision.assignee:  # what this assignment changes for the next lead of the batch
                if decision.rule_id is not None:  # an assignee is always a rule's
                    slot = (decision.rule_id, decision.assignee)
                    counters[slot] = counters.get(slot, 0) + 1
                chosen = candidates[decision.assignee]
                candidates[decision.assignee] = replace(chosen, open_leads=chosen.open_leads + 1)
            decided.append((lead, decision))
        placed = _record_many(decided, plan.rows, counters, now)
    notify_on_commit([a.pk for a in placed.values()])
    return placed, leftover


def _snapshot(keys: set[engine.Key]) -> dict[engine.Key, engine.Candidate]:
    """The candidates' state for predictions, reused for a moment (`routing.caches.candidate_snapshots`):
    a stale prediction only sends a lead through lead_route; the decisions use state read under the locks."""
    cached = caches.candidate_snapshots.get("last")
    if cached is None or not keys <= cached.keys():
        cached = selectors.candidates(keys)
        caches.candidate_snapshots.set("last", cached)
    return dict(cached)


def _could_place(rules: list[engine.Rule]) -> bool:
    """Whether some matching rule has anybody to offer (else "unassigned" needs no second look)."""
    return any(r.candidates or r.strategy in (engine.POOL, engine.ACCOUNT_OWNER) for r in rules)


def _is_owner_rule(plan: selectors.Plan, rule_id: int | None) -> bool:
    row = plan.rows.get(rule_id) if rule_id is not None else None
    return row is not None and row.strategy == engine.ACCOUNT_OWNER


def _rule(rules: dict[int, RoutingRule], decision: engine.Decision) -> RoutingRule | None:
    return rules.get(decision.rule_id) if decision.rule_id is not None else None


def _record_many(
    decided: list[tuple[Lead, engine.Decision]],
    rules: dict[int, RoutingRule],
    counters: dict[tuple[int, engine.Key], int],
    now: datetime,
) -> dict[int, Assignment]:
    """`_record` for many leads: the assignments, activities and counters in a few statements.
    `counters` are the rules' counters as they stand after these assignments (read under the
    rules' locks, then advanced), written as they are."""
    assignments = handover.start_many(
        [(lead, assignment_row(lead, decision, None, _rule(rules, decision), now)) for lead, decision in decided],
        [decision.assignee_name for _, decision in decided],
        now,
    )
    for (_, decision), assignment in zip(decided, assignments, strict=True):
        if decision.offered:
            handover.offered(assignment, [key[1] for key in decision.offered])
    touched = {(d.rule_id, d.assignee) for _, d in decided if d.assignee and d.rule_id}
    for kind, unique in (("rep", "user"), ("partner", "partner")):
        rows = [
            RoutingCounter(rule_id=rule_id, **{f"{unique}_id": key[1]}, assigned=counters[(rule_id, key)])
            for rule_id, key in sorted(touched)
            if key[0] == kind
        ]
        if rows:
            RoutingCounter.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["rule", unique], update_fields=["assigned"]
            )
    return {a.lead_id: a for a in assignments}
