"""Every lifecycle path through each door — API, page, admin action, job — leaves the same state.

For each move, the same lead situation is built once per door, the move is made through that door,
and the resulting handover and lifecycle state (stage, owner, partner, deadline, suppression, the
assignments' statuses, deal data, BANT, and the timeline entries the move wrote) is compared: every
door must give the same snapshot, and that snapshot must be the one the move means (`EXPECTED`),
so doors that were equally wrong would fail too. Before routing.handover owned this state, the API's
recycle kept owner and suppression, /transition/ to won left no deal value, and so on (issue #11).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from leads.models import Activity, Lead, Qualification, Role
from leads.services import lead_close, lead_qualify
from leads.tests.factories import UserFactory, client_for
from partners.services import feedback_chase
from routing import services
from routing.models import Assignment, RoutingRule
from routing.tests.factories import make_rule, make_team, mql, partner_rule

BANT = {name: (True, f"{name} confirmed on the call") for name in ("budget", "authority", "need", "timing")}


@pytest.fixture
def world(db, partner_org_a):
    manager = UserFactory(username="manni", role=Role.SALES_MANAGER, first_name="Manni", email="manni@x.example")
    team, reps = make_team(size=2, manager=manager, capacity=50)
    partner_rule("Partners DE", [partner_org_a], "DE", priority=1, strategy="round_robin")
    make_rule("Team", priority=2, team=team, sla_minutes=10, on_sla_breach=RoutingRule.OnBreach.ESCALATE)
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    return {"manager": manager, "reps": reps, "admin": admin}


def snapshot(lead: Lead, since: int) -> dict:
    lead.refresh_from_db()
    qualification = Qualification.objects.filter(lead=lead).first()
    bant = qualification.confirmed_count if qualification else None
    timeline = []
    for activity in Activity.objects.filter(lead=lead, pk__gt=since).order_by("pk"):
        props = activity.properties
        key = props.get("event") or (f"{props['from']}→{props['to']}" if "from" in props else "")
        if activity.type == "qualification":
            key = sum(1 for name in ("budget", "authority", "need", "timing") if props[name]["confirmed"])
        timeline.append((activity.type, key))
    return {
        "stage": lead.stage,
        "owner": lead.owner.username if lead.owner_id else None,
        "partner": lead.partner.name if lead.partner_id else None,
        "handed_over": lead.handed_over_at is not None,
        "waiting": lead.respond_by is not None,
        "suppressed": lead.marketing_suppressed,
        "assignments": list(Assignment.objects.filter(lead=lead).order_by("pk").values_list("status", flat=True)),
        "deal": (lead.deal_value, lead.deal_currency, lead.lost_reason, lead.closed_at is not None),
        "bant": bant,
        "timeline": timeline,
    }


def last_activity() -> int:
    return Activity.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# --- situations ------------------------------------------------------------------------------------


def waiting_for_rep(capture, world) -> Lead:
    return mql(capture, country="AT")


def accepted_by_rep(capture, world) -> Lead:
    lead = waiting_for_rep(capture, world)
    services.assignment_accept(lead=lead, user=lead.owner)
    return Lead.objects.get(pk=lead.pk)


def qualified_by_rep(capture, world) -> Lead:
    lead = accepted_by_rep(capture, world)
    lead_qualify(lead=lead, criteria=BANT, actor=lead.owner)
    return Lead.objects.get(pk=lead.pk)


def lost_by_rep(capture, world) -> Lead:
    lead = accepted_by_rep(capture, world)
    lead_close(lead=lead, won=False, reason="no_budget", actor=lead.owner)
    return Lead.objects.get(pk=lead.pk)


def waiting_for_partner(capture, world) -> Lead:
    return mql(capture, country="DE")


def accepted_by_partner(capture, world, partner) -> Lead:
    from partners.services import feedback_record

    lead = waiting_for_partner(capture, world)
    feedback_record(lead=lead, user=partner, status="accepted")
    return Lead.objects.get(pk=lead.pk)


# --- the doors of each move ---------------------------------------------------------------------------


def _ok(response, *codes):
    assert response.status_code in codes, response.content[:500]


def admin_action(action: str):
    """The door of the lead list's admin `action` on the one lead, as the admin user."""
    return lambda lead, w, api: _ok(
        client_for(w["admin"]).post("/admin/leads/lead/", {"action": action, "_selected_action": [lead.pk]}), 302
    )


