"""The handover of a lead to sales, owned here: the only module that writes a lead's `owner`,
`partner`, `handed_over_at`, `respond_by` and `marketing_suppressed`, and an assignment's `status`.

Every door (API, dashboard, partner portal, admin actions, SLA and chase jobs, lifecycle moves made
anywhere) goes through the moves below, so the same move leaves the same state whichever door it
came through. A lead's handover state is the status of its current assignment:

| state      | the lead                                                  |
|------------|-----------------------------------------------------------|
| none       | marketing's: no owner, no deadline, not suppressed         |
| active     | handed to a rep or partner who must accept by `respond_by` |
| pooled     | waiting in a pool to be claimed (suppressed, no owner)     |
| unassigned | an MQL nobody could take (visible in the unassigned queue) |
| accepted   | the owner works it (SAL, SQL; kept when it is won or lost) |

`MOVES` is the table of what each move may start from and end in (like `leads.lifecycle`). The
lifecycle follows with `follow_stage`, called inside every stage move's transaction: recycling
(to MAL) and disqualifying release the lead, closing stops the clock, and mql → sal is only the
assignee's (`accept`).

Callers hold the lead's row lock (select_for_update) in the transaction that calls a move.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from leads.errors import Refused
from leads.lifecycle import TransitionRefused
from leads.models import Activity, ActivityType, Lead, Stage, User
from webhooks import outbox
from webhooks.models import EventType

from . import sql, tell
from .models import Assignment, RoutingRule

S = Assignment.Status
NONE = "none"

# move → (states it starts from, states it ends in)
MOVES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "start": (frozenset({NONE, S.UNASSIGNED}), frozenset({S.ACTIVE, S.POOLED, S.UNASSIGNED})),
    "accept": (frozenset({S.ACTIVE}), frozenset({S.ACCEPTED})),
    "claim": (frozenset({S.POOLED}), frozenset({S.ACTIVE})),
    "reject": (frozenset({S.ACTIVE}), frozenset({NONE})),  # then routed again, or back to marketing
    "expire": (frozenset({S.ACTIVE}), frozenset({NONE})),  # SLA missed; then routed again or the fallback
    "reassign": (frozenset({NONE, S.ACTIVE, S.POOLED, S.UNASSIGNED, S.ACCEPTED}), frozenset({S.ACTIVE, S.ACCEPTED})),
    "escalate": (frozenset({NONE, S.ACTIVE, S.POOLED, S.UNASSIGNED}), frozenset({S.ACTIVE, S.POOLED})),
    "take_back": (frozenset({S.ACTIVE, S.ACCEPTED}), frozenset({NONE})),
    "recycle": (frozenset({NONE, S.ACTIVE, S.POOLED, S.UNASSIGNED, S.ACCEPTED}), frozenset({NONE})),
    "close": (frozenset({NONE, S.ACCEPTED}), frozenset({S.ACCEPTED, NONE})),
}

# How an assignment that a move ends is recorded.
ENDED_AS = {
    "reject": S.REJECTED,
    "expire": S.EXPIRED,
    "reassign": S.REASSIGNED,
    "escalate": S.REASSIGNED,
    "take_back": S.REASSIGNED,
    "recycle": S.CLOSED,
    "start": S.CLOSED,  # an unassigned lead that gets a new chance
}

OWNERSHIP_FIELDS = ("owner", "partner", "marketing_suppressed", "handed_over_at", "respond_by")
HOLDING = (S.ACTIVE, S.POOLED, S.UNASSIGNED, S.ACCEPTED)


class RoutingError(Refused):
    """A routing action that cannot be done (not yours, already taken, at capacity …): 409."""

    def __init__(self, message: str, code: str = "refused") -> None:
        super().__init__(message, code=code)


def current(lead_id: int) -> Assignment | None:
    """The assignment that holds the lead: its open one, or the accepted one of the lead's owner."""
    return (
        Assignment.objects.select_related("rule", "user", "partner")
        .filter(lead_id=lead_id, status__in=HOLDING)
        .order_by("-assigned_at", "-pk")
        .first()
    )


def state_of(assignment: Assignment | None) -> str:
    return assignment.status if assignment is not None else NONE


def check(move: str, state: str) -> None:
    starts, _ = MOVES[move]
    if state not in starts:
        raise RoutingError(_REFUSALS.get((move, state), f"This lead cannot be {_VERBS[move]} now."), "refused")


