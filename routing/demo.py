"""Demo routing: one inside-sales team, accounts, and rules that exercise every strategy; then what
the reps did with the leads handed to them over the past year.

The rules come first (order 5): scoring's first run (order 10) makes the hot leads MQL and routing
hands each over as its move commits, with its real score. The handover stories (order 15) are
told through the reps' own services — accept, qualify (BANT), close won or lost, claim from the
pool — and then moved back in time (`leads.demo.stories_backdate`): the deals closed over the last
twelve months, the open ones were accepted days or weeks ago, the MQLs waiting for acceptance
were handed over just now. Each rep ends with `TARGET_LOAD` of its capacity in open leads, so a
model activation or a burst of MQLs still has somewhere to go, and the pool keeps `KEEP_POOLED`
leads for the reps to claim.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils import timezone

from leads import services as lead_services
from leads.demo import Mark, Moves, backdate_rows, backdater, seeder, stories_backdate
from leads.models import Lead, LostReason, PartnerOrganization, Stage, User

from . import services
from .models import Account, Assignment, RepProfile, RoutingRule, RuleCondition, Seniority, Team

ACCOUNTS = [("granitesoft.example", "Granite Software", "rep3"), ("lumentel.example", "Lumen Telecom", "rep3")]
CAPACITY = 40
TARGET_LOAD = 0.65  # of a rep's capacity in open leads (MQL, SAL, SQL) once the demo is seeded
KEEP_POOLED = 5  # leads left in the pool for the reps to claim
SEED = 2026
DAY = timedelta(days=1)
# What the reps' open leads are doing, in turn: qualified, accepted, or waiting for acceptance.
OPEN_STATES = [Stage.SQL, Stage.SAL, Stage.MQL, Stage.SAL, Stage.SQL, Stage.SAL, Stage.SQL, Stage.MQL]
BANT = {
    "budget": (True, "Budget approved for this financial year"),
    "authority": (True, "Signs off with the CFO"),
    "need": (True, "Replacing spreadsheets and manual hand-offs"),
    "timing": (True, "Wants to go live this quarter"),
}
LOST_REASONS = [
    LostReason.NO_BUDGET,
    LostReason.COMPETITOR,
    LostReason.BAD_TIMING,
    LostReason.NO_NEED,
    LostReason.PRICE,
    LostReason.NO_AUTHORITY,
]


@seeder(order=5)  # before scoring activates its model, so the MQLs it makes are routed live
def seed_routing(say: Callable[[str], None]) -> None:
    managers, _ = Group.objects.get_or_create(name="Sales managers")
    managers.permissions.add(*Permission.objects.filter(content_type__app_label="routing"))
    if RoutingRule.objects.exists():
        return
    users = {u.username: u for u in User.objects.filter(username__in=["salesmanager", "rep1", "rep2", "rep3"])}
    alpine = PartnerOrganization.objects.get(name="Alpine Resellers GmbH")
    nordic = PartnerOrganization.objects.get(name="Nordic Channel AB")
    with transaction.atomic():
        team = Team.objects.create(name="Inside sales", manager=users["salesmanager"])
        profiles = {
            "rep1": {"territories": ["DACH"], "languages": ["de", "en"], "seniority": Seniority.MID},
            "rep2": {"territories": [], "languages": ["en", "fr"], "seniority": Seniority.SENIOR, "weight": 2},
            "rep3": {"territories": ["UKI", "NA"], "languages": ["en"], "seniority": Seniority.MID},
        }
        for username, values in profiles.items():
            RepProfile.objects.create(user=users[username], team=team, capacity=CAPACITY, **values)
        for domain, name, owner in ACCOUNTS:
            Account.objects.create(domain=domain, name=name, owner=users[owner], existing_customer=True)
        # (priority, name, the rule's fields, its conditions as (field, operator, value))
        rules: list[tuple[int, str, dict[str, Any], list[tuple[str, str, str]]]] = [
            (
                10,
                "Existing customers → account owner",
                {"target": "team", "team": team, "strategy": "account_owner"},
                [],
            ),
            (
                20,
                "Nordics → Nordic Channel",
                {"target": "partners", "strategy": "least_loaded"},
                [("country", "in", "SE, NO, DK, FI")],
            ),
            (
                30,
                "Grade A → senior rep",
                {"target": "rep", "rep": users["rep2"], "strategy": "direct"},
                [("grade", "eq", "A")],
            ),
            (
                40,
                "Austria and Switzerland, small → Alpine Resellers",
                {"target": "partners", "strategy": "direct"},
                [("country", "in", "AT, CH"), ("company_size", "lte", "3000")],
            ),
            (
                50,
                "DACH → territory rep",
                {"target": "rep", "rep": users["rep1"], "strategy": "direct"},
                [("country", "in", "DE, AT, CH")],
            ),
            (
                60,
                "Integrations interest → shark-tank pool",
                {"target": "pool", "team": team, "strategy": "pool", "pool_mode": "shark_tank"},
                [("product_interest", "eq", "Integrations")],
            ),
            (
                90,
                "Everyone else → inside sales round robin",
                {"target": "team", "team": team, "strategy": "weighted_round_robin", "on_reject": "reroute"},
                [],
            ),
        ]
        for priority, name, fields, conditions in rules:
            rule = RoutingRule.objects.create(priority=priority, name=name, sla_minutes=120, **fields)
            for field, operator, value in conditions:
                RuleCondition.objects.create(rule=rule, field=field, operator=operator, value=value)
            if "Nordic" in name:
                rule.partners.set([nordic])
            if "Alpine" in name:
                rule.partners.set([alpine])
    say(f"Routing: team 'Inside sales', {len(rules)} rules.")


@seeder(order=15)  # after scoring made the MQLs, before the partners report on theirs
def seed_handovers(say: Callable[[str], None]) -> None:
    if Assignment.objects.filter(accepted_at__isnull=False, user__isnull=False).exists():
        return  # told before
    # MQLs waiting for routing: routed here, not by a worker that may not run yet (a lead routed
    # already keeps its assignment, so the queued task changes nothing later).
    waiting = Lead.objects.filter(stage=Stage.MQL).exclude(assignments__status__in=Assignment.OPEN)
    for lead_id in waiting.order_by("pk").values_list("pk", flat=True):
        services.lead_route(lead_id=lead_id)
    pooled = list(
        Assignment.objects.filter(status=Assignment.Status.POOLED, rule__target=RoutingRule.Target.POOL)
        .order_by("assigned_at", "pk")
        .values_list("lead_id", flat=True)
    )
    to_claim = pooled[: max(0, len(pooled) - KEEP_POOLED)]
    plans = _plans(to_claim)
    # One transaction: the rescoring the stories ask for (BANT is a score input, and so is moving the
    # activities back in time) is done once, for all of them, when it commits.
    with transaction.atomic():
        stories, told = _tell(random.Random(SEED), plans)
        stories_backdate(stories)
    say(
        f"Handovers: {told['won']} won and {told['lost']} lost over the past year; open now "
        f"{told[Stage.SQL]} SQL, {told[Stage.SAL]} SAL, {told[Stage.MQL]} MQL waiting; "
        f"{len(to_claim)} claimed from the pool, {len(pooled) - len(to_claim)} left in it."
    )


@dataclass
class _Plan:
    user: User
    closing: list[int]  # handed over, then won or lost in the past year
    keeping: list[int]  # handed over, open now
    claims: list[int]  # to claim from the pool, open now


def _plans(to_claim: list[int]) -> list[_Plan]:
    """Per rep, which of the MQLs handed over are closed and which stay open, so that the rep keeps
    TARGET_LOAD of its capacity with its share of the pool's leads claimed."""
    profiles = RepProfile.objects.filter(user__is_active=True).select_related("user").order_by("user__username")
    plans = []
    for i, profile in enumerate(profiles):
        handed = list(
            Lead.objects.filter(
                stage=Stage.MQL,
                assignments__user=profile.user,
                assignments__status=Assignment.Status.ACTIVE,
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        claims = to_claim[i :: len(profiles)]
        closing = max(0, len(handed) + len(claims) - round(TARGET_LOAD * profile.capacity))
        plans.append(_Plan(profile.user, handed[:closing], handed[closing:], claims))
    return plans


def _tell(rng: random.Random, plans: list[_Plan]) -> tuple[dict[int, list[Mark]], dict[str, int]]:
    """Tell the stories through the reps' services; return each one's marks (for stories_backdate)
    and how many ended which way."""
    stories: dict[int, list[Mark]] = {}
    told = dict.fromkeys(["won", "lost", Stage.MQL, Stage.SAL, Stage.SQL], 0)
    # The deals closed over the past year, evenly spread, the first leads' the longest ago.
    closed = sorted(((lead_id, plan.user) for plan in plans for lead_id in plan.closing), key=lambda pair: pair[0])
    for k, (lead_id, user) in enumerate(closed):
        ended_ago = (2 + 343 * (len(closed) - k - 0.5) / len(closed)) * DAY
        outcome, stories[lead_id] = _close(rng, user, lead_id, ended_ago)
        told[outcome] += 1
    for plan in plans:
        claimed_at = {}
        for lead_id in plan.claims:  # under capacity: the closed ones have made room
            claimed_at[lead_id] = timezone.now()
            services.pool_claim(user=plan.user, lead=Lead.objects.get(pk=lead_id))
        for j, lead_id in enumerate(plan.keeping + plan.claims):
            state = OPEN_STATES[j % len(OPEN_STATES)]
            told[state] += 1
            if state != Stage.MQL:  # an MQL waiting for acceptance was handed over just now
                stories[lead_id] = _work(rng, plan.user, lead_id, state, claimed_at.get(lead_id))
    return stories, told


def _close(rng: random.Random, user: User, lead_id: int, ago: timedelta) -> tuple[str, list[Mark]]:
    """Accept, maybe qualify, then win or lose the lead; the story ends `ago`."""
    roll = rng.random()
    value = Decimal(rng.randint(5, 120) * 1000)
    reason = rng.choice(LOST_REASONS)
    bant_gap, close_gap = rng.uniform(3, 20) * DAY, rng.uniform(5, 40) * DAY
    accept_gap = rng.uniform(20, 100) * timedelta(minutes=1)
    # A story that ended long ago was a quick one: it began within the year.
    room = 358 * DAY - ago - accept_gap
    if bant_gap + close_gap > room:
        shorter = room / (bant_gap + close_gap)
        bant_gap, close_gap = bant_gap * shorter, close_gap * shorter
    via_sql = roll < 0.7
    accepted_ago = ago + close_gap + (bant_gap if via_sql else timedelta(0))
    lead = Lead.objects.get(pk=lead_id)
    marks: list[Mark] = [(None, accepted_ago + accept_gap)]
    marks.append((timezone.now(), accepted_ago))
    services.assignment_accept(lead=lead, user=user)
    if via_sql:
        marks.append((timezone.now(), ago + close_gap))
        lead_services.lead_qualify(lead=lead, criteria=BANT, actor=user)
    marks.append((timezone.now(), ago))
    if via_sql and roll < 0.45:
        lead_services.lead_close(lead=lead, won=True, amount=value, currency="EUR", actor=user)
        outcome = "won"
    else:
        lead_services.lead_close(lead=lead, won=False, reason=reason, note="", actor=user)
        outcome = "lost"
    return outcome, marks


def _work(rng: random.Random, user: User, lead_id: int, state: str, claimed_at: datetime | None) -> list[Mark]:
    """Accept the lead (days ago) and, for an SQL, qualify it since; a lead claimed from the pool
    waited there for a while before."""
    qualified_ago = rng.uniform(1, 20) * DAY
    accepted_ago = (qualified_ago + rng.uniform(2, 15) * DAY) if state == Stage.SQL else rng.uniform(0.3, 12) * DAY
    handed_ago = accepted_ago + rng.uniform(20, 100) * timedelta(minutes=1)
    pooled_for = rng.uniform(1, 48) * timedelta(hours=1)
    lead = Lead.objects.get(pk=lead_id)
    marks: list[Mark] = [(None, handed_ago)] if claimed_at is None else [(None, handed_ago + pooled_for)]
    if claimed_at is not None:
        marks.append((claimed_at, handed_ago))
    marks.append((timezone.now(), accepted_ago))
    services.assignment_accept(lead=lead, user=user)
    if state == Stage.SQL:
        marks.append((timezone.now(), qualified_ago))
        lead_services.lead_qualify(lead=lead, criteria=BANT, actor=user)
    return marks


@backdater
def backdate_assignments(moves: Moves) -> None:
    """The handovers of moved stories move with them: an assignment's times with the step that
    wrote each (its deadline and e-mail with its start), the lead's handover time with it."""
    assignments = Assignment.objects.filter(lead_id__in=moves.lead_ids)
    fields = {
        "assigned_at": "assigned_at",
        "due_at": "assigned_at",
        "notified_at": "assigned_at",
        "accepted_at": "accepted_at",
        "ended_at": "ended_at",
        "escalated_at": "escalated_at",
    }
    backdate_rows(assignments, moves, "lead_id", fields)
    leads = Lead.objects.filter(pk__in=moves.lead_ids)
    backdate_rows(leads, moves, "pk", {"handed_over_at": "handed_over_at", "respond_by": "handed_over_at"})

