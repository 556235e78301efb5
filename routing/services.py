"""Every write of routing: route an MQL, accept, reject, claim from a pool, availability, SLA."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from leadportal.celery import enqueue
from leads.conditions import LEAD_FIELDS
from leads.models import Activity, ActivityType, Lead, Stage, StageChange, User
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


class _LockEverything(Exception):
    """The fast path's rule could not place the lead once its candidates were locked."""


def route_lead(*, lead_id: int, exclude: Iterable[engine.Key] = (), actor: User | None = None) -> Assignment | None:
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
    if created and (assignment.user_id or assignment.partner_id or assignment.status == Assignment.Status.POOLED):
        _notify_on_commit([assignment.pk])
    return assignment


def _route(lead_id: int, excluded: frozenset[engine.Key], actor: User | None, fast: bool):
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
    _lock_candidates(keys)
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
    if current:  # an unassigned lead that gets a new chance
        _end(current, Assignment.Status.CLOSED, "routed again")
    return _record(lead, decision, decision.trace, actor, plan.rows.get(decision.rule_id)), True


def _first_placing(
    matching: list[engine.Rule], owner_of: Callable[[], engine.Key | None]
) -> tuple[engine.Rule | None, set[engine.Key], engine.Key | None]:
    """The first matching rule that has somebody to offer (or is a pool), its candidates, and the
    account owner if an account-owner rule on the way needed it looked up (`owner_of()`)."""
    looked_up, owner = False, None
    for rule in matching:
        if rule.strategy == engine.POOL:
            return rule, set(), owner
        if rule.strategy == engine.ACCOUNT_OWNER:
            if not looked_up:
                owner, looked_up = owner_of(), True
            if owner:
                return rule, {owner}, owner
        elif rule.candidates:
            return rule, set(rule.candidates), owner
    return None, set(), owner


# --- routing waiting MQLs together ---------------------------------------------------------

ROUTE_BATCH = 100  # MQLs one routing task may place in one transaction
SNAPSHOT_MAX_AGE = 2.0  # seconds a prediction may reuse the candidates' state read for an earlier batch
WAITING_WINDOW = timedelta(hours=1)  # how far back a waiting MQL is looked for


def route_waiting(*, lead_id: int, limit: int = ROUTE_BATCH) -> int | None:
    """What the routing task does: route this MQL and, in the same transaction, other MQLs whose
    own routing tasks are still queued behind it (under load, a worker routes them in batches:
    the locks, the rule set and the candidates' state are taken once). Their tasks find them
    placed and have nothing left to do. Same decisions and locks as `route_lead`; a lead that has
    been routed before (rerouting, recycled) or that the batch cannot place on its fast path is
    routed on its own by `route_lead`. Returns the id of the lead's open assignment, if any."""
    with connection.cursor() as cursor:  # every task of a batch's leads asks this: as cheap as it gets
        cursor.execute(
            f"SELECT id FROM {Assignment._meta.db_table} WHERE lead_id = %s AND status IN (%s, %s) LIMIT 1",  # noqa: S608
            [lead_id, Assignment.Status.ACTIVE, Assignment.Status.POOLED],
        )
        placed_already = (cursor.fetchone() or [None])[0]
    if placed_already:
        return placed_already  # a duplicate, or a lead an earlier batch placed
    placed, leftover = _route_batch(lead_id, limit) if limit > 1 else ({}, [])
    for other in leftover:
        if other != lead_id:
            route_lead(lead_id=other)
    assignment = placed.get(lead_id) or route_lead(lead_id=lead_id)
    return assignment.pk if assignment else None


def _waiting(now: datetime):
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
        return {}, []  # the worker keeps up: route_lead's fast path is the cheaper way for one lead
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
        _lock_candidates(keys)
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
                slot = (decision.rule_id, decision.assignee)
                counters[slot] = counters.get(slot, 0) + 1
                chosen = candidates[decision.assignee]
                candidates[decision.assignee] = replace(chosen, open_leads=chosen.open_leads + 1)
            decided.append((lead, decision))
        placed = _record_many(decided, plan.rows, counters, now)
    _notify_on_commit([a.pk for a in placed.values() if a.status != Assignment.Status.UNASSIGNED])
    return placed, leftover


