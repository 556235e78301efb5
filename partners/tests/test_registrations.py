"""What partners hands to the apps below it from PartnersConfig.ready()."""

from partners import selectors
from routing import selectors as routing_selectors


def test_partners_gives_routing_its_performance_scores_as_weights(partner_org_a, partner_org_b):
    assert routing_selectors._partner_weights is selectors.partner_weights

    routing_selectors.register_partner_weights(selectors.partner_weights)  # nothing cached by another test
    # No history yet: smoothed acceptance 1/2 × win rate 1/2 × full reporting (performance_score).
    assert routing_selectors.partner_scores() == {partner_org_a.pk: 0.25, partner_org_b.pk: 0.25}
