"""routing/caches.py: the rule set, the partners' weights and the candidates' snapshot follow saves and
deletes of what they are read from."""

import pytest

from leads.tests.factories import PartnerOrganizationFactory
from routing import caches, selectors
from routing.models import RepProfile, RuleCondition
from routing.services import batch
from routing.tests.factories import make_rule, make_team

pytestmark = pytest.mark.django_db


def names(plan: selectors.Plan) -> list[str]:
    return [row.name for row in plan.rows.values()]


def test_the_rule_set_is_rebuilt_after_a_rule_or_condition_is_saved_or_deleted():
    first = make_rule("Enterprise", priority=10, conditions=[("company_size", "gte", 1000)])
    make_rule("Everyone else", priority=20)
    before = selectors.plan()
    assert selectors.plan() is before and names(before) == ["Enterprise", "Everyone else"]

    first.name = "Large accounts"
    first.save()
    assert len(caches.plans) == 0
    assert names(selectors.plan()) == ["Large accounts", "Everyone else"]

    condition = RuleCondition.objects.get(rule=first)
    condition.value = 2000
    condition.save()
    assert len(caches.plans) == 0
    (rule,) = [r for r in selectors.plan().ruleset.rules if r.id == first.pk]
    assert [c.value for c in rule.conditions] == [2000]

    first.delete()
    assert names(selectors.plan()) == ["Everyone else"]


def test_the_rule_set_is_rebuilt_when_a_rules_partners_change(partner_org_a, partner_org_b):
    rule = make_rule("Channel", target="partners", partners=[partner_org_a])
    assert selectors.plan().ruleset.rules[0].candidates == (("partner", partner_org_a.pk),)
    rule.partners.add(partner_org_b)
    assert len(caches.plans) == 0
    assert selectors.plan().ruleset.rules[0].candidates == (
        ("partner", partner_org_a.pk),
        ("partner", partner_org_b.pk),
    )


def test_partner_weights_and_the_snapshot_are_dropped_when_what_they_read_changes():
    _team, (rep,) = make_team("Solo", size=1, capacity=4)
    caches.partner_scores.set("all", {7: 0.5})
    assert caches.partner_scores.get("all") == {7: 0.5}
    PartnerOrganizationFactory(name="Gamma")
    assert len(caches.partner_scores) == 0

    assert batch._snapshot({("rep", rep.pk)})[("rep", rep.pk)].capacity == 4
    profile = RepProfile.objects.get(user=rep)
    profile.capacity = 9
    profile.save()
    assert len(caches.candidate_snapshots) == 0
    assert batch._snapshot({("rep", rep.pk)})[("rep", rep.pk)].capacity == 9


def test_clear_empties_every_routing_cache():
    make_rule("Everyone", priority=1)
    selectors.plan()
    caches.partner_scores.set("all", {1: 1.0})
    caches.candidate_snapshots.set("last", {})
    assert (len(caches.plans), len(caches.partner_scores), len(caches.candidate_snapshots)) == (1, 1, 1)
    caches.clear()
    assert (len(caches.plans), len(caches.partner_scores), len(caches.candidate_snapshots)) == (0, 0, 0)