_snapshots: dict[str, tuple[float, dict[engine.Key, engine.Candidate]]] = {}


def _snapshot(keys: set[engine.Key]) -> dict[engine.Key, engine.Candidate]:
    """The candidates' state for predictions, reused for SNAPSHOT_MAX_AGE s (per process): a stale
    prediction only sends a lead through route_lead; the decisions use state read under the locks."""
    read_at, cached = _snapshots.get("last", (0.0, {}))
    if time.monotonic() - read_at > SNAPSHOT_MAX_AGE or not keys <= cached.keys():
        cached = selectors.candidates(keys)
        _snapshots["last"] = (time.monotonic(), cached)
    return dict(cached)


def _could_place(rules: list[engine.Rule]) -> bool:
    """Whether some matching rule has anybody to offer (else "unassigned" needs no second look)."""
    return any(r.candidates or r.strategy in (engine.POOL, engine.ACCOUNT_OWNER) for r in rules)


def _is_owner_rule(plan: selectors.Plan, rule_id: int | None) -> bool:
    row = plan.rows.get(rule_id)
    return row is not None and row.strategy == engine.ACCOUNT_OWNER


def _record_many(
    decided: list[tuple[Lead, engine.Decision]],
    rules: dict[int, RoutingRule],
    counters: dict[tuple[int, engine.Key], int],
    now: datetime,
) -> dict[int, Assignment]:
    """`_record` for many leads: the assignments, activities and counters in a few statements.
    `counters` are the rules' counters as they stand after these assignments (read under the
    rules' locks, then advanced), written as they are."""
    assignments = Assignment.objects.bulk_create(
        [_assignment_row(lead, decision, None, rules.get(decision.rule_id), now) for lead, decision in decided]
    )
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
    _apply_owner_many([(lead, assignment) for (lead, _), assignment in zip(decided, assignments, strict=True)], now)
    Activity.objects.bulk_create(
        _timeline_entry(lead, assignment, None, assignee=decision.assignee_name)
        for (lead, decision), assignment in zip(decided, assignments, strict=True)
    )
    return {a.lead_id: a for a in assignments}


def _notify_on_commit(assignment_ids: list[int]) -> None:
    from .tasks import notify_assignments

    # Its own task: the e-mail (slow, may fail) is neither in the transaction nor in the router's way.
    # The assignment rows are the durable record: without `notified_at` the reconciler sends them.
    if assignment_ids:
        enqueue(notify_assignments, assignment_ids)


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
    assignment = _assignment_row(lead, decision, actor, rule, timezone.now())
    assignment.trace = trace
    assignment.save(force_insert=True)
    if decision.assignee and rule:
        # The rule's row is locked, so update-else-create cannot race with another router.
        counter = RoutingCounter.objects.filter(rule=rule, user_id=assignment.user_id, partner_id=assignment.partner_id)
        if not counter.update(assigned=F("assigned") + 1):
            RoutingCounter.objects.create(
                rule=rule, user_id=assignment.user_id, partner_id=assignment.partner_id, assigned=1
            )
    _apply_owner(lead, assignment)
    _timeline(lead, assignment, actor, assignee=decision.assignee_name)
    return assignment


def _assignment_row(
    lead: Lead, decision: engine.Decision, actor: User | None, rule: RoutingRule | None, now: datetime
) -> Assignment:
    kind, ident = decision.assignee or (None, None)
    if decision.pooled:
        status = Assignment.Status.POOLED
    elif decision.assignee:
        status = Assignment.Status.ACTIVE
    else:
        status = Assignment.Status.UNASSIGNED
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
    )


OWNERSHIP_FIELDS = ("owner", "partner", "marketing_suppressed", "handed_over_at", "respond_by")


def _apply_owner(lead: Lead, assignment: Assignment) -> None:
    """On handover the lead belongs to the assignee and leaves marketing's campaigns."""
    _set_owner(lead, assignment)
    lead.save(update_fields=[*OWNERSHIP_FIELDS, "updated_at"])


