"""A lead every partner declined waits in the unassigned queue, and the retry never hands it back."""

import pytest

from partners.services import feedback_record
from routing import tasks
from routing.models import Assignment

pytestmark = pytest.mark.django_db


def test_the_unassigned_retry_never_returns_a_lead_to_a_partner_that_declined(routed, partner_a, partner_b):
    lead = routed()
    feedback_record(lead=lead, user=partner_a, status="declined", reason="no_capacity")
    lead.refresh_from_db()
    assert lead.partner == partner_b.partner_organization
    feedback_record(lead=lead, user=partner_b, status="declined", reason="outside_territory")
    assert Assignment.objects.get(lead=lead, status__in=Assignment.OPEN).status == "unassigned"

    assert tasks.retry_unassigned_task() == 1

    lead.refresh_from_db()
    assert (lead.partner, lead.owner) == (None, None)
    assert list(Assignment.objects.filter(lead=lead).order_by("pk").values_list("partner", "status")) == [
        (partner_a.partner_organization_id, "rejected"),
        (partner_b.partner_organization_id, "rejected"),
        (None, "unassigned"),
    ]
