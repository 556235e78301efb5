"""Partner candidates' weights come from whatever partners registers (routing never imports partners)."""

import pytest

from leads.tests.factories import PartnerOrganizationFactory
from routing import selectors


@pytest.fixture
def registered_again_afterwards():
    registered = selectors._partner_weights
    yield
    selectors.register_partner_weights(registered)  # partners' own, and nothing of ours left cached


def test_a_partner_candidate_weighs_what_the_registered_function_gives(db, registered_again_afterwards):
    alpine = PartnerOrganizationFactory(name="Alpine")
    nordic = PartnerOrganizationFactory(name="Nordic")
    calls = []

    def weights() -> dict[int, float]:
        calls.append(1)
        return {alpine.pk: 0.3}

    selectors.register_partner_weights(weights)
    found = selectors.candidates([("partner", alpine.pk), ("partner", nordic.pk)])
    again = selectors.candidates([("partner", alpine.pk)])

    # One the function gives no figure for weighs 1.0; the figures are read once for the minute kept.
    assert (found[("partner", alpine.pk)].performance, found[("partner", nordic.pk)].performance) == (0.3, 1.0)
    assert again[("partner", alpine.pk)].performance == 0.3
    assert calls == [1]