def _apply_owner_many(pairs: list[tuple[Lead, Assignment]], now: datetime) -> None:
    """`_apply_owner` for a routing batch, in one UPDATE."""
    for lead, assignment in pairs:
        _set_owner(lead, assignment)
        lead.updated_at = now  # what auto_now does on save(); a bulk update does not
    leads = [lead for lead, _ in pairs]
    if connection.vendor != "postgresql":
        Lead.objects.bulk_update(leads, [*OWNERSHIP_FIELDS, "updated_at"])
        return
    # bulk_update's CASE WHEN per field and row costs more to build than the rows cost to write.
    fields = [Lead._meta.get_field(name) for name in OWNERSHIP_FIELDS]
    types = {"ForeignKey": "bigint", "BooleanField": "boolean", "DateTimeField": "timestamptz"}
    arrays = ", ".join(f"%s::{types[f.get_internal_type()]}[]" for f in fields)
    sets = ", ".join(f"{f.column} = v.{f.column}" for f in fields)
    columns = ", ".join(f.column for f in fields)
    # Column and table names come from the model, values are parameters.
    sql = (
        f"UPDATE {Lead._meta.db_table} AS l SET {sets}, updated_at = %s "  # noqa: S608
        f"FROM unnest(%s::bigint[], {arrays}) AS v(id, {columns}) WHERE l.id = v.id"
    )
    params = [now, [lead.pk for lead in leads], *([getattr(lead, f.attname) for lead in leads] for f in fields)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _set_owner(lead: Lead, assignment: Assignment) -> None:
    handed_over = assignment.status in (Assignment.Status.ACTIVE, Assignment.Status.ACCEPTED)
    lead.owner_id = assignment.user_id if handed_over else None
    lead.partner_id = assignment.partner_id if handed_over else None
    lead.marketing_suppressed = handed_over or assignment.status == Assignment.Status.POOLED
    lead.handed_over_at = assignment.assigned_at if handed_over else None
    lead.respond_by = assignment.due_at if assignment.status == Assignment.Status.ACTIVE else None


def _timeline(lead: Lead, assignment: Assignment, actor: User | None, event: str = "", assignee: str = "") -> None:
    _timeline_entry(lead, assignment, actor, event, assignee).save(force_insert=True)


def _timeline_entry(
    lead: Lead, assignment: Assignment, actor: User | None, event: str = "", assignee: str = ""
) -> Activity:
    return Activity(
        lead=lead,
        type=ActivityType.ASSIGNMENT,
        occurred_at=timezone.now(),
        properties={
            "assignment": assignment.pk,
            "event": event or assignment.status,
            "assignee": assignee or assignment.assignee_label,
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
    notify_many([assignment_id])


# What an e-mail needs (a lead row has some fifty columns; a batch loads fifty of them).
NOTIFY_FIELDS = (
    "status",
    "due_at",
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


def notify_many(assignment_ids: list[int]) -> None:
    """`notify` for several assignments (a routing batch): one query, one connection to the mail server."""
    messages = []
    rows = (
        Assignment.objects.select_related("lead", "user", "partner", "rule")
        .filter(pk__in=assignment_ids)
        .only(*NOTIFY_FIELDS)
        .order_by("pk")
    )
    for assignment in rows:
        messages += _messages(assignment)
    if messages:
        send_mass_mail(messages)  # an SMTP error fails the task, which retries (routing.tasks)
    Assignment.objects.filter(pk__in=assignment_ids, notified_at=None).update(notified_at=timezone.now())


def _messages(assignment: Assignment) -> list[tuple[str, str, str, list[str]]]:
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
        return []
    if assignment.status == Assignment.Status.POOLED:
        subject = f"New lead in the pool: {lead.company or lead.company_domain}"
    else:
        subject = f"New lead for you: {lead.company or lead.company_domain} (accept by {assignment.due_at:%H:%M} UTC)"
    body = (
        f"{lead} — {lead.job_title} at {lead.company}, {lead.country.name if lead.country else ''}\n"
        f"Score {lead.score:.0f}, grade {lead.grade or '–'}. Rule: {assignment.rule.name if assignment.rule else '–'}."
    )
    # One message each: a pool's reps do not see each other's addresses.
    return [(subject, body, settings.DEFAULT_FROM_EMAIL, [r]) for r in recipients]


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
    _notify_on_commit([assignment.pk])
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