def released(stage: str, assignment: str) -> dict:
    """A lead handed back: nobody owns it or waits for it, marketing may write to it again."""
    return {
        "stage": stage,
        "owner": None,
        "handed_over": False,
        "waiting": False,
        "suppressed": False,
        "assignments": [assignment],
    }


MOVES = {
    "accept": (
        waiting_for_rep,
        {
            "api": lambda lead, w, api: _ok(api(lead.owner).post(f"/api/v1/leads/{lead.pk}/accept/"), 200),
            "page": lambda lead, w, api: _ok(client_for(lead.owner).post(f"/app/leads/{lead.pk}/accept/"), 302),
        },
        {"stage": "sal", "handed_over": True, "waiting": False, "suppressed": True, "assignments": ["accepted"]},
    ),
    "reject to marketing": (
        waiting_for_rep,
        {
            "api": lambda lead, w, api: _ok(
                api(lead.owner).post(f"/api/v1/leads/{lead.pk}/reject/", {"reason": "student"}), 204
            ),
            "page": lambda lead, w, api: _ok(
                client_for(lead.owner).post(f"/app/leads/{lead.pk}/reject/", {"reason": "student"}), 302
            ),
        },
        released("mal", "rejected"),
    ),
    "recycle an accepted lead": (
        accepted_by_rep,
        {
            "api": lambda lead, w, api: _ok(
                api(w["admin"]).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "mal", "reason": "no reply"}), 200
            ),
            "admin action": admin_action("move_to_mal"),
        },
        released("mal", "closed"),
    ),
    "recycle a lost lead": (
        lost_by_rep,
        {
            "api": lambda lead, w, api: _ok(
                api(w["admin"]).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "mal"}), 200
            ),
            "admin action": admin_action("move_to_mal"),
        },
        released("mal", "closed"),
    ),
    "disqualify an MQL": (
        waiting_for_rep,
        {
            "api": lambda lead, w, api: _ok(
                api(w["admin"]).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "disqualified"}), 200
            ),
            "admin action": admin_action("move_to_disqualified"),
        },
        released("disqualified", "closed"),
    ),
    "qualify (BANT)": (
        accepted_by_rep,
        {
            "api": lambda lead, w, api: _ok(
                api(lead.owner).post(
                    f"/api/v1/leads/{lead.pk}/qualify/",
                    {name: {"confirmed": True, "note": note} for name, (_, note) in BANT.items()},
                    format="json",
                ),
                200,
            ),
            "page": lambda lead, w, api: _ok(
                client_for(lead.owner).post(
                    f"/app/leads/{lead.pk}/qualify/",
                    {**dict.fromkeys(BANT, "on"), **{f"{name}_note": note for name, (_, note) in BANT.items()}},
                ),
                302,
            ),
        },
        {
            "stage": "sql",
            "handed_over": True,
            "waiting": False,
            "suppressed": True,
            "assignments": ["accepted"],
            "bant": 4,
        },
    ),
    "close won": (
        qualified_by_rep,
        {
            "api": lambda lead, w, api: _ok(
                api(lead.owner).post(
                    f"/api/v1/leads/{lead.pk}/close/",
                    {"outcome": "won", "deal_value": "18500.00", "currency": "EUR"},
                    format="json",
                ),
                200,
            ),
            "page": lambda lead, w, api: _ok(
                client_for(lead.owner).post(f"/app/leads/{lead.pk}/won/", {"amount": "18500.00", "currency": "EUR"}),
                302,
            ),
        },
        {
            "stage": "won",
            "handed_over": True,
            "waiting": False,
            "suppressed": True,
            "assignments": ["accepted"],
            "deal": (Decimal("18500.00"), "EUR", "", True),
        },
    ),
    "close lost": (
        accepted_by_rep,
        {
            "api": lambda lead, w, api: _ok(
                api(lead.owner).post(
                    f"/api/v1/leads/{lead.pk}/close/",
                    {"outcome": "lost", "reason": "no_budget", "note": "frozen"},
                    format="json",
                ),
                200,
            ),
            "page": lambda lead, w, api: _ok(
                client_for(lead.owner).post(f"/app/leads/{lead.pk}/lost/", {"reason": "no_budget", "note": "frozen"}),
                302,
            ),
        },
        {
            "stage": "lost",
            "handed_over": True,
            "waiting": False,
            "suppressed": True,
            "assignments": ["accepted"],
            "deal": (None, "", "no_budget", True),
        },
    ),
}