_VERBS = {
    "start": "routed",
    "accept": "accepted",
    "claim": "claimed",
    "reject": "rejected",
    "expire": "expired",
    "reassign": "reassigned",
    "escalate": "escalated",
    "take_back": "taken back",
    "recycle": "recycled",
    "close": "closed",
}
_REFUSALS: dict[tuple[str, str], str] = {
    ("accept", S.ACCEPTED): "This lead is already accepted.",
    ("accept", S.POOLED): "This lead is in a pool: claim it first.",
    ("claim", S.ACTIVE): "This lead was already taken.",
    ("claim", S.ACCEPTED): "This lead was already taken.",
}


# --- the one writer of the lead's handover fields --------------------------------------------------


def _hold(lead: Lead, assignment: Assignment | None) -> None:
    """Set the lead's handover fields from the assignment that now holds it (None: nobody)."""
    status = assignment.status if assignment is not None else NONE
    holder = assignment if assignment is not None and status in (S.ACTIVE, S.ACCEPTED) else None
    lead.owner_id = holder.user_id if holder is not None else None
    lead.partner_id = holder.partner_id if holder is not None else None
    lead.marketing_suppressed = holder is not None or status == S.POOLED
    lead.handed_over_at = holder.assigned_at if holder is not None else None
    lead.respond_by = holder.due_at if holder is not None and status == S.ACTIVE else None


def _save(lead: Lead) -> None:
    lead.save(update_fields=[*OWNERSHIP_FIELDS, "updated_at"])


def hold(lead: Lead, assignment: Assignment | None) -> None:
    _hold(lead, assignment)
    _save(lead)


def hold_many(pairs: list[tuple[Lead, Assignment]], now: datetime) -> None:
    """`hold` for a routing batch, in one UPDATE (`routing.sql.leads_update`)."""
    for lead, assignment in pairs:
        _hold(lead, assignment)
    sql.leads_update([lead for lead, _ in pairs], OWNERSHIP_FIELDS, now)


def _end(assignment: Assignment, move: str, note: str = "") -> None:
    assignment.status = ENDED_AS[move]
    assignment.ended_at = timezone.now()
    if note:
        assignment.note = note
    assignment.save(update_fields=["status", "ended_at", "note"])


# --- the timeline ------------------------------------------------------------------------------------


