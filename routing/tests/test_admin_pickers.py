"""The routing admin's user pickers, its word on SLA changes, the simulator's account lookup for
typed attributes, and the replay's use of capacity and round robin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Role, Stage, StageChange
from leads.tests.factories import LeadFactory, UserFactory
from routing.models import Account, RepProfile, RoutingCounter, RoutingRule, Team
from routing.tests.factories import make_rule, make_team

RULE_ADD = "/admin/routing/routingrule/add/"
SIMULATE = "/admin/routing/routingrule/simulate/"
REPLAY = "/admin/routing/routingrule/replay/"


@pytest.fixture
def people(sales_manager, rep_a, marketing, partner_a, integration):
    """Everyone the user table holds: who can take a lead is sam (manager) and rita (rep)."""
    UserFactory(username="olga", role=Role.SALES_REP, is_active=False)  # left the company
    UserFactory(username="mona", role=Role.SALES_MANAGER, is_active=False)
    UserFactory(username="admin", is_superuser=True, is_staff=True)  # no role
    return {"sam": sales_manager, "rita": rep_a, "pia": partner_a, "webforms": integration}


def offered(field) -> set[str]:
    return set(field.queryset.values_list("username", flat=True))


def rule_post(**changes) -> dict:
    data = {
        "name": "Named rep",
        "priority": 10,
        "status": "active",
        "target": "rep",
        "strategy": "direct",
        "pool_mode": "cherry_pick",
        "pool_size": 3,
        "sla_minutes": 60,
        "on_sla_breach": "reassign",
        "fallback": "manager",
        "on_reject": "to_marketing",
        "conditions-TOTAL_FORMS": 0,
        "conditions-INITIAL_FORMS": 0,
        "conditions-MIN_NUM_FORMS": 0,
        "conditions-MAX_NUM_FORMS": 1000,
    }
    return data | changes


def test_the_rule_rep_picker_lists_only_active_reps_and_managers(manager_client, people):
    form = manager_client.get(RULE_ADD).context["adminform"].form

    assert offered(form.fields["rep"]) == {"sam", "rita"}


def test_a_partner_account_sent_as_the_rule_rep_is_refused_in_words(manager_client, people):
    response = manager_client.post(RULE_ADD, rule_post(rep=people["pia"].pk))

    assert response.status_code == 200
    assert "Only an active sales rep or sales manager can take leads; pick one of the list." in (
        response.content.decode()
    )
    assert not RoutingRule.objects.exists()
    accepted = manager_client.post(RULE_ADD, rule_post(rep=people["rita"].pk))
    assert accepted.status_code == 302
    assert RoutingRule.objects.get().rep == people["rita"]


def test_a_team_manager_is_a_sales_manager(manager_client, people):
    form = manager_client.get("/admin/routing/team/add/").context["adminform"].form

    response = manager_client.post(
        "/admin/routing/team/add/",
        {"name": "Inside sales", "manager": people["rita"].pk}
        | {"reps-TOTAL_FORMS": 0, "reps-INITIAL_FORMS": 0, "reps-MIN_NUM_FORMS": 0, "reps-MAX_NUM_FORMS": 1000},
    )

    assert offered(form.fields["manager"]) == {"sam"}
    assert "Only an active sales manager can manage a team; pick one of the list." in response.content.decode()
    assert not Team.objects.exists()


def test_an_account_owner_and_a_rep_profile_are_people_who_take_leads(manager_client, people):
    account_form = manager_client.get("/admin/routing/account/add/").context["adminform"].form
    profile_form = manager_client.get("/admin/routing/repprofile/add/").context["adminform"].form
    team_page = manager_client.get("/admin/routing/team/add/").context
    inline_form = team_page["inline_admin_formsets"][0].formset.empty_form

    assert offered(account_form.fields["owner"]) == {"sam", "rita"}
    assert offered(profile_form.fields["user"]) == {"sam", "rita"}
    assert offered(inline_form.fields["user"]) == {"sam", "rita"}


def test_the_profile_of_someone_who_left_stays_editable_and_adds_nobody_else(manager_client, people):
    olga = people["rita"].__class__.objects.get(username="olga")
    profile = RepProfile.objects.create(user=olga)

    form = manager_client.get(f"/admin/routing/repprofile/{profile.pk}/change/").context["adminform"].form

    assert offered(form.fields["user"]) == {"sam", "rita", "olga"}


def test_the_rule_page_says_an_sla_change_applies_to_new_assignments_only(manager_client):
    rule = make_rule("Everyone", team=Team.objects.create(name="Inside sales"))

    page = manager_client.get(f"/admin/routing/routingrule/{rule.pk}/change/").content.decode()

    assert (
        "A change to the SLA applies to leads assigned from now on. Leads already waiting for acceptance"
        " keep the deadline they were given." in page
    )


@pytest.fixture
def named_accounts(db, rep_a):
    team, reps = make_team(size=2)
    make_rule("Named accounts", priority=5, team=team, strategy="account_owner")
    make_rule("Everyone", priority=90, team=team)
    Account.objects.create(domain="granitesoft.example", name="Granite Soft", owner=rep_a)
    return team, reps


def test_the_simulator_finds_the_account_owner_of_a_typed_company_domain(manager_client, named_accounts):
    page = manager_client.get(SIMULATE, {"company_domain": "GraniteSoft.example "}).content.decode()

    assert "<strong>Assigned to rita</strong>" in page
    assert "<strong>Named accounts</strong>: assigned to rita" in page
    assert "no account owner" not in page


def test_the_simulator_takes_the_domain_of_a_typed_email_as_capture_does(manager_client, named_accounts):
    page = manager_client.get(SIMULATE, {"email": "cto@granitesoft.example"}).content.decode()

    assert "<strong>Assigned to rita</strong>" in page
    assert "Company domain: <strong>granitesoft.example</strong>" in page


def test_a_typed_domain_without_an_account_still_has_no_owner(manager_client, named_accounts):
    page = manager_client.get(SIMULATE, {"company_domain": "unknown.example"}).content.decode()

    assert "<strong>Named accounts</strong>: no account owner for this domain" in page
    assert "<strong>Assigned to Rep0</strong>" in page


def recent_mqls(*countries: str) -> None:
    """MQLs in the stage history, oldest first, not routed (the replay alone places them)."""
    start = timezone.now() - timedelta(hours=1)
    for i, country in enumerate(countries):
        lead = LeadFactory(country=country, stage=Stage.MQL)
        StageChange.objects.create(lead=lead, from_stage=Stage.MAL, to_stage=Stage.MQL, at=start + timedelta(minutes=i))


def test_the_replay_gives_a_rep_with_two_free_slots_exactly_two(manager_client):
    team, reps = make_team(size=2)
    RepProfile.objects.filter(user=reps[0]).update(capacity=4)
    LeadFactory.create_batch(2, owner=reps[0], stage=Stage.SAL)  # 2 of 4 taken
    make_rule(
        "DACH", priority=10, conditions=[("country", "in", "DE, AT, CH")], target="rep", rep=reps[0], strategy="direct"
    )
    make_rule("Everyone", priority=90, team=team)
    recent_mqls("DE", "DE", "DE", "DE", "DE")

    page = manager_client.get(REPLAY, {"n": 100}).content.decode()

    assert "5 leads routed again" in page
    # Rep0 takes two, is then full; the DACH rule falls through and round robin skips Rep0.
    assert "<tr><td>Rep0</td><td>2</td><td>2</td><td>0</td></tr>" in page
    assert "<tr><td>Rep1</td><td>3</td><td>3</td><td>0</td></tr>" in page
    assert not StageChange.objects.exclude(to_stage=Stage.MQL).exists()
    assert not reps[1].owned_leads.exists()  # nothing assigned


def test_the_replay_starts_round_robin_from_today_and_advances_it(manager_client):
    team, reps = make_team(size=2)
    everyone = make_rule("Everyone", priority=90, team=team)
    RoutingCounter.objects.create(rule=everyone, user=reps[0], assigned=2)
    recent_mqls("FR", "FR", "FR", "FR")

    page = manager_client.get(REPLAY, {"n": 100}).content.decode()

    # Rep1 catches up (two leads), then they alternate from Rep0.
    assert "<tr><td>Rep0</td><td>1</td><td>1</td><td>0</td></tr>" in page
    assert "<tr><td>Rep1</td><td>3</td><td>3</td><td>0</td></tr>" in page
    assert RoutingCounter.objects.get(rule=everyone, user=reps[0]).assigned == 2
    assert not RoutingCounter.objects.filter(user=reps[1]).exists()
