"""Fixtures of the webhook tests: a subscription pointed at a real receiver, and the due job driven."""

from __future__ import annotations

import pytest

from leads.models import Role
from leads.tests.factories import UserFactory


@pytest.fixture
def admin_user(db):
    return UserFactory(username="ada", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_plain(db):
    return UserFactory(username="stan", is_staff=True)


@pytest.fixture
def marketing_plain(db):
    return UserFactory(username="mona", role=Role.MARKETING)
