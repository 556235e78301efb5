"""Fixtures of the scoring tests."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client


@pytest.fixture
def marketing_client(marketing):
    """Marketing signed in to the admin with every scoring and leads permission."""
    marketing.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["scoring", "leads"]))
    client = Client()
    client.force_login(marketing)
    return client
