"""The handover state (owner, partner, handed_over_at, respond_by, marketing_suppressed, the
assignment's status) after each move, whichever door it came through: the reproductions of issue
#11, each of which left an inconsistent state before routing.handover owned it."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from leads.lifecycle import TransitionRefused
from leads.models import Activity, ActivityType, Lead, Role, Stage
from leads.services import lead_close, lead_transition
from leads.tests.factories import LeadFactory, UserFactory, client_for
from routing import handover, selectors, services
from routing.forms import ReassignForm
from routing.models import Assignment, RepProfile, RoutingRule
from routing.tests.factories import make_rule, make_team, mql


@pytest.fixture
def team(manager):
    return make_team(size=3, manager=manager)


def released(lead: Lead) -> tuple:
    lead.refresh_from_db()
    return (lead.owner_id, lead.partner_id, lead.handed_over_at, lead.respond_by, lead.marketing_suppressed)


NOBODY = (None, None, None, None, False)


def accepted_lead(capture, team) -> Lead:
    make_rule("Everyone", team=team[0])
    lead = mql(capture)
    services.assignment_accept(lead=lead, user=lead.owner)
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    return lead


# --- recycling and disqualifying release the lead, through every door ---------------------------


@pytest.mark.parametrize("path", [["mal"], ["sql", "lost", "mal"]])
def test_recycling_through_the_api_releases_the_lead(team, marketing, api, django_capture_on_commit_callbacks, path):
    lead = accepted_lead(django_capture_on_commit_callbacks, team)
    rep = lead.owner
    for to in path:
        if to == "sql":
            lead_transition(lead=lead, to_stage=Stage.SQL, reason="BANT confirmed")
        elif to == "lost":
            lead_close(lead=lead, won=False, reason="no_budget")
        else:
            answer = api(marketing).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": to, "reason": "recycled"})
            assert answer.status_code == 200, answer.content
    assert released(lead) == NOBODY
    assert Assignment.objects.get(lead=lead).status == "closed"
    # The rep no longer owns it, so no longer sees it.
    assert api(rep).get(f"/api/v1/leads/{lead.pk}/").status_code == 404


def test_mql_sent_back_to_marketing_or_disqualified_releases_the_lead(
    team, marketing, api, django_capture_on_commit_callbacks
):
    make_rule("Everyone", team=team[0])
    back, gone = mql(django_capture_on_commit_callbacks), mql(django_capture_on_commit_callbacks)
    owner = back.owner
    assert owner is not None and back.respond_by is not None

    assert (
        api(marketing).post(f"/api/v1/leads/{back.pk}/transition/", {"to": "mal", "reason": "not yet"}).status_code
        == 200
    )
    assert api(marketing).post(f"/api/v1/leads/{gone.pk}/transition/", {"to": "disqualified"}).status_code == 200

    assert released(back) == NOBODY and released(gone) == NOBODY
    assert sorted(Assignment.objects.filter(lead__in=[back, gone]).values_list("status", flat=True)) == ["closed"] * 2
    assert api(gone.owner or owner).get(f"/api/v1/leads/{gone.pk}/").status_code == 404


def test_the_admin_action_releases_the_lead_like_the_api(team, django_capture_on_commit_callbacks):
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    client = client_for(UserFactory(username="admin", is_staff=True, is_superuser=True))
    answer = client.post(
        "/admin/leads/lead/", {"action": "move_to_disqualified", "_selected_action": [lead.pk]}, follow=True
    )
    assert answer.status_code == 200
    lead.refresh_from_db()
    assert lead.stage == Stage.DISQUALIFIED
    assert released(lead) == NOBODY
    assert Assignment.objects.get(lead=lead).status == "closed"


def test_marketing_cannot_accept_for_the_rep(team, marketing, api, django_capture_on_commit_callbacks):
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    answer = api(marketing).post(f"/api/v1/leads/{lead.pk}/transition/", {"to": "sal"})
    assert answer.status_code == 409
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert Assignment.objects.get(lead=lead).status == "active"


def test_closing_keeps_the_owner_and_stops_the_clock(team, django_capture_on_commit_callbacks):
    lead = accepted_lead(django_capture_on_commit_callbacks, team)
    rep = lead.owner
    lead_transition(lead=lead, to_stage=Stage.SQL, reason="BANT confirmed")
    lead_close(lead=lead, won=True, amount=18500, actor=rep)
    lead.refresh_from_db()
    assert (lead.stage, lead.owner, lead.respond_by, lead.marketing_suppressed) == (Stage.WON, rep, None, True)
    assert Assignment.objects.get(lead=lead).status == "accepted"


# --- SLA: escalation is the system's, and a chain that runs out ends with the fallback -------------


def test_an_sla_escalation_is_recorded_as_the_system_not_as_the_manager(
    team, manager, django_capture_on_commit_callbacks
):
    make_rule("Escalating", team=team[0], sla_minutes=10, on_sla_breach=RoutingRule.OnBreach.ESCALATE)
    lead = mql(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.sla_enforce(now=timezone.now() + timedelta(minutes=11))
    escalated = Assignment.objects.get(lead=lead, status="active")
    assert (escalated.user, escalated.created_by, escalated.strategy) == (manager, None, "escalation")
    assert escalated.escalated_at is not None
    entry = Activity.objects.filter(lead=lead, type=ActivityType.ASSIGNMENT).order_by("-pk").first()
    assert entry.created_by is None and entry.properties["event"] == "escalated to Sam: SLA missed"
    lead.refresh_from_db()
    assert (lead.owner, lead.respond_by) == (manager, escalated.due_at)
    assert mail.outbox[-1].to == [manager.email] and mail.outbox[-1].subject.startswith("Escalated to you")


@pytest.mark.parametrize("fallback", [RoutingRule.Fallback.MANAGER, RoutingRule.Fallback.POOL])
def test_an_sla_chain_that_runs_out_goes_to_the_fallback_and_the_manager_is_told(
    team, manager, django_capture_on_commit_callbacks, fallback
):
    """Before: the lead went through all three reps, ended unassigned, and retry_unassigned excluded
    every one of them forever; nobody was told."""
    _, reps = team
    make_rule("Chain", team=team[0], sla_minutes=10, fallback=fallback)
    lead = mql(django_capture_on_commit_callbacks)
    now = timezone.now()
    for step in range(1, 4):
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            services.sla_enforce(now=now + timedelta(minutes=11 * step))
        now += timedelta(minutes=11 * step)
    expired = list(Assignment.objects.filter(lead=lead, status="expired").order_by("pk").values_list("user", flat=True))
    assert expired == [r.pk for r in reps]
    held = handover.current(lead.pk)
    lead.refresh_from_db()
    if fallback == RoutingRule.Fallback.MANAGER:
        assert (held.status, held.user, held.created_by) == ("active", manager, None)
        assert lead.owner == manager
        assert [m.to for m in mail.outbox] == [[manager.email]]
    else:
        assert (held.status, held.pool_team, held.pool_mode) == ("pooled", team[0], "cherry_pick")
        assert (lead.owner, lead.marketing_suppressed) == (None, True)
        # The team's reps hear of the pooled lead; the manager is told why it is there.
        recipients = sorted(m.to[0] for m in mail.outbox)
        assert recipients == sorted([manager.email, *(r.email for r in reps)])
        manager_mail = next(m for m in mail.outbox if m.to == [manager.email])
        assert manager_mail.subject.startswith("Waiting in the pool")
    assert not Assignment.objects.filter(lead=lead, status="unassigned").exists()


# --- pools ---------------------------------------------------------------------------------------------


def pooled(capture, team, mode, **rule):
    make_rule(f"{mode} pool", team=team[0], target="pool", strategy="pool", pool_mode=mode, **rule)
    return mql(capture)


def test_get_next_pulls_the_oldest_blind_lead_never_a_shark_tank_one(team, django_capture_on_commit_callbacks):
    rep = team[1][0]
    shark = make_rule(
        "Shark",
        team=team[0],
        target="pool",
        strategy="pool",
        pool_mode="shark_tank",
        priority=1,
        conditions=[("country", "eq", "DE")],
    )
    make_rule("Blind", team=team[0], target="pool", strategy="pool", pool_mode="blind", priority=2)
    shark_lead = mql(django_capture_on_commit_callbacks, country="DE")
    older_blind = mql(django_capture_on_commit_callbacks, country="AT")
    newer_blind = mql(django_capture_on_commit_callbacks, country="CH")
    Assignment.objects.filter(lead=shark_lead).update(assigned_at=timezone.now() - timedelta(hours=3))
    Assignment.objects.filter(lead=older_blind).update(assigned_at=timezone.now() - timedelta(hours=2))
    assert Assignment.objects.get(lead=shark_lead).rule == shark

    first = services.pool_claim(user=rep)
    second = services.pool_claim(user=rep)
    assert [first.lead_id, second.lead_id] == [older_blind.pk, newer_blind.pk]
    with pytest.raises(services.RoutingError) as empty:
        services.pool_claim(user=rep)
    assert empty.value.code == "pool_empty"
    assert Assignment.objects.get(lead=shark_lead).status == "pooled"


def test_a_blind_lead_cannot_be_claimed_by_id(team, api, django_capture_on_commit_callbacks):
    lead = pooled(django_capture_on_commit_callbacks, team, "blind")
    answer = api(team[1][0]).post("/api/v1/pool/claim/", {"lead": lead.pk}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "blind_pool"
    assert Assignment.objects.get(lead=lead).status == "pooled"
    # The pool lists it without its details.
    entries = api(team[1][0]).get("/api/v1/pool/").json()
    assert [(e["lead"], e["mode"]) for e in entries] == [(None, "blind")]


def test_a_pooled_lead_not_claimed_in_time_is_escalated_once(team, manager, django_capture_on_commit_callbacks):
    lead = pooled(django_capture_on_commit_callbacks, team, "cherry_pick", sla_minutes=30)
    assignment = Assignment.objects.get(lead=lead)
    assert assignment.due_at - assignment.assigned_at == timedelta(minutes=30)
    mail.outbox.clear()
    later = timezone.now() + timedelta(minutes=31)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sla_enforce(now=later) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sla_enforce(now=later + timedelta(minutes=5)) == 0  # once
    assignment.refresh_from_db()
    assert assignment.status == "pooled" and assignment.escalated_at is not None
    assert [m.to for m in mail.outbox if m.subject.startswith("Waiting in the pool")] == [[manager.email]]
    assert Activity.objects.filter(lead=lead, properties__event="not claimed in time: manager told").count() == 1
    # The manager finds it on the team page, with a way to hand it to someone.
    client = client_for(manager)
    page = client.get("/app/team/")
    stalled = page.context["stalled"]
    assert [a.lead_id for a in stalled] == [lead.pk]
    assert "Waiting in the pool too long" in page.content.decode()
    client.post(f"/app/leads/{lead.pk}/reassign/", {"to_user": team[1][1].pk, "next": "team"})
    lead.refresh_from_db()
    assert (lead.owner, handover.current(lead.pk).status) == (team[1][1], "active")
    assert Assignment.objects.get(pk=assignment.pk).status == "reassigned"


def test_hybrid_offers_a_lead_to_a_few_reps_with_headroom_then_to_the_team(manager, django_capture_on_commit_callbacks):
    team, reps = make_team(size=4, manager=manager, capacity=10)
    busy = reps[0]
    LeadFactory.create_batch(9, owner=busy, stage=Stage.SAL)
    make_rule("Hybrid", team=team, target="pool", strategy="pool", pool_mode="hybrid", pool_size=2, sla_minutes=15)
    mail.outbox.clear()
    lead = mql(django_capture_on_commit_callbacks)
    assignment = Assignment.objects.get(lead=lead)
    offered = set(assignment.offered_to.values_list("pk", flat=True))
    assert offered == {reps[1].pk, reps[2].pk}  # the two with most headroom, in team order
    assert sorted(m.to[0] for m in mail.outbox) == sorted([reps[1].email, reps[2].email])
    assert [a.lead_id for a in selectors.pool_for(reps[3])] == []
    with pytest.raises(services.RoutingError) as refused:
        services.pool_claim(user=reps[3], lead=lead)
    assert refused.value.code == "not_your_pool"

    with django_capture_on_commit_callbacks(execute=True):
        services.sla_enforce(now=timezone.now() + timedelta(minutes=16))
    assert [a.lead_id for a in selectors.pool_for(reps[3])] == [lead.pk]  # widened
    claimed = services.pool_claim(user=reps[3], lead=lead)
    lead.refresh_from_db()
    assert (claimed.status, lead.owner, lead.respond_by) == ("active", reps[3], claimed.due_at)


def test_a_claim_at_capacity_is_refused_and_changes_nothing(db, django_capture_on_commit_callbacks):
    team, reps = make_team(size=1, capacity=2)
    LeadFactory.create_batch(2, owner=reps[0], stage=Stage.SAL)
    lead = pooled(django_capture_on_commit_callbacks, (team, reps), "cherry_pick")
    with pytest.raises(services.RoutingError) as refused:
        services.pool_claim(user=reps[0], lead=lead)
    assert refused.value.message == "You are at capacity (2/2)."
    assert Assignment.objects.get(lead=lead).status == "pooled"


# --- reassigning: above capacity only when confirmed; pickers list people who take leads ---------------


def test_reassigning_to_a_full_rep_asks_first(team, manager, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    full = reps[2]
    RepProfile.objects.filter(user=full).update(capacity=3)
    LeadFactory.create_batch(3, owner=full, stage=Stage.SAL)
    client = client_for(manager)

    page = client.post(f"/app/leads/{lead.pk}/reassign/", {"to_user": full.pk, "note": "knows them"})
    assert page.status_code == 422
    assert (
        "Rep2 already has 3 open leads, with room for 3. Confirm to hand the lead over anyway." in page.content.decode()
    )
    assert "Hand over anyway" in page.content.decode()
    lead.refresh_from_db()
    assert lead.owner != full

    client.post(f"/app/leads/{lead.pk}/reassign/", {"to_user": full.pk, "note": "knows them", "over_capacity": "on"})
    lead.refresh_from_db()
    held = handover.current(lead.pk)
    assert (lead.owner, held.user, held.created_by, held.status) == (full, full, manager, "active")


def test_the_reassign_picker_lists_only_people_who_take_leads(team, manager, partner_a, integration, marketing):
    _, reps = team
    RepProfile.objects.filter(user=reps[2]).update(active=False)
    UserFactory(username="gone", role=Role.SALES_REP, is_active=False)
    listed = set(ReassignForm().fields["to_user"].queryset)
    assert listed == {reps[0], reps[1], manager}


# --- every writer of the handover state is routing.handover ---------------------------------------------


def test_no_module_but_the_handover_writes_its_state():
    """A grep over the code: the fields are assigned, updated or saved only in routing/handover.py
    (reads, filters and tests are fine)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    writes = re.compile(
        r"(\.(owner|partner|owner_id|partner_id|respond_by|handed_over_at|marketing_suppressed)\s*=[^=])"
        r"|(update\([^)]*\b(respond_by|marketing_suppressed|handed_over_at|owner|status)=)"
        r"|(assignment\.status\s*=[^=])"
    )
    offenders = []
    for path in root.glob("*/**/*.py"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".venv", "bench/")) or "/tests/" in rel or rel.startswith("tests/") or "migrations" in rel:
            continue
        if rel in {"routing/handover.py"}:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if writes.search(line) and not re.search(r"lead\.partner_id !=|SELECT|WHERE", line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert offenders == []


def test_the_move_table_refuses_what_it_does_not_list():
    with pytest.raises(services.RoutingError):
        handover.check("accept", Assignment.Status.POOLED)
    with pytest.raises(services.RoutingError):
        handover.check("claim", Assignment.Status.ACCEPTED)
    handover.check("recycle", Assignment.Status.ACCEPTED)


def test_mql_to_sal_by_code_is_refused_while_the_lead_waits(team, django_capture_on_commit_callbacks):
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    with pytest.raises(TransitionRefused):
        lead_transition(lead=lead, to_stage=Stage.SAL)


def test_the_migration_releases_leads_that_earlier_doors_left_held(team, django_capture_on_commit_callbacks):
    """Data made by the old API recycle: a MAL lead still owned, suppressed, its assignment accepted."""
    from importlib import import_module

    from django.apps import apps

    lead = accepted_lead(django_capture_on_commit_callbacks, team)
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.MAL)  # what the old door left: owner and all
    won = LeadFactory(stage=Stage.WON, owner=team[1][0], respond_by=timezone.now())
    control = accepted_lead(django_capture_on_commit_callbacks, team)

    import_module("routing.migrations.0006_release_leads_left_held").release(apps, None)

    assert released(lead) == NOBODY
    assert Assignment.objects.get(lead=lead).status == "closed"
    won.refresh_from_db()
    assert (won.owner, won.respond_by) == (team[1][0], None)
    control.refresh_from_db()
    assert (control.stage, control.owner is not None, control.marketing_suppressed) == (Stage.SAL, True, True)
    assert Assignment.objects.get(lead=control).status == "accepted"


