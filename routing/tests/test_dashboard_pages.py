"""Routing's dashboard pages: accept / reject on the lead page, the pool, availability, team, funnel."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leads.models import ActivityType, Stage
from leads.services import lead_transition
from leads.tests.factories import LeadFactory, client_for
from routing.models import Assignment, RepProfile
from routing.tests.factories import make_rule, make_team, mql

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def team(db, sales_manager):
    return make_team(size=3, manager=sales_manager)


def test_the_assignee_accepts_on_the_lead_page(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0], sla_minutes=30)
    lead = mql(django_capture_on_commit_callbacks, company="Initech")
    client = client_for(reps[0])
    page = client.get(f"/app/leads/{lead.pk}/")
    assert b"New lead for you" in page.content and b"Accept lead" in page.content

    response = client.post(f"/app/leads/{lead.pk}/accept/", **HTMX)

    assert response.status_code == 200 and b"Accepted: the lead is yours (SAL)." in response.content
    assert b"Accept lead" not in response.content
    lead.refresh_from_db()
    assert (lead.stage, lead.respond_by) == (Stage.SAL, None)
    assert Assignment.objects.get(lead=lead).status == "accepted"


def test_someone_else_cannot_accept_and_nothing_changes(team, rep_b, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    assert client_for(reps[1]).post(f"/app/leads/{lead.pk}/accept/").status_code == 404
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL and Assignment.objects.get(lead=lead).status == "active"


def test_reject_needs_a_reason_then_sends_the_lead_back_to_marketing(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Everyone", team=team[0])
    lead = mql(django_capture_on_commit_callbacks)
    client = client_for(reps[0])

    refused = client.post(f"/app/leads/{lead.pk}/reject/", {"reason": ""}, **HTMX)
    assert b"A rejection needs a reason." in refused.content
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL

    response = client.post(f"/app/leads/{lead.pk}/reject/", {"reason": "Student project"}, **HTMX)
    assert (response.status_code, response["HX-Redirect"]) == (204, "/app/")
    lead.refresh_from_db()
    assert (lead.stage, lead.owner, lead.respond_by) == (Stage.MAL, None, None)
    assert lead.stage_changes.get(to_stage=Stage.MAL).reason == "Student project"
    assert client.get(f"/app/leads/{lead.pk}/").status_code == 404  # no longer theirs


def test_pool_lists_details_claims_first_wins(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Pool", team=team[0], target="pool", strategy="pool", pool_mode="shark_tank")
    lead = mql(django_capture_on_commit_callbacks, company="Globex")
    page = client_for(reps[1]).get("/app/pool/")
    assert b"Globex" in page.content and b"shark tank" in page.content

    first = client_for(reps[1]).post("/app/pool/claim/", {"lead": lead.pk})
    second = client_for(reps[2]).post("/app/pool/claim/", {"lead": lead.pk}, follow=True)

    assert first["Location"] == f"/app/leads/{lead.pk}/"
    assert b"This lead was already taken." in second.content
    lead.refresh_from_db()
    assert lead.owner == reps[1]


def test_blind_pool_hides_details_until_the_pull(team, django_capture_on_commit_callbacks):
    _, reps = team
    make_rule("Blind", team=team[0], target="pool", strategy="pool", pool_mode="blind")
    lead = mql(django_capture_on_commit_callbacks, company="Hidden Corp")
    page = client_for(reps[0]).get("/app/pool/")
    assert b"Hidden Corp" not in page.content and b"1 lead</strong> in blind pools" in page.content
    response = client_for(reps[0]).post("/app/pool/claim/", follow=True)
    assert b"Hidden Corp" in response.content and b"Claimed" in response.content
    lead.refresh_from_db()
    assert lead.owner == reps[0]


def test_availability_away_in_the_future_then_back(team):
    _, reps = team
    client = client_for(reps[0])
    past = client.post("/app/availability/", {"away_until": "2020-01-01T09:00"})
    assert past.status_code == 422 and b"Pick a time in the future." in past.content
    assert RepProfile.objects.get(user=reps[0]).away_until is None

    until = (timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    client.post("/app/availability/", {"away_until": until.strftime("%Y-%m-%dT%H:%M")})
    assert RepProfile.objects.get(user=reps[0]).away_until == until
    assert b"You are away" in client.get("/app/availability/").content

    client.post("/app/availability/", {"available": "1"})
    assert RepProfile.objects.get(user=reps[0]).away_until is None


def test_team_pages_are_for_managers_only(team, rep_a):
    for url in ("/app/team/", "/app/team/funnel/"):
        assert client_for(rep_a).get(url).status_code == 404


def test_team_view_shows_load_breaches_and_unassigned(team, sales_manager, django_capture_on_commit_callbacks):
    _, reps = team
    RepProfile.objects.filter(user=reps[0]).update(capacity=4)
    now = timezone.now()
    LeadFactory(owner=reps[0], stage=Stage.SAL)
    LeadFactory(owner=reps[0], stage=Stage.MQL, respond_by=now - timedelta(minutes=10), company="Late Ltd")
    LeadFactory(owner=reps[0], stage=Stage.WON)  # closed: not load
    stray = mql(django_capture_on_commit_callbacks, company="Nowhere GmbH")  # no rule → unassigned

    page = client_for(sales_manager).get("/app/team/")

    load = {
        row["profile"].user_id: (row["open"], row["waiting"], row["overdue"], row["percent"])
        for row in page.context["load"]
    }
    assert load == {reps[0].pk: (2, 1, 1, 50), reps[1].pk: (0, 0, 0, 0), reps[2].pk: (0, 0, 0, 0)}
    assert [lead.company for lead in page.context["breaches"]] == ["Late Ltd"]
    assert [a.lead_id for a in page.context["unassigned"]] == [stray.pk]


def test_manager_reassigns_from_the_team_page_and_it_is_in_the_history(team, sales_manager):
    _, reps = team
    lead = LeadFactory(owner=reps[0], stage=Stage.SAL)
    response = client_for(sales_manager).post(
        f"/app/leads/{lead.pk}/reassign/", {"to_user": reps[2].pk, "next": "team"}
    )
    assert response["Location"] == "/app/team/"
    lead.refresh_from_db()
    assert lead.owner == reps[2]
    entry = lead.activities.get(type=ActivityType.ASSIGNMENT)
    assert (entry.properties["event"], entry.created_by) == ("reassigned", sales_manager)


def test_team_page_queries_do_not_grow_with_leads(team, sales_manager):
    _, reps = team
    client = client_for(sales_manager)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/app/team/").status_code == 200
        return len(captured)

    LeadFactory(owner=reps[0], stage=Stage.SAL)
    few = queries()
    for rep in reps:
        LeadFactory.create_batch(10, owner=rep, stage=Stage.MQL, respond_by=timezone.now() - timedelta(minutes=1))
    # 17: the bell's unread count and the away banner's profile are two more, whatever the rows.
    assert queries() == few <= 17


def test_funnel_counts_and_conversion(team, sales_manager):
    _, reps = team
    leads = LeadFactory.create_batch(4, stage=Stage.MQL, owner=reps[0])
    for lead in leads:
        Assignment.objects.create(lead=lead, user=reps[0], status="accepted", strategy="manual")
    for lead in leads[:2]:
        lead_transition(lead=lead, to_stage=Stage.SAL)
    lead_transition(lead=leads[0], to_stage=Stage.SQL)
    lead_transition(lead=leads[0], to_stage=Stage.WON)
    lead_transition(lead=leads[1], to_stage=Stage.LOST)

    page = client_for(sales_manager).get("/app/team/funnel/", {"days": 7})

    steps = [(s["code"], s["count"], s["of_cohort"], s["of_previous"]) for s in page.context["steps"]]
    assert steps == [
        ("mql", 4, 100, None),
        ("sal", 2, 50, 50),
        ("sql", 1, 25, 50),
        ("won", 1, 25, 100),
        ("lost", 1, 25, None),
    ]
    assert b"Last 7 days" in page.content
