"""The routing admin in words: the rule list names each rule's target and reads its conditions as
sentences, the rule form asks for the field its target needs, rep profiles take "SE, NO, DK", and
assignments show strategies by their labels."""

from __future__ import annotations

import re

import pytest

from leads.models import PartnerOrganization, Role
from leads.tests.factories import LeadFactory, UserFactory
from routing.models import Assignment, RepProfile, RoutingRule
from routing.tests.factories import make_rule, make_team


@pytest.fixture
def rules(db):
    team, _ = make_team("Inside sales", size=2)
    rita = UserFactory(username="rita.meyer", role=Role.SALES_REP, first_name="Rita", last_name="Meyer")
    alpine = PartnerOrganization.objects.create(name="Alpine Resellers")
    nordic = PartnerOrganization.objects.create(name="Nordic Channel")
    return {
        "team": make_rule("DACH", team=team, conditions=[("country", "in", "DE, AT, CH"), ("grade", "eq", "A")]),
        "rep": make_rule(
            "CTOs", target="rep", rep=rita, strategy="direct", conditions=[("job_title", "contains", "CTO")]
        ),
        "partners": make_rule("Nordics", target="partners", partners=[alpine, nordic], strategy="direct"),
        "pool": make_rule(
            "Big", target="pool", team=team, strategy="pool", pool_mode="shark_tank",
            conditions=[("annual_revenue", "between", "1000000, 5000000"), ("industry", "exists", "yes")],
        ),
        "weighted": make_rule("Weighted", team=team, strategy="weighted_round_robin"),
        "team_obj": team,
        "rita": rita,
    }  # fmt: skip


def test_the_rule_list_names_each_target_and_reads_the_conditions(manager_client, rules):
    page = manager_client.get("/admin/routing/routingrule/").content.decode()

    assert '<td class="field-target_text">Team Inside sales, round robin</td>' in page
    assert '<td class="field-target_text">Rep Rita Meyer</td>' in page
    assert '<td class="field-target_text">Partners Alpine Resellers, Nordic Channel</td>' in page
    assert '<td class="field-target_text">Pool of Inside sales (shark tank)</td>' in page
    assert '<td class="field-target_text">Team Inside sales, weighted round robin</td>' in page
    assert "Country is one of Germany, Austria, Switzerland and Grade is A" in page
    assert "Job title contains &#x27;CTO&#x27;" in page
    assert "Annual revenue is between 1,000,000 and 5,000,000 and Industry is known" in page
    assert '<td class="field-conditions_text">Every lead</td>' in page
    for code in ("weighted_round_robin", "round_robin", "shark_tank", "country in", "grade eq"):
        assert code not in re.sub(r"<[^>]+>", " ", page).replace("&#x27;", "'"), code


def test_the_rule_form_marks_each_fieldset_with_its_targets_and_loads_its_script(manager_client, rules):
    page = manager_client.get(f"/admin/routing/routingrule/{rules['team'].pk}/change/").content.decode()

    assert '<script src="/static/js/admin_rule_form.js"></script>' in page
    assert re.search(r'<fieldset class="[^"]*lp-target lp-for-rep"', page)
    assert re.search(r'<fieldset class="[^"]*lp-target lp-for-partners"', page)
    assert re.search(r'<fieldset class="[^"]*lp-target lp-for-pool"', page)
    assert "SLA (minutes)" in page and "Sla minutes" not in page
    assert "When the SLA is missed" in page
    assert '<option value="job_title">Job title</option>' in page  # the conditions' field dropdown


