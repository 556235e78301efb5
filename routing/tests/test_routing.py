"""Routing MQLs: rules, strategies, handover, accept/reject, pools, SLA — with the API."""

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from leads.lifecycle import TransitionRefused
from leads.models import Activity, ActivityType, Stage, StageChange
from leads.services import lead_transition
from leads.tests.factories import LeadFactory
from routing import services, tasks
from routing.models import Account, Assignment, RepProfile, RoutingCounter, RoutingRule
from routing.tests.factories import make_rule, make_team, mql


@pytest.fixture
def team(db):
    return make_team(size=3)


def test_an_mql_is_handed_over_on_commit_with_trace_suppression_activity_and_email(
    team, django_capture_on_commit_callbacks
):
    _, reps = team
    rule = make_rule("Everyone", team=team[0], sla_minutes=30)

    lead = mql(django_capture_on_commit_callbacks, company="Initech")

    assignment = Assignment.objects.get(lead=lead)
    assert (assignment.status, assignment.user, assignment.rule, assignment.strategy) == (
        "active",
        reps[0],
        rule,
        "round_robin",
    )
    assert assignment.due_at - assignment.assigned_at == timedelta(minutes=30)
    assert assignment.trace == [
        {"rule": "Everyone", "matched": True, "strategy": "round_robin", "result": "assigned to Rep0"}
    ]
    assert (lead.owner, lead.marketing_suppressed) == (reps[0], True)
    activity = Activity.objects.get(lead=lead, type=ActivityType.ASSIGNMENT)
    assert activity.properties["assignee"] == "Rep0" and activity.properties["rule"] == "Everyone"
    assert [m.to for m in mail.outbox] == [[reps[0].email]]
    assert "Initech" in mail.outbox[0].subject


def test_routing_the_same_mql_twice_makes_one_assignment(team, django_capture_on_commit_callbacks):
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    first = tasks.route_lead_task(lead.pk)
    second = tasks.route_lead_task(lead.pk)
    assert first == second
    assert Assignment.objects.filter(lead=lead).count() == 1


def test_round_robin_skips_away_and_full_reps(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    RepProfile.objects.filter(user=reps[0]).update(away_until=timezone.now() + timedelta(days=2))
    RepProfile.objects.filter(user=reps[1]).update(capacity=1)
    LeadFactory(owner=reps[1], stage=Stage.SAL)  # rep 1 is full

    owners = [mql(django_capture_on_commit_callbacks).owner for _ in range(3)]

    assert owners == [reps[2], reps[2], reps[2]]
    trace = Assignment.objects.filter(user=reps[2]).first().trace[0]
    assert trace["skipped"] == [{"candidate": "Rep0", "why": "away"}, {"candidate": "Rep1", "why": "at capacity (1/1)"}]


def test_first_matching_rule_wins_account_owner_and_territory(team, django_capture_on_commit_callbacks):
    _, reps = team
    owner = reps[2]
    Account.objects.create(domain="bigco.example", name="BigCo", owner=owner, existing_customer=True)
    make_rule("Existing customers", priority=10, strategy="account_owner", target="team", team=team[0])
    make_rule(
        "DACH", priority=20, conditions=[("country", "in", "DE, AT, CH")], target="rep", rep=reps[1], strategy="direct"
    )
    make_rule("Everyone", priority=90, team=team[0])

    customer = mql(
        django_capture_on_commit_callbacks, email="x@bigco.example", company_domain="bigco.example", country="DE"
    )
    german = mql(django_capture_on_commit_callbacks, country="AT")
    french = mql(django_capture_on_commit_callbacks, country="FR")

    assert (customer.owner, german.owner, french.owner) == (owner, reps[1], reps[0])
    trace = Assignment.objects.get(lead=french).trace
    assert trace[0] == {
        "rule": "Existing customers",
        "matched": True,
        "strategy": "account_owner",
        "result": "no account owner for this domain",
    }
    assert trace[1] == {"rule": "DACH", "matched": False}


def test_no_rule_places_it_lands_in_the_unassigned_queue(team, django_capture_on_commit_callbacks):
    make_rule("US only", conditions=[("country", "eq", "US")], team=team[0])
    lead = mql(django_capture_on_commit_callbacks, country="FR")
    assignment = Assignment.objects.get(lead=lead)
    assert (assignment.status, assignment.user, lead.owner) == ("unassigned", None, None)
    assert assignment.trace[-1] == {"result": "unassigned: no rule could place this lead"}

    make_rule("Everyone", priority=200, team=team[0])
    assert tasks.retry_unassigned_task() == 1
    assert Assignment.objects.get(lead=lead, status="active").user == team[1][0]


def test_partners_are_targets_too(team, partner_org_a, partner_a, django_capture_on_commit_callbacks):
    partner_org_a.territories = ["AT"]
    partner_org_a.save()
    make_rule("Partner territories", priority=5, target="partners", partners=[partner_org_a], match_profile=True)
    make_rule("Everyone", team=team[0])
    austrian = mql(django_capture_on_commit_callbacks, country="AT")
    german = mql(django_capture_on_commit_callbacks, country="DE")
    assert (austrian.partner, austrian.owner) == (partner_org_a, None)
    assert german.owner == team[1][0]


def test_accept_moves_to_sal_and_only_the_assignee_may(api, team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)

    assert api(reps[1]).post(f"/api/v1/leads/{lead.pk}/accept/").status_code == 404
    response = api(reps[0]).post(f"/api/v1/leads/{lead.pk}/accept/")

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.SAL, actor=reps[0]).count() == 1
    again = api(reps[0]).post(f"/api/v1/leads/{lead.pk}/accept/")
    assert again.status_code == 409 and again.json()["code"] == "not_yours"