def timeline_entry(
    lead: Lead | int, assignment: Assignment, actor: User | None, event: str = "", assignee: str = ""
) -> Activity:
    return Activity(
        lead_id=lead if isinstance(lead, int) else lead.pk,
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


def _timeline(lead: Lead, assignment: Assignment, actor: User | None, event: str = "", assignee: str = "") -> None:
    timeline_entry(lead, assignment, actor, event, assignee).save(force_insert=True)


# --- webhooks: in the move's transaction (webhooks.outbox; no query when nobody subscribed) -----------


def webhook_data(assignment: Assignment) -> dict:
    """What a webhook says of an assignment: ids, not names."""
    assignee = "partner" if assignment.partner_id else "rep" if assignment.user_id else "pool"
    return {
        "assignment": {
            "id": assignment.pk,
            "status": assignment.status,
            "assignee": assignee,
            "user_id": assignment.user_id,
            "partner_id": assignment.partner_id,
            "pool_team_id": assignment.pool_team_id,
            "rule_id": assignment.rule_id,
            "strategy": assignment.strategy,
            "due_at": assignment.due_at.isoformat() if assignment.due_at else None,
        }
    }


def _assigned(pairs: list[tuple[Lead, Assignment]]) -> None:
    """lead.assigned for every assignment that hands a lead to a rep, a partner or a pool."""
    placed = [(lead, webhook_data(a)) for lead, a in pairs if a.status in (S.ACTIVE, S.POOLED, S.ACCEPTED)]
    if placed and outbox.wants(EventType.LEAD_ASSIGNED):
        outbox.record_many(EventType.LEAD_ASSIGNED, placed)


# --- the moves -------------------------------------------------------------------------------------------


def start(
    lead: Lead, assignment: Assignment, actor: User | None, assignee_name: str = "", *, held: Assignment | None
) -> Assignment:
    """A new assignment (routing's decision: a rep or partner, a pool, or nobody) takes the lead.
    `held` is the lead's open assignment as the caller read it under the lead's lock (None: none);
    an unassigned one is closed."""
    check("start", state_of(held))
    if held is not None:
        _end(held, "start", "routed again")
    assignment.save(force_insert=True)
    hold(lead, assignment)
    _timeline(lead, assignment, actor, assignee=assignee_name)
    _assigned([(lead, assignment)])
    tell.assigned([(lead, assignment)])
    return assignment


def start_many(pairs: list[tuple[Lead, Assignment]], names: list[str], now: datetime) -> list[Assignment]:
    """`start` for a routing batch of leads that have no assignment at all (checked by the caller
    under the leads' locks): the rows, the leads and the timeline in a few statements."""
    assignments = Assignment.objects.bulk_create([a for _, a in pairs])
    hold_many(list(zip([lead for lead, _ in pairs], assignments, strict=True)), now)
    Activity.objects.bulk_create(
        timeline_entry(lead, assignment, None, assignee=name)
        for (lead, _), assignment, name in zip(pairs, assignments, names, strict=True)
    )
    _assigned([(lead, assignment) for (lead, _), assignment in zip(pairs, assignments, strict=True)])
    tell.assigned(list(zip([lead for lead, _ in pairs], assignments, strict=True)))
    return assignments


def accept(lead: Lead, assignment: Assignment, user: User) -> None:
    """The assignee accepts. The caller moves the lead mql → sal right after (`follow_stage` checks
    that the assignment was accepted first)."""
    check("accept", state_of(assignment))
    assignment.status = S.ACCEPTED
    assignment.accepted_at = timezone.now()
    assignment.save(update_fields=["status", "accepted_at"])
    hold(lead, assignment)
    _timeline(lead, assignment, user, "accepted")
    if outbox.wants(EventType.LEAD_ACCEPTED):
        outbox.record(EventType.LEAD_ACCEPTED, lead, {**webhook_data(assignment), "accepted_by": user.pk})


def claim(lead: Lead, assignment: Assignment, user: User, due_at: datetime) -> bool:
    """A rep claims a pooled lead. One conditional UPDATE: False if someone else claimed it first."""
    check("claim", state_of(assignment))
    now = timezone.now()
    won = Assignment.objects.filter(pk=assignment.pk, status=S.POOLED).update(
        status=S.ACTIVE, user=user, assigned_at=now, due_at=due_at
    )
    if not won:
        return False
    assignment.refresh_from_db()
    hold(lead, assignment)
    _timeline(lead, assignment, user, "claimed from the pool")
    _assigned([(lead, assignment)])
    return True


def end(lead: Lead, assignment: Assignment, move: str, actor: User | None, note: str, event: str = "") -> None:
    """Reject, expire (SLA missed) or take back: the assignment ends and the lead is nobody's until
    the caller routes it again (or moves it back to marketing)."""
    check(move, state_of(assignment))
    _end(assignment, move, note)
    hold(lead, None)
    _timeline(lead, assignment, actor, event or f"{_VERBS[move]}: {note}")
    if move in ("expire", "take_back"):
        tell.taken_back(lead, assignment, note)


def hand_to(
    lead: Lead,
    to_user: User,
    *,
    move: str,
    actor: User | None,
    note: str,
    due_at: datetime | None,
    rule: RoutingRule | None = None,
    event: str = "",
) -> Assignment:
    """Reassign (a manager's) or escalate (the system's, actor None) to one person: every open
    assignment ends, a new one starts — waiting for acceptance while the lead is an MQL, accepted
    otherwise. Records who did it: a manager by name, an escalation as the system."""
    held = current(lead.pk)
    check(move, state_of(held))
    for open_ in Assignment.objects.select_for_update().filter(lead=lead, status__in=HOLDING):
        _end(open_, move, note)
        if open_.user_id != to_user.pk:
            tell.taken_back(lead, open_, note)
    now = timezone.now()
    waiting = lead.stage == Stage.MQL
    label = actor.get_username() if actor else "the system"
    assignment = Assignment.objects.create(
        lead=lead,
        user=to_user,
        rule=rule,
        strategy="escalation" if move == "escalate" else "manual",
        status=S.ACTIVE if waiting else S.ACCEPTED,
        trace=[{"result": f"{'escalated' if move == 'escalate' else 'reassigned'} by {label}", "note": note}],
        note=note,
        assigned_at=now,
        due_at=due_at if waiting else None,
        accepted_at=None if waiting else now,
        created_by=actor,
        escalated_at=now if move == "escalate" else None,
    )
    hold(lead, assignment)
    _timeline(lead, assignment, actor, event or ("escalated" if move == "escalate" else "reassigned"))
    _assigned([(lead, assignment)])
    tell.assigned([(lead, assignment)])
    return assignment


def to_pool(
    lead: Lead, team_id: int, *, rule: RoutingRule | None, note: str, due_at: datetime | None, event: str
) -> Assignment:
    """The fallback of a run-out SLA chain: into the team's pool (cherry-pick), the manager told."""
    held = current(lead.pk)
    check("escalate", state_of(held))
    for open_ in Assignment.objects.select_for_update().filter(lead=lead, status__in=HOLDING):
        _end(open_, "escalate", note)
    now = timezone.now()
    assignment = Assignment.objects.create(
        lead=lead,
        rule=rule,
        strategy="escalation",
        status=S.POOLED,
        trace=[{"result": f"pooled for the team: {note}"}],
        note=note,
        assigned_at=now,
        due_at=due_at,
        pool_team_id=team_id,
        pool_mode=RoutingRule.PoolMode.CHERRY_PICK,  # details shown: the manager may point a rep to it
        escalated_at=now,
    )
    hold(lead, assignment)
    _timeline(lead, assignment, None, event)
    _assigned([(lead, assignment)])
    return assignment


def escalate_pooled(lead: Lead, assignment: Assignment, event: str) -> None:
    """A pooled lead nobody claimed in time: the manager is told and a hybrid offer widens to the
    whole team. It stays in the pool (the notification is sent again: `notified_at` cleared)."""
    check("escalate", state_of(assignment))
    now = timezone.now()
    assignment.offered_to.clear()
    assignment.escalated_at = now
    assignment.notified_at = assignment.notify_queued_at = None
    assignment.save(update_fields=["escalated_at", "notified_at", "notify_queued_at"])
    _timeline(lead, assignment, None, event)


# --- lifecycle moves made anywhere -------------------------------------------------------------------


def follow_stage(*, lead_id: int, from_stage: str, to_stage: str) -> None:
    """Inside every stage move's transaction (leads.signals.stage_changed_in_transaction): the
    handover follows the lifecycle (the lifecycle table allows no other moves out of MQL and on).

    - to MAL (recycled, rejected back to marketing) or disqualified: `recycle` — the lead is
      released: its assignments end, no owner, no deadline, marketing may mail it again;
    - mql → sal: only the assignee's acceptance (`accept` first); refused while an assignment is open;
    - to won or lost: `close` — the owner keeps the lead, the clock stops.
    A move the table refuses is refused as the lifecycle move it came with (TransitionRefused).
    """
    if from_stage in (Stage.NEW, Stage.MAL):
        return  # marketing's lead: nobody holds it (capture's new → mal costs nothing here)
    held = current(lead_id)
    state = state_of(held)
    if to_stage in (Stage.MAL, Stage.DISQUALIFIED):
        _follow("recycle", state, from_stage, to_stage)
        if state == NONE:
            return  # released already (a rejection, a take-back)
        for assignment in Assignment.objects.select_for_update().filter(lead_id=lead_id, status__in=HOLDING):
            _end(assignment, "recycle", f"lead moved to {Stage(to_stage).label.lower()}")
        hold(Lead.objects.get(pk=lead_id), None)
    elif from_stage == Stage.MQL and to_stage == Stage.SAL and state != NONE:
        # `accept` (or `claim`, then `accept`) ends in accepted before the move: anything open means
        # somebody else than the assignee is moving the lead.
        if state != S.ACCEPTED:
            raise TransitionRefused(
                from_stage,
                to_stage,
                "Only the rep or partner the lead is handed to accepts it (accept, or claim it from the pool).",
            )
    elif to_stage in (Stage.WON, Stage.LOST):
        _follow("close", state, from_stage, to_stage)
        Lead.objects.filter(pk=lead_id).exclude(respond_by=None).update(respond_by=None)


def _follow(move: str, state: str, from_stage: str, to_stage: str) -> None:
    try:
        check(move, state)
    except RoutingError as refused:
        raise TransitionRefused(from_stage, to_stage, refused.message) from None


def offered(assignment: Assignment, user_ids: Iterable[int]) -> None:
    """A hybrid pool's few reps."""
    ids = sorted(set(user_ids))
    if ids:
        assignment.offered_to.add(*ids)