def test_only_open_leads_can_be_reassigned(team, manager, django_capture_on_commit_callbacks):
    lead = LeadFactory(stage=Stage.MAL)
    with pytest.raises(services.RoutingError) as refused:
        services.assignment_reassign(lead=lead, to_user=team[1][0], actor=manager)
    assert refused.value.code == "not_open"
    assert released(lead) == NOBODY and not Assignment.objects.filter(lead=lead).exists()


def test_an_mql_nobody_can_take_is_told_to_the_sales_managers_once(manager, django_capture_on_commit_callbacks):
    """DESIGN: every MQL is assigned, pooled or visibly unassigned with a manager told."""
    other = UserFactory(username="other-manager", role=Role.SALES_MANAGER, email="other@team.example")
    make_rule("Only Germany", team=make_team(manager=manager)[0], conditions=[("country", "eq", "DE")])
    mail.outbox.clear()
    lead = mql(django_capture_on_commit_callbacks, country="FR", company="Lonely SA")
    assert handover.current(lead.pk).status == "unassigned"
    assert sorted(m.to[0] for m in mail.outbox) == sorted([manager.email, other.email])
    assert all(m.subject == "Nobody could take a lead: Lonely SA" for m in mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        services.unassigned_retry()
    assert len(mail.outbox) == 2  # a retry that still finds nobody says nothing more
    assert released(lead) == NOBODY