@pytest.mark.parametrize("move", list(MOVES))
def test_every_door_of_a_move_leaves_the_same_state(move, world, api, django_capture_on_commit_callbacks):
    situation, doors, expected = MOVES[move]
    results = {}
    for door, act in doors.items():
        lead = situation(django_capture_on_commit_callbacks, world)
        rep = lead.owner.username
        since = last_activity()
        with django_capture_on_commit_callbacks(execute=True):
            act(lead, world, api)
        results[door] = snapshot(lead, since)
        # The owner is whoever routing chose for this lead: compare it as "the same rep as before".
        results[door]["owner"] = "the rep" if results[door]["owner"] == rep else results[door]["owner"]
    first, *others = results.values()
    for door, state in results.items():
        assert state == first, f"{move}: the {door} door differs from the {next(iter(results))} door"
        for key, value in expected.items():
            if key == "owner":
                assert state["owner"] is value, (door, key)
            else:
                assert state[key] == value, (door, key, state[key])
    assert others or len(doors) == 1


def pooled_for_team(capture, world) -> Lead:
    RoutingRule.objects.filter(name="Team").update(priority=3)
    if not RoutingRule.objects.filter(name="Pool AT").exists():
        team = world["reps"][0].rep_profile.team
        make_rule(
            "Pool AT",
            priority=2,
            team=team,
            target="pool",
            strategy="pool",
            pool_mode="cherry_pick",
            conditions=[("country", "eq", "AT")],
        )
    return mql(capture, country="AT")


CLAIMS = {
    "api": lambda lead, rep, api: _ok(api(rep).post("/api/v1/pool/claim/", {"lead": lead.pk}, format="json"), 200),
    "page": lambda lead, rep, api: _ok(client_for(rep).post("/app/pool/claim/", {"lead": lead.pk}), 302),
}


@pytest.mark.parametrize("door", list(CLAIMS))
def test_claiming_from_the_pool_through_each_door(door, world, api, django_capture_on_commit_callbacks):
    rep = world["reps"][1]
    lead = pooled_for_team(django_capture_on_commit_callbacks, world)
    before = snapshot(lead, 0)
    assert (before["assignments"], before["owner"], before["suppressed"]) == (["pooled"], None, True)
    since = last_activity()
    with django_capture_on_commit_callbacks(execute=True):
        CLAIMS[door](lead, rep, api)
    state = snapshot(lead, since)
    assert state == {
        "stage": "mql",
        "owner": rep.username,
        "partner": None,
        "handed_over": True,
        "waiting": True,
        "suppressed": True,
        "assignments": ["active"],
        "deal": (None, "", "", False),
        "bant": None,
        "timeline": [("assignment", "claimed from the pool")],
    }


# --- partners: portal, partner API and the chase job ----------------------------------------------------


