"""A lead routed to a partner the way routing does it: an MQL, rules that target partners, on commit."""

from __future__ import annotations

import pytest

from leads.models import Lead, Stage
from leads.services import lead_transition
from leads.tests.factories import LeadFactory
from routing.tests.factories import make_rule


@pytest.fixture
def partner_rules(partner_org_a, partner_org_b):
    """Austria → Alpine (partner A) first, then Nordic (partner B), which covers Austria too."""
    return [
        make_rule(
            "Austria → A",
            priority=10,
            target="partners",
            strategy="direct",
            partners=[partner_org_a],
            conditions=[("country", "eq", "AT")],
            sla_minutes=60 * 24 * 30,
        ),
        make_rule(
            "Austria, Nordics → B",
            priority=20,
            target="partners",
            strategy="direct",
            partners=[partner_org_b],
            conditions=[("country", "in", "AT, SE")],
            sla_minutes=60 * 24 * 30,
        ),
    ]


@pytest.fixture
def routed(partner_rules, django_capture_on_commit_callbacks):
    """`routed(**fields)` → an MQL in Austria handed to partner A (the rules route it on commit)."""

    def make(**fields) -> Lead:
        lead = LeadFactory(stage=Stage.MAL, **{"country": "AT", "company": "Initech", **fields})
        with django_capture_on_commit_callbacks(execute=True):
            lead_transition(lead=lead, to_stage=Stage.MQL)
        lead.refresh_from_db()
        return lead

    return make
