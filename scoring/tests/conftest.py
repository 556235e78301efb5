"""Fixtures of the scoring tests."""

import pytest

from leads.tests.factories import client_for


@pytest.fixture
def marketing_client(marketing):
    """Marketing signed in to the admin with every scoring and leads permission."""
    return client_for(marketing, apps=["scoring", "leads"])
