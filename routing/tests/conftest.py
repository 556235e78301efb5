"""Fixtures of the routing tests: a team's manager, and a sales manager signed in to the admin."""

import pytest

from leads.models import Role
from leads.tests.factories import UserFactory, client_for


@pytest.fixture
def manager(db):
    """A team's manager, whom escalations and stalled pool leads reach ("Hello Sam")."""
    return UserFactory(username="sam-manager", role=Role.SALES_MANAGER, first_name="Sam", email="sam@team.example")


@pytest.fixture
def manager_client(sales_manager):
    """The sales manager signed in to the admin with every routing and leads permission."""
    return client_for(sales_manager, apps=["routing", "leads"])
