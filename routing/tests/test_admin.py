"""The routing admin as a sales manager uses it: simulator, replay, trace on the lead page."""

import pytest

from leads.models import Stage
from leads.services import lead_transition
from leads.tests.factories import LeadFactory, client_for
from routing.models import RepProfile
from routing.tests.factories import make_rule, make_team


@pytest.fixture
def setup(db):
    team, reps = make_team(size=2)
    make_rule(
        "DACH", priority=10, conditions=[("country", "in", "DE, AT, CH")], target="rep", rep=reps[0], strategy="direct"
    )
    make_rule("Everyone", priority=90, team=team)
    return team, reps


def test_the_simulator_says_where_an_imagined_lead_would_go_and_why(manager_client, setup):
    _, reps = setup
    RepProfile.objects.filter(user=reps[0]).update(active=False)

    page = manager_client.get("/admin/routing/routingrule/simulate/", {"country": "de"}).content.decode()

    assert "Assigned to Rep1" in page
    assert "Rep0 skipped: inactive" in page
    assert "<strong>Everyone</strong>: assigned to Rep1" in page


def test_the_simulator_takes_a_real_lead_and_refuses_an_unknown_one(manager_client, setup):
    lead = LeadFactory(country="AT")
    page = manager_client.get("/admin/routing/routingrule/simulate/", {"lead": lead.email}).content.decode()
    assert "Assigned to Rep0" in page
    page = manager_client.get("/admin/routing/routingrule/simulate/", {"lead": "999999"}).content.decode()
    assert "No lead 999999." in page


def test_replay_compares_the_distribution_with_draft_rules(manager_client, setup, django_capture_on_commit_callbacks):
    _, reps = setup
    for country in ("DE", "DE", "FR", "FR"):
        lead = LeadFactory(country=country, stage=Stage.MAL)
        with django_capture_on_commit_callbacks(execute=True):
            lead_transition(lead=lead, to_stage=Stage.MQL)
    make_rule(
        "France draft",
        priority=5,
        status="draft",
        conditions=[("country", "eq", "FR")],
        target="rep",
        rep=reps[0],
        strategy="direct",
    )

    page = manager_client.get("/admin/routing/routingrule/replay/", {"n": 10}).content.decode()

    assert "4 leads routed again" in page
    # Active: DE→Rep0 ×2, FR→round robin Rep0, Rep1. With the draft: everything to Rep0.
    assert "<tr><td>Rep0</td><td>3</td><td>4</td><td>+1</td></tr>" in page
    assert "<tr><td>Rep1</td><td>1</td><td>0</td><td>-1</td></tr>" in page


def test_the_lead_page_shows_the_assignment_trace(manager_client, setup, django_capture_on_commit_callbacks):
    lead = LeadFactory(country="FR", stage=Stage.MAL)
    with django_capture_on_commit_callbacks(execute=True):
        lead_transition(lead=lead, to_stage=Stage.MQL)
    page = manager_client.get(f"/admin/leads/lead/{lead.pk}/change/").content.decode()
    assert "Assignments" in page
    assert "DACH: conditions not met" in page
    assert "Everyone (Round robin): assigned to Rep0" in page


def test_a_rep_cannot_reach_the_routing_admin(setup):
    assert client_for(setup[1][0]).get("/admin/routing/routingrule/simulate/").status_code == 302


def test_a_run_of_rules_that_did_not_match_reads_as_one_line(manager_client, setup, django_capture_on_commit_callbacks):
    for n in range(3):
        make_rule(f"US {n}", priority=n + 1, conditions=[("country", "eq", "US")], target="team", team=setup[0])
    lead = LeadFactory(country="FR", stage=Stage.MAL)
    with django_capture_on_commit_callbacks(execute=True):
        lead_transition(lead=lead, to_stage=Stage.MQL)

    page = manager_client.get(f"/admin/leads/lead/{lead.pk}/change/").content.decode()
    simulated = manager_client.get("/admin/routing/routingrule/simulate/", {"country": "fr"}).content.decode()

    assert "4 rules (US 0 … DACH): conditions not met" in page
    assert "Everyone (Round robin): assigned to Rep0" in page
    assert "<strong>4 rules</strong> (US 0 … DACH): conditions not met" in simulated