PARTNER_MOVES = {
    "partner accepts": (
        waiting_for_partner,
        {
            "partner API": lambda lead, p, api: _ok(
                api(p).post(f"/api/v1/partner/leads/{lead.pk}/feedback/", {"status": "accepted"}, format="json"),
                201,
            ),
            "portal": lambda lead, p, api: _ok(client_for(p).post(f"/partner/leads/{lead.pk}/accept/"), 302),
        },
        {
            "stage": "sal",
            "partner": "Alpine Resellers",
            "owner": None,
            "waiting": False,
            "suppressed": True,
            "assignments": ["accepted"],
        },
    ),
    "partner declines": (
        waiting_for_partner,
        {
            "partner API": lambda lead, p, api: _ok(
                api(p).post(
                    f"/api/v1/partner/leads/{lead.pk}/feedback/",
                    {"status": "declined", "reason": "no_capacity"},
                    format="json",
                ),
                201,
            ),
            "portal": lambda lead, p, api: _ok(
                client_for(p).post(f"/partner/leads/{lead.pk}/decline/", {"reason": "no_capacity"}), 302
            ),
        },
        # Routed on to the team (never back to the partner that declined).
        {
            "stage": "mql",
            "partner": None,
            "owner": "a rep of the team",
            "waiting": True,
            "suppressed": True,
            "assignments": ["rejected", "active"],
        },
    ),
    "partner wins": (
        lambda capture, w, p: accepted_by_partner(capture, w, p),
        {
            "partner API": lambda lead, p, api: _ok(
                api(p).post(
                    f"/api/v1/partner/leads/{lead.pk}/feedback/",
                    {"status": "won", "deal_value": "9000.00", "currency": "EUR"},
                    format="json",
                ),
                201,
            ),
            "portal": lambda lead, p, api: _ok(
                client_for(p).post(
                    f"/partner/leads/{lead.pk}/feedback/", {"status": "won", "deal_value": "9000.00", "currency": "EUR"}
                ),
                302,
            ),
        },
        {
            "stage": "won",
            "partner": "Alpine Resellers",
            "waiting": False,
            "suppressed": True,
            "assignments": ["accepted"],
            "deal": (Decimal("9000.00"), "EUR", "", True),
        },
    ),
}


@pytest.mark.parametrize("move", list(PARTNER_MOVES))
def test_every_partner_door_leaves_the_same_state(move, world, partner_a, api, django_capture_on_commit_callbacks):
    situation, doors, expected = PARTNER_MOVES[move]
    results = {}
    for door, act in doors.items():
        if situation is waiting_for_partner:
            lead = situation(django_capture_on_commit_callbacks, world)
        else:
            lead = situation(django_capture_on_commit_callbacks, world, partner_a)
        since = last_activity()
        with django_capture_on_commit_callbacks(execute=True):
            act(lead, partner_a, api)
        results[door] = snapshot(lead, since)
        if results[door]["owner"] in {rep.username for rep in world["reps"]}:
            results[door]["owner"] = "a rep of the team"  # round robin: the next one each time
    first = next(iter(results.values()))
    for door, state in results.items():
        assert state == first, f"{move}: the {door} door differs"
        for key, value in expected.items():
            assert state[key] == value, (door, key, state[key])


# --- jobs: the SLA escalation and the partner take-back end where a manager's hand would -----------------


def test_the_sla_job_escalates_to_the_manager_as_the_system(world, django_capture_on_commit_callbacks):
    lead = waiting_for_rep(django_capture_on_commit_callbacks, world)
    since = last_activity()
    with django_capture_on_commit_callbacks(execute=True):
        services.sla_enforce(now=timezone.now() + timedelta(minutes=11))
    state = snapshot(lead, since)
    assert (state["stage"], state["owner"], state["waiting"], state["suppressed"]) == ("mql", "manni", True, True)
    assert state["assignments"] == ["expired", "active"]
    assert state["timeline"] == [("assignment", "SLA missed"), ("assignment", "escalated to Manni: SLA missed")]
    assert Activity.objects.filter(lead=lead, pk__gt=since, created_by__isnull=False).count() == 0


def test_the_chase_job_takes_a_silent_partners_lead_back_like_a_reroute(
    world, partner_a, partner_org_a, django_capture_on_commit_callbacks
):
    lead = accepted_by_partner(django_capture_on_commit_callbacks, world, partner_a)
    since = last_activity()
    later = timezone.now() + timedelta(days=partner_org_a.escalate_after_days + 1)
    with django_capture_on_commit_callbacks(execute=True):
        feedback_chase(now=later)
    state = snapshot(lead, since)
    # Back through marketing and routed to the team (never to the silent partner again).
    assert (state["stage"], state["partner"], state["waiting"], state["suppressed"]) == ("mql", None, True, True)
    assert state["owner"] in {rep.username for rep in world["reps"]}
    assert state["assignments"] == ["reassigned", "active"]