def _post(rule: RoutingRule, **changes) -> dict:
    data = {
        "name": rule.name,
        "priority": rule.priority,
        "status": rule.status,
        "target": rule.target,
        "strategy": rule.strategy,
        "rep": rule.rep_id or "",
        "team": rule.team_id or "",
        "pool_mode": rule.pool_mode,
        "pool_size": rule.pool_size,
        "sla_minutes": rule.sla_minutes,
        "on_sla_breach": rule.on_sla_breach,
        "fallback": rule.fallback,
        "on_reject": rule.on_reject,
        "conditions-TOTAL_FORMS": 0,
        "conditions-INITIAL_FORMS": 0,
    }
    return {**data, **changes}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"target": "partners"}, "partners", "A rule that goes to partners needs at least one partner"),
        ({"target": "rep", "strategy": "direct"}, "rep", "A rule that goes to a rep needs the rep"),
        ({"team": ""}, "team", "A rule that goes to a team needs the team"),
        ({"target": "pool", "team": ""}, "team", "A pool belongs to a team"),
    ],
)
def test_a_target_without_its_field_is_refused_in_words_and_nothing_changes(
    manager_client, rules, changes, field, message
):
    rule = rules["team"]
    response = manager_client.post(f"/admin/routing/routingrule/{rule.pk}/change/", _post(rule, **changes))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert [e for e in errors[field] if message in e], errors
    rule.refresh_from_db()
    assert (rule.target, rule.team_id) == ("team", rules["team_obj"].pk)


def test_a_pool_takes_the_pool_strategy_by_itself(manager_client, rules):
    rule = rules["team"]
    data = _post(rule, target="pool", strategy="round_robin", pool_mode="blind")
    response = manager_client.post(f"/admin/routing/routingrule/{rule.pk}/change/", data)

    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.target, rule.strategy, rule.pool_mode) == ("pool", "pool", "blind")


def _profile_post(user, **changes) -> dict:
    data = {
        "user": user.pk,
        "team": "",
        "active": "on",
        "capacity": 25,
        "weight": 1,
        "seniority": 2,
        "territories": "",
        "languages": "",
        "products": "",
        "industries": "",
    }
    return {**data, **changes}


def test_a_rep_profile_takes_countries_and_languages_as_text(manager_client, rules):
    rita = rules["rita"]
    response = manager_client.post(
        "/admin/routing/repprofile/add/",
        _profile_post(rita, territories="se, NO, DK, DACH", languages="de, EN", products="Cloud, Analytics"),
    )

    assert response.status_code == 302
    profile = RepProfile.objects.get(user=rita)
    assert profile.territories == ["SE", "NO", "DK", "DACH"]
    assert profile.languages == ["de", "en"]
    assert profile.products == ["Cloud", "Analytics"]
    page = manager_client.get(f"/admin/routing/repprofile/{profile.pk}/change/").content.decode()
    assert 'value="SE, NO, DK, DACH"' in page
    assert "Sweden, Norway, Denmark, DACH (Germany, Austria, Switzerland)" in page
    assert "<textarea" not in page.split('id="id_territories"')[0][-200:]  # an input, not a JSON box


def test_a_bad_country_or_language_code_is_refused_in_words_and_nothing_is_saved(manager_client, rules):
    rita = rules["rita"]
    response = manager_client.post(
        "/admin/routing/repprofile/add/", _profile_post(rita, territories="SE, XX, Germany", languages="de, zz")
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["territories"] == [
        "“XX”, “GERMANY” are not a country code or a region (DACH, NORDICS, BENELUX, UKI, NA, SOUTH)."
        " Use two-letter codes such as DE for Germany, SE for Sweden."
    ]
    assert errors["languages"] == ["“zz” is not a language code. Use codes such as de for German, en for English."]
    assert not RepProfile.objects.filter(user=rita).exists()


def test_assignments_show_the_strategy_by_its_label(manager_client, rules):
    lead = LeadFactory()
    Assignment.objects.create(
        lead=lead, user=rules["rita"], status="active", strategy="weighted_round_robin", rule=rules["weighted"]
    )
    page = manager_client.get("/admin/routing/assignment/").content.decode()
    assert '<td class="field-strategy_words">Weighted round robin</td>' in page
    assert "?strategy=weighted_round_robin" in page and ">Weighted round robin</a>" in page
    assert ">weighted_round_robin<" not in page
    filtered = manager_client.get("/admin/routing/assignment/", {"strategy": "direct"}).content.decode()
    assert "field-strategy_words" not in filtered
