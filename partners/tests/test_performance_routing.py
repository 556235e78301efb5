"""Performance-weighted routing: partners that accept, win and report get more leads."""

from collections import Counter

import pytest

from leads.models import Stage
from leads.services import lead_transition
from leads.tests.factories import LeadFactory
from partners.selectors import PartnerPerformance, partner_performance, performance_score
from partners.services import feedback_record
from routing import caches as routing_caches
from routing import engine
from routing.models import Assignment
from routing.tests.factories import make_rule


def test_the_score_multiplies_smoothed_acceptance_winning_and_reporting():
    new = PartnerPerformance(organization_id=1)
    assert performance_score(new) == 0.25  # 1/2 × 1/2 × 1
    good = PartnerPerformance(
        organization_id=2, handovers=10, accepted=9, declined=1, won=4, lost=0, feedback_compliance=1.0
    )
    assert performance_score(good) == round(10 / 12 * 5 / 6 * 1.0, 4)
    silent = PartnerPerformance(
        organization_id=3, handovers=10, accepted=2, declined=8, won=0, lost=2, feedback_compliance=0.0
    )
    assert performance_score(silent) == 0.05  # the floor: 3/12 × 1/4 × 1/2 = 0.03


def test_the_engine_shares_leads_in_proportion_to_performance():
    keys = (("partner", 1), ("partner", 2))
    rule = engine.Rule(1, "partners", engine.PERFORMANCE, candidates=keys)
    people = {
        keys[0]: engine.Candidate(keys[0], "strong", performance=0.6, capacity=1000),
        keys[1]: engine.Candidate(keys[1], "weak", performance=0.2, capacity=1000),
    }
    counters: Counter = Counter()
    for _ in range(400):
        counters[(1, engine.decide({}, [rule], people, counters).assignee)] += 1
    assert abs(counters[(1, keys[0])] - 300) <= 1 and counters[(1, keys[0])] + counters[(1, keys[1])] == 400


@pytest.mark.django_db
def test_a_partner_that_won_gets_more_of_the_next_leads(
    partner_org_a, partner_org_b, partner_a, django_capture_on_commit_callbacks
):
    def mql(country: str):
        lead = LeadFactory(stage=Stage.MAL, country=country)
        with django_capture_on_commit_callbacks(execute=True):
            lead_transition(lead=lead, to_stage=Stage.MQL)
        lead.refresh_from_db()
        return lead

    make_rule(
        "Austria → A",
        priority=10,
        target="partners",
        strategy="direct",
        partners=[partner_org_a],
        conditions=[("country", "eq", "AT")],
    )
    make_rule(
        "Germany → best partner",
        priority=20,
        target="partners",
        strategy="performance_weighted",
        partners=[partner_org_a, partner_org_b],
        conditions=[("country", "eq", "DE")],
    )
    history = mql("AT")
    feedback_record(lead=history, user=partner_a, status="accepted")
    feedback_record(lead=history, user=partner_a, status="won", deal_value=5000, currency="EUR")
    figures = partner_performance()
    assert (figures[partner_org_a.pk].won, figures[partner_org_b.pk].handovers) == (1, 0)

    routing_caches.partner_scores.clear()  # the figures are cached for a minute: read them now

    leads = [mql("DE") for _ in range(4)]

    got = [Assignment.objects.get(lead=lead).partner for lead in leads]
    assert got == [partner_org_a, partner_org_b, partner_org_a, partner_org_a]  # 0.444 vs 0.25 per lead


def test_only_partner_rules_may_be_performance_weighted(db):
    from django.core.exceptions import ValidationError

    from routing.models import RoutingRule

    with pytest.raises(ValidationError, match="chooses among partners"):
        RoutingRule(name="x", target="team", strategy="performance_weighted").clean()
