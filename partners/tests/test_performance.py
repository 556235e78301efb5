"""partner_performance: outcome figures per organisation, computed in the database."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from leads.tests.factories import LeadFactory
from partners.models import PartnerFeedback
from partners.selectors import PartnerPerformance, partner_performance
from routing.models import Assignment

DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def handover(org, assigned_at, status="accepted", accepted_at=None, ended_at=None):
    lead = LeadFactory(partner=org)
    Assignment.objects.create(
        lead=lead, partner=org, status=status, assigned_at=assigned_at, accepted_at=accepted_at, ended_at=ended_at
    )
    return lead


def feedback(lead, org, status, at, **fields):
    return PartnerFeedback.objects.create(lead=lead, organization=org, status=status, at=at, **fields)


def test_outcome_figures_per_organisation(partner_org_a, partner_org_b, django_assert_max_num_queries):
    t = timezone.now()
    a = partner_org_a  # deadline: 5 days (the default)
    # 1: accepted after a day, contacted within the deadline, won.
    won = handover(a, t - 10 * DAY, accepted_at=t - 9 * DAY)
    feedback(won, a, "accepted", t - 9 * DAY)
    feedback(won, a, "contacted", t - 8 * DAY)
    feedback(won, a, "won", t - 2 * DAY, deal_value=Decimal("1000.00"), currency="EUR")
    # 2: declined after six hours.
    declined = handover(a, t - 10 * DAY, status="rejected", ended_at=t - 10 * DAY + 6 * HOUR)
    feedback(declined, a, "declined", t - 10 * DAY + 6 * HOUR, reason="no_capacity")
    # 3: accepted through the routing API after three days; lost reported late (9 days).
    lost = handover(a, t - 10 * DAY, accepted_at=t - 7 * DAY)
    feedback(lost, a, "lost", t - 1 * DAY, reason="price")
    # 4: still waiting, deadline not passed.
    handover(a, t - 1 * DAY, status="active")
    # 5: accepted after a day, never reported, deadline long passed.
    handover(a, t - 20 * DAY, accepted_at=t - 19 * DAY)

    with django_assert_max_num_queries(4):
        figures = partner_performance(now=t)

    assert figures[a.pk] == PartnerPerformance(
        organization_id=a.pk,
        handovers=5,
        waiting=1,
        accepted=3,
        declined=1,
        acceptance_rate=0.75,
        median_first_response=DAY,
        feedback_compliance=0.3333,
        won=1,
        lost=1,
        win_rate=0.5,
        won_value={"EUR": Decimal("1000.00")},
    )
    assert figures[partner_org_b.pk] == PartnerPerformance(organization_id=partner_org_b.pk)
    assert partner_performance(partner_org_b, now=t) == {partner_org_b.pk: figures[partner_org_b.pk]}
