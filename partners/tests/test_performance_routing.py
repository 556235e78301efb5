"""Performance-weighted routing: partners that accept, win and report get more leads."""


import pytest

from partners.selectors import PartnerPerformance, partner_performance, performance_score
from partners.services import feedback_record
from routing import caches as routing_caches
from routing import engine
from routing.models import Assignment
from routing.tests.factories import hand_out, mql, partner_rule, two_candidates


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
    rule, people, (strong, weak) = two_candidates(
        engine.PERFORMANCE, {"performance": 0.6}, {"performance": 0.2}, kind="partner"
    )
    got = hand_out(rule, people, 400)
    assert abs(got[strong] - 300) <= 1 and got[strong] + got[weak] == 400


@pytest.mark.django_db
def test_a_partner_that_won_gets_more_of_the_next_leads(
    partner_org_a, partner_org_b, partner_a, django_capture_on_commit_callbacks
):
    partner_rule("Austria → A", [partner_org_a], "AT", priority=10)
    partner_rule(
        "Germany → best partner", [partner_org_a, partner_org_b], "DE", priority=20, strategy="performance_weighted"
    )
    history = mql(django_capture_on_commit_callbacks, country="AT")
    feedback_record(lead=history, user=partner_a, status="accepted")
    feedback_record(lead=history, user=partner_a, status="won", deal_value=5000, currency="EUR")
    figures = partner_performance()
    assert (figures[partner_org_a.pk].won, figures[partner_org_b.pk].handovers) == (1, 0)

    routing_caches.partner_scores.clear()  # the figures are cached for a minute: read them now

    leads = [mql(django_capture_on_commit_callbacks, country="DE") for _ in range(4)]

    got = [Assignment.objects.get(lead=lead).partner for lead in leads]
    assert got == [partner_org_a, partner_org_b, partner_org_a, partner_org_a]  # 0.444 vs 0.25 per lead


def test_only_partner_rules_may_be_performance_weighted(db):
    from django.core.exceptions import ValidationError

    from routing.models import RoutingRule

    with pytest.raises(ValidationError, match="chooses among partners"):
        RoutingRule(name="x", target="team", strategy="performance_weighted").clean()
