"""A lead routed to a partner the way routing does it: an MQL, rules that target partners, on commit."""

from __future__ import annotations

import pytest

from leads.models import Lead
from routing.tests.factories import mql, partner_rule


@pytest.fixture
def partner_rules(partner_org_a, partner_org_b):
    """Austria → Alpine (partner A) first, then Nordic (partner B), which covers Austria too."""
    month = 60 * 24 * 30
    return [
        partner_rule("Austria → A", [partner_org_a], "AT", priority=10, sla_minutes=month),
        partner_rule("Austria, Nordics → B", [partner_org_b], "AT, SE", priority=20, sla_minutes=month),
    ]


@pytest.fixture
def routed(partner_rules, django_capture_on_commit_callbacks):
    """`routed(**fields)` → an MQL in Austria handed to partner A (the rules route it on commit)."""

    def make(**fields) -> Lead:
        return mql(django_capture_on_commit_callbacks, **{"country": "AT", "company": "Initech", **fields})

    return make