def test_reject_sends_it_back_to_marketing_with_the_reason(api, team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    assert api(reps[0]).post(f"/api/v1/leads/{lead.pk}/reject/", {"reason": ""}).status_code == 400

    response = api(reps[0]).post(f"/api/v1/leads/{lead.pk}/reject/", {"reason": "Student, no budget"})

    assert response.status_code == 204
    lead.refresh_from_db()
    assert (lead.stage, lead.owner, lead.marketing_suppressed) == (Stage.MAL, None, False)
    assert StageChange.objects.get(lead=lead, to_stage=Stage.MAL).reason == "Student, no budget"
    assert Assignment.objects.get(lead=lead).status == "rejected"


def test_reject_reroutes_to_someone_else_when_the_rule_says_so(api, team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0], on_reject="reroute")
    lead = mql(django_capture_on_commit_callbacks)

    response = api(reps[0]).post(f"/api/v1/leads/{lead.pk}/reject/", {"reason": "Wrong territory"})

    assert response.status_code == 200
    assert response.json()["user"] == reps[1].pk
    lead.refresh_from_db()
    assert (lead.stage, lead.owner) == (Stage.MQL, reps[1])


def test_pool_claims_are_first_wins(api, team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Pool", team=team[0], target="pool", strategy="pool", pool_mode="shark_tank")
    lead = mql(django_capture_on_commit_callbacks, company="Globex")
    assert Assignment.objects.get(lead=lead).status == "pooled"
    assert sorted(m.to[0] for m in mail.outbox) == sorted(r.email for r in reps)  # shark tank: all told

    first = api(reps[1]).post("/api/v1/pool/claim/", {"lead": lead.pk})
    second = api(reps[2]).post("/api/v1/pool/claim/", {"lead": lead.pk})

    assert first.status_code == 200 and first.json()["company"] == "Globex"
    assert second.status_code == 409
    assert second.json() == {"detail": "This lead was already taken.", "code": "already_taken"}
    lead.refresh_from_db()
    assert lead.owner == reps[1]
    assert Assignment.objects.get(lead=lead).status == "active"


def test_blind_pull_gives_the_oldest_pooled_lead(api, team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Pool", team=team[0], target="pool", strategy="pool", pool_mode="blind")
    older = mql(django_capture_on_commit_callbacks)
    mql(django_capture_on_commit_callbacks)
    response = api(reps[0]).post("/api/v1/pool/claim/", {})
    assert response.json()["id"] == older.pk
    outsider, _ = make_team("Other", size=1)[1][0], None
    assert api(outsider).post("/api/v1/pool/claim/", {}).json()["code"] == "pool_empty"


def test_availability_makes_routing_skip_the_rep(api, team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    later = (timezone.now() + timedelta(days=1)).isoformat()
    assert (
        api(reps[0]).post("/api/v1/me/availability/", {"away_until": later}, format="json").json()["available"] is False
    )
    assert mql(django_capture_on_commit_callbacks).owner == reps[1]
    assert api(reps[0]).post("/api/v1/me/availability/", {"away_until": None}, format="json").json() == {
        "available": True,
        "away_until": None,
    }


def test_sla_breach_reassigns_to_the_next_eligible_never_the_same(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0], sla_minutes=10)
    lead = mql(django_capture_on_commit_callbacks)

    handled = services.sla_enforce(now=timezone.now() + timedelta(minutes=11))

    assert handled == 1
    statuses = list(Assignment.objects.filter(lead=lead).order_by("pk").values_list("user", "status"))
    assert statuses == [(reps[0].pk, "expired"), (reps[1].pk, "active")]
    events = list(
        Activity.objects.filter(lead=lead, type=ActivityType.ASSIGNMENT)
        .values_list("properties__event", flat=True)
        .order_by("pk")
    )
    assert events == ["active", "SLA missed", "active"]


def test_sla_breach_escalates_to_the_team_manager(team, sales_manager, django_capture_on_commit_callbacks):
    team_obj, _reps = team
    team_obj.manager = sales_manager
    team_obj.save()
    make_rule("Everyone", team=team_obj, sla_minutes=10, on_sla_breach="escalate")
    lead = mql(django_capture_on_commit_callbacks)
    services.sla_enforce(now=timezone.now() + timedelta(minutes=11))
    lead.refresh_from_db()
    assert lead.owner == sales_manager
    assert Assignment.objects.get(lead=lead, status="active").note == "escalated: SLA missed"


def test_assignment_history_with_trace_is_scoped(api, team, rep_b, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    rows = api(reps[0]).get(f"/api/v1/leads/{lead.pk}/assignments/").json()
    assert [(r["assignee"], r["rule"], r["status"]) for r in rows] == [("Rep0", "Everyone", "active")]
    assert rows[0]["trace"][0]["result"] == "assigned to Rep0"
    assert api(rep_b).get(f"/api/v1/leads/{lead.pk}/assignments/").status_code == 404


def test_only_the_assignee_moves_a_handed_over_lead_to_sal(team, django_capture_on_commit_callbacks):
    """Before: anybody's mql → sal marked the rep's assignment "accepted" though the rep never accepted."""
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    with pytest.raises(TransitionRefused, match="Only the rep or partner"):
        lead_transition(lead=lead, to_stage=Stage.SAL, actor=team[1][1])
    lead.refresh_from_db()
    assert (lead.stage, lead.owner_id) == (Stage.MQL, team[1][0].pk)
    assert Assignment.objects.get(lead=lead).status == "active"


def test_only_mqls_are_routed(team):
    make_rule("Everyone", team=team[0])
    lead = LeadFactory(stage=Stage.MAL)
    assert services.lead_route(lead_id=lead.pk) is None
    assert not Assignment.objects.exists()


def test_a_rule_explains_what_it_misses(db):
    from django.core.exceptions import ValidationError

    rule = RoutingRule(name="x", target="team", strategy="round_robin")
    with pytest.raises(ValidationError, match="needs the team"):
        rule.clean()


def test_a_lead_that_leaves_mql_elsewhere_closes_its_pool_or_queue_entry(team, django_capture_on_commit_callbacks):
    make_rule("Pool", team=team[0], target="pool", strategy="pool")
    lead = mql(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        lead_transition(lead=lead, to_stage=Stage.DISQUALIFIED)
    assignment = Assignment.objects.get(lead=lead)
    assert (assignment.status, assignment.note) == ("closed", "lead moved to disqualified")


@pytest.mark.parametrize(("mode", "with_details"), [("cherry_pick", True), ("blind", False)])
def test_the_pool_lists_claimable_leads_with_details_unless_blind(
    api, team, rep_b, mode, with_details, django_capture_on_commit_callbacks
):
    _, reps = team
    make_rule("Pool", team=team[0], target="pool", strategy="pool", pool_mode=mode)
    lead = mql(django_capture_on_commit_callbacks, company="Umbrella")

    rows = api(reps[0]).get("/api/v1/pool/").json()

    assert [(r["pool"], r["mode"]) for r in rows] == [("Pool", mode)]
    assert (rows[0]["lead"] or {}).get("company") == ("Umbrella" if with_details else None)
    assert (rows[0]["lead"] or {}).get("id") == (lead.pk if with_details else None)
    assert api(rep_b).get("/api/v1/pool/").json() == []  # not in the pool's team


def test_a_partner_user_accepts_a_lead_routed_to_its_organisation_and_no_one_else_can(
    api, partner_org_a, partner_a, partner_b, integration, django_capture_on_commit_callbacks
):
    make_rule("Partners", target="partners", partners=[partner_org_a], strategy="direct")
    lead = mql(django_capture_on_commit_callbacks)
    assert lead.partner == partner_org_a

    # Partners accept with their feedback; the internal accept does not exist for them (404).
    assert api(partner_a).post(f"/api/v1/leads/{lead.pk}/accept/").status_code == 404
    feedback = f"/api/v1/partner/leads/{lead.pk}/feedback/"
    assert api(partner_b).post(feedback, {"status": "accepted"}).status_code == 404
    assert api(integration).post(feedback, {"status": "accepted"}).status_code == 403
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    response = api(partner_a).post(feedback, {"status": "accepted"})

    assert response.status_code == 201
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert StageChange.objects.get(lead=lead, to_stage=Stage.SAL).actor == partner_a


def test_a_routing_task_places_the_mqls_waiting_behind_it_in_one_batch(team, django_capture_on_commit_callbacks):
    _, reps = team
    rule = make_rule("Everyone", team=team[0], sla_minutes=30)
    waiting = []
    for _ in range(7):
        lead = LeadFactory(stage=Stage.MAL)
        with django_capture_on_commit_callbacks(execute=False):  # the routing tasks stay queued
            lead_transition(lead=lead, to_stage=Stage.MQL)
        waiting.append(lead)
    routed_before = LeadFactory(stage=Stage.MAL)  # a recycled lead: routed once already
    with django_capture_on_commit_callbacks(execute=False):
        lead_transition(lead=routed_before, to_stage=Stage.MQL)
    Assignment.objects.create(lead=routed_before, user=reps[0], status="rejected")
    control = LeadFactory(stage=Stage.MQL)  # made an MQL without a move: no routing task was queued

    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.route_lead_task(waiting[3].pk)

    placed = Assignment.objects.filter(lead__in=waiting)
    assert placed.count() == 7 and {a.status for a in placed} == {"active"}
    assert first == placed.get(lead=waiting[3]).pk
    per_rep = Counter(placed.values_list("user", flat=True))
    assert sorted(per_rep.values()) == [2, 2, 3]
    assert dict(RoutingCounter.objects.filter(rule=rule).values_list("user", "assigned")) == dict(per_rep)
    for lead in waiting:
        lead.refresh_from_db()
        assignment = placed.get(lead=lead)
        assert (lead.owner_id, lead.marketing_suppressed, lead.respond_by) == (
            assignment.user_id,
            True,
            assignment.due_at,
        )
        assert assignment.due_at - assignment.assigned_at == timedelta(minutes=30)
        assert assignment.trace[-1]["result"].startswith("assigned to Rep")
    assert Activity.objects.filter(lead__in=waiting, type=ActivityType.ASSIGNMENT).count() == 7
    assert len(mail.outbox) == 7
    # The batch left alone what it may not take, and the others' own tasks find them placed.
    assert Assignment.objects.filter(lead=routed_before).count() == 1
    assert not Assignment.objects.filter(lead=control).exists()
    assert [tasks.route_lead_task(lead.pk) for lead in waiting] == [placed.get(lead=lead).pk for lead in waiting]
    assert Assignment.objects.filter(lead__in=waiting).count() == 7


def test_the_open_assignment_follows_a_move_in_the_same_transaction(team):
    """No on-commit callback runs here: the assignment is closed by the move's own transaction, so a
    crash or an outage right after the commit cannot leave a disqualified lead with an open assignment."""
    _, reps = team
    rule = make_rule("Everyone", team=team[0])
    lead = LeadFactory(stage=Stage.MQL, respond_by=timezone.now())
    assignment = Assignment.objects.create(
        lead=lead, user=reps[0], rule=rule, status=Assignment.Status.ACTIVE, due_at=timezone.now()
    )

    lead_transition(lead=lead, to_stage=Stage.DISQUALIFIED, reason="Competitor")

    assignment.refresh_from_db()
    lead.refresh_from_db()
    assert (assignment.status, assignment.note) == (Assignment.Status.CLOSED, "lead moved to disqualified")
    assert lead.respond_by is None
